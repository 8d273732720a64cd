"""Stage 2: vocabulary on real 20 Newsgroups text; EM for feature word distributions."""

import re

import numpy as np
import pytest
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.words.em import (
    FeatureWords,
    accumulate_statistics,
    build_plan,
    fit_feature_words,
    idf_weights,
    initial_statistics,
    maximize,
    normalize_theta,
)
from saetm.words.vocab import (ENGLISH_STOP_WORDS_EXTENDED, analyzer, build_vocabulary, count_words, inflection_key,
                               stop_word_set)

# ---------------------------------------------------------------- vocabulary


@pytest.fixture(scope="module")
def ng_vocab(ng_corpus):
    return build_vocabulary(ng_corpus.texts)


def test_vocabulary_tokens_and_document_frequency(ng_corpus, ng_vocab):
    vocab, counts = ng_vocab
    assert vocab == sorted(vocab) and len(set(vocab)) == len(vocab)
    assert 500 < len(vocab) <= 10000
    assert counts.shape == (len(ng_corpus), len(vocab)) and sp.isspmatrix_csr(counts)
    assert counts.dtype == np.float32 and counts.has_sorted_indices
    assert all(re.fullmatch(r"[^\W\d_]{2,}", w) and w == w.lower() for w in vocab)
    assert not set(vocab) & ENGLISH_STOP_WORDS_EXTENDED
    assert {"the", "and", "didn", "don"}.isdisjoint(vocab)
    df = np.bincount(counts.indices, minlength=len(vocab))
    assert df.min() >= 5 and df.max() <= 0.5 * len(ng_corpus)
    assert np.all(counts.data == np.round(counts.data)) and counts.data.min() >= 1
    for w in ("space", "god", "game"):  # themes of 20 Newsgroups survive the filters
        assert w in vocab


def test_max_features_keeps_the_most_frequent_words(ng_corpus):
    full_vocab, full = build_vocabulary(ng_corpus.texts, max_features=None)
    vocab, counts = build_vocabulary(ng_corpus.texts, max_features=300)
    assert len(vocab) == 300 and set(vocab) <= set(full_vocab)
    totals = dict(zip(full_vocab, np.asarray(full.sum(axis=0)).ravel()))
    kept = min(totals[w] for w in vocab)
    dropped = max(t for w, t in totals.items() if w not in set(vocab))
    assert kept >= dropped
    col = [full_vocab.index(w) for w in vocab]
    assert (abs(full[:, col] - counts)).max() == 0


def test_count_words_with_a_fixed_vocabulary(ng_corpus, ng_vocab):
    vocab, counts = ng_vocab
    again = count_words(ng_corpus.texts, vocab)
    assert again.shape == counts.shape and abs(again - counts).max() == 0
    new = count_words(["The space shuttle and the SPACE station, 2 stations.", "nothing known"],
                      ["shuttle", "space", "station"])
    assert new.toarray().tolist() == [[1, 2, 1], [0, 0, 0]]


def test_lemmatization():
    texts = ["cars and more cars", "the car drives", "a car in a car park", "parks with cars"] * 3
    vocab, counts = build_vocabulary(texts, min_df=2, max_df=1.0, lemmatize=lambda w: w.rstrip("s"))
    assert "car" in vocab and "cars" not in vocab and "park" in vocab
    pytest.importorskip("simplemma")
    vocab, _ = build_vocabulary(texts, min_df=2, max_df=1.0, lemmatize=True)
    assert "car" in vocab and "cars" not in vocab


def test_extra_stop_words_add_to_or_replace_the_english_list(ng_corpus, ng_vocab):
    vocab, counts = ng_vocab
    assert {"god", "space"} <= set(vocab)
    more, _ = build_vocabulary(ng_corpus.texts, extra_stop_words=["God", "space "])
    assert set(more) == set(vocab) - {"god", "space"}
    only, _ = build_vocabulary(ng_corpus.texts, stop_words=None, extra_stop_words=["god"])
    assert "god" not in only and {"about", "above"} <= set(only)  # the English list is not used
    assert stop_word_set(None, None) is None and stop_word_set("english", ["x"]) == ENGLISH_STOP_WORDS_EXTENDED | {"x"}
    with pytest.raises(SaetmError, match="list of words"):
        build_vocabulary(ng_corpus.texts, extra_stop_words="god")


