"""Stage 3: merge atoms into T topics (SPEC §4).

1. ``sparsify_rows``: keep each atom's smallest set of top words holding τ of its mass.
2. ``atom_embeddings``: e_k = sparsified B_k · word vectors (L2-normalised).
3. ``cluster_atoms``: weighted k-means of the used atoms into T clusters, each atom weighing
   θ̄_k^p (:func:`cluster_weights`; p = 0.5 by default, the paper's θ̄_k is p = 1).
4. ``build_topics``: β_c = Σ_{k∈c} θ̄_k B_k / Σ_{k∈c} θ̄_k from the unsparsified B;
   topics are numbered by prevalence, most prevalent first.
5. ``doc_topics``: θ_topic[d, c] = Σ_{k∈c} θ_dk; ``coverage``: share of documents using c.

Steps 1–2 do not depend on T; changing T re-runs only steps 3–5 (well under a second).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.topics import kmeans

RANKINGS = ("coherent", "beta", "lift", "relevance")
#: p of :func:`cluster_weights` (``SAETM(prevalence_power)``); 1 is the paper's θ̄-weighted k-means.
PREVALENCE_POWER = 0.5


def _csr(x, name: str) -> sp.csr_matrix:
    if sp.issparse(x):
        return sp.csr_matrix(x)
    x = np.asarray(x)
    if x.ndim != 2:
        raise SaetmError(f"{name} must be a 2-D matrix, got shape {x.shape}")
    return sp.csr_matrix(x)


def sparsify_rows(B, tau: float = 0.9, *, block_entries: int = 1 << 21) -> sp.csr_matrix:
    """Keep, in every row, the smallest set of largest entries holding ≥ ``tau`` of the row's mass.

    ``B``: (n_atoms, V) non-negative (CSR or dense). Returns (n_atoms, V) float32 CSR whose
    non-zero rows sum to 1; all-zero rows stay zero. Ties are broken by word index.
    """
    if not 0.0 < tau <= 1.0:
        raise SaetmError(f"tau must be in (0, 1], got {tau}; the paper uses 0.9")
    B = _csr(B, "feature_words")
    if not B.has_canonical_format:
        B = B.copy()  # never reorder the caller's arrays
        B.sum_duplicates()
    n_rows = B.shape[0]
    if B.nnz == 0:
        return sp.csr_matrix(B.shape, dtype=np.float32)
    if (B.data < 0).any():
        raise SaetmError("feature_words has negative entries; pass the row-stochastic B from stage 2")
    # Rows are independent: blocks of about ``block_entries`` entries bound the temporaries
    # (about 80 bytes per entry) however dense B is (20 Newsgroups: 18M entries).
    bounds = np.searchsorted(B.indptr, np.arange(block_entries, B.nnz, block_entries), side="right") - 1
    bounds = np.unique(np.r_[0, np.clip(bounds, 1, n_rows), n_rows])
    blocks = [_sparsify_block(B[r0:r1], tau) for r0, r1 in zip(bounds[:-1], bounds[1:])]
    return blocks[0] if len(blocks) == 1 else sp.vstack(blocks, format="csr")


def _sparsify_block(B: sp.csr_matrix, tau: float) -> sp.csr_matrix:
    """:func:`sparsify_rows` on a canonical, non-negative CSR block."""
    n_rows = B.shape[0]
    rows = np.repeat(np.arange(n_rows), np.diff(B.indptr))
    data = B.data.astype(np.float64)
    order = _row_descending_order(rows, B.data, B.indices, B.shape)
    data_s, cols_s = data[order], B.indices[order]
    totals = np.bincount(rows, weights=data, minlength=n_rows)
    csum = np.cumsum(data_s)
    starts = B.indptr[:-1]
    row_offset = np.concatenate([[0.0], csum])[starts]  # cumulative mass before each row
    within = csum - np.repeat(row_offset, np.diff(B.indptr))
    # Entry j is kept if the mass before it is still below tau (so the last kept entry crosses tau);
    # explicit zeros and all-zero rows are never kept.
    before = within - data_s
    keep = before < tau * np.repeat(totals, np.diff(B.indptr)) * (1.0 - 1e-9)
    kept_rows = rows[keep]
    kept = data_s[keep]
    kept_tot = np.bincount(kept_rows, weights=kept, minlength=n_rows)
    kept = kept / kept_tot[kept_rows]
    # Entries are already grouped by row, so the CSR arrays can be written directly.
    indptr = np.concatenate([[0], np.cumsum(np.bincount(kept_rows, minlength=n_rows))])
    out = sp.csr_matrix((kept.astype(np.float32), cols_s[keep], indptr), shape=B.shape)
    out.sort_indices()
    return out


def _row_descending_order(rows: np.ndarray, data: np.ndarray, cols: np.ndarray, shape) -> np.ndarray:
    """Permutation sorting entries by row, then decreasing value, then word index."""
    row_bits, col_bits = int(shape[0]).bit_length(), int(shape[1]).bit_length()
    if row_bits + 32 + col_bits <= 63:
        # One int64 key: the bits of a non-negative float32 order like its value, so a
        # single (radix) sort replaces a three-key lexsort, ~5x faster.
        vbits = np.asarray(data, dtype=np.float32).view(np.uint32).astype(np.int64)
        key = (rows.astype(np.int64) << (32 + col_bits)) | ((0xFFFFFFFF - vbits) << col_bits) | cols.astype(np.int64)
        return np.argsort(key, kind="stable")
    return np.lexsort((cols, -np.asarray(data, dtype=np.float64), rows))


def atom_embeddings(B_sparse, word_vectors: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Atom embeddings e_k = B_sparse[k] · word_vectors.

    ``B_sparse``: (n_atoms, V) CSR (usually from :func:`sparsify_rows`); ``word_vectors``:
    (V, d), row i the vector of vocabulary word i. Returns (n_atoms, d) float32, rows
    L2-normalised when ``normalize`` (all-zero rows stay zero).
    """
    B_sparse = _csr(B_sparse, "B_sparse")
    W = np.asarray(word_vectors, dtype=np.float32)
    if W.ndim != 2 or W.shape[0] != B_sparse.shape[1]:
        raise SaetmError(
            f"word_vectors has shape {W.shape} but the vocabulary has {B_sparse.shape[1]} words; "
            "pass one vector per vocabulary word (WordVectors.vectors_for(vocab))"
        )
    E = np.asarray(B_sparse.astype(np.float32) @ W, dtype=np.float32)
    if normalize:
        norms = np.linalg.norm(E, axis=1, keepdims=True)
        E = np.divide(E, norms, out=np.zeros_like(E), where=norms > 0)
    return E


