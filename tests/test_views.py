"""Analyses, plots and the report as methods of a fitted SAETM, on real corpora.

Two real models: the session's 20 Newsgroups slice (newsgroup labels, no dates), and
600 tweets of the 2016 US election (timestamps, author labels) drawn from every month
but April, so one month inside the range holds no document.
"""

import copy
import re
import shutil

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from saetm.analysis.groups import rank_differing_topics
from saetm.analysis.time import assign_periods, rank_changing_topics, topics_over_time
from saetm.errors import SaetmError
from saetm.report.plots import LABEL_CHARS
from test_report import CHROMIUM, _chromium  # the headless-browser helper of the report tests

SCREENSHOT_COPY = "/tmp/saetm-model-report.png"
RELIGION = {"alt.atheism", "soc.religion.christian", "talk.religion.misc"}


@pytest.fixture(scope="module")
def ng(fitted_model):
    """A shallow copy: retopic replaces the topic state, so the session's model stays at T=8."""
    return copy.copy(fitted_model)


@pytest.fixture(scope="module")
def tweets():
    from saetm.io.datasets import load_election_tweets

    corpus = load_election_tweets()
    month = pd.to_datetime(pd.Series(corpus.dates)).dt.month.to_numpy()
    rng = np.random.default_rng(0)
    return corpus.subset(np.sort(rng.choice(np.flatnonzero(month != 4), 600, replace=False)))


@pytest.fixture(scope="module")
def tw(tweets, text_encoder, small_params):
    from saetm.encoders.text import encode_cached
    from saetm.model import SAETM

    emb = encode_cached(text_encoder, tweets.texts, show_progress=False)
    params = dict(small_params, sae={**small_params["sae"], "steps": 150})  # fewer SAE steps than the session model: tweets are short
    return SAETM(n_topics=6, **params).fit(tweets.texts, emb, dates=tweets.dates, labels=tweets.labels,
                                                 ids=tweets.ids)


def _fingerprint(m):
    """Everything fitted before stage 3: none of it may change by looking at the model."""
    state = [m.theta_.data, m.theta_.indices, m.feature_words_.data, m.feature_prob_, m.background_,
             m.atom_embeddings_, m.atom_tree_.linkage] + [p.detach().numpy() for p in m.sae_.state_dict().values()]
    return [np.array(x, copy=True) for x in state]


def _figures_ok(figs):
    for fig in figs:
        assert isinstance(fig, go.Figure) and fig.layout.title.text
        names = [tr.name for tr in fig.data if tr.name]
        assert all(len(n) <= LABEL_CHARS for n in names)


# ---------------------------------------------------------------- over time
def test_topics_over_time_uses_the_fitted_dates(tw, tweets):
    table = tw.topics_over_time(freq="M")
    periods = list(table["period"].cat.categories)
    assert periods == [f"2016-{m:02d}" for m in range(1, 10)]
    assert list(table.columns) == ["period", "topic", "label", "coverage", "prevalence", "n_docs", "n_active",
                                   "share", "share_se", "n_main"]
    assert len(table) == 9 * tw.n_topics
    assert table.drop_duplicates("period")["n_docs"].sum() == len(tweets)
    april = table[table["period"] == "2016-04"]  # inside the range, no document: kept, NaN, not 0
    assert (april["n_docs"] == 0).all() and april["coverage"].isna().all() and april["prevalence"].isna().all()
    assert table.set_index("topic")["label"].to_dict() == dict(enumerate(tw.topic_labels()))
    # the method is the analysis function over the model's current doc_topics_
    direct = topics_over_time(tw.doc_topics_, assign_periods(tweets.dates, "M"))
    pd.testing.assert_frame_equal(table.drop(columns="label"), direct)
    assert tw.topics_over_time(freq="Y")["period"].nunique() == 1
    assert tw.topics_over_time(freq=4)["period"].nunique() == 4
    assert tw.topics_over_time()["period"].nunique() == 39  # auto: weekly for nine months
    years = [d.year for d in tweets.dates]
    assert tw.topics_over_time(dates=years)["period"].nunique() == 1


def test_rank_changing_topics(tw, tweets):
    ranked = tw.rank_changing_topics(freq="M")
    assert sorted(ranked["topic"]) == list(range(tw.n_topics)) and "label" in ranked
    assert (np.diff(ranked["variance"]) <= 0).all()
    assert (ranked["n_periods"] == 8).all()  # the empty month is skipped, not read as zero
    assert set(ranked["trend"]) <= {"rising", "falling", "flat"}
    direct = rank_changing_topics(topics_over_time(tw.doc_topics_, assign_periods(tweets.dates, "M")), "prevalence")
    assert tw.rank_changing_topics(freq="M", measure="prevalence")["topic"].tolist() == direct["topic"].tolist()
    with pytest.raises(SaetmError, match="measure"):
        tw.rank_changing_topics(measure="size")


