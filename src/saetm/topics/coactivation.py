"""The truncated SVD behind the ``"coactivation"`` atom space, in bounded memory.

:func:`top_right_singular` returns what scikit-learn's ``randomized_svd(theta, rank,
random_state=seed)`` returns as ``(s, Vt)`` (its defaults: 10 oversamples, 7 or 4 power
iterations normalised by LU, a QR range, signs fixed by the columns of U), for a θ with
more documents than atoms. It runs the same LAPACK and sparse kernels on the same
values in the same order, so the results are the same floats, but it never holds more
than one ``(n_docs, rank + 10)`` float64 array: scikit-learn holds θ in float64 and two
or three such arrays at once (the product, the factorisation's copy, U), about
1.7 GB for a million documents.

How: the sparse products are summed a block of documents at a time straight into their
output (``csr_matvecs`` / ``csc_matvecs`` add into it in document order, as one call
over all documents does, with θ's float32 values widened exactly to float64 block by
block); LU and QR factorise that one array in place; U = Q Û is formed a block of rows
at a time, only to find each column's entry of largest magnitude (its sign flips the
component, as ``svd_flip`` does).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: documents per block of the sparse products and of U
BLOCK_DOCS = 1 << 15


def _theta_times(theta: sp.csr_matrix, Q: np.ndarray, order: str = "C") -> np.ndarray:
    """``θ Q`` (float64, in ``order``), a block of documents at a time (each row is
    computed alone: the values of one ``theta @ Q``)."""
    from scipy.sparse import _sparsetools

    n_docs, n_atoms = theta.shape
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    k = Q.shape[1]
    out = np.empty((n_docs, k), dtype=np.float64, order=order)
    for lo in range(0, n_docs, BLOCK_DOCS):
        hi = min(lo + BLOCK_DOCS, n_docs)
        a, b = theta.indptr[lo], theta.indptr[hi]
        y = np.zeros((hi - lo, k), dtype=np.float64)
        _sparsetools.csr_matvecs(hi - lo, n_atoms, k, theta.indptr[lo:hi + 1] - a, theta.indices[a:b],
                                 theta.data[a:b].astype(np.float64), Q.ravel(), y.ravel())
        out[lo:hi] = y
    return out


def _theta_t_times(theta: sp.csr_matrix, Q: np.ndarray) -> np.ndarray:
    """``θᵀ Q`` (float64, ``(n_atoms, k)``): the documents' contributions added into one
    output in document order, as one ``theta.T @ Q`` adds them."""
    from scipy.sparse import _sparsetools

    n_docs, n_atoms = theta.shape
    k = Q.shape[1]
    out = np.zeros((n_atoms, k), dtype=np.float64)
    for lo in range(0, n_docs, BLOCK_DOCS):
        hi = min(lo + BLOCK_DOCS, n_docs)
        a, b = theta.indptr[lo], theta.indptr[hi]
        x = np.ascontiguousarray(Q[lo:hi], dtype=np.float64)
        _sparsetools.csc_matvecs(n_atoms, hi - lo, k, theta.indptr[lo:hi + 1] - a, theta.indices[a:b],
                                 theta.data[a:b].astype(np.float64), x.ravel(), out.ravel())
    return out


def top_right_singular(theta, rank: int, seed: int, n_oversamples: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(s, Vt)``: the ``rank`` largest singular values of ``theta`` ((n_docs, n_atoms)
    CSR, n_docs ≥ n_atoms) and their right singular vectors, those of scikit-learn's
    ``randomized_svd(theta, rank, random_state=seed)`` (float64)."""
    from scipy import linalg

    theta = sp.csr_matrix(theta)
    n_docs, n_atoms = theta.shape
    if n_docs < n_atoms:  # scikit-learn transposes; small anyway
        from sklearn.utils.extmath import randomized_svd

        _, s, Vt = randomized_svd(sp.csr_matrix(theta, dtype=np.float64), rank, random_state=seed)
        return s, Vt
    size = rank + n_oversamples
    n_iter = 7 if rank < 0.1 * min(theta.shape) else 4
    Q = np.random.RandomState(seed).normal(size=(n_atoms, size))
    for _ in range(n_iter):  # LU normalisation (scikit-learn's "auto" for 4 or 7 iterations), in place
        Q, _ = linalg.lu(_theta_times(theta, Q), permute_l=True, check_finite=False, overwrite_a=True)
        Q, _ = linalg.lu(_theta_t_times(theta, Q), permute_l=True, check_finite=False)  # the tall Q is freed
    Q, _ = linalg.qr(_theta_times(theta, Q, "F"), mode="economic", check_finite=False, overwrite_a=True)
    B = _theta_t_times(theta, Q).T  # Qᵀ θ
    Uhat, s, Vt = linalg.svd(B, full_matrices=False, lapack_driver="gesdd")
    del B
    Vt = np.array(Vt)
    Vt *= _column_signs(Q, Uhat)[:, None]
    return s[:rank], Vt[:rank]


def _column_signs(Q: np.ndarray, Uhat: np.ndarray) -> np.ndarray:
    """The sign of each column of U = Q Û at its entry of largest magnitude (the first
    such entry), U formed a block of rows at a time: ``svd_flip``'s signs."""
    best = np.full(Uhat.shape[1], -1.0)
    sign = np.ones(Uhat.shape[1])
    for lo in range(0, Q.shape[0], BLOCK_DOCS):
        U = Q[lo:lo + BLOCK_DOCS] @ Uhat
        at = np.argmax(np.abs(U), axis=0)
        top = U[at, np.arange(U.shape[1])]
        better = np.abs(top) > best
        best[better] = np.abs(top[better])
        sign[better] = np.sign(top[better])
    return sign
