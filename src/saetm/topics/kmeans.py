"""Weighted Lloyd k-means from given centres, computed as scikit-learn's ``KMeans`` computes it.

:func:`saetm.topics.merge.cluster_atoms` starts k-means from a cut of the atom tree, with
scikit-learn's ``KMeans(init=centres, n_init=1)`` (Lloyd's algorithm). Importing
scikit-learn takes longer than the whole regrouping of ``saetm retopic``, so this module
repeats those iterations in numpy, step by step and in the same arithmetic: float32
throughout, the data and the centres shifted by the data's mean, squared distances as
``‖c‖² − 2 x·c`` (ties to the lowest cluster), each centre the weighted sum of its points
added up in point order and scaled by ``1 / Σw``, and the same two stopping rules (no
label changed; or the squared centre shifts summing to at most ``tol`` × the mean
variance of the features, after which the labels are computed once more). It gives the
same labels and centres, bit for bit (``tests/test_kmeans.py`` compares them with
scikit-learn's).

A cluster that loses all its points, which scikit-learn handles by moving distant points
into it, is not repeated here: :func:`lloyd` then returns None and the caller runs
scikit-learn.
"""

from __future__ import annotations

import numpy as np


def lloyd(X: np.ndarray, weights: np.ndarray, centers: np.ndarray, *, max_iter: int = 100,
          tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Lloyd's k-means of the rows of ``X`` (n, d), each weighing ``weights`` (n,), started at
    ``centers`` (k, d): ``(labels (n,) int64, centres (k, d) float32, iterations)``, as
    ``sklearn.cluster.KMeans(k, init=centers, n_init=1, max_iter, tol).fit(X, sample_weight=weights)``
    gives ``labels_``, ``cluster_centers_`` and ``n_iter_``; None when a cluster empties.

    ``tol``: relative to the mean variance of the features, as scikit-learn's.
    """
    X = np.array(X, dtype=np.float32, order="C")  # a copy: it is shifted below
    tol = np.mean(np.var(X, axis=0)) * tol
    w = np.asarray(weights).astype(np.float32)
    C = np.array(centers, dtype=np.float32, order="C")
    shift = X.mean(axis=0)  # distances computed around the mean are more precise
    X -= shift
    C -= shift
    k = C.shape[0]
    Xw = X * w[:, None]
    sums = np.zeros_like(C)
    mass = np.zeros(k, dtype=np.float32)
    labels_old = np.full(X.shape[0], -1, dtype=np.int64)
    converged = False
    for it in range(max_iter):
        labels = _nearest(X, C)
        moved = labels != labels_old
        if it == 0:
            changed = np.ones(k, dtype=bool)
        else:  # a cluster that kept its points keeps its sum
            changed = np.zeros(k, dtype=bool)
            changed[labels[moved]] = True
            changed[labels_old[moved]] = True
        for c in np.flatnonzero(changed):
            members = np.flatnonzero(labels == c)
            if members.size == 0:
                return None
            sums[c] = _ordered_sum(Xw[members])
            mass[c] = np.cumsum(w[members])[-1]  # (a 1-D sum would add pairwise)
        if not (mass > 0).all():
            return None
        scale = (1.0 / mass.astype(np.float64)).astype(np.float32)
        new = sums * scale[:, None]
        step = _distances(new, C)
        C = new
        if not moved.any():
            converged = True
            break
        if (step**2).sum() <= tol:
            break
        labels_old = labels
    if not converged:
        labels = _nearest(X, C)
    return labels, C + shift, it + 1


def cluster_sums(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``(k, d)``: the sum of each cluster's rows of ``X``, added in row order (as
    ``np.add.at(out, labels, X)`` adds them, faster)."""
    out = np.zeros((k, X.shape[1]), dtype=X.dtype)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if members.size:
            out[c] = _ordered_sum(X[members])
    return out


def fill_empty_clusters(labels: np.ndarray, X: np.ndarray, centers: np.ndarray, n_clusters: int) -> np.ndarray:
    """Move one point (the farthest from its centre) from the largest cluster into each empty one."""
    labels = labels.copy()
    sizes = np.bincount(labels, minlength=n_clusters)
    for c in np.flatnonzero(sizes == 0):
        big = int(np.argmax(sizes))
        members = np.flatnonzero(labels == big)
        dist = ((X[members] - centers[big]) ** 2).sum(axis=1)
        move = members[int(np.argmax(dist))]
        labels[move] = c
        sizes[big] -= 1
        sizes[c] += 1
    return labels


def _ordered_sum(rows: np.ndarray) -> np.ndarray:
    """Σ of the rows of a C-ordered (n, d) block, d > 1, added one row after the other: numpy
    reduces axis 0 row by row (pairwise summation applies only along the contiguous axis)."""
    return rows.sum(axis=0)


def _nearest(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The nearest centre of each row: argmin of ``‖c‖² − 2 x·c`` (first on ties)."""
    norms = np.array([np.dot(c, c) for c in C], dtype=np.float32)
    scores = X @ C.T
    scores *= np.float32(-2.0)
    scores += norms
    return scores.argmin(axis=1).astype(np.int64)


def _distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Euclidean distance between matching rows, in float32, the squares added four
    features at a time and those groups in order (as scikit-learn's unrolled loop)."""
    d = A - B
    sq = d * d
    n4 = sq.shape[1] // 4 * 4
    total = np.zeros(sq.shape[0], dtype=np.float32)
    if n4:  # cumsum adds the groups one after the other
        groups = ((sq[:, 0:n4:4] + sq[:, 1:n4:4]) + sq[:, 2:n4:4]) + sq[:, 3:n4:4]
        total = np.cumsum(groups, axis=1)[:, -1]
    for j in range(n4, sq.shape[1]):
        total = total + sq[:, j]
    return np.sqrt(total)
