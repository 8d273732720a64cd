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

Each chunk is stored in *parts*: part p holds the pairs of the atoms in one range (one
range of B's support), so the CPUs share both products without changing a sum: ``mix``
is split by rows (each row's sum still runs over its atoms in order, part after part) and
``stats`` by parts (each support entry is only ever written by the thread of its part, in
document order). The result is the same for any number of threads.

:func:`saetm.words.em.fit_feature_words` keeps a pair matrix of at most :data:`MEMORY_BYTES`
whole, in support order; a larger A is written once to a temporary file (in
``tempfile.gettempdir()``, unlinked at once) and read back chunk by chunk in every
iteration, the next chunk read while this one is computed, so memory holds a few chunks
whatever the corpus size. B's support (every (atom, word) with a pair) is found first, in
one pass over the chunks.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
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
#: Threads of the chunked E-step (None: the CPUs this process may use, at most OMP_NUM_THREADS).
THREADS = None

try:  # y += A x and y += Aᵀ x into an existing y: the running sums go on across chunks
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec, csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - other scipy layouts: sums restart per chunk (float tolerance)
    _csc_matvec = _csr_matvec = None


def add_product(indptr, indices, data, shape, x, out, *, transpose: bool) -> None:
    """``out += M @ x`` (``transpose``: ``Mᵀ @ x``) for CSR ``M`` given by its arrays, summing
    in the order one product over the concatenated rows of all chunks would. ``indptr`` may
    be a slice of a larger matrix's (its offsets still index ``indices`` and ``data``)."""
    if _csr_matvec is None:  # pragma: no cover
        s, e = indptr[0], indptr[-1]
        m = sp.csr_matrix((data[s:e], indices[s:e], indptr - s), shape=shape)
        out += (m.T @ x) if transpose else (m @ x)
    elif transpose:
        _csc_matvec(shape[1], shape[0], indptr, indices, data, x, out)
    else:
        _csr_matvec(shape[0], shape[1], indptr, indices, data, x, out)


def thread_count() -> int:
    """Threads of the chunked E-step: :data:`THREADS`, else the CPUs this process may use
    (at most ``OMP_NUM_THREADS`` when set, as torchrun sets it per process)."""
    if THREADS is not None:
        return max(1, int(THREADS))
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return max(1, n)


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


def _entries_below(theta: sp.csr_matrix, a: int, b: int, atom: int) -> np.ndarray:
    """How many active atoms below ``atom`` each document of ``[a, b)`` has (atoms are sorted)."""
    s, e = theta.indptr[a], theta.indptr[b]
    below = np.zeros(e - s + 1, dtype=np.int64)
    np.cumsum(theta.indices[s:e] < atom, out=below[1:])
    rel = theta.indptr[a:b + 1] - s
    return below[rel[1:]] - below[rel[:-1]]


def chunk_pairs(theta: sp.csr_matrix, counts: sp.csr_matrix, a: int, b: int, atoms: tuple[int, int] | None = None):
    """Aᵀ's rows for documents ``[a, b)``: ``(indptr, atoms, words, values)``, one row per
    count non-zero in order, its pairs in atom order; ``atoms``: only the atoms in this
    range ``[lo, hi)`` (a part of the chunk)."""
    first = theta.indptr[a:b].astype(np.int64)
    per_doc = np.diff(theta.indptr[a:b + 1]).astype(np.int64)
    if atoms is not None:
        below_lo, below_hi = (_entries_below(theta, a, b, k) for k in atoms)
        first += below_lo
        per_doc = below_hi - below_lo
    lens = np.diff(counts.indptr[a:b + 1])
    docs = np.repeat(np.arange(b - a), lens)
    n_atoms = per_doc[docs]
    indptr = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(n_atoms, out=indptr[1:])
    entry = np.repeat(first[docs] - indptr[:-1], n_atoms)
    entry += np.arange(indptr[-1])
    words = np.repeat(counts.indices[counts.indptr[a]:counts.indptr[b]], n_atoms)
    return indptr, theta.indices[entry], words, theta.data[entry]


@dataclass
class ChunkedPlan:
    """B's support (``row_ptr`` ``(n_atoms + 1,)``, ``words``) and Aᵀ in chunks of documents,
    each in parts by ranges of atoms (``parts``: their bounds), in memory or in the temporary
    ``file``; see the module doc."""

    n_atoms: int
    n_words: int
    row_ptr: np.ndarray
    words: np.ndarray
    ranges: list  # (first count non-zero, last + 1) of each chunk
    parts: list = field(default_factory=list)  # [(first atom, last + 1)] of each part
    chunks: list = field(default_factory=list)  # in memory: per chunk, per part (indptr, positions, values)
    spans: list = field(default_factory=list)  # in the file: per chunk, per part (offset, n_rows, n_pairs)
    file: object = None  # the temporary file, already unlinked: nothing is left behind, even after a kill
    n_pairs: int = 0

    @property
    def support(self) -> int:
        return len(self.words)

    @property
    def threads(self) -> int:
        """Threads that share its products: one per part."""
        return max(1, len(self.parts))

    def _read(self, spans) -> list:
        """One chunk's parts from the file (only the reading thread uses it while iterating)."""
        itype = _index_dtype(self.support, self.n_pairs)
        f, out = self.file, []
        for offset, n_rows, n_pairs in spans:
            f.seek(offset)
            arrays = tuple(np.empty(n, dtype=t) for t, n in ((itype, n_rows + 1), (itype, n_pairs), (np.float32, n_pairs)))
            for arr in arrays:
                if f.readinto(memoryview(arr).cast("B")) != arr.nbytes:
                    raise OSError("the temporary file of the pair matrix ended early")
            out.append(arrays)
        return out

    def __iter__(self):
        """``(lo, hi, parts)`` of each chunk, ``parts`` a list of ``(indptr, positions, values)``;
        read back if spilled (the next chunk while this one is used)."""
        if self.file is None:
            for (lo, hi), c in zip(self.ranges, self.chunks):
                yield lo, hi, c
            return
        with ThreadPoolExecutor(max_workers=1) as reader:
            ahead = reader.submit(self._read, self.spans[0]) if self.spans else None
            for i, (lo, hi) in enumerate(self.ranges):
                parts = ahead.result()
                ahead = reader.submit(self._read, self.spans[i + 1]) if i + 1 < len(self.spans) else None
                yield lo, hi, parts

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


def in_order(func, items, threads: int):
    """``func(item)`` of each item, in order, up to ``threads`` computed at once on threads."""
    if threads <= 1:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending = deque()
        for item in items:
            if len(pending) == threads:
                yield pending.popleft().result()
            pending.append(pool.submit(func, item))
        while pending:
            yield pending.popleft().result()


def _support(theta, counts, bounds, n_atoms, n_words, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The sorted keys atom × V + word of every (atom, word) with a pair, and the pairs of each atom."""
    dense = n_atoms * n_words <= 8 * DENSE_LOOKUP
    seen = np.zeros(n_atoms * n_words if dense else 0, dtype=bool)

    def chunk(bound):
        _, atoms, words, _ = chunk_pairs(theta, counts, *bound)
        keys = atoms.astype(np.int64) * n_words + words
        if dense:
            seen[keys] = True  # the same value from any thread
            keys = None
        return keys, np.bincount(atoms, minlength=n_atoms)

    per_atom = np.zeros(n_atoms, dtype=np.int64)
    union = np.zeros(0, np.int64)
    for keys, counted in in_order(chunk, bounds, threads):
        per_atom += counted
        if keys is not None:
            union = np.union1d(union, keys)
    return (np.flatnonzero(seen) if dense else union), per_atom


def atom_parts(pairs_per_atom: np.ndarray, n_parts: int) -> list[tuple[int, int]]:
    """``n_parts`` consecutive ranges of atoms with about equal numbers of pairs."""
    cum = np.cumsum(pairs_per_atom)
    total = int(cum[-1]) if len(cum) else 0
    cuts = [0] + [int(np.searchsorted(cum, total * p / n_parts, side="left")) + 1 for p in range(1, n_parts)]
    cuts = np.minimum(np.maximum.accumulate(cuts), len(pairs_per_atom)).tolist() + [len(pairs_per_atom)]
    return [(lo, hi) for lo, hi in zip(cuts, cuts[1:]) if hi > lo] or [(0, len(pairs_per_atom))]


def build_chunked_plan(theta: sp.csr_matrix, counts: sp.csr_matrix, *, chunk_size: int = CHUNK_PAIRS,
                       memory_bytes: int = MEMORY_BYTES, tmp_dir: str | None = None) -> ChunkedPlan:
    """B's support and Aᵀ in chunks for canonical CSR ``theta`` ``(n_docs, K)`` and ``counts``
    ``(n_docs, V)``; spilled to a temporary file in ``tmp_dir`` when larger than ``memory_bytes``."""
    n_atoms, n_words = theta.shape[1], counts.shape[1]
    bounds = document_chunks(theta, counts, chunk_size)
    total = count_pairs(theta, counts)
    threads = thread_count()
    keys, pairs_per_atom = _support(theta, counts, bounds, n_atoms, n_words, threads)
    parts = atom_parts(pairs_per_atom, threads) if threads > 1 else [(0, n_atoms)]
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

    def chunk(bound):
        out = []
        for atoms in parts:
            indptr, atom, word, values = chunk_pairs(theta, counts, *bound, None if len(parts) == 1 else atoms)
            positions = position(atom.astype(np.int64) * n_words + word)
            del atom, word
            out.append((indptr.astype(itype), positions, values.astype(np.float32, copy=False)))
        return out

    plan = ChunkedPlan(n_atoms, n_words, row_ptr, support_words, [], parts=parts, n_pairs=total)
    f = None
    if total * 8 > memory_bytes:
        fd, path = tempfile.mkstemp(prefix="saetm-em-", suffix=".pairs", dir=tmp_dir)
        os.unlink(path)  # freed when closed, however the process ends
        f = plan.file = os.fdopen(fd, "w+b")
        logger.info("feature words: the pair matrix (%.1f GB) goes to a temporary file in %s",
                    total * 8 / 2**30, os.path.dirname(path))
    try:
        for (a, b), built in zip(bounds, in_order(chunk, bounds, threads)):
            plan.ranges.append((int(counts.indptr[a]), int(counts.indptr[b])))
            if f is None:
                plan.chunks.append(built)
                continue
            spans = []
            for indptr, positions, values in built:
                spans.append((f.tell(), len(indptr) - 1, len(positions)))
                for arr in (indptr, positions, values):
                    arr.tofile(f)
            plan.spans.append(spans)
        if f is not None:
            f.flush()
    except BaseException:
        plan.close()
        raise
    return plan


class _Workers:
    """Runs a list of calls on the plan's threads and waits for all (inline with one thread)."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None

    def __call__(self, calls) -> None:
        if self.pool is None:
            for call in calls:
                call()
        else:
            for future in [self.pool.submit(call) for call in calls]:
                future.result()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _scatter(run: _Workers, plan: ChunkedPlan, parts, n_rows: int, x: np.ndarray, out: np.ndarray) -> None:
    """``out += A_c x`` on B's support, one call per part (each writes only its atoms' entries)."""
    shape = (n_rows, plan.support)
    run([lambda p=p: add_product(*p, shape, x, out, transpose=True) for p in parts])


def _mix(run: _Workers, plan: ChunkedPlan, parts, n_rows: int, feature_words: np.ndarray) -> np.ndarray:
    """``Aᵀ_c B`` at the chunk's count non-zeros, rows shared among the threads; each row's sum
    runs over its parts in order."""
    mix = np.zeros(n_rows, dtype=np.float32)
    cuts = np.linspace(0, n_rows, plan.threads + 1).astype(np.int64)

    def rows(r0, r1):
        for indptr, positions, values in parts:
            add_product(indptr[r0:r1 + 1], positions, values, (r1 - r0, plan.support), feature_words,
                        mix[r0:r1], transpose=False)

    run([lambda r0=r0, r1=r1: rows(r0, r1) for r0, r1 in zip(cuts[:-1], cuts[1:]) if r1 > r0])
    return mix


def initial_statistics(plan: ChunkedPlan, counts: sp.csr_matrix) -> em.SufficientStatistics:
    """θᵀc̃ on B's support and the corpus word counts (as :func:`saetm.words.em.initial_statistics`)."""
    stats = np.zeros(plan.support, dtype=np.float32)
    with _Workers(plan.threads) as run:
        for lo, hi, parts in plan:
            _scatter(run, plan, parts, hi - lo, counts.data[lo:hi].astype(np.float32), stats)
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
    with _Workers(plan.threads) as run:
        for lo, hi, parts in plan:
            mix = _mix(run, plan, parts, hi - lo, feature_words)
            c = counts.data[lo:hi].astype(np.float64, copy=False)
            p0 = background[counts.indices[lo:hi]]
            q = (1.0 - pi) * mix.astype(np.float64) + pi * p0
            np.maximum(q, 1e-30, out=q)
            ratio = c / q
            _scatter(run, plan, parts, hi - lo, ratio.astype(np.float32), stats)
            np.add.at(bg, counts.indices[lo:hi], ratio * (pi * p0))  # in order: as one bincount
            loglik += float(np.add.reduce(c * np.log(q)))  # not a BLAS dot: its idle threads spin on the CPUs
    stats *= feature_words
    stats *= 1.0 - pi
    if n_tokens is None:
        n_tokens = float(counts.data.astype(np.float64).sum())
    return em.SufficientStatistics(stats, bg, loglik, n_tokens)
