"""Topic hierarchies: one tree over the atoms gives every number of topics at once.

The default linkage is *weighted* Ward: the cost of merging clusters a and b is the
increase of the weighted within-cluster sum of squares (each atom weighing θ̄^p,
:func:`saetm.topics.merge.cluster_weights`),

    Δ(a, b) = w_a w_b / (w_a + w_b) · ‖μ_a − μ_b‖²,

with w the summed weights and μ the weighted centroids of the L2-normalised atom
embeddings — the objective the weighted k-means of :mod:`saetm.topics.merge`
minimises, so tree cuts and k-means clusterings optimise the same thing. With unit
weights it is exactly scipy's Ward linkage (heights included). Weighted Ward is
reducible, so the nearest-neighbour chain algorithm builds it exactly (scipy's
linkage cannot take weights).

Trees are scipy linkage matrices ``Z: (n_leaves − 1, 4)`` (children, height, leaf
count), so ``scipy.cluster.hierarchy.dendrogram`` draws them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import logging

import numpy as np

from saetm.errors import SaetmError

logger = logging.getLogger("saetm")

METHODS = ("ward", "average")


@dataclass
class AtomTree:
    """A hierarchy over the used atoms.

    ``linkage``: (n_leaves − 1, 4) scipy linkage over the leaves; ``atoms``: (n_leaves,)
    the atom index of each leaf; ``n_atoms``: the total number of atoms (used or not);
    ``power``: the p of the weights θ̄^p it was built with
    (:func:`saetm.topics.merge.cluster_weights`), as ``saetm.topics.stage.atom_tree`` records it (files
    saved without it are upgraded by :mod:`saetm.migrate`); 1 for trees :func:`build_atom_tree`
    makes by itself.
    """

    linkage: np.ndarray
    atoms: np.ndarray
    n_atoms: int
    method: str = "ward"
    power: float = 1.0

    @property
    def n_leaves(self) -> int:
        return int(self.atoms.shape[0])


def weighted_ward(X: np.ndarray, weights: np.ndarray | None = None, *, max_dense: int = 12000) -> np.ndarray:
    """Ward linkage of the rows of ``X`` (n, d) with positive sample ``weights`` (n,).

    Returns a scipy linkage matrix (n − 1, 4); height = sqrt(2·Δ), as scipy's Ward.
    Up to ``max_dense`` rows a distance matrix with Lance–Williams updates is used
    (n² floats: 150 MB for 6,144 atoms; seconds, whatever d); above it, centroids
    are kept instead (O(n·d) memory, but O(n²·d) time).
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n < 2:
        return np.zeros((0, 4), dtype=np.float64)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel().copy()
    if w.shape[0] != n or not np.isfinite(w).all() or (w <= 0).any():
        raise SaetmError("Ward weights must be one positive number per row")
    if n <= max_dense:
        return _sort_linkage(_ward_dense(X, w), n)
    logger.info("Ward linkage over %d atoms without a distance matrix; this takes a while", n)
    return _sort_linkage(_ward_centroids(X, w), n)