def test_merging_inflections_keeps_every_count_under_the_most_frequent_form(ng_corpus, ng_vocab):
    vocab, counts = ng_vocab
    assert {"gun", "guns", "question", "questions"} <= set(vocab)  # the premise: both forms are counted apart
    merged, mcounts = build_vocabulary(ng_corpus.texts, merge_inflections=True)
    assert mcounts.shape == (len(ng_corpus), len(merged)) and len(merged) < len(vocab)
    assert merged == sorted(merged) and set(merged) <= set(vocab) and mcounts.has_sorted_indices
    assert mcounts.sum() == counts.sum()  # nothing lost, nothing counted twice
    total = dict(zip(vocab, np.asarray(counts.sum(axis=0)).ravel()))
    for a, b in (("gun", "guns"), ("question", "questions")):
        kept = max((a, b), key=total.get)
        assert kept in merged and ({a, b} - {kept}).isdisjoint(merged)
        col = lambda v, c, w: np.asarray(c[:, v.index(w)].todense()).ravel()  # noqa: E731
        assert (col(merged, mcounts, kept) == col(vocab, counts, a) + col(vocab, counts, b)).all()
    key = inflection_key()
    assert len({key(w) for w in merged}) == len(merged)  # no two words left that inflect one lemma
    assert {"better", "good"} <= set(merged)  # irregular lemmas (better -> good) are not merged
    tokens = analyzer(stop_word_set(), merged_vocab=merged)("The guns, a gun: better questions!")
    assert tokens == [max(("gun", "guns"), key=total.get)] * 2 + ["better", max(("question", "questions"), key=total.get)]


def test_vocabulary_mistakes_are_explained(ng_corpus):
    with pytest.raises(SaetmError, match=r"vocabulary is empty.*lower --min-df \(min_df\)"):
        build_vocabulary(ng_corpus.texts[:20], min_df=15, max_df=1.0)
    with pytest.raises(SaetmError, match="min_df"):
        build_vocabulary(ng_corpus.texts[:8], min_df=5)  # max_df=0.5 of 8 documents < 5
    with pytest.raises(SaetmError, match="list of documents"):
        build_vocabulary("one long string")
    with pytest.raises(SaetmError, match="no documents"):
        build_vocabulary([])
    with pytest.raises(SaetmError, match="not text"):
        build_vocabulary(["fine text", None])
    with pytest.raises(SaetmError, match="repeated"):
        count_words(["a b"], ["word", "word"])


# ---------------------------------------------------------------- θ and idf


