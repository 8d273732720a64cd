"""θ normalised a block of documents at a time: the floats of the whole-matrix formula."""

import numpy as np
import scipy.sparse as sp


def _whole(activations):
    a = sp.csr_matrix(activations, dtype=np.float32, copy=True)
    a.eliminate_zeros()
    a.sort_indices()
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    totals = np.bincount(rows, weights=a.data, minlength=a.shape[0])
    a.data = (a.data / totals[rows]).astype(np.float32)
    return a


def test_blocked_normalisation_is_bit_for_bit(fitted_model, ng_embeddings):
    from saetm.sae.encode import encode_activations
    from saetm.sae.stage import theta_of
    from saetm.words.em import normalize_theta

    A = encode_activations(fitted_model.sae_, ng_embeddings)
    A.data[A.indptr[5]:A.indptr[6]] = 0  # a document without an active atom (explicit zeros)
    expected = _whole(A)
    kept = A.copy()
    for block in (7, 1 << 16):
        got = normalize_theta(A, block=block)
        assert (A != kept).nnz == 0  # copy=True leaves the input alone
        assert np.array_equal(got.data, expected.data) and np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.indptr, expected.indptr) and got.dtype == np.float32
    inplace = normalize_theta(A, copy=False, block=7)
    assert np.array_equal(inplace.data, expected.data) and np.shares_memory(inplace.data, A.data)
    rows = np.arange(len(ng_embeddings))
    theta = theta_of(fitted_model.sae_, ng_embeddings, rows, len(rows))
    assert (theta != fitted_model.theta_).nnz == 0 and np.array_equal(theta.data, fitted_model.theta_.data)