def _ward_cost_matrix(X: np.ndarray, w: np.ndarray, dtype) -> np.ndarray:
    """Δ(i, j) = w_i w_j / (w_i + w_j) · ‖x_i − x_j‖², built in row blocks to bound memory."""
    n = X.shape[0]
    X, w = X.astype(dtype), w.astype(dtype)
    sq = np.einsum("ij,ij->i", X, X)
    D = np.empty((n, n), dtype=dtype)
    step = max(1, (1 << 22) // n)
    for i in range(0, n, step):
        j = min(n, i + step)
        block = D[i:j]
        np.matmul(X[i:j], X.T, out=block)
        block *= -2.0
        block += sq[i:j, None]
        block += sq[None, :]
        np.maximum(block, 0.0, out=block)
        block *= w[i:j, None] * w[None, :] / (w[i:j, None] + w[None, :])
    np.fill_diagonal(D, np.inf)
    return D


def _ward_dense(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Nearest-neighbour chain over a Ward cost matrix; merges in execution order."""
    n = X.shape[0]
    dtype = np.float64 if n <= 2048 else np.float32  # float32 halves memory and time; same trees in tests
    D = _ward_cost_matrix(X, w, dtype)
    wt = w.astype(dtype)
    node = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    merges = np.empty((n - 1, 4), dtype=np.float64)
    active = np.ones(n, dtype=bool)
    chain: list[int] = []
    for m in range(n - 1):
        while True:
            if not chain:
                chain.append(int(np.argmax(active)))
            a = chain[-1]
            b = int(np.argmin(D[a]))
            # Prefer the previous chain element on ties, or the chain could cycle.
            if len(chain) > 1 and D[a, chain[-2]] <= D[a, b]:
                b = chain[-2]
                break
            chain.append(b)
        chain.pop()
        chain.pop()
        dab = D[a, b]
        lo, hi = (a, b) if node[a] < node[b] else (b, a)
        merges[m] = (node[lo], node[hi], np.sqrt(2.0 * float(dab)), size[a] + size[b])
        # Lance–Williams for (weighted) Ward; retired slots hold inf and stay inf.
        new = ((wt[a] + wt) * D[a] + (wt[b] + wt) * D[b] - wt * dab) / (wt[a] + wt[b] + wt)
        new[a] = np.inf
        new[b] = np.inf
        D[a], D[:, a] = new, new
        D[b], D[:, b] = np.inf, np.inf
        active[b] = False
        wt[a], size[a], node[a] = wt[a] + wt[b], size[a] + size[b], n + m
    return merges


def _ward_centroids(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Nearest-neighbour chain over cluster centroids (no n² matrix); merges in execution order."""
    n = X.shape[0]
    cent, wt = X.copy(), w.copy()
    sq = np.einsum("ij,ij->i", cent, cent)
    node = np.arange(n)  # node id (scipy numbering in execution order) held by each slot
    size = np.ones(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    merges = np.empty((n - 1, 4), dtype=np.float64)
    chain: list[int] = []
    n_active = n
    for m in range(n - 1):
        if n_active <= len(active) // 2 and len(active) > 256:
            # Drop retired slots so each nearest-neighbour search scans only live clusters.
            keep = np.flatnonzero(active)
            remap = np.full(len(active), -1, dtype=np.int64)
            remap[keep] = np.arange(len(keep))
            chain = [int(remap[c]) for c in chain]
            cent, wt, sq, node, size = cent[keep], wt[keep], sq[keep], node[keep], size[keep]
            active = np.ones(len(keep), dtype=bool)
        while True:
            if not chain:
                chain.append(int(np.argmax(active)))
            a = chain[-1]
            d2 = np.maximum(sq + sq[a] - 2.0 * (cent @ cent[a]), 0.0)
            cost = wt * wt[a] / (wt + wt[a]) * d2
            cost[~active] = np.inf
            cost[a] = np.inf
            b = int(np.argmin(cost))
            if len(chain) > 1 and cost[chain[-2]] <= cost[b]:
                b = chain[-2]
                break
            chain.append(b)
        chain.pop()
        chain.pop()
        lo, hi = (a, b) if node[a] < node[b] else (b, a)
        merges[m] = (node[lo], node[hi], np.sqrt(2.0 * cost[b]), size[a] + size[b])
        # The merged cluster lives on in slot a; slot b is retired.
        wsum = wt[a] + wt[b]
        cent[a] = (wt[a] * cent[a] + wt[b] * cent[b]) / wsum
        sq[a] = cent[a] @ cent[a]
        wt[a], size[a], node[a] = wsum, size[a] + size[b], n + m
        active[b] = False
        n_active -= 1
        wt[b] = 1.0  # keep the cost formula finite for retired slots
    return merges


def _sort_linkage(merges: np.ndarray, n: int) -> np.ndarray:
    """Renumber merges (given in execution order, children first) by increasing height."""
    h = merges[:, 2].copy()
    # Make heights monotone up the tree (exact in theory; guards against rounding).
    for i in range(len(merges)):
        for c in merges[i, :2].astype(np.int64):
            if c >= n:
                h[i] = max(h[i], h[c - n])
    order = np.argsort(h, kind="stable")  # stable: children keep preceding their parents on ties
    new_id = np.empty(len(merges), dtype=np.int64)
    new_id[order] = np.arange(len(merges))
    Z = merges[order].copy()
    Z[:, 2] = h[order]
    for j in (0, 1):
        c = Z[:, j].astype(np.int64)
        Z[:, j] = np.where(c >= n, n + new_id[np.maximum(c - n, 0)], c)
    Z[:, :2] = np.sort(Z[:, :2], axis=1)
    return Z


def _linkage(X: np.ndarray, weights: np.ndarray | None, method: str) -> np.ndarray:
    if method == "ward":
        return weighted_ward(X, weights)
    if method == "average":
        from scipy.cluster.hierarchy import linkage

        if X.shape[0] < 2:
            return np.zeros((0, 4), dtype=np.float64)
        return linkage(np.asarray(X, dtype=np.float64), method="average", metric="cosine")
    raise SaetmError(f"unknown linkage method {method!r}; choose one of {', '.join(METHODS)}")


def valid_linkage(Z: np.ndarray) -> bool:
    """Whether ``Z`` is a linkage matrix ``scipy.cluster.hierarchy.is_valid_linkage`` accepts
    (float64, (n − 1, 4), no negative entries, clusters of at most n leaves, each cluster used
    once and only after it is formed), with finite entries; in numpy, since importing
    ``scipy.cluster`` takes longer than loading a model."""
    Z = np.asarray(Z)
    if Z.dtype != np.float64 or Z.ndim != 2 or Z.shape[1] != 4 or Z.shape[0] == 0 or not np.isfinite(Z).all():
        return False
    n = Z.shape[0]
    if n < 2:
        return True
    kids = Z[:, :2]
    return not ((Z < 0).any() or (Z[:, 3] > n + 1).any()
                or (kids.max(axis=1) >= np.arange(n + 1, 2 * n + 1, dtype=Z.dtype)).any()
                or np.unique(kids).size < 2 * n)


def build_atom_tree(atom_emb: np.ndarray, weights: np.ndarray, method: str = "ward") -> AtomTree:
    """A tree over the used atoms (weight > 0).

    ``atom_emb``: (n_atoms, d), usually L2-normalised (:func:`saetm.topics.merge.atom_embeddings`);
    ``weights``: (n_atoms,), e.g. θ̄^p. ``method``: ``"ward"`` (weighted Ward) or ``"average"``
    (unweighted average linkage on cosine distance).
    """
    X = np.asarray(atom_emb, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != w.shape[0]:
        raise SaetmError(f"atom_emb has shape {X.shape} but weights has {w.shape[0]} entries; give one weight per atom")
    used = np.flatnonzero(np.isfinite(w) & (w > 0))
    if len(used) == 0:
        raise SaetmError("no atom is used (all weights are 0); fit the word distributions on documents first")
    Z = _linkage(X[used], w[used], method)
    return AtomTree(linkage=Z, atoms=used, n_atoms=int(X.shape[0]), method=method)


def cut_linkage(Z: np.ndarray, n_clusters: int) -> np.ndarray:
    """Leaf labels (n_leaves,) in [0, n_clusters) after undoing the last n_clusters − 1 merges.

    Exactly ``n_clusters`` clusters, even with tied heights; numbered by smallest leaf.
    """
    Z = np.asarray(Z)
    n = Z.shape[0] + 1
    k = n - int(n_clusters)  # merges to apply
    parent = np.arange(2 * n - 1)
    kids = Z[:k, :2].astype(np.int64)
    parent[kids[:, 0]] = n + np.arange(k)
    parent[kids[:, 1]] = n + np.arange(k)
    while True:  # pointer doubling: every node ends up pointing at its root
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    roots = parent[:n]
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def cut(tree: AtomTree, n_topics: int) -> np.ndarray:
    """``atom_topic``: (n_atoms,) int64 with exactly ``n_topics`` clusters, −1 for unused atoms.

    Compatible with :func:`saetm.topics.merge.build_topics` and ``doc_topics``.
    """
    n_topics = int(n_topics)
    if n_topics < 1 or n_topics > tree.n_leaves:
        raise SaetmError(
            f"n_topics={n_topics} is out of range: the tree has {tree.n_leaves} used atoms, "
            f"so choose 1 ≤ n_topics (--topics) ≤ {tree.n_leaves}"
        )
    atom_topic = np.full(tree.n_atoms, -1, dtype=np.int64)
    atom_topic[tree.atoms] = cut_linkage(tree.linkage, n_topics) if tree.n_leaves > 1 else 0
    return atom_topic


def topic_embeddings(atom_emb: np.ndarray, weights: np.ndarray, atom_topic: np.ndarray, n_topics: int) -> np.ndarray:
    """θ̄-weighted centroid of each topic's atom embeddings: (T, d) float32.

    A topic whose atoms all have weight 0 gets their plain mean.
    """
    X = np.asarray(atom_emb, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).ravel()
    a = np.asarray(atom_topic).ravel().astype(np.int64)
    if not (X.shape[0] == w.shape[0] == a.shape[0]):
        raise SaetmError("atom_emb, weights and atom_topic must have one entry per atom")
    inc = a >= 0
    out = np.zeros((int(n_topics), X.shape[1]))
    wsum = np.bincount(a[inc], weights=w[inc], minlength=n_topics)
    cnt = np.bincount(a[inc], minlength=n_topics)
    np.add.at(out, a[inc], X[inc] * w[inc, None])
    plain = np.zeros_like(out)
    np.add.at(plain, a[inc], X[inc])
    out = np.where((wsum > 0)[:, None], out / np.where(wsum > 0, wsum, 1.0)[:, None],
                   plain / np.maximum(cnt, 1)[:, None])
    return out.astype(np.float32)


def topic_tree(topic_emb: np.ndarray, prevalence: np.ndarray | None = None, method: str = "ward") -> np.ndarray:
    """Linkage (T − 1, 4) over topics, for a dendrogram or :func:`format_tree`.

    ``topic_emb``: (T, d) from :func:`topic_embeddings`; ``prevalence``: (T,) weights for
    Ward (Ward on prevalence-weighted topic centroids is exactly the atom-level Ward cost).
    """
    X = np.asarray(topic_emb, dtype=np.float64)
    w = None
    if prevalence is not None:
        w = np.asarray(prevalence, dtype=np.float64).ravel()
        if w.shape[0] != X.shape[0]:
            raise SaetmError(f"prevalence has {w.shape[0]} entries but there are {X.shape[0]} topics")
        # Topics without weight still need a place in the tree.
        w = np.maximum(w, 1e-12 * max(float(w.max()), 1e-300))
    return _linkage(X, w, method)


def format_tree(Z: np.ndarray, labels: Sequence[str], *, max_depth: int | None = None, heights: bool = False,
                ascii: bool = False) -> str:
    """Text rendering of a linkage tree, one leaf label per line.

    ``labels``: one per leaf (e.g. ``Topics.labels(vocab)``). Branches list the subtree
    holding the lower-numbered (more prevalent) topic first. Below ``max_depth`` a
    subtree is collapsed to the list of its leaves.
    """
    Z = np.asarray(Z)
    n = Z.shape[0] + 1
    if len(labels) != n:
        raise SaetmError(f"the tree has {n} leaves but {len(labels)} labels were given")
    if n == 1:
        return str(labels[0])
    tee, last, bar, gap = ("|-- ", "`-- ", "|   ", "    ") if ascii else ("├── ", "└── ", "│   ", "    ")
    kids = Z[:, :2].astype(np.int64)
    first = np.arange(2 * n - 1)  # smallest leaf below each node
    count = np.ones(2 * n - 1, dtype=np.int64)
    for i in range(n - 1):
        first[n + i] = min(first[kids[i, 0]], first[kids[i, 1]])
        count[n + i] = count[kids[i, 0]] + count[kids[i, 1]]

    def leaves(node: int) -> list[int]:
        out, stack = [], [node]
        while stack:
            v = stack.pop()
            if v < n:
                out.append(v)
            else:
                stack.extend(kids[v - n])
        return sorted(out)

    def head(node: int, depth: int) -> str:
        if node < n:
            return str(labels[node])
        text = f"[{count[node]} topics" + (f", height {Z[node - n, 2]:.3g}" if heights else "") + "]"
        if max_depth is not None and depth >= max_depth:
            text += " " + ", ".join(str(i) for i in leaves(node))
        return text

    lines: list[str] = []
    stack = [(2 * n - 2, "", "", 0)]  # (node, line prefix, children's prefix, depth), pre-order
    while stack:
        node, line_prefix, child_prefix, depth = stack.pop()
        lines.append(line_prefix + head(node, depth))
        if node < n or (max_depth is not None and depth >= max_depth):
            continue
        children = sorted(kids[node - n].tolist(), key=lambda c: first[c])
        for j in reversed(range(len(children))):
            is_last = j == len(children) - 1
            stack.append((children[j], child_prefix + (last if is_last else tee),
                          child_prefix + (gap if is_last else bar), depth + 1))
    return "\n".join(lines)