def cluster_weights(feature_prob: np.ndarray, power: float = PREVALENCE_POWER) -> np.ndarray:
    """What each atom weighs when atoms are clustered into topics: θ̄_k^p (0 for unused atoms).

    With p = 1 (the paper) an atom that fires in most documents (style, length, "company")
    weighs as much as dozens of topical atoms, and weighted k-means spends whole topics on a
    few such atoms; with p = 0.5 the atoms' positions, rather than their mass, decide the
    clusters (measured in ``bench/README.md``); p = 0 weighs every used atom the same. β still
    weighs atoms by θ̄.
    """
    p = np.asarray(feature_prob, dtype=np.float64).ravel()
    return np.where(np.isfinite(p) & (p > 0), np.abs(p) ** float(power), 0.0)


def cluster_atoms(atom_emb: np.ndarray, weights: np.ndarray, n_topics: int, seed: int = 0,
                  n_init: int = 1, max_iter: int = 100, n_threads: int | None = 1,
                  init: np.ndarray | None = None) -> np.ndarray:
    """Weighted k-means of the used atoms (weight > 0) into ``n_topics`` clusters.

    ``atom_emb``: (n_atoms, d); ``weights``: (n_atoms,), e.g. :func:`cluster_weights`. Returns ``atom_topic``:
    (n_atoms,) int64 in [0, n_topics), −1 for unused atoms. Every cluster is non-empty.
    Cluster ids are arbitrary here; :func:`build_topics` renumbers them by prevalence.
    ``n_threads``: OpenMP threads for k-means (None: scikit-learn's default). One thread
    is the default: the problem is small (thousands of atoms), and spinning OpenMP threads
    slow k-means down on a busy machine.

    ``init``: an initial ``atom_topic`` with ``n_topics`` clusters (e.g.
    ``hierarchy.cut(tree, n_topics)``); k-means then starts from its weighted centroids
    instead of k-means++ (``n_init`` and ``seed`` are not used), in :func:`saetm.topics.kmeans.lloyd`
    (scikit-learn's iterations, without importing it) unless a cluster empties on the way.
    """
    from threadpoolctl import threadpool_limits

    X = np.asarray(atom_emb, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != w.shape[0]:
        raise SaetmError(f"atom_emb has shape {X.shape} but weights has {w.shape[0]} entries; give one weight per atom")
    used = np.flatnonzero(np.isfinite(w) & (w > 0))
    n_topics = int(n_topics)
    if n_topics < 1 or n_topics > len(used):
        raise SaetmError(
            f"n_topics={n_topics} is out of range: {len(used)} atoms are used (θ̄ > 0), "
            f"so choose 1 ≤ n_topics (--topics) ≤ {len(used)}"
        )
    atom_topic = np.full(X.shape[0], -1, dtype=np.int64)
    if n_topics == 1:
        atom_topic[used] = 0
        return atom_topic
    Xu, wu = X[used], w[used] / w[used].sum()
    if init is None:
        centers = "k-means++"
    else:
        start = np.asarray(init).ravel()
        if start.shape[0] != X.shape[0]:
            raise SaetmError(f"init has {start.shape[0]} entries but there are {X.shape[0]} atoms; pass an atom_topic")
        start = start[used].astype(np.int64)
        if start.min() < 0 or start.max() >= n_topics or np.unique(start).size != n_topics:
            raise SaetmError(f"init must put every used atom in one of exactly {n_topics} clusters numbered "
                             f"0..{n_topics - 1} (e.g. hierarchy.cut(tree, {n_topics}))")
        mass = np.bincount(start, weights=wu, minlength=n_topics)
        centers = kmeans.cluster_sums(Xu * wu[:, None], start, n_topics) / mass[:, None]
        with threadpool_limits(limits=n_threads, user_api="blas"):
            fitted = kmeans.lloyd(Xu, wu, centers, max_iter=max_iter)
        if fitted is not None:
            atom_topic[used] = kmeans.fill_empty_clusters(fitted[0], Xu, fitted[1], n_topics)
            return atom_topic
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_topics, init=centers, n_init=n_init if init is None else 1, max_iter=max_iter,
                random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(limits=n_threads):
        # Fewer distinct points than clusters: handled below by splitting large clusters.
        warnings.simplefilter("ignore")
        labels = km.fit(Xu, sample_weight=wu).labels_.astype(np.int64)
    labels = kmeans.fill_empty_clusters(labels, Xu, km.cluster_centers_, n_topics)
    atom_topic[used] = labels
    return atom_topic


@dataclass
class Topics:
    """T topics made of atoms, numbered by prevalence (topic 0 is the most prevalent).

    ``atom_topic``: (n_atoms,) int64, −1 for atoms in no topic; ``topic_words`` β:
    (T, V) float32, rows sum to 1; ``prevalence``: (T,) float64, Σ_{k∈c} θ̄_k;
    ``n_atoms``: (T,) int64, atoms per topic.
    """

    atom_topic: np.ndarray
    topic_words: np.ndarray
    prevalence: np.ndarray
    n_atoms: np.ndarray

    @property
    def n_topics(self) -> int:
        return int(self.topic_words.shape[0])

    def top_words(self, vocab: Sequence[str], n: int = 25, ranking: str = "beta", background=None,
                  lam: float = 0.6, floor: float | None = None) -> tuple[list[list[str]], list[np.ndarray]]:
        """Each topic's top ``n`` words and their β; see :func:`top_words`."""
        return top_words(self.topic_words, vocab, n=n, ranking=ranking, background=background, lam=lam, floor=floor)

    def labels(self, vocab: Sequence[str], n: int = 4, **kw) -> list[str]:
        """Short labels such as ``"3: space nasa orbit launch"``."""
        words, _ = self.top_words(vocab, n=n, **kw)
        return [f"{c}: {' '.join(ws)}" for c, ws in enumerate(words)]


def build_topics(feature_words, feature_prob: np.ndarray, atom_topic: np.ndarray, n_topics: int) -> Topics:
    """Merge atoms into topics.

    ``feature_words`` B: (n_atoms, V) CSR, row-stochastic (unsparsified);
    ``feature_prob`` θ̄: (n_atoms,); ``atom_topic``: (n_atoms,) ids in [0, n_topics) or −1.
    Topics are renumbered by decreasing prevalence (ties: lowest first atom); the returned
    ``Topics.atom_topic`` carries the new ids. A topic whose atoms all have θ̄ = 0 gets the
    plain mean of their word distributions.
    """
    B = _csr(feature_words, "feature_words")
    p = np.asarray(feature_prob, dtype=np.float64).ravel()
    a = np.asarray(atom_topic).ravel()
    n_topics = int(n_topics)
    if not (B.shape[0] == p.shape[0] == a.shape[0]):
        raise SaetmError(
            f"feature_words has {B.shape[0]} rows, feature_prob {p.shape[0]} and atom_topic {a.shape[0]} entries; "
            "all three must have one entry per atom"
        )
    if a.size == 0:
        raise SaetmError("there are no atoms; fit the SAE and the word distributions first")
    if n_topics < 1 or a.max() >= n_topics or a.min() < -1:
        raise SaetmError(f"atom_topic must hold topic ids in [0, {n_topics}) or -1; got values from {a.min()} to {a.max()}")
    a = a.astype(np.int64)
    inc = a >= 0
    n_atoms = np.bincount(a[inc], minlength=n_topics)
    if (n_atoms == 0).any():
        raise SaetmError(f"topics {np.flatnonzero(n_atoms == 0)[:5].tolist()} have no atoms; "
                         "number the clusters 0..n_topics-1 without gaps (e.g. from cluster_atoms)")
    prevalence = np.bincount(a[inc], weights=p[inc], minlength=n_topics)
    first_atom = np.full(n_topics, a.shape[0], dtype=np.int64)
    np.minimum.at(first_atom, a[inc], np.flatnonzero(inc))
    order = np.lexsort((first_atom, -prevalence))  # new id i ← old id order[i]
    new_id = np.empty(n_topics, dtype=np.int64)
    new_id[order] = np.arange(n_topics)
    a_new = np.where(inc, new_id[np.maximum(a, 0)], -1)
    prevalence, n_atoms = prevalence[order], n_atoms[order]

    # Merge matrix M (T, n_atoms): θ̄_k / Σ_{k∈c} θ̄_k, or 1/|c| for a topic of weightless atoms.
    idx = np.flatnonzero(inc)
    t = a_new[idx]
    w = np.where(prevalence[t] > 0, p[idx] / np.where(prevalence[t] > 0, prevalence[t], 1.0), 1.0 / n_atoms[t])
    M = sp.csr_matrix((w, (t, idx)), shape=(n_topics, B.shape[0]))
    beta = np.asarray((M @ B).toarray(), dtype=np.float32)
    sums = beta.sum(axis=1, keepdims=True)
    beta = np.divide(beta, sums, out=np.zeros_like(beta), where=sums > 0)  # rows of B sum to 1 up to rounding
    return Topics(atom_topic=a_new, topic_words=beta, prevalence=prevalence, n_atoms=n_atoms.astype(np.int64))


def doc_topics(theta, atom_topic: np.ndarray, n_topics: int, normalize: bool = False) -> sp.csr_matrix:
    """θ_topic[d, c] = Σ_{k∈c} θ_dk.

    ``theta``: (n_docs, n_atoms) CSR; ``atom_topic``: (n_atoms,) with −1 for atoms in no
    topic. Returns (n_docs, T) float32 CSR; with ``normalize`` its non-zero rows sum to 1.
    """
    theta = _csr(theta, "theta")
    a = np.asarray(atom_topic).ravel().astype(np.int64)
    if a.shape[0] != theta.shape[1]:
        raise SaetmError(f"theta has {theta.shape[1]} atom columns but atom_topic has {a.shape[0]} entries")
    if a.size and a.max() >= n_topics:
        raise SaetmError(f"atom_topic has topic id {a.max()} but n_topics={n_topics}")
    idx = np.flatnonzero(a >= 0)
    A = sp.csr_matrix((np.ones(len(idx), dtype=np.float32), (idx, a[idx])), shape=(theta.shape[1], n_topics))
    out = sp.csr_matrix(theta.astype(np.float32) @ A)
    out.eliminate_zeros()
    if normalize:
        s = np.asarray(out.sum(axis=1)).ravel()
        scale = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
        out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ out)
    # Canonical (sorted, no duplicates): scipy sorts non-canonical matrices in place on
    # argmax & co., which corrupts copies that share index arrays (sp.csr_matrix(W, dtype=...)).
    out.sum_duplicates()
    return out


