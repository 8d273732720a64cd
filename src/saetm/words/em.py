"""Stage 2: every atom's word distribution B_k and a background p0, by exact EM.

With the normalised activations θ fixed, the word model of SPEC §3,

    L(B, p0) = Σ_d Σ_w c̃_dw · log( (1 − π) Σ_k θ_dk B_kw + π p0_w ),

is a mixture with known weights, so EM maximises it exactly and never leaves the
support of θᵀc̃ (atom k can only put mass on words of documents in which it is active).
Both the support and θ are fixed, so the E- and M-steps reduce to two sparse
matrix-vector products with one *pair matrix* built once:

    A[(k, w), (d, w)] = θ_dk   for every non-zero count c_dw and active atom k of d.

Its rows are the support of B (in CSR order), its columns the non-zeros of the counts.
One iteration is

    mix   = Aᵀ · B                    (Σ_k θ_dk B_kw at every non-zero count)
    q     = (1 − π) mix + π p0_w
    G     = A · (c̃ / q)               (Σ_d θ_dk c̃_dw / q_dw on the support of B)
    B_kw ∝ B_kw G_kw,   p0_w ∝ p0_w Σ_d c̃_dw / q_dw.

A costs 8 bytes per (count non-zero, active atom) pair, B and its statistics 4 bytes
each per support entry; nothing is ever atoms x vocabulary dense, and A is built in
blocks of atoms to bound the temporary memory. The statistics are sums over documents
(:func:`accumulate_statistics`), so a distributed version can build a plan for each
rank's own documents over a shared support and all-reduce :class:`SufficientStatistics` before :func:`maximize`.
Nothing is random: B starts at the row-normalised θᵀc̃ and p0 at the corpus word
frequencies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from saetm._memory import release_freed_memory
from saetm.errors import SaetmError
from saetm.words.em_plan import (  # noqa: F401 (part of this module's interface)
    BLOCK_KEYS, BLOCK_PAIRS, EMPlan, SufficientStatistics, build_plan, initial_statistics)

logger = logging.getLogger(__name__)


@dataclass
class FeatureWords:
    """Result of :func:`fit_feature_words`.

    ``feature_words``: B, ``(n_atoms, V)`` float32 CSR; rows of used atoms sum to 1,
    rows of atoms that are never active (or only in documents without vocabulary
    words) are all zero. ``background``: p0, ``(V,)`` float32, sums to 1.
    ``feature_prob``: θ̄_k = mean_d θ_dk, ``(n_atoms,)`` float32 (0 = unused atom).
    ``nll_history``: negative log-likelihood per (weighted) token of the initial
    parameters and after every EM iteration (non-increasing).
    """

    feature_words: sp.csr_matrix
    background: np.ndarray
    feature_prob: np.ndarray
    nll_history: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    background_weight: float = 0.3
    idf: bool = False

    @property
    def nll(self) -> float:
        """NLL per token of the returned parameters."""
        return self.nll_history[-1]


# ---------------------------------------------------------------- θ and counts


def normalize_theta(activations, copy: bool = True, block: int = 1 << 16) -> sp.csr_matrix:
    """θ_d = a_d / Σ_k a_dk: ``(n_docs, n_atoms)`` non-negative activations -> float32 CSR.

    Rows with no active atom stay all zero. ``copy=False`` normalises a float32 CSR
    ``activations`` in place. Rows are summed (float64) and divided ``block`` at a time,
    so the temporaries are one block's, not the whole matrix's.
    """
    a = sp.csr_matrix(activations, dtype=np.float32, copy=copy)
    if a.nnz and not np.all(np.isfinite(a.data)):
        raise SaetmError("activations contain NaN or infinite values; check the SAE and its input embeddings")
    if a.nnz and a.data.min() < 0:
        raise SaetmError("activations must be non-negative (SAE codes after ReLU / top-k); got negative values")
    a.eliminate_zeros()
    a.sort_indices()
    lengths = np.diff(a.indptr)
    for lo in range(0, a.shape[0], block):
        hi = min(lo + block, a.shape[0])
        s, e = a.indptr[lo], a.indptr[hi]
        rows = np.repeat(np.arange(hi - lo), lengths[lo:hi])
        totals = np.bincount(rows, weights=a.data[s:e], minlength=hi - lo)
        a.data[s:e] = (a.data[s:e] / totals[rows]).astype(np.float32)
    return a


def idf_weights(counts) -> np.ndarray:
    """idf_w = log(N / df_w) / max_v log(N / df_v), ``(V,)`` float64; 0 for unseen words.

    ``counts``: ``(n_docs, V)`` sparse or dense word counts.
    """
    c = sp.csr_matrix(counts)
    n_docs, n_words = c.shape
    df = np.bincount(c.indices[c.data > 0], minlength=n_words).astype(np.float64)
    idf = np.zeros(n_words)
    seen = df > 0
    idf[seen] = np.log(n_docs / df[seen])
    top = idf.max(initial=0.0)
    return idf / top if top > 0 else idf


def _clean_csr(m, dtype, copy: bool) -> sp.csr_matrix:
    """``m`` as CSR of ``dtype`` with sorted indices and no stored zeros; a copy when it must
    change (or ``copy``), else the caller's arrays, which are then never written."""
    out = sp.csr_matrix(m, dtype=dtype, copy=copy)
    if not copy and out.nnz and (not out.has_canonical_format or not out.data.all()):
        out = out.copy()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _check_inputs(theta, counts, background_weight: float, idf: bool = False) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    if not 0.0 <= background_weight < 1.0:
        raise SaetmError(f"background_weight must be in [0, 1), not {background_weight}")
    theta = _clean_csr(theta, np.float32, copy=False)
    # float32 counts stay float32 (whole numbers: the float64 EM reads the same values);
    # idf weights them in place, in float64
    counts_dtype = np.float32 if not idf and getattr(counts, "dtype", None) == np.float32 else np.float64
    counts = _clean_csr(counts, counts_dtype, copy=idf)
    if theta.shape[0] != counts.shape[0]:
        raise SaetmError(f"theta has {theta.shape[0]} documents but counts has {counts.shape[0]}; "
                         "they must describe the same documents in the same order")
    for name, m in (("theta", theta), ("counts", counts)):
        if m.nnz and (not np.all(np.isfinite(m.data)) or m.data.min() < 0):
            raise SaetmError(f"{name} has negative, NaN or infinite entries; it must be finite and non-negative")
    sums = np.asarray(theta.sum(axis=1)).ravel()
    if np.any((sums > 0) & (np.abs(sums - 1) > 1e-3)):
        raise SaetmError("theta rows must sum to 1 (or be all zero); pass normalize_theta(activations)")
    return theta, counts


