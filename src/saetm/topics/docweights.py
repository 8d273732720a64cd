"""Stage 3, last step: document–topic weights, sharpened by where documents lie.

The paper's weight of topic c in document d is its atoms' share of d's activation,
θ_topic[d, c] = Σ_{k∈c} θ_dk (:func:`saetm.topics.merge.doc_topics`). A document
activates ~32 atoms, and a few generic ones (style, length, "a question") often
outweigh the atoms of what the document is about, so its largest weight is not
always its subject. ``doc_weights="centroid"`` (the default) keeps that support and
reweights it with the document's embedding x_d and its words:

    W[d, c] ∝ p_dc · ρ_c · exp((cos(x_d, μ_c) + b·cos(ŵ_d, ν_c)) / t),   p_d = (1 − s)·θ̂_d + s/T,

where θ̂_d is θ_topic[d] with its row summing to 1, s the prior's smoothing
(``SAETM(doc_smoothing=0.5)``), μ_c the topic's centroid direction (x̂: unit-length
embeddings), ρ_c the topic's weight in the mixture and t = 0.05; ŵ_d is the document's word
direction and ν_c the topic's word centroid, weighted by b (``SAETM(doc_word_weight)``;
:mod:`saetm.topics.docwords`; b = 0 leaves the words out). It is the posterior of
a mixture of von Mises–Fisher directions in which p_d, mostly θ, is each document's
own prior. μ and ρ are that mixture's maximum-likelihood estimates, found by EM
(:func:`fit_mixture`): μ starts as Σ_d θ̂[d, c] x̂_d, normalised, ρ as 1; each round
computes W over all T topics, then sets μ_c ∝ Σ_d W[d, c] x̂_d (ν_c ∝ Σ_d W[d, c] ŵ_d) and updates ρ
(:func:`update_priors`; 20 rounds; on more than ``MAX_MIXTURE_DOCS`` documents, over a
seeded sample of that many). ρ corrects the θ share by how much of the
collection a topic's documents really hold: topics whose documents are pulled to other
centroids lose weight. The smoothing lets ρ act as a mixture weight over the whole
collection rather than only against each topic's θ share.
The reported weights keep only the topics the document's atoms gave it (W restricted
to the support of θ_topic, renormalised): the other topics held 0.4–1.2% of the mass
and never the largest weight on the benchmark corpora. Topic words and atoms are
unchanged. What each part does to the agreement with labels is measured in
``bench/README.md`` (``bench/ablation.py``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.topics.atomspace import unit_rows

DOC_WEIGHTS = ("centroid", "theta")
#: t above: 0.03–0.08 measured within ±0.015 NMI of 0.05 with ρ fitted (bench/README.md).
TEMPERATURE = 0.05
#: rounds of the mixture's EM in :func:`fit_mixture` (1: centroids of θ_topic alone, ρ = 1).
ITERATIONS = 20
#: the most documents the mixture's EM reads (:func:`fit_mixture`): beyond it, μ and ρ are
#: estimated on a seeded sample of this many and the weights of every document follow from them.
MAX_MIXTURE_DOCS = 200_000
#: smallest ρ: keeps every topic in the support of the documents whose atoms gave it to them.
PRIOR_FLOOR = 1e-6
#: s above: the share of each document's prior spread evenly over all topics (SAETM(doc_smoothing)).
SMOOTHING = 0.5


def _row_normalized(W) -> sp.csr_matrix:
    W = sp.csr_matrix(W, dtype=np.float64)
    s = np.asarray(W.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)) @ W)


def topic_centroids(doc_topics, embeddings: np.ndarray) -> np.ndarray:
    """μ: ``(T, dim)`` float32 unit rows, each topic's weighted mean document direction.

    ``doc_topics``: ``(n_docs, T)`` θ_topic; ``embeddings``: ``(n_docs, dim)`` (all-zero
    rows for documents without one). A topic no document uses gets a zero row.
    """
    return _centroids(doc_topics, unit_rows(embeddings))


def _centroids(doc_topics, x: np.ndarray) -> np.ndarray:
    """:func:`topic_centroids` of unit-length embeddings ``x``."""
    W = _row_normalized(doc_topics)
    if x.shape[0] != W.shape[0]:
        raise SaetmError(f"{x.shape[0]} document embeddings for {W.shape[0]} documents")
    return unit_rows(np.asarray(W.T @ x, dtype=np.float64))


def document_prior(doc_topics, smoothing: float = 0.0) -> sp.csr_matrix:
    """p on each document's support: θ̂ (rows of ``doc_topics`` summing to 1) mixed with the
    uniform share, (1 − s)·θ̂_dc + s/T, float64 CSR; rows without topics stay empty. Off the
    support p is s/T (left implicit: :func:`fit_mixture` adds it, the reported weights do not
    use it)."""
    P = _row_normalized(doc_topics)
    P.eliminate_zeros()
    if smoothing:
        P.data = (1.0 - smoothing) * P.data + smoothing / P.shape[1]
    return P


def fit_mixture(doc_topics, embeddings: np.ndarray, temperature: float = TEMPERATURE, n_iter: int | None = None,
                fit_priors: bool = True, smoothing: float = 0.0, max_docs: int | None = MAX_MIXTURE_DOCS,
                seed: int = 0, words: sp.csr_matrix | None = None,
                word_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(μ, ρ, ν) after ``n_iter`` rounds of the mixture's EM (module doc); ``(T, dim)`` float32
    unit rows, ``(T,)`` float64 (mean 1 over the topics documents use) and ``(T, V)`` float32
    unit rows (None without ``words`` or with ``word_weight`` 0).

    Round 1 is μ = :func:`topic_centroids` of θ_topic and ρ = 1; each further round computes
    the posterior W over all T topics with the prior p (``smoothing`` = s), then
    μ_c ∝ Σ_d W_dc x̂_d and, with ``fit_priors``, ρ by :func:`update_priors`. p stays each
    document's prior throughout; documents without topics take no part. The E-step's inputs
    are made a block of documents at a time (:class:`UnitRows`, :class:`_Blocks`): once for all
    rounds when each holds at most ``CACHE_BYTES``, else again in every round. ``embeddings``
    may be a :class:`UnitRows` already made of them (e.g. shared with :func:`sharpen`).
    ``words``: the documents' word directions ŵ (:mod:`saetm.topics.docwords`), ``(n_docs, V)``
    CSR, added to the embedding cosines with the weight ``word_weight`` = b; ν starts as the
    θ-weighted sum of ŵ and follows the posterior as μ does. With more than ``max_docs``
    documents (None: no limit), the EM reads a sample of ``max_docs`` of them drawn with
    ``seed`` (kept in their order), which bounds its time on very large collections; with
    fewer, ``seed`` plays no part.
    """
    n_iter = ITERATIONS if n_iter is None else int(n_iter)
    if n_iter < 1:
        raise SaetmError(f"n_iter must be at least 1, got {n_iter}")
    prior = document_prior(doc_topics)
    if embeddings.shape[0] != prior.shape[0]:
        raise SaetmError(f"{embeddings.shape[0]} document embeddings for {prior.shape[0]} documents")
    words = _check_words(words, word_weight, prior.shape[0])
    if max_docs is not None and prior.shape[0] > max_docs:
        from saetm.topics.wordrank import sample_rows  # the documents whose words a model keeps, same seed

        rows = sample_rows(prior.shape[0], max_docs, seed)
        source = embeddings.embeddings if isinstance(embeddings, UnitRows) else embeddings
        prior, embeddings = prior[rows], _Rows(source, rows)
        words = None if words is None else words[rows]
    units = embeddings if isinstance(embeddings, UnitRows) else UnitRows(embeddings, keep=n_iter > 1)
    start = _row_normalized(prior)
    centroids = unit_rows(_weighted_sum(start, units))
    word_centroids = None if words is None else _word_centroids(words, start)
    blocks = _Blocks(prior, units, smoothing, keep=n_iter > 2, words=words)
    priors = np.ones(prior.shape[1])
    with _one_blas_thread():
        for _ in range(n_iter - 1):
            mass, sums, word_sums = _posterior_sums(blocks, centroids, temperature, priors, word_centroids,
                                                    word_weight)
            centroids = unit_rows(sums)
            if word_sums is not None:
                word_centroids = unit_rows(word_sums).astype(np.float32)
            if fit_priors:
                priors = update_priors(prior, mass, priors, smoothing)
    return centroids, priors, word_centroids