def coverage(doc_topic) -> np.ndarray:
    """Share of documents in which each topic is active: (T,) float64 in [0, 1]."""
    X = _csr(doc_topic, "doc_topics")
    if X.shape[0] == 0:
        return np.zeros(X.shape[1], dtype=np.float64)
    active = X.indices[X.data > 0]
    return np.bincount(active, minlength=X.shape[1]) / X.shape[0]


def top_words(topic_words: np.ndarray, vocab: Sequence[str], n: int = 25, ranking: str = "beta", background=None,
              lam: float = 0.6, floor: float | None = None,
              doc_words=None, repeat_penalty: float | None = None) -> tuple[list[list[str]], list[np.ndarray]]:
    """Top ``n`` words per topic, in topic order.

    ``topic_words`` β: (T, V); ``vocab``: V words. ``ranking``:
    - ``"beta"``: by β_cw;
    - ``"lift"``: by β_cw / max(p0_w, floor) — common words are penalised, while words
      rarer than ``floor`` (default 1/V, the mean frequency) rank by β, so rare words
      with a sliver of mass cannot dominate;
    - ``"relevance"``: LDAvis, λ·log β_cw + (1−λ)·log(β_cw / p0_w);
    - ``"coherent"``: relevance (λ = 0.4, ``lam`` is not used), each word in at most two
      topics, then ordered so the leading words co-occur in the documents of
      ``doc_words`` ((n_docs, V) incidence, :func:`saetm.topics.wordrank.doc_word_incidence`;
      None: no reordering) and a word listed by an earlier row comes again only with a
      lead in co-occurrence of ``repeat_penalty`` (None: ``wordrank.REPEAT_PENALTY``) —
      see :mod:`saetm.topics.wordrank`.
    ``background`` p0: (V,), needed for lift, relevance and coherent. Words with β = 0
    are never listed. Returns (words: list of T lists, weights: list of T float32 arrays holding β
    of the listed words).
    """
    beta = np.asarray(topic_words, dtype=np.float32)
    if beta.ndim != 2 or beta.shape[1] != len(vocab):
        raise SaetmError(f"topic_words has shape {beta.shape} but vocab has {len(vocab)} words")
    if ranking not in RANKINGS:
        raise SaetmError(f"unknown ranking {ranking!r}; choose one of {', '.join(RANKINGS)}")
    V = beta.shape[1]
    n = min(int(n), V)
    if n < 1:
        raise SaetmError(f"n must be at least 1, got {n}")
    if ranking == "beta":
        score = beta
    elif ranking == "coherent":
        from saetm.topics import wordrank

        score = wordrank.keep_best_topics(wordrank.relevance(beta, _background(background, V)),
                                          min_words=max(n, wordrank.MIN_WORDS))
        order = wordrank.coherent_order(score, n, None if doc_words is None else sp.csc_matrix(doc_words),
                                        repeat_penalty=repeat_penalty)
        vocab = list(vocab)
        return ([[vocab[i] for i in idx] for idx in order],
                [beta[c, idx].astype(np.float32) for c, idx in enumerate(order)])
    else:
        p0 = _background(background, V, ranking)
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = -inf; masked below
            if ranking == "lift":
                fl = 1.0 / V if floor is None else float(floor)
                score = beta / np.maximum(p0, max(fl, 1e-300))[None, :]
            else:
                if not 0.0 <= lam <= 1.0:
                    raise SaetmError(f"lam must be in [0, 1], got {lam}")
                logb = np.log(beta.astype(np.float64))
                score = lam * logb + (1.0 - lam) * (logb - np.log(np.maximum(p0, 1e-300))[None, :])
    score = np.where(beta > 0, score, -np.inf)
    words_out, weights_out = [], []
    vocab = list(vocab)
    for c in range(beta.shape[0]):
        s = score[c]
        cand = np.argpartition(-s, n - 1)[:n] if n < V else np.arange(V)
        cand = cand[np.lexsort((cand, -s[cand]))]  # by score, ties by word index
        cand = cand[np.isfinite(s[cand])]
        words_out.append([vocab[i] for i in cand])
        weights_out.append(beta[c, cand].astype(np.float32))
    return words_out, weights_out


def _background(background, V: int, ranking: str = "coherent") -> np.ndarray:
    if background is None:
        raise SaetmError(f"ranking={ranking!r} needs the background word distribution p0 (background=...)")
    p0 = np.asarray(background, dtype=np.float64).ravel()
    if p0.shape[0] != V:
        raise SaetmError(f"background has {p0.shape[0]} entries but vocab has {V} words")
    return p0
