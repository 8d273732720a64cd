"""The co-activation SVD in bounded memory gives scikit-learn's ``randomized_svd`` floats."""

import numpy as np
import pytest
import scipy.sparse as sp


def _sklearn(theta, rank, seed):
    from sklearn.utils.extmath import randomized_svd

    _, s, Vt = randomized_svd(sp.csr_matrix(theta, dtype=np.float64), rank, random_state=seed)
    return s, Vt


@pytest.mark.parametrize("block", [1 << 15, 97])
def test_top_right_singular_is_randomized_svd_bit_for_bit(fitted_model, monkeypatch, block):
    """On a real θ (400 documents of 20 Newsgroups through a trained SAE), whole and in
    blocks of 97 documents (products summed across blocks): the same floats."""
    from saetm.topics import coactivation

    monkeypatch.setattr(coactivation, "BLOCK_DOCS", block)
    theta = fitted_model.theta_
    assert theta.dtype == np.float32 and theta.shape[0] > theta.shape[1] // 4
    for theta_, rank in ((theta[:, :300], 63), (theta[:, :300], 40), (theta[:, :50], 9)):  # 7 and 4 iterations
        theta_ = sp.csr_matrix(theta_)
        s0, V0 = _sklearn(theta_, rank, 3)
        s1, V1 = coactivation.top_right_singular(theta_, rank, 3)
        np.testing.assert_array_equal(s1, s0)
        np.testing.assert_array_equal(V1, V0)


def test_coactivation_embeddings_unchanged_on_a_wide_theta(fitted_model):
    """More atoms than documents (scikit-learn transposes): the same embeddings as from
    scikit-learn's SVD."""
    from saetm.topics import atomspace

    theta = fitted_model.theta_
    assert theta.shape[1] > theta.shape[0]
    s, Vt = _sklearn(theta, 31, 0)
    expected = atomspace.unit_rows((Vt.T * s).astype(np.float32))
    np.testing.assert_array_equal(atomspace.coactivation_embeddings(theta, dim=32, seed=0), expected)