def test_over_time_needs_dates(ng, tw):
    with pytest.raises(SaetmError, match="no dates"):
        ng.topics_over_time()
    with pytest.raises(SaetmError, match="3 dates for 600"):
        tw.topics_over_time(dates=["2016-01-01"] * 3)
    with pytest.raises(SaetmError, match="frequency"):
        tw.topics_over_time(freq="fortnight")


# ---------------------------------------------------------------- per class
def test_topics_per_class_on_newsgroups(ng, ng_corpus):
    table = ng.topics_per_class()
    assert list(table.columns) == ["class", "topic", "label", "coverage", "prevalence", "n_docs", "n_active",
                                   "share", "share_se", "n_main"]
    assert table.drop_duplicates("class")["n_docs"].sum() == len(ng_corpus)
    assert set(table["class"]) == set(ng_corpus.labels)
    ranked = ng.rank_differing_topics()
    assert sorted(ranked["topic"]) == list(range(ng.n_topics))
    assert ranked["chi2"].is_monotonic_decreasing and ranked["p_value"].between(0, 1).all()
    direct = rank_differing_topics(ng.doc_topics_, ng_corpus.labels)
    assert ranked["topic"].tolist() == direct["topic"].tolist()
    # real data: the topic about god is most over-represented in a religion newsgroup
    god = [t for t, words in ng.get_topics(10).items() if "god" in [w for w, _ in words]]
    assert god, ng.get_topics(5)
    assert ranked.set_index("topic").loc[god[0], "class"] in RELIGION


def test_a_class_with_one_document(tw, tweets):
    classes = list(tweets.labels)
    classes[17] = "a single tweet"
    table = tw.topics_per_class(classes)
    lone = table[table["class"] == "a single tweet"]
    assert len(lone) == tw.n_topics and (lone["n_docs"] == 1).all()
    assert set(lone["coverage"]) <= {0.0, 1.0}
    ranked = tw.rank_differing_topics(classes)
    assert len(ranked) == tw.n_topics and ranked["dof"].eq(2).all()
    # raw coverage of one tweet is 0 or 1, far from the rest; the prior keeps its log-odds z small
    assert (ranked.loc[ranked["class"] == "a single tweet", "z"] < 1).all()
    odds = tw.class_log_odds(classes)
    assert len(odds) == 3 * tw.n_topics and "label" in odds
    assert (odds.loc[odds["class"] == "a single tweet", "z"].abs() < 1).all()
    assert odds.loc[odds["class"] != "a single tweet", "z"].abs().max() > 2  # the authors do differ
    with pytest.raises(SaetmError, match="at least two groups"):
        tw.rank_differing_topics(["only one"] * len(tweets))


# ---------------------------------------------------------------- hierarchy
def test_hierarchy_as_text_and_nested_cuts(ng):
    text = ng.hierarchy()
    assert all(label in text for label in ng.topic_labels())
    assert text.splitlines()[0] == f"[{ng.n_topics} topics]"
    before = ng.doc_topics_.copy()
    other = ng.hierarchy(12)
    assert other.splitlines()[0] == "[12 topics]" and len(re.findall(r"^\W*\d+: ", other, re.M)) == 12
    assert ng.n_topics == 8 and (ng.doc_topics_ != before).nnz == 0  # previewing T leaves the model alone
    fine, coarse = ng.cut_hierarchy(8), ng.cut_hierarchy(3)
    used = ng.feature_prob_ > 0
    assert (fine[~used] == -1).all() and len(set(fine[used])) == 8 and len(set(coarse[used])) == 3
    assert pd.DataFrame({"f": fine[used], "c": coarse[used]}).groupby("f")["c"].nunique().max() == 1  # nested
    levels = ng.atom_hierarchy([1, 3, 8])
    assert list(levels.columns) == ["atom", "topic", "weight", "T=1", "T=3", "T=8"]
    assert len(levels) == used.sum() and (levels["T=1"] == 0).all()
    with pytest.raises(SaetmError, match="atoms this corpus uses"):
        ng.cut_hierarchy(10**6)


