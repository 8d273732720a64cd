"""The chunked EM of saetm.words.em_chunks against the one-matrix EM of saetm.words.em."""

import numpy as np
import pytest
import scipy.sparse as sp

from saetm.words import em, em_chunks
from saetm.words.em import fit_feature_words, normalize_theta


def _problem(seed=0, n_docs=300, n_atoms=40, n_words=120):
    rng = np.random.default_rng(seed)
    a = sp.random(n_docs, n_atoms, density=0.15, random_state=rng, format="lil", dtype=np.float32)
    a[5, :] = 0  # a document without atoms
    counts = sp.random(n_docs, n_words, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    counts.data = np.ceil(counts.data * 4)
    counts = counts.tolil()
    counts[7, :] = 0  # a document without words
    counts = sp.csr_matrix(counts)
    counts.eliminate_zeros()
    counts.sort_indices()
    return normalize_theta(sp.csr_matrix(a)), counts


def _one_matrix_em(theta, counts, pi, n_iter):
    """The reference: one pair matrix for all documents (saetm.words.em.build_plan)."""
    plan = em.build_plan(theta, sp.csr_matrix(counts, dtype=np.float64))
    values, background, history, _, _ = em.run_em(
        plan, em.initial_statistics(plan), lambda v, b: em.accumulate_statistics(plan, v, b, pi),
        background_weight=pi, max_iter=n_iter, tol=0.0)
    return em.assemble_feature_words(plan, values), background, history


@pytest.mark.parametrize("chunk, memory, threads", [(1 << 22, 0, 1), (50, 0, 1), (7, 0, 1), (50, 0, 2), (7, 0, 3),
                                                    (50, 1 << 30, 2)])
def test_chunked_em_is_bit_for_bit_the_one_matrix_em(chunk, memory, threads, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(em_chunks, "THREADS", threads)  # parts of atoms shared among threads: the same sums
    theta, counts = _problem()
    B, p0, history = _one_matrix_em(theta, counts, 0.3, 15)
    fw = fit_feature_words(theta, counts, background_weight=0.3, max_iter=15, tol=0.0, block_pairs=chunk,
                           memory_bytes=memory)
    assert (fw.feature_words != B).nnz == 0 and np.array_equal(fw.feature_words.indptr, B.indptr)
    assert np.array_equal(fw.background, p0.astype(np.float32))
    np.testing.assert_allclose(fw.nll_history, history, rtol=1e-12)
    assert list(tmp_path.iterdir()) == []  # the spilled pair matrix leaves no file


def test_chunks_cover_every_document_once():
    theta, counts = _problem(seed=2)
    bounds = em_chunks.document_chunks(theta, counts, 37)
    assert bounds[0][0] == 0 and bounds[-1][1] == theta.shape[0]
    assert all(b > a for a, b in bounds) and all(x[1] == y[0] for x, y in zip(bounds, bounds[1:]))
    plan = em_chunks.build_chunked_plan(theta, counts, chunk_size=37, memory_bytes=0)
    try:
        assert plan.spilled and sum(hi - lo for lo, hi, *_ in plan) == counts.nnz
        assert sum(hi - lo for lo, hi, *_ in plan) == counts.nnz  # read back again: every iteration
    finally:
        plan.close()
    assert not plan.spilled
    kept = em_chunks.build_chunked_plan(theta, counts, chunk_size=37, memory_bytes=1 << 30)
    assert not kept.spilled and sum(hi - lo for lo, hi, *_ in kept) == counts.nnz


def test_parts_split_the_atoms_by_pairs_and_threads_follow_omp(monkeypatch):
    assert em_chunks.atom_parts(np.array([5, 5, 5, 5]), 2) == [(0, 2), (2, 4)]
    assert em_chunks.atom_parts(np.array([100, 1, 1, 1]), 2) == [(0, 1), (1, 4)]  # one heavy atom alone
    assert em_chunks.atom_parts(np.array([1, 1]), 5) == [(0, 1), (1, 2)]  # never an empty part
    theta, counts = _problem(seed=3)
    for threads in (1, 2, 4):
        monkeypatch.setattr(em_chunks, "THREADS", threads)
        plan = em_chunks.build_chunked_plan(theta, counts, chunk_size=60, memory_bytes=1 << 30)
        assert plan.threads == len(plan.parts) <= threads and plan.parts[0][0] == 0 and plan.parts[-1][1] == 40
        # every pair lands in the part of its atom's range of the support
        for _, _, parts in plan:
            for (a0, a1), (indptr, positions, _) in zip(plan.parts, parts):
                assert np.all((positions >= plan.row_ptr[a0]) & (positions < plan.row_ptr[a1]))
        assert sum(len(p[1]) for _, _, parts in plan for p in parts) == em_chunks.count_pairs(theta, counts)
    monkeypatch.setattr(em_chunks, "THREADS", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert em_chunks.thread_count() == 1  # torchrun sets it per process
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert em_chunks.thread_count() >= 1