def test_normalize_theta_rows_sum_to_one_or_zero():
    a = sp.csr_matrix(np.array([[0, 2.0, 0, 6.0], [0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32))
    theta = normalize_theta(a)
    assert theta.dtype == np.float32 and sp.isspmatrix_csr(theta)
    np.testing.assert_allclose(theta.toarray(), [[0, 0.25, 0, 0.75], [0, 0, 0, 0], [0.25] * 4])
    with pytest.raises(SaetmError, match="non-negative"):
        normalize_theta(-a)


def test_idf_weights_formula():
    counts = sp.csr_matrix(np.array([[1, 3, 0, 0], [1, 0, 2, 0], [1, 0, 0, 0], [1, 1, 0, 0]]))
    idf = idf_weights(counts)
    raw = np.log(4 / np.array([4, 2, 1]))
    np.testing.assert_allclose(idf, np.r_[raw / raw.max(), 0.0])


# ---------------------------------------------------------------- EM


def dense_em(theta, counts, pi, n_iter):
    """The same EM written densely and obviously, for tiny problems."""
    th, c = theta.toarray().astype(np.float64), counts.toarray().astype(np.float64)
    b = th.T @ c
    s = b.sum(1, keepdims=True)
    b = np.divide(b, s, out=np.zeros_like(b), where=s > 0)
    p0 = c.sum(0) / c.sum()
    mask = c > 0
    history = []
    for it in range(n_iter + 1):
        q = (1 - pi) * th @ b + pi * p0
        history.append(-(c[mask] * np.log(q[mask])).sum() / c.sum())
        if it == n_iter:
            break
        r = np.where(mask, c / np.where(mask, q, 1), 0)
        b_stats, p0_stats = (1 - pi) * b * (th.T @ r), pi * p0 * r.sum(0)
        s = b_stats.sum(1, keepdims=True)
        b = np.divide(b_stats, s, out=np.zeros_like(b_stats), where=s > 0)
        p0 = p0_stats / p0_stats.sum() if pi > 0 else p0
    return b, p0, history


def random_problem(n_docs=80, n_atoms=15, n_words=50, seed=0):
    rng = np.random.default_rng(seed)
    a = sp.random(n_docs, n_atoms, density=0.2, random_state=rng, format="lil", dtype=np.float32)
    a[3, :] = 0  # a document without active atoms
    a[:, 7] = 0  # an atom that is never active
    counts = sp.random(n_docs, n_words, density=0.3, random_state=rng, format="csr")
    counts.data = np.ceil(counts.data * 5)
    return normalize_theta(sp.csr_matrix(a)), counts


@pytest.mark.parametrize("pi, idf", [(0.3, False), (0.0, False), (0.5, True)])
def test_em_matches_dense_brute_force(pi, idf):
    theta, counts = random_problem()
    weighted = sp.csr_matrix(counts.multiply(idf_weights(counts)[None, :])) if idf else counts
    if pi == 0:  # documents without atoms cannot be explained without the background
        weighted = sp.csr_matrix(sp.diags((theta.getnnz(axis=1) > 0).astype(float)) @ weighted)
    b, p0, history = dense_em(theta, weighted, pi, 25)
    for block_pairs in (1 << 22, 40):  # one block, and many blocks of a few atoms
        fw = fit_feature_words(theta, counts, background_weight=pi, idf=idf, max_iter=25, tol=0.0,
                               block_pairs=block_pairs)
        assert fw.n_iter == 25 and len(fw.nll_history) == 26
        np.testing.assert_allclose(fw.feature_words.toarray(), b, atol=1e-6)
        np.testing.assert_allclose(fw.background, p0, atol=1e-6)
        np.testing.assert_allclose(fw.nll_history, history, rtol=1e-6)


def test_em_result_is_well_formed():
    theta, counts = random_problem(seed=1)
    fw = fit_feature_words(theta, counts, max_iter=100, tol=1e-7)
    assert isinstance(fw, FeatureWords)
    b = fw.feature_words
    assert sp.isspmatrix_csr(b) and b.shape == (15, 50) and b.dtype == np.float32 and b.has_sorted_indices
    used = np.asarray(theta.sum(axis=0)).ravel() > 0
    np.testing.assert_allclose(np.asarray(b.sum(axis=1)).ravel()[used], 1.0, atol=1e-5)
    assert b[~used].nnz == 0 and b.data.min() >= 0
    # B's support lies inside the support of θᵀc.
    support = (theta.T @ counts) > 0
    assert (b.astype(bool) > support).nnz == 0
    assert fw.background.shape == (50,) and abs(fw.background.sum() - 1) < 1e-5 and fw.background.min() >= 0
    np.testing.assert_allclose(fw.feature_prob, np.asarray(theta.mean(axis=0)).ravel(), rtol=1e-6)
    assert fw.feature_prob[7] == 0
    assert np.all(np.diff(fw.nll_history) <= 1e-9)  # EM never increases the NLL
    assert fw.nll == fw.nll_history[-1] < fw.nll_history[0]
    assert fw.converged and fw.n_iter < 100


def test_statistics_of_document_shards_add_up():
    """Each shard (rank) builds its plan over the shared support; summed statistics = one EM."""
    theta, counts = random_problem(n_docs=90, seed=2)
    counts = sp.csr_matrix(counts, dtype=np.float64)
    whole = build_plan(theta, counts)
    support = (whole.row_ptr, whole.words)
    shards = [build_plan(theta[s], counts[s], support=support, block_pairs=30)
              for s in (slice(0, 25), slice(25, 60), slice(60, 90))]

    def summed(step):
        total = step(shards[0])
        for plan in shards[1:]:
            total += step(plan)
        return total

    values, background = maximize(whole, summed(initial_statistics), None, 0.3)
    for _ in range(10):
        stats = summed(lambda plan: accumulate_statistics(plan, values, background, 0.3))
        reference = accumulate_statistics(whole, values, background, 0.3)
        np.testing.assert_allclose(stats.feature_words, reference.feature_words, rtol=1e-5)
        np.testing.assert_allclose(stats.loglik, reference.loglik, rtol=1e-9)
        values, background = maximize(whole, stats, background, 0.3)
    fw = fit_feature_words(theta, counts, max_iter=9, tol=0.0)
    np.testing.assert_allclose(fw.nll_history[-1], stats.nll_per_token, rtol=1e-9)
    with pytest.raises(ValueError, match="outside the given support"):
        build_plan(theta, counts, support=(np.zeros(16, dtype=np.int64), np.zeros(0, dtype=np.int32)))


def planted_model(n_docs=2000, n_atoms=10, n_words=300, doc_len=150, pi=0.3, seed=0):
    """Documents drawn from the model itself: known B, p0 and sparse θ."""
    rng = np.random.default_rng(seed)
    b = np.zeros((n_atoms, n_words))
    for k in range(n_atoms - 2):  # the last two atoms are never used
        words = rng.choice(n_words, size=40, replace=False)
        b[k, words] = rng.dirichlet(np.full(40, 0.5))
    p0 = rng.dirichlet(np.full(n_words, 1.0))
    theta = np.zeros((n_docs, n_atoms))
    for d in range(n_docs):
        active = rng.choice(n_atoms - 2, size=rng.integers(1, 4), replace=False)
        theta[d, active] = rng.dirichlet(np.ones(len(active)))
    word_probs = (1 - pi) * theta @ b + pi * p0
    counts = np.stack([rng.multinomial(doc_len, p / p.sum()) for p in word_probs])
    return sp.csr_matrix(theta.astype(np.float32)), sp.csr_matrix(counts.astype(np.float32)), b, p0


def nll_per_token(theta, counts, b, p0, pi):
    q = (1 - pi) * theta.toarray() @ b + pi * p0
    c = counts.toarray()
    mask = c > 0
    return -(c[mask] * np.log(q[mask])).sum() / c.sum()


def test_em_recovers_a_planted_model():
    theta, counts, b_true, p0_true = planted_model()
    fw = fit_feature_words(theta, counts, background_weight=0.3, max_iter=200, tol=1e-6)
    b = fw.feature_words.toarray()
    tv = 0.5 * np.abs(b - b_true).sum(axis=1)
    assert tv[:8].max() < 0.06, tv
    assert b[8:].sum() == 0
    assert 0.5 * np.abs(fw.background - p0_true).sum() < 0.05
    # Maximum likelihood: at least as good as the truth on the documents it was fitted to.
    assert fw.nll <= nll_per_token(theta, counts, b_true, p0_true, 0.3) + 1e-4
    np.testing.assert_allclose(fw.nll, nll_per_token(theta, counts, b, fw.background, 0.3), rtol=1e-5)


def test_em_on_real_newsgroups_labels(ng_corpus, ng_vocab):
    """θ = the newsgroup label (one atom per group): each atom's top words name its group."""
    vocab, counts = ng_vocab
    groups = sorted(set(ng_corpus.labels))
    rows = [groups.index(label) for label in ng_corpus.labels]
    theta = sp.csr_matrix((np.ones(len(rows), np.float32), (np.arange(len(rows)), rows)), shape=(len(rows), 40))
    fw = fit_feature_words(theta, counts, max_iter=300)
    assert fw.converged and np.all(np.diff(fw.nll_history) <= 1e-9)
    b = fw.feature_words
    assert b[len(groups):].nnz == 0
    top = {g: {vocab[i] for i in np.argsort(-b[k].toarray().ravel())[:15]} for k, g in enumerate(groups)}
    assert "space" in top["sci.space"] and "god" in top["soc.religion.christian"]
    assert {"hockey", "team", "game"} & top["rec.sport.hockey"]


def test_em_mistakes_are_explained():
    theta, counts = random_problem()
    with pytest.raises(SaetmError, match="documents"):
        fit_feature_words(theta[:10], counts)
    with pytest.raises(SaetmError, match="normalize_theta"):
        fit_feature_words(theta * 2, counts)
    with pytest.raises(SaetmError, match="background_weight"):
        fit_feature_words(theta, counts, background_weight=1.0)
    with pytest.raises(SaetmError, match="no vocabulary word"):
        fit_feature_words(theta, sp.csr_matrix(counts.shape))
