"""Stage 2 over several processes: each holds some documents, all get the same B and p0.

The EM statistics of ``words/em.py`` are sums over documents, so every process runs
the E-step over its own documents' θ rows and counts, and one all-reduce per
iteration adds them up; the M-step (a row normalisation) is then repeated
identically everywhere. Everything else that depends on all documents is agreed
on once, before the first iteration:

- B's support (the (atom, word) pairs some document can feed) is the union of the
  processes' supports. Each process finds its own from the structure of θᵀc, then the
  supports are all-gathered a block of atoms at a time (at most ``BLOCK_KEYS`` keys of
  all processes together per block) and merged; afterwards every process holds the
  global support, the size of B itself, and its pair matrix over it.
- with ``idf=True`` the document frequencies and the number of documents are summed;
- θ̄ (``feature_prob``) is the summed column sums of θ over the summed document count.

All of this runs over gloo on CPU tensors that share memory with the numpy arrays;
under an NCCL training group a gloo group is created for it. Launch with torchrun and
call :func:`saetm.sae.distributed.init_distributed` first (docs/cluster.md).
Without a process group :func:`fit_feature_words_distributed` is the single-process fit.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

from saetm.errors import SaetmError
from saetm.sae.distributed import ProcessInfo, process_info
from saetm.words.em import (BLOCK_KEYS, BLOCK_PAIRS, FeatureWords, SufficientStatistics, _check_inputs,
                            accumulate_statistics, assemble_feature_words, build_plan, drop_documents_without_atoms,
                            initial_statistics, no_words_error, run_em)

logger = logging.getLogger(__name__)


class _Reducer:
    """Sums and gathers numpy arrays over the process group (gloo; in place where it can)."""

    def __init__(self, info: ProcessInfo):
        self.info = info
        self.group = None
        if info.enabled and dist.get_backend() != "gloo":
            self.group = dist.new_group(backend="gloo")  # numpy lives on the CPU

    def sum_(self, array: np.ndarray) -> np.ndarray:
        """All-reduce (sum) a contiguous numpy array in place; returns it."""
        if self.info.enabled and array.size:
            dist.all_reduce(torch.from_numpy(array), group=self.group)
        return array

    def sum_scalars(self, *values: float) -> list[float]:
        return self.sum_(np.array(values, dtype=np.float64)).tolist()

    def gather(self, array: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
        """Every process's 1-d ``array`` (lengths ``sizes``, known everywhere), in rank order."""
        if not self.info.enabled:
            return [array]
        width = max(max(sizes), 1)
        padded = torch.zeros(width, dtype=torch.from_numpy(array[:0]).dtype)
        padded[:len(array)] = torch.from_numpy(array)
        out = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(out, padded, group=self.group)
        return [t[:n].numpy() for t, n in zip(out, sizes)]

    def statistics(self, stats: SufficientStatistics) -> SufficientStatistics:
        # Fixed dtypes on every rank: np.bincount of nothing (a rank without documents) is int64.
        stats.feature_words = self.sum_(np.ascontiguousarray(stats.feature_words, dtype=np.float32))
        stats.background = self.sum_(np.ascontiguousarray(stats.background, dtype=np.float64))
        stats.loglik, stats.n_tokens = self.sum_scalars(stats.loglik, stats.n_tokens)
        return stats


def local_support(theta: sp.csr_matrix, counts: sp.csr_matrix, block_pairs: int = BLOCK_PAIRS) -> sp.csr_matrix:
    """Structure of θᵀc ``(n_atoms, V)``: atom k can put mass on word w. Computed a block
    of atoms at a time (≤ ``block_pairs`` (document, word) pairs each); values are 1."""
    theta_t = sp.csr_matrix(theta.T)
    theta_t.data = np.ones_like(theta_t.data)
    ones = sp.csr_matrix((np.ones(counts.nnz), counts.indices, counts.indptr), shape=counts.shape)
    doc_len = np.diff(counts.indptr)
    atom_of_entry = np.repeat(np.arange(theta_t.shape[0]), np.diff(theta_t.indptr))
    pairs = np.bincount(atom_of_entry, weights=doc_len[theta_t.indices], minlength=theta_t.shape[0])
    blocks, start, acc = [], 0, 0
    for k, p in enumerate(pairs.tolist()):
        if k > start and acc + p > block_pairs:
            blocks.append(sp.csr_matrix(theta_t[start:k] @ ones))
            start, acc = k, 0
        acc += p
    blocks.append(sp.csr_matrix(theta_t[start:] @ ones))
    out = sp.vstack(blocks, format="csr")
    out.data[:] = 1.0
    out.sort_indices()
    return out


