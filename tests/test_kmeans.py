"""saetm's Lloyd k-means (topics/kmeans.py) against scikit-learn's KMeans, which it replaces
in ``retopic``: the same labels, centres and iterations, bit for bit, on a fitted model's atoms."""

import copy

import numpy as np
import pytest
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from saetm.topics import hierarchy, kmeans, merge


@pytest.fixture(scope="module")
def atoms(fitted_model):
    """Used atoms' embeddings, their weights θ̄^p normalised, and the tree: what cluster_atoms gets."""
    m = fitted_model
    w = merge.cluster_weights(m.feature_prob_, m.atom_tree_.power)
    used = np.flatnonzero(w > 0)
    X = np.asarray(m.atom_embeddings_, np.float32)
    return X, w, used, m.atom_tree_


def _start(X, w, used, tree, k):
    """The centres cluster_atoms starts k-means from: the weighted centroids of the tree cut."""
    wu = w[used] / w[used].sum()
    start = hierarchy.cut(tree, k)[used]
    centers = np.zeros((k, X.shape[1]))
    np.add.at(centers, start, X[used] * wu[:, None])
    return X[used], wu, centers / np.bincount(start, weights=wu, minlength=k)[:, None]


@pytest.mark.parametrize("k", [2, 3, 5, 8, 13, 20, 40])
def test_lloyd_is_scikit_learns_kmeans_bit_for_bit(atoms, k):
    Xu, wu, centers = _start(*atoms, k)
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=k, init=centers, n_init=1, max_iter=100, random_state=0).fit(Xu, sample_weight=wu)
        labels, fitted, n_iter = kmeans.lloyd(Xu, wu, centers, max_iter=100)
    assert np.array_equal(labels, km.labels_)
    assert np.array_equal(fitted, km.cluster_centers_)
    assert n_iter == km.n_iter_


def test_the_iteration_limit_and_tolerance_are_scikit_learns(atoms):
    Xu, wu, centers = _start(*atoms, 12)
    for max_iter, tol in [(1, 1e-4), (3, 1e-4), (100, 1e-2), (100, 0.0)]:
        with threadpool_limits(limits=1):
            km = KMeans(n_clusters=12, init=centers, n_init=1, max_iter=max_iter, tol=tol).fit(Xu, sample_weight=wu)
            labels, fitted, n_iter = kmeans.lloyd(Xu, wu, centers, max_iter=max_iter, tol=tol)
        assert np.array_equal(labels, km.labels_) and np.array_equal(fitted, km.cluster_centers_)
        assert n_iter == km.n_iter_


def test_cluster_atoms_gives_what_it_gave_with_scikit_learn(atoms, fitted_model):
    X, w, used, tree = atoms
    for k in (4, 9, 17):
        Xu, wu, centers = _start(X, w, used, tree, k)
        with threadpool_limits(limits=1):
            km = KMeans(n_clusters=k, init=centers, n_init=1, max_iter=100, random_state=0).fit(Xu, sample_weight=wu)
        expected = np.full(X.shape[0], -1)
        expected[used] = km.labels_
        got = merge.cluster_atoms(X, w, k, init=hierarchy.cut(tree, k))
        assert np.array_equal(got, expected)
    m = copy.deepcopy(fitted_model).retopic(5)
    assert sorted(np.bincount(m.atom_topic_[m.atom_topic_ >= 0])) == sorted(np.bincount(
        merge.cluster_atoms(X, w, 5, init=hierarchy.cut(tree, 5))[used]))


def test_a_cluster_that_empties_is_left_to_scikit_learn(atoms):
    Xu, wu, centers = _start(*atoms, 6)
    far = centers.copy()
    far[5] = 100.0  # no atom is nearest to it
    assert kmeans.lloyd(Xu, wu, far) is None
    moved = kmeans.fill_empty_clusters(np.array([0, 0, 0, 1]), np.diag([1.0, 3.0, 2.0, 4.0]), np.zeros((3, 4)), 3)
    assert moved.tolist() == [0, 2, 0, 1]  # the farthest atom of the largest cluster


def test_cluster_sums_add_rows_in_order(atoms):
    X = atoms[0][:500].astype(np.float64)
    labels = np.random.default_rng(0).integers(0, 7, 500)
    expected = np.zeros((7, X.shape[1]))
    np.add.at(expected, labels, X)  # one row after the other
    assert np.array_equal(kmeans.cluster_sums(X, labels, 7), expected)
