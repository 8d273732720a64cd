"""Plots and the self-contained HTML report, checked in a real headless browser.

Inputs are real: 1,500 tweets of the 2016 US election (timestamps, authors) and an NMF
on their TF-IDF standing in for a fitted model's topics.
"""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.io.images import OPENCLIPART_ROOT
from saetm.report.html import render_report
from saetm.report.plots import (
    LABEL_CHARS,
    doc_topic_heatmap,
    group_comparison_bars,
    save_static,
    topic_dendrogram,
    topic_map,
    topic_words_bars,
    topics_over_time_lines,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_COPY = "/tmp/saetm-report.png"


@pytest.fixture(scope="module")
def model():
    """What the model hands to the report: doc_topics, labels, words, embeddings, tables."""
    from scipy.cluster.hierarchy import linkage
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    from saetm.analysis.groups import topics_per_group
    from saetm.analysis.time import assign_periods, topics_over_time
    from saetm.io.datasets import load_election_tweets

    corpus = load_election_tweets(n=1500, seed=0)
    vec = TfidfVectorizer(max_features=1500, stop_words="english", min_df=3, token_pattern=r"(?u)\b[a-z][a-z]+\b")
    nmf = NMF(10, init="nndsvd", random_state=0, max_iter=100, tol=1e-3)
    W = nmf.fit_transform(vec.fit_transform(corpus.texts))
    W[W < 0.05 * W.max(axis=1, keepdims=True)] = 0
    W /= np.maximum(W.sum(axis=1, keepdims=True), 1e-12)
    H = nmf.components_ / nmf.components_.sum(axis=1, keepdims=True)
    vocab = vec.get_feature_names_out()
    words = [list(vocab[np.argsort(-h)[:10]]) for h in H]
    D = sp.csr_matrix(W)
    m = {
        "doc_topics": D,
        "words": words,
        "weights": [sorted(h, reverse=True)[:10] for h in H],
        "labels": [f"{i}: " + ", ".join(w[:4]) for i, w in enumerate(words)],
        "embeddings": H,
        "prevalence": np.asarray(D.mean(axis=0)).ravel(),
        "coverage": np.asarray((D > 0).mean(axis=0)).ravel(),
        "over_time": topics_over_time(D, assign_periods(corpus.dates, "W")),
        "per_group": topics_per_group(D, corpus.labels),
        "linkage": linkage(H, "average", metric="cosine"),
    }
    return m


def _figures(m):
    return [
        ("Top words", topic_words_bars(m["words"], m["weights"], m["labels"])),
        ("Topic map", topic_map(m["embeddings"], m["prevalence"], m["labels"])),
        ("Topics over time", topics_over_time_lines(m["over_time"], m["labels"])),
        ("Topics by author", group_comparison_bars(m["per_group"], m["labels"])),
        ("Topic hierarchy", topic_dendrogram(m["linkage"], m["labels"])),
        ("Documents", doc_topic_heatmap(m["doc_topics"], m["labels"], max_docs=150)),
    ]


def _topic_table(m):
    return pd.DataFrame({"topic": range(len(m["labels"])), "label": m["labels"], "prevalence": m["prevalence"],
                         "coverage": m["coverage"], "top words": m["words"]})


def _axes(fig, letter):
    axes = [fig.layout[k] for k in fig.layout if re.fullmatch(letter + r"axis\d*", k)]
    return [ax for ax in axes if ax.visible is not False]


def test_every_plot_has_a_title_labelled_axes_and_short_labels(model):
    for heading, fig in _figures(model):
        assert isinstance(fig, go.Figure)
        assert fig.layout.title.text, heading
        xs, ys = _axes(fig, "x"), _axes(fig, "y")
        assert xs and ys, heading
        # every x axis that shows its ticks says what it measures (stacked panels share the bottom one)
        assert all(ax.title.text for ax in xs if ax.showticklabels is not False), heading
        assert fig.layout.yaxis.title.text, heading  # the first (or only) y axis
        names = [tr.name for tr in fig.data if tr.name] + [str(t) for ax in ys for t in (ax.ticktext or ())]
        assert all(len(n) <= LABEL_CHARS for n in names), heading
    words = topic_words_bars(model["words"], model["weights"], model["labels"], top_n=5, max_topics=4)
    assert len(words.data) == 4 and all(len(tr.y) == 5 for tr in words.data)
    assert "first 4 of 10" in words.layout.title.text
    for i, tr in enumerate(words.data):  # the listed order from the top down, whatever the weights
        axis = words.layout["yaxis" + (str(i + 1) if i else "")]
        assert list(axis.categoryarray)[::-1] == model["words"][i][:5] == list(tr.y)[::-1]
    assert "listed order" in words.layout.meta["caption"]


def test_plots_pick_the_topics_that_vary_and_cap_what_they_embed(model):
    lines = topics_over_time_lines(model["over_time"], model["labels"], top=3)
    counts, *panels = lines.data
    assert counts.type == "bar" and list(counts.y) == model["over_time"].drop_duplicates("period")["n_docs"].tolist()
    assert len(panels) == 3 and len(panels[0].x) == 39 and all(p.error_y.array is not None for p in panels)
    assert lines.layout.xaxis4.title.text == "week (starting Monday)" and "95% interval" in lines.layout.meta["caption"]
    # the panels are the topics whose main-topic counts change most, not those whose coverage varies most
    from saetm.analysis.time import pick_significant, rank_changing_topics

    ranked = rank_changing_topics(model["over_time"], "share")
    assert [int(p.name.split(":")[0]) for p in panels] == pick_significant(ranked, 3)
    bars = group_comparison_bars(model["per_group"], model["labels"], top=4)
    sizes = model["per_group"].drop_duplicates("group").set_index("group")["n_docs"]
    assert {tr.name for tr in bars.data} == {f"{g} ({n:,})" for g, n in sizes.items()} and len(bars.data[0].y) == 4
    assert all(tr.error_x.array is not None for tr in bars.data)  # 95% intervals
    weekly = group_comparison_bars(model["over_time"].rename(columns={"period": "group"}), model["labels"], top=5)
    assert weekly.data[0].type == "heatmap" and np.asarray(weekly.data[0].z).shape == (5, 39)  # many groups
    heat = doc_topic_heatmap(model["doc_topics"], model["labels"], max_docs=50, seed=1)
    assert np.asarray(heat.data[0].z).shape == (10, 50)
    assert "50 of 1,500" in heat.layout.title.text and "50 of 1,500" in heat.layout.meta["caption"]
    same = doc_topic_heatmap(model["doc_topics"], model["labels"], max_docs=50, seed=1)
    assert list(same.data[0].x) == list(heat.data[0].x)  # seeded
    assert len(topic_map(model["embeddings"], model["prevalence"], model["labels"], method="mds").data[0].x) == 10
    from scipy.cluster.hierarchy import linkage

    big = linkage(model["doc_topics"][:300].toarray(), "average")
    tree = topic_dendrogram(big, [f"doc {i}" for i in range(300)], max_leaves=40)
    assert len(tree.layout.yaxis.ticktext) == 40 and "300 leaves" in tree.layout.title.text


def test_plot_inputs_are_checked(model):
    with pytest.raises(SaetmError, match="3 topic labels for 10"):
        topic_map(model["embeddings"], model["prevalence"], model["labels"][:3])
    with pytest.raises(SaetmError, match="linkage"):
        topic_dendrogram(np.zeros((3, 3)), ["a", "b", "c", "d"])
    with pytest.raises(SaetmError, match="method"):
        topic_map(model["embeddings"], model["prevalence"], model["labels"], method="tsne")


def test_save_static(model, tmp_path):
    fig = topic_map(model["embeddings"], model["prevalence"], model["labels"])
    with pytest.raises(SaetmError, match="image format"):
        save_static(fig, tmp_path / "map.gif")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        with pytest.raises(SaetmError, match="pip install kaleido"):
            save_static(fig, tmp_path / "map.png")
        return
    if CHROMIUM is None:
        pytest.skip("kaleido is installed but no Chrome/Chromium is; static export cannot run")
    save_static(fig, tmp_path / "map.svg")
    assert (tmp_path / "map.svg").read_text().lstrip().startswith("<svg")


def test_render_report_writes_one_small_self_contained_file(model, tmp_path):
    from plotly.offline import get_plotlyjs

    path = tmp_path / "out" / "report.html"
    figures = _figures(model)
    render_report(path, title="Election <tweets> 2016", settings={"n_topics": 10, "sae": {"k": 32}, "seeds": [0, 1]},
                  topic_table=_topic_table(model), figures=figures, notes=["Topics are an NMF stand-in."])
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary files left
    page = path.read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()[:200]) == 1  # plotly.js inlined exactly once
    assert page.count("Plotly.newPlot(") == len(figures)
    assert not re.search(r"<script[^>]+src=", page), "the page must not load scripts from anywhere"
    assert not re.search(r"<link[^>]+href=\"https?:", page)
    assert path.stat().st_size < len(get_plotlyjs()) + 1_500_000  # plotly.js plus well under 1.5 MB
    assert "Election &lt;tweets&gt; 2016" in page and "<tweets>" not in page
    for heading, _ in figures:
        assert f">{heading}</a>" in page  # in the table of contents
    assert "sae.k" in page and "[0, 1]" in page and "Topics are an NMF stand-in." in page
    assert "150 of 1,500 documents" in page  # the heatmap's cap is said in the page
    assert 'class="scroll"' not in page and "overflow:auto" not in page  # no scroll box of its own
    assert "america, make, great" in page or "hillary" in page  # the topic table
    assert page.count("<tr>") >= len(model["labels"])

    render_report(path, title="no charts", settings={}, topic_table=_topic_table(model), figures=[])
    assert len(path.read_text(encoding="utf-8")) < 50_000  # no plotly.js when there is nothing to draw
    huge = go.Figure(go.Scatter(x=np.arange(400_000), y=np.arange(400_000)))
    with pytest.raises(SaetmError, match="fewer points"):
        render_report(path, title="t", settings={}, topic_table=_topic_table(model), figures=[("huge", huge)])


