"""The pair matrix of EM (see :mod:`saetm.words.em`): its fixed sparse structure for one set of
documents (:class:`EMPlan`), the statistics an E-step sums over documents
(:class:`SufficientStatistics`) and those that start EM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


#: Pairs (count non-zero x active atom) per block of the pair matrix; bounds the
#: temporary memory of building it (about 40 bytes per pair).
BLOCK_PAIRS = 1 << 20
#: (atom, word) keys per block: bounds the counting sort's bucket array.
BLOCK_KEYS = 1 << 22


@dataclass
class SufficientStatistics:
    """Expected counts of one E-step: sums over documents (add them across shards)."""

    feature_words: np.ndarray  # (support,) float32 Σ_d c̃_dw r_dwk
    background: np.ndarray  # (V,) float64 Σ_d c̃_dw r_dw0
    loglik: float  # Σ c̃ log q
    n_tokens: float  # Σ c̃

    def __iadd__(self, other: "SufficientStatistics") -> "SufficientStatistics":
        self.feature_words += other.feature_words
        self.background += other.background
        self.loglik += other.loglik
        self.n_tokens += other.n_tokens
        return self

    @property
    def nll_per_token(self) -> float:
        return -self.loglik / self.n_tokens


# ---------------------------------------------------------------- the pair matrix


@dataclass
class EMPlan:
    """The fixed sparse structure of EM for one set of documents (see the module doc).

    ``pairs``: A, ``(support, nnz)`` float32 CSR. ``row_ptr`` ``(n_atoms + 1,)`` and
    ``words`` ``(support,)`` give the support of B in CSR order: B's values are one
    float32 array over it. ``count_words``, ``counts``: word and c̃ of every non-zero count.
    """

    n_atoms: int
    n_words: int
    pairs: sp.csr_matrix
    row_ptr: np.ndarray
    words: np.ndarray
    count_words: np.ndarray
    counts: np.ndarray

    @property
    def nbytes(self) -> int:
        arrays = (self.pairs.data, self.pairs.indices, self.pairs.indptr, self.row_ptr, self.words,
                  self.count_words, self.counts)
        return sum(a.nbytes for a in arrays)


def build_plan(theta: sp.csr_matrix, counts: sp.csr_matrix, *, support: tuple[np.ndarray, np.ndarray] | None = None,
               block_pairs: int = BLOCK_PAIRS) -> EMPlan:
    """Build the pair matrix of ``theta`` ``(n_docs, K)`` and weighted ``counts`` ``(n_docs, V)``.

    Both must be CSR with sorted indices and no explicit zeros. ``support``: B's support
    as ``(row_ptr, words)`` of another plan, e.g. the union over all ranks when each
    rank holds some of the documents; by default the support of these documents. The
    atoms are processed in blocks of at most ``block_pairs`` pairs, which bounds the
    temporary memory; A itself is written into two arrays allocated once.
    """
    n_atoms = theta.shape[1]
    n_words = counts.shape[1]
    nnz = counts.nnz
    doc_len = np.diff(counts.indptr)
    theta_t = theta.T.tocsr()
    theta_t.sort_indices()
    atom_of_entry = np.repeat(np.arange(n_atoms), np.diff(theta_t.indptr))
    pairs_per_atom = np.bincount(atom_of_entry, weights=doc_len[theta_t.indices], minlength=n_atoms).astype(np.int64)
    del atom_of_entry
    total_pairs = int(pairs_per_atom.sum())
    index_dtype = np.int32 if max(total_pairs, nnz) < 2**31 else np.int64
    # Blocks of at most ``block_pairs`` pairs (one atom at least) and ``BLOCK_KEYS`` keys.
    max_atoms = max(1, BLOCK_KEYS // max(n_words, 1))
    bounds, start, acc = [], 0, 0
    for k, p in enumerate(pairs_per_atom.tolist()):
        if k > start and (acc + p > block_pairs or k - start >= max_atoms):
            bounds.append((start, k))
            start, acc = k, 0
        acc += p
    bounds.append((start, n_atoms))

    pair_theta = np.empty(total_pairs, dtype=np.float32)
    pair_count = np.empty(total_pairs, dtype=index_dtype)
    if support is not None:
        row_ptr, words = support
        pairs_per_entry = np.zeros(len(words), dtype=index_dtype)
    else:
        row_ptr, words, pairs_per_entry = np.zeros(n_atoms + 1, dtype=np.int64), [], []
    offset = 0
    for k0, k1 in bounds:
        r0, r1 = theta_t.indptr[k0], theta_t.indptr[k1]
        docs = theta_t.indices[r0:r1]
        lens = doc_len[docs]
        run_ptr = np.r_[0, np.cumsum(lens)]
        n_pairs = int(run_ptr[-1])
        # One run per (atom, document): the document's non-zero counts, in word order.
        count_index = np.repeat(counts.indptr[docs].astype(np.int64) - run_ptr[:-1], lens)
        count_index += np.arange(n_pairs)
        run_atom = np.repeat(np.arange(k1 - k0, dtype=np.int64) * n_words, np.diff(theta_t.indptr[k0:k1 + 1]))
        key = np.repeat(run_atom, lens)
        key += counts.indices[count_index]
        del run_atom
        # Transposing "runs x (atom, word) keys" is a stable counting sort of the pairs by
        # key: within one (atom, word) the documents stay in order (deterministic sums).
        by_key = sp.csr_matrix((count_index.astype(index_dtype), key, run_ptr),
                               shape=(len(docs), (k1 - k0) * n_words)).tocsc()
        del count_index, key
        keys = np.flatnonzero(np.diff(by_key.indptr))  # (atom - k0) * V + word of each support entry
        per_key = np.diff(by_key.indptr)[keys]
        if support is None:
            row_ptr[k0 + 1:k1 + 1] = np.bincount(keys // n_words, minlength=k1 - k0)
            words.append((keys % n_words).astype(np.int32))
            pairs_per_entry.append(per_key.astype(index_dtype))
        else:
            lo, hi = row_ptr[k0], row_ptr[k1]
            known = np.repeat(np.arange(k1 - k0, dtype=np.int64) * n_words, np.diff(row_ptr[k0:k1 + 1]))
            known += words[lo:hi]
            at = np.searchsorted(known, keys)
            if np.any(at >= len(known)) or np.any(known[np.minimum(at, len(known) - 1)] != keys):
                raise ValueError("the documents put mass outside the given support; build it from all documents")
            pairs_per_entry[lo + at] = per_key
        np.take(theta_t.data[r0:r1], by_key.indices, out=pair_theta[offset:offset + n_pairs])
        pair_count[offset:offset + n_pairs] = by_key.data
        offset += n_pairs
        del by_key, keys, per_key
    if support is None:
        row_ptr = np.cumsum(row_ptr)
        words = np.concatenate(words)
        pairs_per_entry = np.concatenate(pairs_per_entry)
    indptr = np.zeros(len(words) + 1, dtype=index_dtype)
    np.cumsum(pairs_per_entry, out=indptr[1:])
    del pairs_per_entry
    # Full arrays, not views: scipy copies views of larger arrays ("prune").
    pairs = sp.csr_matrix((pair_theta, pair_count, indptr), shape=(len(words), nnz), copy=False)
    return EMPlan(n_atoms, n_words, pairs, row_ptr, words, counts.indices.astype(np.int32), counts.data)


def initial_statistics(plan: EMPlan) -> SufficientStatistics:
    """Statistics that start EM: θᵀc̃ on the support of B and the corpus word counts.

    (The M-step of uniform responsibilities; they add across shards like any statistics.)
    """
    feature_words = plan.pairs @ plan.counts.astype(np.float32)
    background = np.bincount(plan.count_words, weights=plan.counts, minlength=plan.n_words)
    return SufficientStatistics(feature_words, background, 0.0, float(plan.counts.sum()))