# ---------------------------------------------------------------- EM steps


def accumulate_statistics(plan: EMPlan, feature_words: np.ndarray, background: np.ndarray,
                          background_weight: float) -> SufficientStatistics:
    """E-step over the plan's documents: expected counts under the current B and p0.

    ``feature_words``: float32 values of B on the support; ``background``: p0 ``(V,)``.
    """
    pi = background_weight
    # float32 throughout the products: scipy would otherwise copy A to upcast it.
    mix = plan.pairs.T @ feature_words
    q = (1.0 - pi) * mix.astype(np.float64) + pi * background[plan.count_words]
    np.maximum(q, 1e-30, out=q)  # only reachable with π = 0 once some B_kw underflow
    ratio = plan.counts / q
    stats = plan.pairs @ ratio.astype(np.float32)
    stats *= feature_words
    stats *= 1.0 - pi
    bg = np.bincount(plan.count_words, weights=ratio * (pi * background[plan.count_words]), minlength=plan.n_words)
    return SufficientStatistics(stats, bg, float(plan.counts @ np.log(q)), float(plan.counts.sum()))


def _normalize_rows(values: np.ndarray, row_ptr: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Divide each row's entries (``row_ptr`` offsets) by their float64 sum, in place.

    Rows are taken in groups of about ``chunk`` entries, so the float64 temporaries stay
    small; rows that sum to zero stay zero.
    """
    rows = np.flatnonzero(np.diff(row_ptr))
    if len(rows) == 0:
        return values
    firsts = np.unique(np.searchsorted(row_ptr[rows], np.arange(0, row_ptr[-1], chunk), side="right") - 1)
    for a, b in zip(firsts, np.r_[firsts[1:], len(rows)]):
        group = rows[a:b]
        lo, hi = row_ptr[group[0]], row_ptr[group[-1] + 1]
        sums = np.add.reduceat(values[lo:hi], row_ptr[group] - lo, dtype=np.float64)
        scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        values[lo:hi] *= np.repeat(scale, row_ptr[group + 1] - row_ptr[group]).astype(np.float32)
    return values


def maximize(plan: EMPlan, stats: SufficientStatistics, background: np.ndarray | None,
             background_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """M-step: new B values (float32, on the support) and p0 from the (summed) statistics.

    B is normalised in place of ``stats.feature_words``. With π = 0, p0 plays no part: the
    given ``background`` is kept (``None``: the statistics' word frequencies).
    """
    values = _normalize_rows(stats.feature_words, plan.row_ptr)
    if background is None or background_weight > 0:
        background = stats.background / stats.background.sum()
    return values, background


def drop_documents_without_atoms(theta: sp.csr_matrix, counts: sp.csr_matrix) -> sp.csr_matrix:
    """With π = 0, documents without active atoms have no word model: zero their counts."""
    counts = sp.csr_matrix(sp.diags((np.diff(theta.indptr) > 0).astype(np.float64)) @ counts)
    counts.eliminate_zeros()
    counts.sort_indices()
    return counts


def no_words_error(idf: bool, background_weight: float) -> SaetmError:
    """What to say when no (weighted) word count is left to fit."""
    return SaetmError("no vocabulary word occurs in the documents"
                      + (" after idf weighting (every word is in every document; use idf=False)" if idf else
                         " with an active atom" if background_weight == 0 else "; check the vocabulary"))


def run_em(plan: EMPlan, first: SufficientStatistics, e_step, *, background_weight: float, max_iter: int,
           tol: float, progress: bool = False, main: bool = True):
    """EM from the statistics ``first`` (of uniform responsibilities, :func:`initial_statistics`).

    ``e_step(values, background) -> SufficientStatistics`` (summed over processes in a
    distributed fit, so that every process stops at the same iteration). ``main``: this
    process shows the bar and logs. Returns ``(values, background, history, n_iter,
    converged)``: B's values on the plan's support, p0, and the NLL per token per iteration.
    """
    values, background = maximize(plan, first, None, background_weight)
    del first  # as large as B's support: not kept through the iterations
    stats = e_step(values, background)
    history, converged, it = [stats.nll_per_token], False, 0
    bar = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="EM", unit="it")
    for it in range(1, int(max_iter) + 1):
        values, background = maximize(plan, stats, background, background_weight)
        stats = e_step(values, background)
        history.append(stats.nll_per_token)
        change = (history[-2] - history[-1]) / max(abs(history[-1]), 1e-300)
        logger.debug("EM iteration %d: NLL/token %.6f (relative change %.2e)", it, history[-1], change)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(nll=f"{history[-1]:.5f}")
        if abs(change) < tol:
            converged = True
            break
    if bar is not None:
        bar.close()
    if main:
        logger.info("feature words: NLL/token %.5f after %d iterations (%s)", history[-1], it,
                    "converged" if converged else "not converged")
    return values, background, history, it, converged


def assemble_feature_words(plan: EMPlan, values: np.ndarray) -> sp.csr_matrix:
    """B as ``(n_atoms, V)`` CSR from its values on the plan's support; frees the pair matrix first."""
    plan.pairs = None
    index_dtype = np.int32 if len(plan.words) < 2**31 else np.int64  # keeps scipy from copying the indices
    return sp.csr_matrix((values, plan.words.astype(index_dtype, copy=False), plan.row_ptr.astype(index_dtype)),
                         shape=(plan.n_atoms, plan.n_words))


# ---------------------------------------------------------------- the fit


def fit_feature_words(
    theta,
    counts,
    *,
    background_weight: float = 0.3,
    idf: bool = False,
    max_iter: int = 200,
    tol: float = 1e-5,
    seed: int = 0,
    progress: bool = False,
    block_pairs: int | None = None,
    memory_bytes: int | None = None,
) -> FeatureWords:
    """Fit every atom's word distribution B and the background p0 by EM (SPEC §3).

    ``theta``: ``(n_docs, n_atoms)`` CSR, rows summing to 1 or 0 (:func:`normalize_theta`).
    ``counts``: ``(n_docs, V)`` word counts (:func:`saetm.words.vocab.build_vocabulary`).
    ``background_weight``: π, the fixed share of every document's words drawn from p0
    (0 disables the background; documents without active atoms are then ignored).
    ``idf``: weight counts by normalised idf (:func:`idf_weights`).
    Stops after ``max_iter`` iterations or when the NLL per token changes by less
    than ``tol`` (relative). ``seed`` is accepted for a uniform signature: the fit is
    deterministic. ``progress`` shows a bar; every iteration is logged at DEBUG level.

    The pair matrix is held whole up to ``memory_bytes`` (built in blocks of at most
    ``block_pairs`` pairs); a larger one is built for chunks of documents of at most
    ``block_pairs`` pairs and kept in a temporary file, its E-steps shared among the CPUs
    (:mod:`saetm.words.em_chunks`; None: its defaults). Neither, nor the number of threads,
    changes B or p0.
    """
    del seed  # nothing is random
    theta, counts = _check_inputs(theta, counts, background_weight, idf)
    n_docs, n_atoms = theta.shape
    if idf:
        counts.data *= idf_weights(counts)[counts.indices]
        counts.eliminate_zeros()
    if background_weight == 0:
        counts = drop_documents_without_atoms(theta, counts)
    if counts.nnz == 0:
        raise no_words_error(idf, background_weight)
    max_iter = int(max_iter)
    if max_iter < 0:
        raise SaetmError(f"max_iter must be >= 0, not {max_iter}")

    from saetm.words import em_chunks

    memory_bytes = em_chunks.MEMORY_BYTES if memory_bytes is None else memory_bytes
    n_pairs = em_chunks.count_pairs(theta, counts)
    if n_pairs * 8 <= memory_bytes:  # one pair matrix, its rows in support order: the fastest iterations
        plan = build_plan(theta, sp.csr_matrix(counts, dtype=np.float64), block_pairs=block_pairs or BLOCK_PAIRS)
        logger.info("feature words: %d documents, %d atoms, %d words, %d support entries, %d pairs, plan %.0f MB",
                    n_docs, n_atoms, plan.n_words, len(plan.words), plan.pairs.nnz, plan.nbytes / 2**20)
        values, background, history, it, converged = run_em(
            plan, initial_statistics(plan), lambda v, b: accumulate_statistics(plan, v, b, background_weight),
            background_weight=background_weight, max_iter=max_iter, tol=tol, progress=progress)
    else:  # chunks of documents in a temporary file: memory flat in the number of documents
        plan = em_chunks.build_chunked_plan(theta, counts, chunk_size=block_pairs or em_chunks.CHUNK_PAIRS,
                                            memory_bytes=memory_bytes)
        try:
            logger.info("feature words: %d documents, %d atoms, %d words, %d support entries, %d pairs (%.1f GB) "
                        "in chunks (%s)", n_docs, n_atoms, plan.n_words, plan.support, plan.n_pairs,
                        plan.n_pairs * 8 / 2**30, "in a temporary file" if plan.spilled else "in memory")
            n_tokens = float(counts.data.astype(np.float64).sum())
            values, background, history, it, converged = run_em(
                plan, em_chunks.initial_statistics(plan, counts),
                lambda v, b: em_chunks.accumulate_statistics(plan, counts, v, b, background_weight, n_tokens),
                background_weight=background_weight, max_iter=max_iter, tol=tol, progress=progress)
        finally:
            plan.close()
            release_freed_memory()  # the threads' heaps keep what they freed: not into the peak of the stages after
    feature_words = assemble_feature_words(plan, values)
    feature_prob = (np.asarray(theta.sum(axis=0)).ravel() / max(n_docs, 1)).astype(np.float32)
    return FeatureWords(feature_words, background.astype(np.float32), feature_prob, history, it, converged,
                        background_weight, idf)

