"""Stage 3: word vectors, merging atoms into topics, hierarchies."""

import re
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.cluster.hierarchy import linkage
from sklearn.metrics import adjusted_rand_score

from saetm.errors import SaetmError
from saetm.topics.hierarchy import (build_atom_tree, cut, cut_linkage, format_tree, topic_embeddings, topic_tree,
                                    weighted_ward)
from saetm.topics.merge import (atom_embeddings, build_topics, cluster_atoms, coverage, doc_topics, sparsify_rows,
                                top_words)
from saetm.topics.wordvectors import EncoderWordVectors, GloveVectors, fill_oov

THEMES = {
    "sports": "hockey baseball team game season players league playoff pitcher goalie teams win fans score".split(),
    "space": "nasa orbit shuttle launch satellite moon spacecraft mission lunar solar space earth planet rocket".split(),
    "religion": "god jesus church bible christian faith christ belief scripture atheism religion christians sin prayer".split(),
    "computer": "windows software drive disk graphics card keyboard file memory program dos scsi pc monitor".split(),
    "autos": "car cars engine ford dealer oil driving speed bmw miles toyota brake honda vehicle".split(),
    "medicine": "doctor patients disease medical treatment health drug doctors patient pain symptoms medicine".split(),
    "guns": "gun guns government law weapons firearms police crime rights fbi federal laws batf weapon".split(),
}


# ---------------------------------------------------------------- helpers

def random_stage2(n_atoms=60, V=200, n_docs=300, n_unused=7, seed=0):
    """Stage-2-shaped inputs: B row-stochastic (zero rows for unused atoms), θ̄, θ."""
    rng = np.random.default_rng(seed)
    unused = rng.choice(n_atoms, n_unused, replace=False)
    B = rng.dirichlet(np.full(V, 0.05), size=n_atoms).astype(np.float32)
    B[B < 1e-4] = 0
    B /= B.sum(axis=1, keepdims=True)
    B[unused] = 0
    used = np.setdiff1d(np.arange(n_atoms), unused)
    theta = np.zeros((n_docs, n_atoms), dtype=np.float32)
    for d in range(n_docs - 5):  # the last 5 documents activate nothing
        k = rng.choice(used, 4, replace=False)
        theta[d, k] = rng.random(4)
    s = theta.sum(axis=1, keepdims=True)
    theta = np.divide(theta, s, out=np.zeros_like(theta), where=s > 0)
    feature_prob = theta.mean(axis=0)
    return sp.csr_matrix(B), feature_prob, sp.csr_matrix(theta)


@pytest.fixture(scope="module")
def glove():
    return GloveVectors()


# ---------------------------------------------------------------- word vectors

def test_glove_vectors_known_words_and_oov(glove):
    words = ["hockey", "baseball", "nasa", "qzxwvkplm", "God"]
    V = glove.vectors_for(words)
    assert V.shape == (5, 50) and V.dtype == np.float32
    assert glove.coverage(words) == pytest.approx(4 / 5)
    assert glove.coverage(["hockey", "nasa"]) == 1.0
    # The unknown word gets the mean of the four found words; "God" is found lowercased.
    np.testing.assert_allclose(V[3], V[[0, 1, 2, 4]].mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(V[4], glove.vectors_for(["god"])[0])
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert cos(V[0], V[1]) > cos(V[0], V[2]) + 0.3  # hockey is nearer baseball than nasa
    assert glove.vectors_for([]).shape == (0, 50)


def test_fill_oov_is_the_one_rule():
    vecs = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 2.0]], dtype=np.float32)
    out = fill_oov(vecs, np.array([True, False, True]))
    np.testing.assert_allclose(out[1], [2.0, 1.0])
    assert vecs[1].tolist() == [0.0, 0.0]  # the input is not modified
    with pytest.raises(SaetmError, match="none of the 2 words"):
        fill_oov(vecs[:2], np.array([False, False]))


def test_encoder_word_vectors_use_the_encoder():
    from saetm.encoders.text import TextEncoder

    def toy(texts):  # deterministic stand-in for a sentence encoder
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)

    wv = EncoderWordVectors(TextEncoder(toy, name="toy"), cache=False)
    assert wv.name == "encoder:toy"
    V = wv.vectors_for(["banana", "kiwi", ""])
    np.testing.assert_allclose(V[0], [6, 3, 1])
    np.testing.assert_allclose(V[2], (V[0] + V[1]) / 2)  # an empty word is OOV → mean
    assert wv.coverage(["banana", ""]) == 0.5


