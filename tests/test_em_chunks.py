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


@pytest.mark.parametrize("chunk, memory", [(1 << 22, 0), (50, 0), (7, 0)])
def test_chunked_em_is_bit_for_bit_the_one_matrix_em(chunk, memory, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
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
