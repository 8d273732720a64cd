"""The "coherent" word ranking (saetm.topics.wordrank): real fits on 20 Newsgroups posts."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from saetm.errors import SaetmError
from saetm.evaluation.coherence import npmi_coherence
from saetm.model import SAETM
from saetm.topics import wordrank
from saetm.topics.merge import top_words

from _old_formats import as_format1


def test_npmi_among_matches_the_definition():
    # 4 documents: words 0 and 1 always together (docs 0, 1), word 2 alone in doc 2, word 3 everywhere
    rows = [0, 0, 1, 1, 2, 0, 1, 2, 3]
    cols = [0, 1, 0, 1, 2, 3, 3, 3, 3]
    D = wordrank.doc_word_incidence(sp.csr_matrix((np.full(9, 3.0), (rows, cols)), shape=(4, 4)))
    assert set(D.data) == {1.0}
    got = wordrank.npmi_among(D, np.array([0, 1, 2, 3]), min_support=1)
    assert got[0, 1] == pytest.approx(1.0)  # log(.5 / .25) / -log(.5)
    assert got[0, 2] == -1.0  # never together
    assert got[0, 3] == pytest.approx(0.0)  # word 3 is in every document: independent of all
    assert got[3, 3] == 1.0
    # seen together in 2 documents only: not trusted with the default support of 3
    assert wordrank.npmi_among(D, np.array([0, 1]))[0, 1] == -1.0


def test_keep_best_topics_leaves_each_word_in_its_best_topics():
    s = np.array([[3.0, 1.0, 0.0], [2.0, 2.0, 0.0], [1.0, 3.0, -np.inf]])
    got = wordrank.keep_best_topics(s, max_topics=2, min_words=1)
    assert np.isinf(got[2, 0]) and np.isinf(got[0, 1]) and np.isinf(got[2, 2])
    assert got[0, 0] == 3.0 and got[1, 0] == 2.0 and got[1, 1] == 2.0 and got[2, 1] == 3.0
    # topic 3's two words both serve topics 0-2 better: it gets them back rather than none
    s4 = np.vstack([s, [[0.5, 0.5, -np.inf]]])
    got = wordrank.keep_best_topics(s4, max_topics=2, min_words=2)
    np.testing.assert_array_equal(got[3], [0.5, 0.5, -np.inf])
    assert np.isinf(got[0, 1])  # topics with enough words keep their cap


def _docs_holding(n_docs: int, words: dict[int, list[int]]) -> sp.csc_matrix:
    """Incidence (n_docs, V) where word w is in the documents words[w]."""
    rows = [d for docs in words.values() for d in docs]
    cols = [w for w, docs in words.items() for _ in docs]
    return wordrank.doc_word_incidence(sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                                     shape=(n_docs, max(words) + 1)))


def test_a_word_listed_by_an_earlier_topic_needs_a_clear_lead_to_be_listed_again():
    # Topic 0 lists words 0 and 1. Topic 1 starts with word 2; its candidates 0 (already listed by
    # topic 0) and 3 (new) both co-occur with word 2, word 0 a little more, word 4 much less.
    D = _docs_holding(40, {0: list(range(0, 10)) + [30, 31], 1: list(range(0, 10)),
                           2: list(range(0, 10)) + list(range(20, 22)),
                           3: list(range(1, 10)) + list(range(20, 23)) + [35, 36, 37],
                           4: [0, 1, 2] + list(range(24, 34))})
    npmi = wordrank.npmi_among(D, np.array([2, 0, 3, 4]))
    assert npmi[0, 2] < npmi[0, 1] < npmi[0, 2] + 0.2 and npmi[0, 3] < npmi[0, 2] - 0.2  # the premise
    ninf = -np.inf
    score = np.array([[5.0, 4.0, ninf, ninf, ninf],
                      [3.0, ninf, 5.0, 2.0, 1.0]])  # by score topic 1 would list 2, 0, 3, 4
    alone = wordrank.coherent_order(score, 3, D, repeat_penalty=0.0)
    assert [list(x) for x in alone] == [[0, 1], [2, 0, 3]]  # each topic on its own: 0 leads 3
    got = wordrank.coherent_order(score, 3, D)  # default penalty 0.2: 0's lead is less than that
    assert [list(x) for x in got] == [[0, 1], [2, 3, 0]]
    # a clear lead keeps the shared word: with a penalty below the lead, 0 comes second again
    lead = npmi[0, 1] - npmi[0, 2]
    assert [list(x) for x in wordrank.coherent_order(score, 3, D, repeat_penalty=lead / 2)] == [[0, 1], [2, 0, 3]]
    # a penalty above any NPMI gap puts the shared word after every other candidate, even word 4
    assert [list(x) for x in wordrank.coherent_order(score, 4, D, repeat_penalty=10.0)][1] == [2, 3, 4, 0]
    with pytest.raises(SaetmError, match="repeat_penalty"):
        wordrank.coherent_order(score, 3, D, repeat_penalty=-0.1)


def test_the_first_word_is_the_best_anchor_among_the_leading_candidates():
    # Words 0 and 10-14 share four documents but are each also found in six of their own (weakly
    # related); words 1-6 always appear together; 7-9 each in documents of their own.
    words = {w: list(range(4)) + list(range(10 + 6 * i, 16 + 6 * i)) for i, w in enumerate([0, 10, 11, 12, 13, 14])}
    words |= {w: list(range(100, 120)) for w in range(1, 7)}
    words |= {w: list(range(130 + 5 * i, 135 + 5 * i)) for i, w in enumerate([7, 8, 9])}
    D = _docs_holding(200, words)
    by_score = [0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 7, 8, 9]
    score = np.full((1, 15), -np.inf)
    score[0, by_score] = np.arange(15, 0, -1)
    got = list(wordrank.coherent_order(score, 15, D)[0])
    assert got[:6] == [1, 2, 3, 4, 5, 6] and sorted(got) == list(range(15))  # led by words that meet
    assert list(wordrank.coherent_order(score, 1, D)[0]) == [1]  # a shorter list is still a prefix
    alone = list(wordrank.coherent_order(score[:, :], 15, D, repeat_penalty=0.0)[0])
    assert alone == got  # (no earlier topic: the penalty plays no part)
    # only the N_ANCHORS best candidates may lead: with 1-6 ranked below 0 and 10-14, one of those leads
    late = np.full((1, 15), -np.inf)
    late[0, [0, 10, 11, 12, 13, 14, 1, 2, 3, 4, 5, 6, 7, 8, 9]] = np.arange(15, 0, -1)
    assert wordrank.N_ANCHORS == 5 and wordrank.coherent_order(late, 15, D)[0][0] in (0, 10, 11, 12, 13)


def test_the_repeat_penalty_lists_fewer_shared_words_on_a_real_fit(fitted_model):
    m = fitted_model
    score = wordrank.keep_best_topics(wordrank.relevance(m.topics_.topic_words, m.word_reference()))

    def repeats(penalty):
        lists = wordrank.coherent_order(score, 25, m.doc_words_, repeat_penalty=penalty)
        words = [w for ws in lists for w in ws]
        return lists, len(words) - len(set(words))

    alone, n_alone = repeats(0.0)
    default, n_default = repeats(None)
    strict, n_strict = repeats(10.0)
    assert n_alone > 0  # the premise: listed on their own, some topics share words
    assert n_strict < n_default <= n_alone
    assert np.array_equal(alone[0], default[0])  # the largest topic has no earlier topic
    best = [set(np.argsort(-row, kind="stable")[:wordrank.N_ANCHORS]) for row in score]
    assert all(d[0] in b for d, b in zip(default, best))  # each list leads with one of its best candidates
    assert [[m.vocab_[i] for i in ws] for ws in default] == m._top_words(25)[0]  # what the model lists


def test_word_diversity_re_ranks_without_refitting_and_is_saved(fitted_model, tmp_path):
    m = fitted_model
    assert m.word_diversity == wordrank.REPEAT_PENALTY == 0.2
    score = wordrank.keep_best_topics(wordrank.relevance(m.topics_.topic_words, m.word_reference()))
    default = m.get_topics(n_words=25)
    try:
        m.set_params(words__diversity=0.0)
        alone = [[m.vocab_[i] for i in ws] for ws in wordrank.coherent_order(score, 25, m.doc_words_, repeat_penalty=0)]
        assert [[w for w, _ in m.get_topic(t, n_words=25)] for t in range(m.n_topics)] == alone
        assert m.get_topics(n_words=25) != default
        m.save(tmp_path / "m")
        assert SAETM.load(tmp_path / "m").word_diversity == 0.0
        for bad in (float("nan"), "lots", -1):
            m.set_params(words__diversity=bad)
            with pytest.raises(SaetmError, match="words__diversity"):
                m.get_topic(0)
    finally:
        m.set_params(words__diversity=0.2)
    assert m.get_topics(n_words=25) == default
    # a model saved before saetm 0.5 has no word_diversity: it loads with the default
    as_format1(tmp_path / "m", drop=("word_diversity",))
    old = SAETM.load(tmp_path / "m")
    assert old.word_diversity == 0.2 and old.get_topics(n_words=25) == default
    with pytest.raises(SaetmError, match="words__diversity"):
        SAETM(words={"diversity": -0.1}).fit(["a text"] * 3)


def test_coherent_is_the_default_and_its_lists_are_consistent(fitted_model):
    m = fitted_model
    assert m.word_ranking == "coherent" and m.doc_words_.shape == (m.theta_.shape[0], len(m.vocab_))
    long = [[w for w, _ in m.get_topic(t, n_words=25)] for t in range(m.n_topics)]
    short = [[w for w, _ in m.get_topic(t, n_words=10)] for t in range(m.n_topics)]
    assert all(s == lw[:10] for s, lw in zip(short, long))  # a shorter list is a prefix
    assert all(len(ws) == 25 for ws in long)  # the cap never leaves a topic short of words
    capped = wordrank.keep_best_topics(wordrank.relevance(m.topics_.topic_words, m.word_reference()), min_words=0)
    full = np.isfinite(capped).sum(axis=1) >= 25  # topics the cap left enough words (others get theirs back)
    listed = [w for t, ws in enumerate(long) if full[t] for w in set(ws)]
    assert full.sum() >= m.n_topics // 2
    assert max(listed.count(w) for w in listed) <= wordrank.MAX_TOPICS_PER_WORD
    beta = m.topics_.topic_words
    for t, ws in enumerate(long):  # every listed word is one of the topic's own (β > 0), β reported
        idx = [m.vocab_.index(w) for w in ws]
        assert (beta[t, idx] > 0).all()
        np.testing.assert_allclose([b for _, _, b in m.get_topic(t, n_words=25, with_beta=True)], beta[t, idx],
                                   rtol=1e-6)


@pytest.mark.parametrize("ranking", ["coherent", "beta", "lift", "relevance"])
def test_scores_never_increase_down_the_list_and_beta_comes_alongside(fitted_model, ranking):
    m = fitted_model
    try:
        m.set_params(words__ranking=ranking)
        beta = m.topics_.topic_words
        for t in range(m.n_topics):
            listed = m.get_topic(t, n_words=25, with_beta=True)
            words, scores, betas = (list(x) for x in zip(*listed))
            assert all(a >= b for a, b in zip(scores, scores[1:])) and min(scores) > 0
            np.testing.assert_allclose(betas, beta[t, [m.vocab_.index(w) for w in words]], rtol=1e-6)
            assert sum(scores) == pytest.approx(sum(betas), rel=1e-4)  # the listed β mass, re-spread
            assert m.get_topic(t, n_words=25) == [(w, s) for w, s, _ in listed]
            assert m.get_topic(t, n_words=7) == m.get_topic(t, n_words=25)[:7]  # a shorter list: the same scores
            if ranking == "beta":
                assert scores == betas
        if ranking == "coherent":  # the premise: the coherent order does not follow β
            betas = [[b for _, _, b in m.get_topic(t, with_beta=True)] for t in range(m.n_topics)]
            assert any(b1 < b2 for bs in betas for b1, b2 in zip(bs, bs[1:]))
    finally:
        m.set_params(words__ranking="coherent")


def test_coherent_words_co_occur_more_than_beta_words(fitted_model, ng_corpus):
    """The point of the ranking: top-10 words that co-occur in the documents (NPMI), on a
    real fit; β ranks the topics' frequent words, which co-occur with everything."""
    from saetm.evaluation.scorecard import reference_tokens

    m = fitted_model
    tokens = reference_tokens(ng_corpus.texts, m.stop_words)
    coherent = [w[:10] for w in m._top_words(10)[0]]
    beta, _ = top_words(m.topics_.topic_words, m.vocab_, n=10, ranking="beta")
    assert npmi_coherence(coherent, tokens)["mean"] > npmi_coherence(beta, tokens)["mean"] + 0.02


