"""Stage 2's EM with memory flat in the number of documents: the pair matrix in chunks.

:mod:`saetm.words.em` explains the pair matrix A, one entry per (count non-zero, active
atom) pair: about 2,500 pairs, 20 kB, per 20 Newsgroups document, by far the largest
thing a fit holds. Here A is built for a chunk of documents at a time, as Aᵀ: one row per
count non-zero (d, w), holding θ_dk at the support position of (k, w) for every active
atom k of d (atoms in order). One E-step is then, chunk after chunk,

    mix = Aᵀ_c · B,   stats += A_c · (c̃ / q),   p0 statistics += c̃ π p0 / q,

which adds every product in the same order as the whole matrix would (the running sums
continue from one chunk to the next), so B is bit for bit what the one-matrix EM gives;
only the log-likelihood, which decides when EM stops, is summed chunk by chunk.

:func:`saetm.words.em.fit_feature_words` keeps a pair matrix of at most :data:`MEMORY_BYTES`
whole, in support order (its iterations are about twice as fast: B is read in order); a
larger A is written once to a temporary file (in ``tempfile.gettempdir()``, unlinked at once) and read
back chunk by chunk in every iteration, so memory holds one chunk whatever the corpus size.
B's support (every (atom, word) with a pair) is found first, in one pass over the chunks.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from saetm.words import em

logger = logging.getLogger(__name__)

#: Pairs per chunk of documents (a chunk holds 8 bytes per pair, building it ~40).
CHUNK_PAIRS = 1 << 21
#: The pair matrix is kept in memory up to this size, else in a temporary file.
MEMORY_BYTES = 512 << 20
#: Largest atoms × words for the dense lookup table of support positions (4 bytes each);
#: beyond it the positions are found by binary search.
DENSE_LOOKUP = 1 << 28

try:  # y += A x and y += Aᵀ x into an existing y: the running sums go on across chunks
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec, csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - other scipy layouts: sums restart per chunk (float tolerance)
    _csc_matvec = _csr_matvec = None


def add_product(indptr, indices, data, shape, x, out, *, transpose: bool) -> None:
    """``out += M @ x`` (``transpose``: ``Mᵀ @ x``) for CSR ``M`` given by its arrays, summing
    in the order one product over the concatenated rows of all chunks would."""
    if _csr_matvec is None:  # pragma: no cover
        m = sp.csr_matrix((data, indices, indptr), shape=shape)
        out += (m.T @ x) if transpose else (m @ x)
    elif transpose:
        _csc_matvec(shape[1], shape[0], indptr, indices, data, x, out)
    else:
        _csr_matvec(shape[0], shape[1], indptr, indices, data, x, out)


def document_chunks(theta: sp.csr_matrix, counts: sp.csr_matrix, chunk_pairs: int = CHUNK_PAIRS) -> list[tuple[int, int]]:
    """Ranges ``[a, b)`` of documents holding at most ``chunk_pairs`` pairs (one document at least)."""
    n = theta.shape[0]
    cum = np.cumsum(np.diff(theta.indptr).astype(np.int64) * np.diff(counts.indptr))
    out, a = [], 0
    while a < n:
        b = int(np.searchsorted(cum, (cum[a - 1] if a else 0) + chunk_pairs, side="right"))
        b = min(max(b, a + 1), n)
        out.append((a, b))
        a = b
    return out


def count_pairs(theta: sp.csr_matrix, counts: sp.csr_matrix) -> int:
    """Pairs of the whole pair matrix: Σ_d (active atoms of d) × (distinct words of d)."""
    return int(np.dot(np.diff(theta.indptr).astype(np.int64), np.diff(counts.indptr).astype(np.int64)))


def chunk_pairs(theta: sp.csr_matrix, counts: sp.csr_matrix, a: int, b: int):
    """Aᵀ's rows for documents ``[a, b)``: ``(indptr, atoms, words, values)``, one row per
    count non-zero in order, its pairs in atom order."""
    lens = np.diff(counts.indptr[a:b + 1])
    docs = np.repeat(np.arange(a, b), lens)
    n_atoms = np.diff(theta.indptr)[docs].astype(np.int64)
    indptr = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(n_atoms, out=indptr[1:])
    entry = np.repeat(theta.indptr[docs].astype(np.int64) - indptr[:-1], n_atoms)
    entry += np.arange(indptr[-1])
    words = np.repeat(counts.indices[counts.indptr[a]:counts.indptr[b]], n_atoms)
    return indptr, theta.indices[entry], words, theta.data[entry]


@dataclass
class ChunkedPlan:
    """B's support (``row_ptr`` ``(n_atoms + 1,)``, ``words``) and Aᵀ in chunks of documents
    (in memory, or in the temporary ``file``); see the module doc."""

    n_atoms: int
    n_words: int
    row_ptr: np.ndarray
    words: np.ndarray
    ranges: list  # (first count non-zero, last + 1) of each chunk
    chunks: list = field(default_factory=list)  # in memory: (indptr, positions, values)
    spans: list = field(default_factory=list)  # in the file: (offset, n_rows, n_pairs)
    file: object = None  # the temporary file, already unlinked: nothing is left behind, even after a kill
    n_pairs: int = 0

    @property
    def support(self) -> int:
        return len(self.words)

    def __iter__(self):
        """``(lo, hi, indptr, positions, values)`` of each chunk, read back if spilled."""
        if self.file is None:
            for (lo, hi), c in zip(self.ranges, self.chunks):
                yield (lo, hi, *c)
            return
        itype = _index_dtype(self.support, self.n_pairs)
        f = self.file
        for (lo, hi), (offset, n_rows, n_pairs) in zip(self.ranges, self.spans):
            f.seek(offset)
            indptr = np.fromfile(f, itype, n_rows + 1)
            positions = np.fromfile(f, itype, n_pairs)
            yield lo, hi, indptr, positions, np.fromfile(f, np.float32, n_pairs)

    @property
    def spilled(self) -> bool:
        return self.file is not None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.chunks = []


def _index_dtype(support: int, n_pairs: int):
    # sparsetools wants indptr and indices of one type; a chunk's pairs fit int32 unless huge
    return np.int32 if max(support, n_pairs) < 2**31 else np.int64


def _support(theta, counts, bounds, n_atoms, n_words) -> np.ndarray:
    """The sorted keys atom × V + word of every (atom, word) with a pair."""
    if n_atoms * n_words <= 8 * DENSE_LOOKUP:
        seen = np.zeros(n_atoms * n_words, dtype=bool)
        for a, b in bounds:
            _, atoms, words, _ = chunk_pairs(theta, counts, a, b)
            seen[atoms.astype(np.int64) * n_words + words] = True
        return np.flatnonzero(seen)
    keys = np.zeros(0, np.int64)
    for a, b in bounds:
        _, atoms, words, _ = chunk_pairs(theta, counts, a, b)
        keys = np.union1d(keys, atoms.astype(np.int64) * n_words + words)
    return keys


def build_chunked_plan(theta: sp.csr_matrix, counts: sp.csr_matrix, *, chunk_size: int = CHUNK_PAIRS,
                       memory_bytes: int = MEMORY_BYTES, tmp_dir: str | None = None) -> ChunkedPlan:
    """B's support and Aᵀ in chunks for canonical CSR ``theta`` ``(n_docs, K)`` and ``counts``
    ``(n_docs, V)``; spilled to a temporary file in ``tmp_dir`` when larger than ``memory_bytes``."""
    n_atoms, n_words = theta.shape[1], counts.shape[1]
    bounds = document_chunks(theta, counts, chunk_size)
    total = count_pairs(theta, counts)
    keys = _support(theta, counts, bounds, n_atoms, n_words)
    row_ptr = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_words, minlength=n_atoms), out=row_ptr[1:])
    itype = _index_dtype(len(keys), total)
    support_words = (keys % n_words).astype(np.int32)
    if n_atoms * n_words <= DENSE_LOOKUP:
        table = np.zeros(n_atoms * n_words, dtype=itype)
        table[keys] = np.arange(len(keys), dtype=itype)
        del keys  # the table answers from here on (8 bytes per support entry less)
        position = lambda k: table[k]  # noqa: E731
    else:
        position = lambda k: np.searchsorted(keys, k).astype(itype)  # noqa: E731
    plan = ChunkedPlan(n_atoms, n_words, row_ptr, support_words, [], n_pairs=total)
    f = None
    if total * 8 > memory_bytes:
        fd, path = tempfile.mkstemp(prefix="saetm-em-", suffix=".pairs", dir=tmp_dir)
        os.unlink(path)  # freed when closed, however the process ends
        f = plan.file = os.fdopen(fd, "w+b")
        logger.info("feature words: the pair matrix (%.1f GB) goes to a temporary file in %s",
                    total * 8 / 2**30, os.path.dirname(path))
    try:
        for a, b in bounds:
            indptr, atoms, words, values = chunk_pairs(theta, counts, a, b)
            positions = position(atoms.astype(np.int64) * n_words + words)
            del atoms, words
            chunk = (indptr.astype(itype), positions, values.astype(np.float32, copy=False))
            plan.ranges.append((int(counts.indptr[a]), int(counts.indptr[b])))
            if f is None:
                plan.chunks.append(chunk)
            else:
                plan.spans.append((f.tell(), len(indptr) - 1, len(positions)))
                for arr in chunk:
                    arr.tofile(f)
        if f is not None:
            f.flush()
    except BaseException:
        plan.close()
        raise
    return plan


def initial_statistics(plan: ChunkedPlan, counts: sp.csr_matrix) -> em.SufficientStatistics:
    """θᵀc̃ on B's support and the corpus word counts (as :func:`saetm.words.em.initial_statistics`)."""
    stats = np.zeros(plan.support, dtype=np.float32)
    for lo, hi, indptr, positions, values in plan:
        add_product(indptr, positions, values, (hi - lo, plan.support),
                    counts.data[lo:hi].astype(np.float32), stats, transpose=True)
    weights = counts.data.astype(np.float64)
    background = np.bincount(counts.indices, weights=weights, minlength=plan.n_words)
    return em.SufficientStatistics(stats, background, 0.0, float(weights.sum()))