# ---------------------------------------------------------------- sparsify and embed

@pytest.mark.parametrize("tau", [0.5, 0.9, 1.0])
def test_sparsify_rows_keeps_smallest_top_set(tau):
    B, _, _ = random_stage2()
    S = sparsify_rows(B, tau)
    assert S.shape == B.shape and S.dtype == np.float32
    Bd, Sd = B.toarray().astype(np.float64), S.toarray()
    for k in range(B.shape[0]):
        row = Bd[k]
        if row.sum() == 0:
            assert Sd[k].sum() == 0
            continue
        kept = Sd[k] > 0
        assert Sd[k].sum() == pytest.approx(1.0, abs=1e-5)  # renormalised
        assert row[kept].sum() >= tau * row.sum() - 1e-6  # holds ≥ τ of the mass ...
        assert row[kept].sum() - row[kept].min() < tau * row.sum()  # ... and no smaller top set does
        assert row[kept].min() >= row[~kept].max(initial=0)  # the kept words are the top words
        np.testing.assert_allclose(Sd[k][kept], row[kept] / row[kept].sum(), rtol=1e-5)
    with pytest.raises(SaetmError, match="tau"):
        sparsify_rows(B, 0.0)


@pytest.mark.parametrize("block_entries", [1, 7, 500])
def test_sparsify_rows_in_blocks_is_identical(block_entries):
    """Row blocks only bound the memory: the result is bit-identical to one block."""
    B, _, _ = random_stage2()
    assert B.nnz > 500
    whole, blocked = sparsify_rows(B, 0.9), sparsify_rows(B, 0.9, block_entries=block_entries)
    assert blocked.shape == whole.shape and blocked.dtype == whole.dtype
    assert (blocked != whole).nnz == 0 and np.array_equal(blocked.indptr, whole.indptr)


def test_atom_embeddings_shapes_and_norms():
    B, _, _ = random_stage2()
    W = np.random.default_rng(1).standard_normal((B.shape[1], 16)).astype(np.float32)
    E = atom_embeddings(sparsify_rows(B), W)
    norms = np.linalg.norm(E, axis=1)
    used = np.asarray(B.sum(axis=1)).ravel() > 0
    np.testing.assert_allclose(norms[used], 1.0, rtol=1e-5)
    assert (norms[~used] == 0).all()
    raw = atom_embeddings(B, W, normalize=False)
    np.testing.assert_allclose(raw, B.toarray() @ W, rtol=1e-4, atol=1e-5)
    with pytest.raises(SaetmError, match="one vector per vocabulary word"):
        atom_embeddings(B, W[:-1])


# ---------------------------------------------------------------- clustering and topics

def test_cluster_atoms_partitions_used_atoms():
    B, p, _ = random_stage2()
    E = atom_embeddings(sparsify_rows(B), np.random.default_rng(2).standard_normal((B.shape[1], 16)))
    used = p > 0
    for T in (1, 5, int(used.sum())):
        a = cluster_atoms(E, p, T, seed=3)
        assert a.shape == (B.shape[0],)
        assert (a[~used] == -1).all() and (a[used] >= 0).all()
        assert set(a[used].tolist()) == set(range(T))  # exactly T non-empty clusters
    np.testing.assert_array_equal(cluster_atoms(E, p, 8, seed=5), cluster_atoms(E, p, 8, seed=5))
    with pytest.raises(SaetmError, match=f"{int(used.sum())} atoms are used"):
        cluster_atoms(E, p, int(used.sum()) + 1)
    with pytest.raises(SaetmError, match="out of range"):
        cluster_atoms(E, p, 0)
    # Starting from a given clustering: still a partition, and deterministic without a seed.
    start = cut(build_atom_tree(E, p), 6)
    a = cluster_atoms(E, p, 6, init=start)
    assert set(a[used].tolist()) == set(range(6)) and (a[~used] == -1).all()
    np.testing.assert_array_equal(a, cluster_atoms(E, p, 6, init=start, seed=99))
    with pytest.raises(SaetmError, match="exactly 5 clusters"):
        cluster_atoms(E, p, 5, init=start)


def test_cluster_atoms_with_duplicate_embeddings_still_fills_every_cluster():
    E = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 12 atoms, 3 distinct points
    a = cluster_atoms(E, np.ones(12), 6, seed=0)
    assert np.bincount(a, minlength=6).min() >= 1