def test_saved_model_keeps_the_ranking_and_old_models_still_load(fitted_model, tmp_path, caplog):
    m = fitted_model
    m.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")
    assert (loaded.doc_words_ != m.doc_words_).nnz == 0
    assert loaded.get_topics(n_words=12) == m.get_topics(n_words=12)

    # A model saved by saetm 0.1 has no incidence: it loads, says so, and lists words by steps 1-2.
    state = dict(load_file(tmp_path / "m" / "state.safetensors"))
    for key in [k for k in state if k.startswith("doc_words.")]:
        del state[key]
    save_file(state, tmp_path / "m" / "state.safetensors")
    with caplog.at_level(logging.INFO, logger="saetm"):
        old = SAETM.load(tmp_path / "m")
    assert old.doc_words_ is None and "without document-word incidence" in caplog.text
    want, _ = top_words(m.topics_.topic_words, m.vocab_, n=12, ranking="coherent", background=m.word_reference())
    assert [[w for w, _ in old.get_topic(t, n_words=12)] for t in range(old.n_topics)] == want
    assert want != [[w for w, _ in m.get_topic(t, n_words=12)] for t in range(m.n_topics)]


def test_incidence_of_a_large_corpus_is_a_seeded_sample(fitted_model, ng_corpus):
    from saetm.words.vocab import build_vocabulary

    m = fitted_model
    _, counts = build_vocabulary(ng_corpus.texts, min_df=m.min_df, max_df=m.max_df, max_features=m.max_features,
                                 stop_words=m.stop_words)
    full = wordrank.doc_word_incidence(counts, max_docs=None)
    assert (full != m.doc_words_).nnz == 0  # the fit keeps every document below MAX_DOCS
    a = wordrank.doc_word_incidence(counts, max_docs=100, seed=3)
    b = wordrank.doc_word_incidence(counts, max_docs=100, seed=3)
    assert a.shape == (100, counts.shape[1]) and (a != b).nnz == 0
    rows = {tuple(r.indices) for r in sp.csr_matrix(full)}
    assert all(tuple(r.indices) in rows for r in sp.csr_matrix(a))  # every sampled row is a document's