def union_support(mine: sp.csr_matrix, reducer: _Reducer) -> tuple[np.ndarray, np.ndarray]:
    """The union of every process's support as ``(row_ptr (K + 1,) int64, words int32)``.

    Per-atom sizes are all-gathered first, so every process cuts the same atom blocks,
    each holding at most ``BLOCK_KEYS`` (atom, word) keys over all processes together.
    """
    n_atoms, n_words = mine.shape
    if not reducer.info.enabled:
        return mine.indptr.astype(np.int64), mine.indices.astype(np.int32)
    per_atom = np.diff(mine.indptr).astype(np.int64)
    sizes = np.stack(reducer.gather(per_atom, [n_atoms] * reducer.info.world_size))  # (world, K)
    total = sizes.sum(axis=0)
    row_counts, words = np.zeros(n_atoms, dtype=np.int64), []
    start = 0
    while start < n_atoms:
        stop, acc = start + 1, int(total[start])
        while stop < n_atoms and acc + total[stop] <= BLOCK_KEYS:
            acc += int(total[stop])
            stop += 1
        lo, hi = mine.indptr[start], mine.indptr[stop]
        rows = np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(mine.indptr[start:stop + 1]))
        keys = (rows - start) * n_words + mine.indices[lo:hi]
        merged = np.unique(np.concatenate(reducer.gather(keys, sizes[:, start:stop].sum(axis=1).tolist())))
        row_counts[start:stop] = np.bincount(merged // n_words, minlength=stop - start)
        words.append((merged % n_words).astype(np.int32))
        start = stop
    return np.r_[0, np.cumsum(row_counts)], np.concatenate(words)


def fit_feature_words_distributed(
    theta,
    counts,
    *,
    background_weight: float = 0.3,
    idf: bool = False,
    max_iter: int = 200,
    tol: float = 1e-5,
    progress: bool = False,
    block_pairs: int = BLOCK_PAIRS,
) -> FeatureWords:
    """:func:`saetm.words.em.fit_feature_words` with this process's documents only.

    ``theta``: ``(n_local_docs, n_atoms)`` CSR, ``counts``: ``(n_local_docs, V)``: the rows
    of the documents this process holds (any split; a process may hold none). Every
    process must call this with the same settings; every process gets the same
    :class:`FeatureWords` (the fit over all documents, up to floating-point summation
    order). Progress and log lines come from rank 0.
    """
    info = process_info()
    reducer = _Reducer(info)
    theta, counts = _check_inputs(theta, counts, background_weight, idf)
    n_local, n_atoms = theta.shape
    shapes = reducer.gather(np.array([n_atoms, counts.shape[1]], dtype=np.int64), [2] * info.world_size)
    if any(tuple(s) != (n_atoms, counts.shape[1]) for s in shapes):
        raise SaetmError(f"the processes hold theta/counts of different widths (atoms, words): "
                         f"{[tuple(int(v) for v in s) for s in shapes]}; use one SAE and one vocabulary everywhere")
    (n_docs,) = reducer.sum_scalars(n_local)
    if idf:
        df = reducer.sum_(np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64))
        weights = np.zeros(len(df))
        weights[df > 0] = np.log(n_docs / df[df > 0])
        weights /= weights.max(initial=0.0) or 1.0
        counts.data *= weights[counts.indices]
        counts.eliminate_zeros()
    if background_weight == 0:
        counts = drop_documents_without_atoms(theta, counts)
    (nnz,) = reducer.sum_scalars(counts.nnz)
    if nnz == 0:
        raise no_words_error(idf, background_weight)
    if max_iter < 0:
        raise SaetmError(f"max_iter must be >= 0, not {max_iter}")

    support = union_support(local_support(theta, counts, block_pairs), reducer)
    plan = build_plan(theta, counts, support=support, block_pairs=block_pairs)
    if info.is_main:
        logger.info("feature words: %d documents on %d processes, %d atoms, %d words, %d support entries",
                    int(n_docs), info.world_size, n_atoms, plan.n_words, len(plan.words))

    def e_step(values, background):
        return reducer.statistics(accumulate_statistics(plan, values, background, background_weight))

    values, background, history, it, converged = run_em(
        plan, reducer.statistics(initial_statistics(plan)), e_step, background_weight=background_weight,
        max_iter=max_iter, tol=tol, progress=progress, main=info.is_main)
    feature_words = assemble_feature_words(plan, values)
    theta_sums = reducer.sum_(np.asarray(theta.sum(axis=0), dtype=np.float64).ravel())
    feature_prob = (theta_sums / max(n_docs, 1)).astype(np.float32)
    return FeatureWords(feature_words, background.astype(np.float32), feature_prob, history, it, converged,
                        background_weight, idf)