def test_build_topics_and_doc_topics():
    B, p, theta = random_stage2()
    E = atom_embeddings(sparsify_rows(B), np.random.default_rng(2).standard_normal((B.shape[1], 16)))
    T = 6
    topics = build_topics(B, p, cluster_atoms(E, p, T, seed=0), T)
    assert topics.n_topics == T and topics.topic_words.shape == (T, B.shape[1])
    np.testing.assert_allclose(topics.topic_words.sum(axis=1), 1.0, rtol=1e-5)
    assert topics.prevalence.sum() == pytest.approx(p.sum())
    assert (np.diff(topics.prevalence) <= 0).all()  # topic 0 is the most prevalent
    assert topics.n_atoms.sum() == (p > 0).sum()
    np.testing.assert_array_equal(topics.n_atoms, np.bincount(topics.atom_topic[topics.atom_topic >= 0]))
    # β_c is the θ̄-weighted mean of the unsparsified B rows of the topic's atoms.
    members = np.flatnonzero(topics.atom_topic == 2)
    expect = (p[members, None] * B.toarray()[members]).sum(axis=0) / p[members].sum()
    np.testing.assert_allclose(topics.topic_words[2], expect, rtol=1e-4, atol=1e-7)
    # Renumbering is a function of the clustering only, not of its arbitrary ids.
    again = build_topics(B, p, np.where(topics.atom_topic >= 0, (topics.atom_topic + 3) % T, -1), T)
    np.testing.assert_array_equal(again.atom_topic, topics.atom_topic)

    dt = doc_topics(theta, topics.atom_topic, T)
    assert dt.shape == (theta.shape[0], T) and sp.isspmatrix_csr(dt)
    np.testing.assert_allclose(np.asarray(dt.sum(axis=1)).ravel(), np.asarray(theta.sum(axis=1)).ravel(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(dt.mean(axis=0)).ravel(), topics.prevalence, rtol=1e-4)
    dn = doc_topics(theta, topics.atom_topic, T, normalize=True)
    sums = np.asarray(dn.sum(axis=1)).ravel()
    assert np.allclose(sums[sums > 0], 1.0, atol=1e-5) and (sums == 0).sum() == 5
    cov = coverage(dt)
    assert cov.shape == (T,) and ((cov >= 0) & (cov <= 1)).all()
    np.testing.assert_allclose(cov, (dt.toarray() > 0).mean(axis=0))

    with pytest.raises(SaetmError, match="have no atoms"):
        build_topics(B, p, np.where(topics.atom_topic == 1, 0, topics.atom_topic), T)
    with pytest.raises(SaetmError, match="one entry per atom"):
        build_topics(B, p[:-1], topics.atom_topic, T)


def test_top_words_rankings():
    vocab = ["the", "hockey", "goalie", "rareword", "nasa"]
    beta = np.array([[0.5, 0.3, 0.15, 0.05, 0.0]], dtype=np.float32)
    p0 = np.array([0.6, 0.1, 0.02, 1e-6, 0.278])
    words, weights = top_words(beta, vocab, n=10)
    assert words == [["the", "hockey", "goalie", "rareword"]]  # β = 0 is never listed
    np.testing.assert_allclose(weights[0], [0.5, 0.3, 0.15, 0.05])
    lift, _ = top_words(beta, vocab, n=3, ranking="lift", background=p0, floor=0.01)
    # "the" is demoted; the rare word's p0 is floored, so a sliver of mass cannot put it first.
    assert lift[0] == ["goalie", "rareword", "hockey"]
    assert top_words(beta, vocab, n=1, ranking="lift", background=p0, floor=1e-9)[0] == [["rareword"]]
    assert top_words(beta, vocab, n=2, ranking="lift", background=p0)[0] == [["hockey", "the"]]  # floor 1/V = 0.2
    assert top_words(beta, vocab, n=4, ranking="relevance", background=p0, lam=1.0)[0] == words
    rel, _ = top_words(beta, vocab, n=4, ranking="relevance", background=p0, lam=0.0)
    assert rel[0][0] == "rareword"  # pure lift without a floor
    with pytest.raises(SaetmError, match="background"):
        top_words(beta, vocab, ranking="lift")
    with pytest.raises(SaetmError, match="unknown ranking"):
        top_words(beta, vocab, ranking="tfidf")


# ---------------------------------------------------------------- hierarchy

def test_weighted_ward_matches_scipy_and_weights_act_as_duplicates():
    X = np.random.default_rng(4).standard_normal((80, 5))
    np.testing.assert_allclose(weighted_ward(X), linkage(X, "ward"), atol=1e-10)
    w = np.ones(30)
    w[:6] = 2.0  # weight 2 ≡ the point listed twice (the duplicates merge first at height 0)
    Zw, Zd = weighted_ward(X[:30], w), linkage(np.vstack([X[:30], X[:6]]), "ward")
    np.testing.assert_allclose(Zw[:, 2], Zd[6:, 2], atol=1e-10)


def test_weighted_ward_paths_agree():
    """The float32 distance-matrix path (n > 2048) and the matrix-free centroid path build the same tree."""
    rng = np.random.default_rng(5)
    X, w = rng.standard_normal((2100, 6)), rng.lognormal(0.0, 1.0, 2100)
    Z_dense, Z_cent = weighted_ward(X, w), weighted_ward(X, w, max_dense=10)
    np.testing.assert_allclose(Z_dense[:, 2], Z_cent[:, 2], rtol=1e-4)
    for T in (2, 10, 100):
        assert adjusted_rand_score(cut_linkage(Z_dense, T), cut_linkage(Z_cent, T)) == 1.0


def test_hierarchy_cuts_give_every_granularity():
    B, p, theta = random_stage2()
    E = atom_embeddings(sparsify_rows(B), np.random.default_rng(2).standard_normal((B.shape[1], 16)))
    tree = build_atom_tree(E, p)
    n_used = int((p > 0).sum())
    assert tree.n_leaves == n_used and tree.linkage.shape == (n_used - 1, 4)
    assert (np.diff(tree.linkage[:, 2]) >= 0).all()
    for T in (1, 2, 7, 20, n_used):
        a = cut(tree, T)
        assert (a[p == 0] == -1).all() and set(a[p > 0].tolist()) == set(range(T))
        topics = build_topics(B, p, a, T)
        dt = doc_topics(theta, topics.atom_topic, T)
        np.testing.assert_allclose(np.asarray(dt.sum(axis=1)).ravel(), np.asarray(theta.sum(axis=1)).ravel(), atol=1e-5)
    # Cuts are nested: each cluster at T=7 lies inside one cluster at T=3.
    fine, coarse = cut(tree, 7), cut(tree, 3)
    assert all(len(set(coarse[fine == c])) == 1 for c in range(7))
    assert set(cut(build_atom_tree(E, p, method="average"), 5)[p > 0].tolist()) == set(range(5))
    with pytest.raises(SaetmError, match=f"{n_used} used atoms"):
        cut(tree, n_used + 1)
    # Tied heights (duplicate points) still give exactly T clusters.
    Z = weighted_ward(np.repeat(np.eye(2), 5, axis=0))
    assert len(set(cut_linkage(Z, 4).tolist())) == 4


def test_topic_tree_and_format_tree():
    B, p, _ = random_stage2()
    E = atom_embeddings(sparsify_rows(B), np.random.default_rng(2).standard_normal((B.shape[1], 16)))
    T = 5
    topics = build_topics(B, p, cluster_atoms(E, p, T), T)
    temb = topic_embeddings(E, p, topics.atom_topic, T)
    assert temb.shape == (T, 16)
    Z = topic_tree(temb, topics.prevalence)
    assert Z.shape == (T - 1, 4) and Z[-1, 3] == T
    labels = topics.labels([f"w{i}" for i in range(B.shape[1])], n=3)
    text = format_tree(Z, labels, heights=True)
    lines = text.splitlines()
    assert len(lines) == 2 * T - 1 and lines[0].startswith(f"[{T} topics")
    assert all(sum(lab in line for line in lines) == 1 for lab in labels)
    assert "\u2514\u2500\u2500 " in text and "|-- " not in text
    assert "`-- " in format_tree(Z, labels, ascii=True)
    assert len(format_tree(Z, labels, max_depth=1).splitlines()) == 3
    with pytest.raises(SaetmError, match="labels"):
        format_tree(Z, labels[:-1])


# ---------------------------------------------------------------- semantics on real word vectors

def test_glove_merging_groups_planted_themes(glove, ng_corpus):
    """Atoms that each speak of one theme (real 20 Newsgroups words) are merged by theme."""
    counts = Counter(w for t in ng_corpus.texts for w in set(re.findall(r"[a-z]+", t.lower())))
    theme_words = [w for ws in THEMES.values() for w in ws]
    assert all(counts[w] > 0 for w in theme_words)  # real vocabulary of the corpus
    filler = [w for w, c in counts.most_common(400) if len(w) > 2 and w not in theme_words][:300]
    vocab = theme_words + filler
    col = {w: i for i, w in enumerate(vocab)}

    rng = np.random.default_rng(0)
    n_per, themes = 12, list(THEMES)
    B = np.zeros((n_per * len(themes) + 3, len(vocab)))
    truth = []
    for t, name in enumerate(themes):
        for j in range(n_per):
            k = t * n_per + j
            words = rng.choice(THEMES[name], 6, replace=False)
            B[k, [col[w] for w in words]] = 0.85 * rng.dirichlet(np.ones(6))
            noise = rng.choice(len(theme_words) + np.arange(len(filler)), 40, replace=False)
            B[k, noise] += 0.15 * rng.dirichlet(np.ones(40))  # a long tail of generic words
            truth.append(t)
    # Skewed θ̄ as in real SAEs (no single atom holding a third of the mass), three unused atoms.
    p = np.r_[rng.lognormal(0.0, 1.0, n_per * len(themes)), 0, 0, 0]
    B = sp.csr_matrix(B * (p > 0)[:, None])

    W = glove.vectors_for(vocab)
    assert glove.coverage(vocab) > 0.95
    E = atom_embeddings(sparsify_rows(B, 0.9), W)
    a = cluster_atoms(E, p, len(themes), seed=0)
    assert (a[-3:] == -1).all()
    assert adjusted_rand_score(truth, a[:-3]) > 0.9
    tree_cut = cut(build_atom_tree(E, p), len(themes))
    assert adjusted_rand_score(truth, tree_cut[:-3]) > 0.9
    refined = cluster_atoms(E, p, len(themes), init=tree_cut)  # k-means started from the tree cut
    assert adjusted_rand_score(truth, refined[:-3]) > 0.9

    topics = build_topics(B, p, a, len(themes))
    words, _ = topics.top_words(vocab, n=5)
    for ws in words:  # every topic's top words come from a single theme
        assert len({next(t for t in themes if w in THEMES[t]) for w in ws}) == 1


# ---------------------------------------------------------------- atom spaces (stage 3 input)

def test_atom_spaces_shapes_norms_and_meaning(ng_corpus, ng_embeddings):
    """Document and co-activation views of atoms, on real embeddings: atoms active in
    the same documents get the same point; unused atoms stay zero."""
    from saetm.topics import atomspace

    X = ng_embeddings[:120]
    n_docs, n_atoms = X.shape[0], 10
    rng = np.random.default_rng(0)
    theta = np.zeros((n_docs, n_atoms))
    theta[:60, 0] = theta[:60, 1] = 0.5         # atoms 0 and 1 fire together on the first half
    theta[60:, 2] = rng.uniform(0.1, 1.0, 60)    # atom 2 on the second half
    theta[rng.integers(0, n_docs, 40), 3:9] = rng.uniform(0, 1, (40, 6))
    theta = sp.csr_matrix(theta)                 # atom 9 is never active

    D = atomspace.document_embeddings(theta, X)
    assert D.shape == (n_atoms, 384) and D.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(D[:9], axis=1), 1.0, atol=1e-5)
    assert not D[9].any()
    np.testing.assert_allclose(D[0], D[1], atol=1e-6)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    mean0 = Xn[:60].mean(0)
    np.testing.assert_allclose(D[0], mean0 / np.linalg.norm(mean0), atol=1e-5)

    C = atomspace.coactivation_embeddings(theta, dim=8, seed=0)
    assert C.shape == (n_atoms, 7)
    np.testing.assert_allclose(C[0], C[1], atol=1e-5)
    assert abs(float(C[0] @ C[2])) < 1e-4      # never co-active: orthogonal
    assert not C[9].any()
    np.testing.assert_array_equal(C, atomspace.coactivation_embeddings(theta, dim=8, seed=0))

    both = atomspace.combine(D, C)
    assert both.shape == (n_atoms, 384 + 7)
    np.testing.assert_allclose(np.linalg.norm(both[:9], axis=1), 1.0, atol=1e-5)

    W = rng.normal(size=(384, n_atoms))
    dec = atomspace.decoder_embeddings(W)
    np.testing.assert_allclose(dec[4], W[:, 4] / np.linalg.norm(W[:, 4]), atol=1e-5)

    with pytest.raises(SaetmError, match="one embedding per row"):
        atomspace.document_embeddings(theta, X[:10])
    with pytest.raises(SaetmError, match="at least 2 documents"):
        atomspace.coactivation_embeddings(theta[:1], dim=8)