def test_words_after_the_first_ten_avoid_other_topics_words_and_the_first_ten_stay(fitted_model):
    m = fitted_model
    score = wordrank.keep_best_topics(wordrank.relevance(m.topics_.topic_words, m.word_reference()))

    def lists(factor, n=25):
        return [list(x) for x in wordrank.coherent_order(score, n, m.doc_words_, tail_factor=factor)]

    def shared(ls):
        words = [w for ws in ls for w in ws]
        return len(words) - len(set(words))

    before, after = lists(0.0), lists(None)
    assert wordrank.TAIL_FACTOR > 0 and shared(before) > 0  # the premise: without step 4 topics share words
    assert [ws[:wordrank.N_SCORED] for ws in after] == [ws[:wordrank.N_SCORED] for ws in before]  # NPMI's top 10
    assert after != before and shared(after) <= shared(before)  # step 4 re-chooses ranks 11-25 only
    strict = lists(10.0)  # a factor above any NPMI gap: no word shared below rank 10 any more
    assert [ws[:wordrank.N_SCORED] for ws in strict] == [ws[:wordrank.N_SCORED] for ws in before]
    assert shared(strict) < shared(before)
    assert all(len(a) == len(b) for a, b in zip(after, before))
    assert [ws[:10] for ws in lists(None, 40)] == [ws[:10] for ws in after]
    assert [ws[:25] for ws in lists(None, 40)] == after  # a shorter list is still a prefix
    assert lists(None, 10) == [ws[:10] for ws in after]
    assert [[m.vocab_[i] for i in ws] for ws in after] == m._top_words(25)[0]  # what the model lists
    # no repeat penalty, no step 4: each topic listed on its own
    alone = [list(x) for x in wordrank.coherent_order(score, 25, m.doc_words_, repeat_penalty=0.0)]
    assert alone == [list(x) for x in wordrank.coherent_order(score, 25, m.doc_words_, repeat_penalty=0.0,
                                                              tail_factor=0.0)]
    with pytest.raises(SaetmError, match="tail_factor"):
        wordrank.coherent_order(score, 25, m.doc_words_, tail_factor=-1.0)