# ---------------------------------------------------------------- documents
def test_representative_documents(ng, ng_corpus):
    god = [t for t, words in ng.get_topics(10).items() if "god" in [w for w, _ in words]][0]
    docs = ng.get_representative_docs(god, n=5)
    assert len(docs) == 5 and len(set(docs)) == 5 and all(d in ng_corpus.texts for d in docs)
    labels = [ng_corpus.labels[ng_corpus.texts.index(d)] for d in docs]
    assert sum(label in RELIGION for label in labels) >= 3, labels
    weights = ng.doc_topics_[:, god].toarray().ravel()
    first = ng_corpus.texts.index(docs[0])
    assert weights[first] == pytest.approx(weights.max(), abs=1e-6)
    every = ng.get_representative_docs(n=2)
    assert sorted(every) == list(range(ng.n_topics)) and every[god] == docs[:2]
    with pytest.raises(SaetmError, match="does not exist"):
        ng.get_representative_docs(ng.n_topics)


def test_find_topics_embeds_the_query(ng, ng_corpus, ng_embeddings):
    i = int(np.argmax(ng.doc_topics_.max(axis=1).toarray().ravel()))  # the most single-topic document
    found = ng.find_topics(ng_corpus.texts[i], n=3)
    assert 1 <= len(found) <= 3 and [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert found[0][0] == int(ng.doc_topics_[i].toarray().argmax())
    by_emb = ng.find_topics("", embedding=ng_embeddings[i], n=ng.n_topics)
    assert sum(s for _, s in by_emb) == pytest.approx(1.0, abs=1e-4) and by_emb[0][0] == found[0][0]
    hockey = ng.find_topics("the hockey team won the game in overtime", n=1)
    assert "game" in ng.topic_labels()[hockey[0][0]] or "team" in ng.topic_labels()[hockey[0][0]]
    with pytest.raises(SaetmError, match="non-empty query"):
        ng.find_topics("  ")


# ---------------------------------------------------------------- plots
def test_every_plot_on_a_dated_model(tw):
    figs = [tw.visualize_barchart(), tw.visualize_topics(), tw.visualize_topics_over_time(freq="M", top=3),
            tw.visualize_topics_per_class(), tw.visualize_hierarchy(), tw.visualize_heatmap(max_docs=50)]
    _figures_ok(figs)
    bars, topic_map, lines, per_class, tree, heat = figs
    assert len(bars.data) == tw.n_topics and len(topic_map.data[0].x) == tw.n_topics
    assert len(lines.data) == 1 + 3 and lines.data[0].y[3] == 0  # documents per period, then one panel per topic
    assert list(lines.data[1].x)[3] == "2016-04" and np.isnan(lines.data[1].y[3])
    assert lines.layout.yaxis2.title.text == "share"
    n = tw.topics_per_class().drop_duplicates("class").set_index("class")["n_docs"]
    assert {tr.name for tr in per_class.data} == {f"{c} ({k:,})" for c, k in n.items()}
    assert per_class.layout.legend.title.text == "class (documents)" and "class's" in per_class.layout.meta["caption"]
    assert len(tree.layout.yaxis.ticktext) == tw.n_topics
    assert np.asarray(heat.data[0].z).shape == (tw.n_topics, 50) and "50 of 600" in heat.layout.title.text
    chosen = tw.visualize_barchart(topics=[2, 0], n_words=5)
    assert len(chosen.data) == 2 and len(chosen.data[0].y) == 5
    assert "0: " in tw.visualize_topics_per_class(topics=[0]).data[0].y[0]


def test_user_labels_reach_every_analysis(tw):
    try:
        tw.set_topic_labels({0: "campaign slogans"})
        assert tw.rank_changing_topics().set_index("topic").loc[0, "label"] == "campaign slogans"
        assert "campaign slogans" in tw.hierarchy()
        assert "campaign slogans" in [row[0] for row in tw.visualize_topics().data[0].customdata]
    finally:
        tw.set_topic_labels(None)


# ---------------------------------------------------------------- changing T
def test_retopic_updates_every_analysis_without_refitting(tw):
    m = copy.copy(tw)
    before = _fingerprint(m)
    for T in (4, 1):
        m.retopic(T)
        assert m.topics_over_time()["topic"].nunique() == T
        assert len(m.rank_changing_topics()) == T and len(m.rank_differing_topics()) == T
        assert m.topics_per_class()["topic"].nunique() == T
        assert len(m.get_representative_docs(n=1)) == T
        assert all(0 <= t < T for t, _ in m.find_topics("", embedding=np.ones(384, np.float32)))
        assert len(m.visualize_barchart().data) == T and np.asarray(m.visualize_heatmap().data[0].z).shape[0] == T
    # T = 1: the one topic is everywhere it can be; a tree of one topic is its label
    assert m.hierarchy() == m.topic_labels()[0]
    table = m.topics_over_time(freq="M").dropna()
    assert np.allclose(table["coverage"], table["n_active"] / table["n_docs"])
    assert np.allclose(table["prevalence"], [np.asarray(m.doc_topics_.sum(axis=1)).ravel()[
        pd.to_datetime(pd.Series(m.documents_["date"])).dt.strftime("%Y-%m").to_numpy() == p].mean()
        for p in table["period"]])
    with pytest.raises(SaetmError, match="at least 2 topics"):
        m.visualize_hierarchy()
    assert all(np.array_equal(a, b) for a, b in zip(before, _fingerprint(m)))
    assert tw.n_topics == 6  # the copy's retopic left the original alone


def test_report_of_one_topic_and_of_undated_model(ng, tw, tmp_path):
    one = copy.copy(tw).retopic(1)
    page = one.report(tmp_path / "one.html").read_text(encoding="utf-8")
    assert page.count("Plotly.newPlot(") == 3  # over time, by class, documents: no map or tree of one topic
    assert page.count('class="wordlist"') == 1
    assert "Topic hierarchy" not in page and "Topics over time" in page
    page = ng.report(tmp_path / "sub" / "ng.html", title="Newsgroups").read_text(encoding="utf-8")
    assert "Topics over time" not in page and "Topics by class" in page and "<title>Newsgroups</title>" in page
    assert "most over-represented in" in page and "example document" in page
    assert "a seeded sample of 200 of 400 documents" in page  # the cap is said in the page
    with pytest.raises(SaetmError, match=r"\.html"):
        ng.report(tmp_path / "report.pdf")


def test_report_word_cards_follow_get_topic(tw):
    from saetm.report.build import WORDS_PER_TOPIC, topic_table, word_lists

    cards = word_lists(tw, topic_table(tw))
    assert len(cards) == tw.n_topics
    for t, (_, figures, words) in enumerate(cards):
        listed = tw.get_topic(t, n_words=WORDS_PER_TOPIC, with_beta=True)
        assert [w for w, _, _ in words] == [w for w, _, _ in listed]  # every word, in the listed order
        bars = [b for _, b, _ in words]
        assert bars[0] == 1 and bars == sorted(bars, reverse=True) and bars[-1] > 0
        assert np.allclose(bars, [s / listed[0][1] for _, s, _ in listed])  # the score, relative to the first
        assert [b for _, _, b in words] == [b for _, _, b in listed]  # β on hover
        assert figures.startswith("share ") and "main topic of" in figures


# ---------------------------------------------------------------- report + CLI
@pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium browser (apt-get install -y chromium); CI installs it")
def test_model_report_in_a_headless_browser(tw, tmp_path):
    before = _fingerprint(tw)
    path = tw.report(tmp_path / "tweets.html", freq="M", title="Election tweets 2016")
    assert all(np.array_equal(a, b) for a, b in zip(before, _fingerprint(tw)))
    dom = _chromium(tmp_path, path.as_uri(), "--dump-dom").stdout
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-js-errors="0"' in root, re.search(r'data-js-error-messages="[^"]*"', dom)
    assert 'data-charts="5"' in root
    assert dom.count('class="main-svg"') >= 5
    assert dom.count('class="wordlist"') == tw.n_topics
    for text in ("Topics over time", "Topics by class", "Topic hierarchy", "Topic map", "Top words", "2016-04",
                 "documents per period", "merge distance", "realDonaldTrump", "change rank", "main topic of",
                 "Settings", "parameters.n_topics", "sae.metric.fve"):
        assert text in dom, text
    shot = tmp_path / "report.png"
    _chromium(tmp_path, path.as_uri(), f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    shutil.copyfile(shot, SCREENSHOT_COPY)  # for a person to look at


def test_cli_report_uses_the_dates_kept_with_the_model(tw, tmp_path, capsys):
    from saetm.cli import main

    tw.save(tmp_path / "m")
    assert main(["report", str(tmp_path / "m"), "-q"]) == 0
    page = (tmp_path / "m" / "report.html").read_text(encoding="utf-8")
    assert "Topics over time" in page and "2016-09" in page and "HillaryClinton" in page
    out = tmp_path / "weekly.html"
    assert main(["report", str(tmp_path / "m"), "--out", str(out), "--freq", "W", "--topics", "3", "-q"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "week (starting Monday)" in page and "(3 topics)" in page
    assert main(["topics", str(tmp_path / "m"), "--json"]) == 0 and '"n_topics": 6' in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "m"), "--freq", "fortnight"])
    assert e.value.code == 2
    assert main(["report", str(tmp_path / "missing")]) == 2
