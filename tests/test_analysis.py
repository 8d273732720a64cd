"""Analyses over time and per group, on real corpora.

The topic matrices here are cheap stand-ins for a fitted model's ``doc_topics``:
keyword-presence topics for the 2016 election tweets (real timestamps; the events are
known: Iowa caucus 1 Feb, conventions 18–28 Jul, first debate 26 Sep) and an NMF on
TF-IDF for 20 Newsgroups (real labels).
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from saetm.analysis.groups import group_log_odds, rank_differing_topics, topics_per_group
from saetm.analysis.time import assign_periods, pick_significant, rank_changing_topics, topics_over_time
from saetm.errors import SaetmError

TWEET_TOPICS = {
    "primaries": ["iowa", "caucus", "caucuses", "primary", "primaries", "hampshire", "nevada", "carolina", "vote", "voting"],
    "conventions": ["convention", "demsinphilly", "rncincle", "dnc", "rnc", "cleveland", "philadelphia", "acceptance"],
    "debates": ["debate", "debates", "debatenight", "moderator", "lester"],
    "email": ["email", "emails", "server", "fbi", "comey"],
    "economy": ["jobs", "economy", "wages", "trade", "taxes", "tax"],
    "women": ["women", "woman", "girls", "equal"],
}
NAMES = list(TWEET_TOPICS)


@pytest.fixture(scope="module")
def tweets():
    """(corpus, doc_topics): keyword counts per topic, normalised per tweet."""
    from sklearn.feature_extraction.text import CountVectorizer

    from saetm.io.datasets import load_election_tweets

    corpus = load_election_tweets()
    vocab = sorted({w for ws in TWEET_TOPICS.values() for w in ws})
    counts = CountVectorizer(vocabulary=vocab, token_pattern=r"(?u)\b\w+\b").transform(corpus.texts)
    member = np.zeros((len(vocab), len(TWEET_TOPICS)))
    for j, words in enumerate(TWEET_TOPICS.values()):
        member[[vocab.index(w) for w in words], j] = 1
    D = np.asarray(counts @ member, dtype=np.float64)
    D /= np.maximum(D.sum(axis=1, keepdims=True), 1)
    return corpus, sp.csr_matrix(D)


@pytest.fixture(scope="module")
def newsgroups():
    """(corpus, doc_topics, top words per topic): NMF with 20 topics on TF-IDF of 1,500 posts."""
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    from saetm.io.datasets import load_20newsgroups

    corpus = load_20newsgroups(n=1500, seed=0)
    vec = TfidfVectorizer(max_features=2500, stop_words="english", min_df=3, max_df=0.5)
    tfidf = vec.fit_transform(corpus.texts)
    nmf = NMF(20, init="nndsvd", random_state=0, max_iter=150, tol=1e-3)
    W = nmf.fit_transform(tfidf)
    W[W < 0.01 * W.max(axis=1, keepdims=True)] = 0  # weak loadings = topic not active
    W /= np.maximum(W.sum(axis=1, keepdims=True), 1e-12)
    vocab = vec.get_feature_names_out()
    words = [list(vocab[np.argsort(-h)[:10]]) for h in nmf.components_]
    return corpus, sp.csr_matrix(W), words


# --- periods ---------------------------------------------------------------------------


def test_assign_periods_month_and_week_on_tweets(tweets):
    corpus, _ = tweets
    months = assign_periods(corpus.dates, "M")
    assert list(months.categories) == [f"2016-{m:02d}" for m in range(1, 10)]
    assert months.ordered and not months.isna().any()
    weeks = assign_periods(corpus.dates, "W")
    assert weeks.categories[0] == "week of 2016-01-04" and weeks.categories[-1] == "week of 2016-09-26"
    assert len(weeks.categories) == 39
    assert list(assign_periods(corpus.dates).categories) == list(weeks.categories)  # 9 months → weekly


def test_assign_periods_other_inputs():
    assert list(assign_periods([2001, 2003]).categories) == ["2001", "2002", "2003"]  # gap year kept
    assert list(assign_periods([1968, 1991], "decade").categories) == ["1960s", "1970s", "1980s", "1990s"]
    q = assign_periods(["2020-02-01", "2020-11-30T23:00:00+00:00"], "Q")
    assert list(q.categories) == ["2020Q1", "2020Q2", "2020Q3", "2020Q4"]
    assert list(assign_periods([dt.date(2020, 1, 1), dt.datetime(2020, 1, 3)], "D").categories) == [
        "2020-01-01", "2020-01-02", "2020-01-03"]
    bins = assign_periods([0.0, 0.2, 1.0], 4)
    assert len(bins.categories) == 4 and list(bins.codes) == [0, 0, 3]
    labels = assign_periods(["late", "early", "late"])  # not dates: sorted labels
    assert list(labels.categories) == ["early", "late"]
    with_missing = assign_periods(["2020-01-05", None, "", float("nan")], "D")
    assert list(with_missing.isna()) == [False, True, True, True]


def test_assign_periods_unparseable_dates_are_reported():
    with pytest.raises(SaetmError, match="could not be read as dates.*'next tuesday'"):
        assign_periods(["2016-01-05", "next tuesday", "2016-02-01"])
    with pytest.raises(SaetmError, match="not dates"):
        assign_periods(["early", "late"], "M")
    with pytest.raises(SaetmError, match="no document has a date"):
        assign_periods([None, ""])
    with pytest.raises(SaetmError, match="unknown period frequency"):
        assign_periods(["2016-01-05"], "fortnight")


# --- topics over time ------------------------------------------------------------------


def test_topics_over_time_finds_the_campaign_events(tweets):
    corpus, D = tweets
    table = topics_over_time(D, assign_periods(corpus.dates, "W"))
    assert list(table.columns) == ["period", "topic", "coverage", "prevalence", "n_docs", "n_active",
                                   "share", "share_se", "n_main"]
    assert len(table) == 39 * len(NAMES) and table["n_docs"].sum() == len(corpus) * len(NAMES)
    peak = table.loc[table.groupby("topic")["coverage"].idxmax()].set_index("topic")["period"]
    assert peak[NAMES.index("conventions")] == "week of 2016-07-18"  # Republican convention
    assert peak[NAMES.index("debates")] == "week of 2016-09-26"  # first presidential debate
    assert peak[NAMES.index("primaries")] == "week of 2016-02-01"  # Iowa caucus

    ranked = rank_changing_topics(topics_over_time(D, assign_periods(corpus.dates, "M")))
    assert list(ranked["variance"]) == sorted(ranked["variance"], reverse=True)
    assert set(ranked.columns) >= {"topic", "variance", "trend_tau", "trend_p", "trend", "chi2", "chi2_p"}
    primaries = ranked.set_index("topic").loc[NAMES.index("primaries")]
    assert ranked["topic"].iloc[0] == NAMES.index("primaries")
    assert primaries["trend"] == "falling" and primaries["trend_p"] < 0.05
    assert (ranked["chi2_p"] < 1e-6).sum() >= 4  # the topics' coverage really changes over the months


def test_period_without_documents(tweets):
    corpus, D = tweets
    dates = pd.Series(corpus.dates)
    keep = np.flatnonzero(dates.dt.month != 6).tolist()  # no tweet from June
    table = topics_over_time(D[keep], assign_periods([corpus.dates[i] for i in keep], "M"))
    june = table[table["period"] == "2016-06"]
    assert len(june) == len(NAMES) and (june["n_docs"] == 0).all()
    assert june["coverage"].isna().all() and june["prevalence"].isna().all()
    ranked = rank_changing_topics(table)
    assert (ranked["n_periods"] == 8).all() and ranked["variance"].notna().all()


def test_one_topic_and_undated_documents(tweets):
    corpus, D = tweets
    dates = list(corpus.dates[:300]) + [None] * 20
    one = D[:320, [NAMES.index("economy")]]
    table = topics_over_time(one, assign_periods(dates, "W"))
    assert table["topic"].unique().tolist() == [0] and table["n_docs"].sum() == 300
    ranked = rank_changing_topics(table)
    assert len(ranked) == 1
    with pytest.raises(SaetmError, match="300 periods for 320 documents"):
        topics_over_time(one, assign_periods(dates[:300]))


# Five documents by hand: rows [3,1,0] and [0,2,0] in 2020 (group A); [1,1,2], an empty one
# and a tie [1,1,0] in 2021 (group B).
HAND = sp.csr_matrix(np.array([[3, 1, 0], [0, 2, 0], [1, 1, 2], [0, 0, 0], [1, 1, 0]], dtype=float))


def test_share_and_main_topic_counts_by_hand():
    # shares per document: [.75,.25,0], [0,1,0] | [.25,.25,.5], [0,0,0] (no weight), [.5,.5,0]
    # main topics: 0, 1 | 2, none, 0 (a tie goes to the lower topic)
    over_time = topics_over_time(HAND, assign_periods([2020, 2020, 2021, 2021, 2021]))
    per_group = topics_per_group(HAND, ["A", "A", "B", "B", "B"])
    for table, key in ((over_time, "period"), (per_group, "group")):
        assert table[key].astype(str).tolist() == ["2020"] * 3 + ["2021"] * 3 or key == "group"
        assert np.allclose(table["share"], [0.375, 0.625, 0, 0.25, 0.25, 0.5 / 3])
        assert table["n_main"].tolist() == [1, 1, 0, 1, 0, 1]
        # standard error of the mean share: sample sd / sqrt(n); e.g. topic 0 in B: .25, 0, .5
        assert np.allclose(table["share_se"], [0.375, 0.375, 0, np.sqrt(0.0625 / 3), np.sqrt(0.0625 / 3),
                                               np.sqrt(((0.5 - 1 / 6) ** 2 + 2 * (1 / 6) ** 2) / 2 / 3)])
        assert np.allclose(table["prevalence"], [1.5, 1.5, 0, 2 / 3, 2 / 3, 2 / 3])  # unchanged: raw weights
        assert np.allclose(table["coverage"], [0.5, 1, 0, 2 / 3, 2 / 3, 1 / 3])

    # main-topic test of topic 0: A has 1 of 2, B 1 of 3; expected 0.8 / 1.2 and 1.2 / 1.8
    chi2_0 = 0.2 ** 2 * (1 / 0.8 + 1 / 1.2 + 1 / 1.2 + 1 / 1.8)
    for ranked in (rank_changing_topics(over_time, "share"), rank_differing_topics(HAND, ["A", "A", "B", "B", "B"])):
        row = ranked.set_index("topic").loc[0]
        assert row["n_main"] == 2 and np.isclose(row["main_chi2"], chi2_0)
        assert np.isclose(row["main_p"], stats.chi2.sf(chi2_0, 1))
    ranked = rank_changing_topics(over_time, "share")
    assert np.isclose(ranked.set_index("topic").loc[1, "variance"], np.var([0.625, 0.25]))  # ranks on share
    assert pick_significant(ranked, 2, min_main=1) == [1, 2]  # by main_chi2: 1.875, 0.833, 0.139
    assert pick_significant(ranked, 5, min_main=2) == [0]  # only topic 0 is the main topic of 2 documents


def test_share_separates_topics_that_coverage_does_not(newsgroups):
    corpus, D, words = newsgroups
    ranked = rank_differing_topics(D, corpus.labels)
    table = topics_per_group(D, corpus.labels)
    assert (table.groupby("topic")["n_main"].sum().sum() == (np.asarray(D.sum(axis=1)).ravel() > 0).sum())
    share = table.pivot_table(index="group", columns="topic", values="share", observed=True)
    t = _topic_with(words, "israel")
    assert share[t].idxmax() == "talk.politics.mideast" and share[t].max() > 5 * share[t].median()
    picked = pick_significant(ranked, 5)
    assert {_topic_with(words, "god"), t} <= set(picked)
    assert all(ranked.set_index("topic").loc[picked, "n_main"] >= 10)
    assert ranked.set_index("topic").loc[picked, "main_p"].max() < 1e-6
    chatter = {_topic_with(words, "think"), _topic_with(words, "article")}  # posting style, in every group
    assert not chatter & set(pick_significant(ranked, 10))


# --- groups ----------------------------------------------------------------------------


def _topic_with(words, word):
    return next(i for i, ws in enumerate(words) if word in ws[:6])


def test_rank_differing_topics_on_newsgroups(newsgroups):
    corpus, D, words = newsgroups
    table = topics_per_group(D, corpus.labels)
    assert set(table.columns) == {"group", "topic", "coverage", "prevalence", "n_docs", "n_active",
                                  "share", "share_se", "n_main"}
    assert table["group"].nunique() == 20 and len(table) == 20 * 20
    total = table.groupby("group", observed=True)["prevalence"].sum()  # rows sum to 1, or 0 for empty posts
    assert ((total > 0.9) & (total <= 1 + 1e-9)).all()

    ranked = rank_differing_topics(D, corpus.labels)
    assert len(ranked) == 20 and list(ranked["chi2"]) == sorted(ranked["chi2"], reverse=True)
    by_topic = ranked.set_index("topic")
    for word, group in [("space", "sci.space"), ("god", "soc.religion.christian"), ("israel", "talk.politics.mideast")]:
        t = _topic_with(words, word)
        assert by_topic.loc[t, "group"] == group, (word, words[t], by_topic.loc[t].to_dict())
        assert by_topic.loc[t, "z"] > 4 and by_topic.loc[t, "q_value"] < 1e-6

    odds = group_log_odds(D, corpus.labels)
    space = odds[odds["group"] == "sci.space"]
    assert space["topic"].iloc[0] == _topic_with(words, "space")  # its own topic first
    assert list(space["z"]) == sorted(space["z"], reverse=True)


def test_small_group_is_not_over_read(newsgroups):
    corpus, D, words = newsgroups
    t = _topic_with(words, "space")
    space_docs = [i for i, g in enumerate(corpus.labels) if g == "sci.space" and D[i, t] > 0]
    groups = ["rest"] * len(corpus.labels)
    groups[space_docs[0]] = "one post"  # a group of one document, where the topic is active
    for i in space_docs[1:40]:
        groups[i] = "space posts"
    odds = group_log_odds(D, groups).set_index(["group", "topic"])
    one, many = odds.loc[("one post", t)], odds.loc[("space posts", t)]
    assert one["coverage"] == 1.0 and many["coverage"] == 1.0  # same raw coverage...
    assert abs(one["z"]) < 2 < many["z"]  # ...but one document is no evidence
    ranked = rank_differing_topics(D, groups)
    assert ranked["topic"].iloc[0] == t and ranked["group"].iloc[0] == "space posts"


def test_two_groups_one_topic_and_bad_input(tweets):
    corpus, D = tweets
    one = D[:, [NAMES.index("women")]]
    ranked = rank_differing_topics(one, corpus.labels)
    assert len(ranked) == 1 and ranked["dof"].iloc[0] == 1
    assert ranked["group"].iloc[0] == "HillaryClinton" and ranked["p_value"].iloc[0] < 1e-6
    never = sp.csr_matrix((len(corpus), 1))  # a topic active nowhere: no difference, finite numbers
    r = rank_differing_topics(never, corpus.labels)
    assert r["chi2"].iloc[0] == 0 and r["p_value"].iloc[0] == 1 and np.isfinite(r["z"].iloc[0])
    with pytest.raises(SaetmError, match="at least two groups"):
        rank_differing_topics(one, ["same"] * len(corpus))
    with pytest.raises(SaetmError, match="one label per document"):
        topics_per_group(one, corpus.labels[:10])
    with pytest.raises(SaetmError, match="negative"):
        topics_per_group(sp.csr_matrix(-np.ones((2, 1))), ["a", "b"])