def _check_words(words, word_weight: float, n_docs: int) -> sp.csr_matrix | None:
    """``words`` as CSR float32 when they take part (a weight above 0), else None."""
    if words is None or not word_weight:
        return None
    if words.shape[0] != n_docs:
        raise SaetmError(f"word directions of {words.shape[0]} documents for {n_docs} documents")
    return sp.csr_matrix(words, dtype=np.float32)


def _word_centroids(words: sp.csr_matrix, weights: sp.csr_matrix) -> np.ndarray:
    """ν: unit rows of Σ_d W[d, c] ŵ_d, ``(T, V)`` float32."""
    return unit_rows(np.asarray((weights.T @ words).toarray(), dtype=np.float64)).astype(np.float32)


def _one_blas_thread():
    """The E-step's products are thin (T ≪ dim rows): BLAS threads cost more in hand-offs
    than they save, and many times more on a busy machine."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


#: the most memory (bytes) :func:`fit_mixture` keeps each of its E-step's inputs in between
#: rounds (unit embeddings in float32, dense priors in float64; 64 MB hold the directions of
#: ~40,000 documents of 384 dimensions); beyond it, each round makes them again.
CACHE_BYTES = 1 << 26


class UnitRows:
    """x̂: the rows of ``embeddings`` (any float type, possibly memory-mapped) scaled to length 1
    in float32, a block at a time, exactly as :func:`~saetm.topics.atomspace.unit_rows` of all
    of them. With ``keep``, all of x̂ is made once and kept when it holds at most
    ``CACHE_BYTES`` (blocks are then read-only views of it); otherwise the row lengths are
    computed once (``(n,)`` float32), so that a block costs a conversion and a division."""

    def __init__(self, embeddings, keep: bool = False, block: int = 1 << 12):
        self.embeddings, self.shape = embeddings, embeddings.shape
        n = embeddings.shape[0]
        self._all = self._lengths = None
        if keep and 4 * n * embeddings.shape[1] <= CACHE_BYTES:
            self._all = np.empty(self.shape, dtype=np.float32)
            for lo in range(0, n, block):
                self._all[lo:lo + block] = unit_block(embeddings[lo:lo + block])
            self._all.flags.writeable = False
            return
        norms = np.empty(n, dtype=np.float32)
        for lo in range(0, n, block):
            norms[lo:lo + block] = np.linalg.norm(np.asarray(embeddings[lo:lo + block], dtype=np.float32), axis=1)
        self._lengths = np.where(norms > 0, norms, np.float32(1.0))[:, None]

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        """x̂ of rows ``lo:hi``, ``(hi − lo, dim)`` float32."""
        if self._all is not None:
            return self._all[lo:hi]
        x = np.array(self.embeddings[lo:hi], dtype=np.float32)
        return np.divide(x, self._lengths[lo:hi], out=x)


class _Rows:
    """The rows ``rows`` (sorted) of ``embeddings``, read a slice at a time (a memory-mapped
    array is not copied whole)."""

    def __init__(self, embeddings, rows: np.ndarray):
        self.embeddings, self.rows = embeddings, rows
        self.shape = (len(rows), embeddings.shape[1])

    def __getitem__(self, part: slice) -> np.ndarray:
        return np.asarray(self.embeddings[self.rows[part]])


def unit_block(X) -> np.ndarray:
    """:func:`~saetm.topics.atomspace.unit_rows` of ``X``, bit for bit, in a new float32 array
    (divided in place: no mask, no second array)."""
    x = np.array(X, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # an all-zero row divided by 1 stays zero, as unit_rows leaves it
    return np.divide(x, np.where(norms > 0, norms, np.float32(1.0)), out=x)


def _weighted_sum(weights: sp.csr_matrix, units: UnitRows, block: int = 1 << 11) -> np.ndarray:
    """Wᵀ x̂ = Σ_d W[d] x̂_d, ``(T, dim)`` float64, x̂ the unit-length embeddings taken a block
    of documents at a time, summed in the order of the one product ``W.T @ unit_rows(embeddings)``
    (the sums continue from block to block, so the blocks' size does not change them; small
    blocks keep the float64 copy in memory the allocator reuses)."""
    from scipy.sparse import _sparsetools

    W = sp.csr_matrix(weights, dtype=np.float64)
    n, T = W.shape
    out = np.zeros((T, units.shape[1]))
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        a, b = W.indptr[lo], W.indptr[hi]
        x = np.asarray(units(lo, hi), dtype=np.float64)
        # the rows of W are the columns of Wᵀ: y += Wᵀ x, continuing the sums of earlier blocks
        _sparsetools.csc_matvecs(T, hi - lo, x.shape[1], W.indptr[lo:hi + 1] - a, W.indices[a:b], W.data[a:b],
                                 x.ravel(), out.ravel())
    return out


class _Blocks:
    """The E-step's inputs in blocks of documents: (p, x̂), p the dense prior over all topics
    ((1 − s)·θ̂ + s/T on rows with topics, float64) and x̂ the block's unit-length embeddings
    (``units``), and the block's word directions ŵ (``words``; None without). With ``keep``, the
    priors are made once and kept when they hold at most ``CACHE_BYTES``; otherwise they are made
    again at every pass, one block at a time."""

    def __init__(self, prior: sp.csr_matrix, units: UnitRows, smoothing: float, block_entries: int = 1 << 20,
                 keep: bool = True, words: sp.csr_matrix | None = None):
        self.prior, self.units, self.smoothing, self.words = prior, units, smoothing, words
        n, T = prior.shape
        self.block = max(1, block_entries // max(T, 1))
        self._priors = list(self._make()) if keep and 8 * n * T <= CACHE_BYTES else None

    def _make(self):
        n, T = self.prior.shape
        for lo in range(0, n, self.block):
            P = self.prior[lo:lo + self.block].toarray()
            has = P.sum(axis=1) > 0
            P[has] = (1.0 - self.smoothing) * P[has] + self.smoothing / T
            yield P

    def __iter__(self):
        for i, P in enumerate(self._priors if self._priors is not None else self._make()):
            lo, hi = i * self.block, i * self.block + P.shape[0]
            yield P, self.units(lo, hi), None if self.words is None else self.words[lo:hi]


def _posterior_sums(blocks, centroids: np.ndarray, temperature: float, priors: np.ndarray,
                    word_centroids: np.ndarray | None = None,
                    word_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Σ_d W_dc, Σ_d W_dc x̂_d and (with ``word_centroids``) Σ_d W_dc ŵ_d of one E-step over all
    topics, block by block (:class:`_Blocks`), so that W is never held whole. The products run
    in float32; the sums add up in float64."""
    mass = np.zeros(centroids.shape[0])
    sums = np.zeros(centroids.shape)
    word_sums = None if word_centroids is None else np.zeros(word_centroids.shape)
    rho = np.asarray(priors, dtype=np.float64)
    C = np.asarray(centroids, dtype=np.float32)
    t = np.float32(temperature)
    for P, x, w in blocks:
        S = x @ C.T
        if word_sums is not None:
            S += np.float32(word_weight) * np.asarray(w @ word_centroids.T, dtype=np.float32)
        S -= S.max(axis=1, keepdims=True)
        S /= t
        np.exp(S, out=S)
        L = P * rho
        L *= S
        Z = L.sum(axis=1, keepdims=True)
        # a row whose Z is 0 holds only zeros, and 0 / 1 leaves them so
        L /= np.where(Z > 0, Z, 1.0)
        mass += L.sum(axis=0)
        L32 = L.astype(np.float32)
        sums += L32.T @ x
        if word_sums is not None:
            word_sums += np.asarray(w.T @ L32).T
    return mass, sums, word_sums