def accumulate_statistics(plan: ChunkedPlan, counts: sp.csr_matrix, feature_words: np.ndarray,
                          background: np.ndarray, background_weight: float,
                          n_tokens: float | None = None) -> em.SufficientStatistics:
    """E-step over the plan's chunks (as :func:`saetm.words.em.accumulate_statistics`);
    ``n_tokens``: Σ c̃ when known (summed once instead of every iteration)."""
    pi = background_weight
    stats = np.zeros(plan.support, dtype=np.float32)
    bg = np.zeros(plan.n_words)
    loglik = 0.0
    for lo, hi, indptr, positions, values in plan:
        shape = (hi - lo, plan.support)
        mix = np.zeros(hi - lo, dtype=np.float32)
        add_product(indptr, positions, values, shape, feature_words, mix, transpose=False)
        c = counts.data[lo:hi].astype(np.float64, copy=False)
        p0 = background[counts.indices[lo:hi]]
        q = (1.0 - pi) * mix.astype(np.float64) + pi * p0
        np.maximum(q, 1e-30, out=q)
        ratio = c / q
        add_product(indptr, positions, values, shape, ratio.astype(np.float32), stats, transpose=True)
        np.add.at(bg, counts.indices[lo:hi], ratio * (pi * p0))  # in order: as one bincount
        loglik += float(c @ np.log(q))
    stats *= feature_words
    stats *= 1.0 - pi
    if n_tokens is None:
        n_tokens = float(counts.data.astype(np.float64).sum())
    return em.SufficientStatistics(stats, bg, loglik, n_tokens)