def _chromium(tmp_path, url, *args):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=8000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium browser (apt-get install -y chromium); CI installs it")
def test_report_renders_in_a_headless_browser(model, tmp_path):
    path = tmp_path / "report.html"
    figures = _figures(model)
    render_report(path, title="Election tweets 2016", settings={"n_topics": 10}, topic_table=_topic_table(model),
                  figures=figures, notes=["Rendered by the test suite."])

    dom = _chromium(tmp_path, path.as_uri(), "--dump-dom").stdout
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-js-errors="0"' in root, re.search(r'data-js-error-messages="[^"]*"', dom)
    assert f'data-charts="{len(figures)}"' in root
    assert len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom)) == len(figures)
    assert dom.count('class="main-svg"') >= len(figures)  # plotly drew into each chart
    for text in ("documents per period", "merge distance", "word weight", "HillaryClinton"):
        assert text in dom, text

    # the error recorder works: a report page (without charts, to be quick) with a broken script reports it
    broken = tmp_path / "broken.html"
    render_report(broken, title="broken", settings={}, topic_table=_topic_table(model), figures=[])
    broken.write_text(broken.read_text(encoding="utf-8").replace("</body>", "<script>noSuchFunction()</script></body>"),
                      encoding="utf-8")
    dom = _chromium(tmp_path, broken.as_uri(), "--dump-dom").stdout
    assert 'data-js-errors="1"' in dom and "noSuchFunction" in dom

    shot = tmp_path / "report.png"
    _chromium(tmp_path, path.as_uri(), f"--screenshot={shot}", "--window-size=1400,2000", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    shutil.copyfile(shot, SCREENSHOT_COPY)  # for a person to look at


# Once the charts are drawn: elements that scroll on their own, the page's width against the
# viewport's, and each word card's words with the drawn width of their bars.
PROBE = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var scrollers = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var s = getComputedStyle(el);
    if ((/auto|scroll/.test(s.overflowY) && el.scrollHeight > el.clientHeight + 1) ||
        (/auto|scroll/.test(s.overflowX) && el.scrollWidth > el.clientWidth + 1)) scrollers.push(el.tagName + "." + el.className);
  });
  var cards = [].map.call(document.querySelectorAll(".wordlist"), function (card) {
    return [card.querySelector("h3").textContent, [].map.call(card.querySelectorAll("li"), function (li) {
      return [li.textContent, li.querySelector(".bar").getBoundingClientRect().width]; })]; });
  var r = JSON.stringify({scrollers: scrollers, page: document.documentElement.scrollWidth,
                          view: document.documentElement.clientWidth, cards: cards});
  document.documentElement.setAttribute("data-probe", r);
  if (window.parent !== window) window.parent.postMessage(r, "*");
}, 500); });</script></body>"""


def probe_layout(tmp_path, page, width: int) -> dict:
    """Lay ``page`` out ``width`` px wide in headless Chromium and return what PROBE saw.

    Narrow widths go through an iframe: headless Chromium keeps windows at least 500 px wide."""
    import json

    probed = tmp_path / f"probed-{width}.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    url = probed.as_uri()
    if width < 600:
        wrap = tmp_path / f"phone-{width}.html"
        wrap.write_text(f'<html><body style="margin:0"><iframe src="{url}" style="border:0;width:{width}px;height:2000px">'
                        '</iframe><script>window.addEventListener("message", function (e) {'
                        'document.documentElement.setAttribute("data-probe", e.data); });</script></body></html>',
                        encoding="utf-8")
        url, width = wrap.as_uri(), 1000
    dom = _chromium(tmp_path, url, "--dump-dom", f"--window-size={width},1600").stdout
    found = re.search(r'data-probe="([^"]*)"', re.search(r"<html[^>]*>", dom).group(0))
    assert found, "the layout probe did not report"
    import html as _html

    return json.loads(_html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium browser (apt-get install -y chromium); CI installs it")
def test_every_topic_has_its_words_and_the_page_fits_wide_and_phone_screens(model, tmp_path):
    """The layout the reader sees: no scroll box inside the page at 1,400 px or at 390 px
    (a phone), nothing wider than the screen, and a word card per topic, words in the
    listed order with bars that shorten down the list."""
    from saetm.report.build import WORD_CAPTION

    words = [[(w, 1 - i / len(ws), b) for i, (w, b) in enumerate(zip(ws, bs))]
             for ws, bs in zip(model["words"], model["weights"])]
    lists = [(f"topic {t}", f"share {model['prevalence'][t]:.1%}", words[t]) for t in range(len(words))]
    table = _topic_table(model).assign(**{"example document": ["a long example text " * 12] * len(words)})
    path = tmp_path / "report.html"
    render_report(path, title="Election tweets 2016", settings={"n_topics": 10}, topic_table=table,
                  figures=_figures(model)[1:], word_lists=lists, word_caption=WORD_CAPTION)
    page = path.read_text(encoding="utf-8")
    assert page.count('class="wordlist"') == len(words) and "1 − i/n" in page
    for width in (1400, 390):
        seen = probe_layout(tmp_path, path, width)
        assert seen["scrollers"] == [], (width, seen["scrollers"])
        assert seen["page"] <= seen["view"] <= width, (width, seen["page"], seen["view"])  # nothing sideways
        assert [c[0] for c in seen["cards"]] == [f"topic {t}" for t in range(len(words))]
        for t, (_, items) in enumerate(seen["cards"]):
            assert [w for w, _ in items] == model["words"][t]  # every word, in the listed order
            bars = [b for _, b in items]
            assert bars == sorted(bars, reverse=True) and bars[0] > 3 * bars[-1] > 0, (width, t, bars)


# ---------------------------------------------------------------- thumbnails (image models)

@pytest.mark.skipif(not (OPENCLIPART_ROOT / "png").is_dir(), reason="Open Clip Art is not installed: apt-get install openclipart-png")
def test_thumbnails_of_real_clip_art_in_the_report(model, tmp_path):
    import base64
    import io

    from PIL import Image

    from saetm.io.images import UnreadableImage
    from saetm.report.thumbnails import THUMB_SIDE, thumbnail

    files = sorted((OPENCLIPART_ROOT / "png" / "animals").rglob("*.png"))[:3]
    thumbs = [thumbnail(f) for f in files]
    for f, t in zip(files, thumbs):
        im = Image.open(io.BytesIO(base64.b64decode(t.uri.split(",", 1)[1])))
        src = Image.open(f)
        assert im.format == "JPEG" and im.size == (t.width, t.height) and max(im.size) == min(THUMB_SIDE, max(src.size))
        assert abs(im.width / im.height - src.width / src.height) < 0.1  # aspect kept
        assert len(t.uri) < 12_000
    small = tmp_path / "small.png"
    Image.new("RGBA", (20, 10), (255, 0, 0, 128)).save(small)
    t = thumbnail(small)
    assert (t.width, t.height) == (20, 10)  # never enlarged
    assert Image.open(io.BytesIO(base64.b64decode(t.uri.split(",", 1)[1]))).getpixel((5, 5))[1] > 100  # on white
    for bad in (tmp_path / "gone.png", __file__):
        with pytest.raises(UnreadableImage):
            thumbnail(bad)

    path = tmp_path / "r.html"
    galleries = [('0: dog "cat" <pets>', [("a.png: dog, <cat>", thumbs[0]), ("b.png", thumbs[1])]), ("1: empty", [])]
    render_report(path, title="images", settings={}, topic_table=_topic_table(model), figures=[], galleries=galleries)
    page = path.read_text(encoding="utf-8")
    assert '<a href="#images">Images</a>' in page and page.count("<img ") == 2 and thumbs[0].uri in page
    assert "0: dog &quot;cat&quot; &lt;pets&gt;" in page and 'title="a.png: dog, &lt;cat&gt;"' in page
    assert "no readable image" in page and "Up to 2 of the images" in page
    render_report(path, title="text", settings={}, topic_table=_topic_table(model), figures=[])
    assert 'id="images"' not in path.read_text(encoding="utf-8")  # text models: no image section