def update_priors(prior: sp.csr_matrix, mass: np.ndarray, priors: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """One EM (minorise–maximise) step for ρ with each document's prior p fixed:
    ρ_c ← Σ_d W_dc / Σ_d (p_dc / Σ_c' p_dc' ρ_c'), scaled to mean 1 over the topics that
    documents use and kept ≥ ``PRIOR_FLOOR`` (a topic is never switched off).

    ``prior``: θ̂, rows summing to 1 (or 0: no topics); ``mass``: Σ_d W_dc, ``(T,)``;
    ``smoothing``: s, so that p = (1 − s)·θ̂ + s/T on the rows with topics.
    """
    rho = np.asarray(priors, dtype=np.float64)
    n_topics = prior.shape[1]
    has = np.diff(prior.indptr) > 0
    Z = (1.0 - smoothing) * np.asarray(prior @ rho).ravel() + smoothing * rho.mean()
    inv_Z = np.divide(1.0, Z, out=np.zeros_like(Z), where=has & (Z > 0))
    denominator = (1.0 - smoothing) * np.asarray(prior.T @ inv_Z).ravel() + smoothing / n_topics * inv_Z.sum()
    used = denominator > 0
    out = np.ones_like(rho)
    out[used] = np.asarray(mass, dtype=np.float64)[used] / denominator[used]
    if used.any():
        out[used] /= out[used].mean()
    return np.maximum(out, PRIOR_FLOOR)


def sharpen(doc_topics, embeddings: np.ndarray, centroids: np.ndarray, temperature: float = TEMPERATURE,
            priors: np.ndarray | None = None, smoothing: float = 0.0, block_entries: int = 1 << 22,
            words: sp.csr_matrix | None = None, word_centroids: np.ndarray | None = None,
            word_weight: float = 0.0) -> sp.csr_matrix:
    """W as in the module doc on the support of ``doc_topics``: ``(n_docs, T)`` float32
    canonical CSR, rows summing to 1 or 0. ``priors``: ρ, ``(T,)`` (None: all 1);
    ``smoothing``: s of the prior p (:func:`document_prior`); ``words``, ``word_centroids``
    and ``word_weight``: ŵ, ν and b of the word view (:mod:`saetm.topics.docwords`; left out
    when any is None or b is 0).

    Documents are scored in blocks of ``block_entries`` (document, topic) cosines, which
    bounds the temporary memory. ``embeddings`` may be a :class:`UnitRows` of them (the same
    weights, without making the unit rows again).
    """
    W = document_prior(doc_topics, smoothing)
    if embeddings.shape[0] != W.shape[0] or centroids.shape != (W.shape[1], embeddings.shape[1]):
        raise SaetmError(f"cannot weight {W.shape} document–topic weights with {embeddings.shape} embeddings "
                         f"and {centroids.shape} topic centroids; they must describe the same documents and topics")
    if priors is not None and np.shape(priors) != (W.shape[1],):
        raise SaetmError(f"{np.shape(priors)} topic priors for {W.shape[1]} topics")
    words = None if word_centroids is None else _check_words(words, word_weight, W.shape[0])
    if words is not None and word_centroids.shape != (W.shape[1], words.shape[1]):
        raise SaetmError(f"{word_centroids.shape} topic word centroids for {W.shape[1]} topics and "
                         f"{words.shape[1]} words")
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    score = np.empty(W.nnz)
    block = max(1, block_entries // max(W.shape[1], embeddings.shape[1], 1))
    for lo in range(0, W.shape[0], block):
        hi = min(lo + block, W.shape[0])
        a, b = W.indptr[lo], W.indptr[hi]
        x = embeddings(lo, hi) if isinstance(embeddings, UnitRows) else unit_block(embeddings[lo:hi])
        cosines = x @ centroids.T
        if words is not None:
            cosines += np.float32(word_weight) * np.asarray(words[lo:hi] @ word_centroids.T, dtype=np.float32)
        score[a:b] = cosines[rows[a:b] - lo, W.indices[a:b]]
    # exp((cos − row max) / t): the row max cancels in the normalisation and keeps exp ≤ 1
    top = np.full(W.shape[0], -np.inf)
    filled = np.diff(W.indptr) > 0  # each row's entries are one run of score: a max per run
    if filled.any():
        top[filled] = np.maximum.reduceat(score, W.indptr[:-1][filled])
    W.data *= np.exp((score - top[rows]) / temperature)
    if priors is not None:
        W.data *= np.asarray(priors, dtype=np.float64)[W.indices]
    out = sp.csr_matrix(_row_normalized(W), dtype=np.float32)
    out.eliminate_zeros()
    out.sum_duplicates()
    return out
