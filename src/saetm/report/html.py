"""One self-contained HTML report: topic table, charts, notes and settings (and, for
image models, thumbnails of each topic's top images, inlined as ``data:`` URIs).

The page opens from disk without a network: plotly.js (from the installed plotly
package) is inlined once in ``<head>`` and every chart is drawn with
``include_plotlyjs=False``. A tiny inline script records JavaScript errors on
``<html data-js-errors="N">`` and shows them in a banner, so a broken chart is
visible to the reader (and to the headless-browser test).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from saetm.errors import SaetmError

logger = logging.getLogger("saetm")

MAX_TABLE_ROWS = 500
MAX_FIGURE_BYTES = 3_000_000  # plot functions cap their points well below this

_CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#e4e7eb; --accent:#2f5f98; --bg:#fafbfc; }
* { box-sizing:border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--fg); background:var(--bg); }
header, main, footer { max-width:1320px; margin:0 auto; padding:0 24px; }
header { padding-top:28px; }
h1 { font-size:1.9rem; margin:0 0 4px; }
h2 { font-size:1.3rem; margin:0 0 12px; border-bottom:2px solid var(--line); padding-bottom:6px; }
.meta, .caption, footer { color:var(--muted); font-size:0.9rem; }
nav.toc { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 20px; margin:18px 0; }
nav.toc ol { margin:6px 0 0; padding-left:22px; columns:2; }
nav.toc a, a { color:var(--accent); text-decoration:none; }
nav.toc a:hover { text-decoration:underline; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:18px 22px; margin:18px 0; }
table { border-collapse:collapse; width:100%; font-size:0.88rem; }
th, td { padding:5px 10px; text-align:left; vertical-align:top; border-bottom:1px solid var(--line); }
th { background:#f1f4f8; }
tbody tr:nth-child(even) { background:#fafbfd; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.topics td.words { min-width:15em; overflow-wrap:anywhere; }
table.topics td.text { min-width:12em; color:var(--muted); overflow-wrap:anywhere; }
h3.chart-title { font-size:1rem; margin:4px 0 2px; font-weight:600; }
.wordlists { display:grid; grid-template-columns:repeat(auto-fill, minmax(210px, 1fr)); gap:12px; }
.wordlist { border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.wordlist h3 { font-size:0.9rem; margin:0 0 2px; }
.wordlist .stats { color:var(--muted); font-size:0.78rem; margin:0 0 4px; }
.wordlist ol { list-style:none; margin:0; padding:0; }
.wordlist li { position:relative; font-size:0.84rem; line-height:1.45; padding:0 4px; margin:1px 0; }
.wordlist li .bar { position:absolute; left:0; top:1px; bottom:1px; background:#d9e6f5; border-radius:2px; z-index:0; }
.wordlist li span.w { position:relative; z-index:1; }
table.kv th { width:30%; position:static; }
table.kv td { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; word-break:break-word; }
ul.notes li { margin:4px 0; }
#js-error-banner { background:#fde8e8; color:#8a1c1c; border:1px solid #f5b5b5; padding:10px 16px;
                   border-radius:6px; margin:12px 0; }
footer { padding:12px 24px 32px; }
.gallery .row { display:flex; gap:14px; align-items:center; padding:8px 0; border-bottom:1px solid var(--line); }
.gallery .label { flex:0 0 230px; font-size:0.88rem; }
.gallery .thumbs { display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.gallery img { display:block; border:1px solid var(--line); border-radius:4px; background:#fff; }
.gallery .none { color:var(--muted); font-size:0.88rem; }
/* Phones: the topic table becomes one card per topic (each cell labelled), so nothing scrolls sideways. */
@media (max-width:720px) {
  header, main, footer { padding:0 10px; }
  section { padding:12px 12px; }
  h1 { font-size:1.4rem; }
  nav.toc ol { columns:1; }
  table.topics thead { display:none; }
  table.topics, table.topics tbody, table.topics tr, table.topics td { display:block; width:100%; }
  table.topics tr { border:1px solid var(--line); border-radius:6px; margin:0 0 10px; padding:4px 0; }
  table.topics td { border:0; padding:2px 10px; min-width:0; text-align:left; white-space:normal; }
  table.topics td::before { content:attr(data-label) ": "; font-weight:600; color:var(--fg); }
  table.topics td.num, table.topics td.short { display:inline-block; width:auto; padding-right:4px; }
  table.topics td:first-child { font-size:1rem; font-weight:600; display:block; }
  table.kv tr, table.kv th, table.kv td { display:block; width:auto; }
  table.kv th { border-bottom:0; padding-bottom:0; }
  .wordlists { grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:8px; }
  .wordlist li { line-height:1.35; overflow-wrap:anywhere; }
  .gallery .row { flex-wrap:wrap; }
  .gallery .label { flex:1 1 100%; }
}
"""

# Records JavaScript errors on <html data-js-errors=...> and shows a banner.
_ERROR_SCRIPT = """
(function () {
  var root = document.documentElement, errors = [];
  root.setAttribute("data-js-errors", "0");
  function record(message) {
    errors.push(String(message));
    root.setAttribute("data-js-errors", String(errors.length));
    root.setAttribute("data-js-error-messages", errors.join(" | ").slice(0, 2000));
    var banner = document.getElementById("js-error-banner");
    if (banner) { banner.hidden = false; banner.textContent = "A chart could not be drawn: " + errors[0]; }
  }
  window.addEventListener("error", function (e) { record(e.message || e); });
  window.addEventListener("unhandledrejection", function (e) { record((e.reason && e.reason.message) || e.reason); });
  window.addEventListener("load", function () {
    root.setAttribute("data-charts", String(document.querySelectorAll(".js-plotly-plot").length));
  });
})();
"""


def _slug(text: str, used: set) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "section"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}-{i}", i + 1
    used.add(slug)
    return slug


def _script(js: str) -> str:
    # a literal "</script" inside inline code would end the element early
    return "<script>" + js.replace("</script", "<\\/script") + "</script>"


def _cell(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return value


PERCENT_COLUMNS = {"share", "coverage"}  # fractions shown as percentages in the topic table
WORDS_COLUMNS = {"top words", "label"}
TEXT_COLUMNS = {"example document"}


def _table_html(table: pd.DataFrame, max_rows: int) -> str:
    """The topic table, laid out by the page (no scroll box of its own); on a phone each row
    becomes a card whose cells carry their column name (``data-label``)."""
    df = table.head(max_rows).copy()
    numeric = [c for c in df.columns if pd.api.types.is_float_dtype(df[c].dtype)]
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(_cell)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, rec):
            label = f' data-label="{html.escape(str(c))}"'
            if c in numeric:
                text = "–" if pd.isna(v) else (f"{v:.1%}" if c in PERCENT_COLUMNS else f"{v:.4g}")
                cells.append(f'<td class="num"{label}>{text}</td>')
            elif isinstance(v, (int, np.integer)):
                cells.append(f'<td class="num"{label}>{v:,}</td>')
            else:
                kind = ' class="words"' if c in WORDS_COLUMNS else ' class="text"' if c in TEXT_COLUMNS else ' class="short"'
                cells.append(f"<td{kind}{label}>{html.escape('' if v is None else str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="topics"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _word_lists_html(word_lists) -> str:
    """One card per topic: its label, a line of figures, and its words in the listed order,
    each over a bar of its score (0–1); hovering a word shows its weight."""
    cards = []
    for label, stats_line, words in word_lists:
        items = "".join(
            f'<li title="{html.escape(str(w))}: weight {float(beta):.4g}"><span class="bar" '
            f'style="width:{max(0.0, min(1.0, float(score))) * 100:.0f}%"></span><span class="w">{html.escape(str(w))}</span></li>'
            for w, score, beta in words)
        stats = f'<p class="stats">{html.escape(stats_line)}</p>' if stats_line else ""
        cards.append(f'<div class="wordlist"><h3>{html.escape(str(label))}</h3>{stats}<ol>{items}</ol></div>')
    return f'<div class="wordlists">{"".join(cards)}</div>'


def _flatten(settings: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _flatten(value, name + ".")
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out.append((name, "null" if value is None else str(value)))
        else:
            out.append((name, json.dumps(value, default=str, ensure_ascii=False)))
    return out


def _settings_html(settings: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _flatten(settings))
    return f'<table class="kv"><tbody>{rows}</tbody></table>' if rows else "<p>No settings recorded.</p>"


def _figure_html(fig, div_id: str) -> str:
    """The chart's title as a heading (text wraps on a narrow screen, plotly's title does not),
    then the chart drawn without it."""
    title = fig.layout.title.text
    if title:
        fig = go.Figure(fig)
        margin = fig.layout.margin
        fig.update_layout(title_text="", margin=dict(t=min(margin.t if margin.t is not None else 40, 40)))
    size = len(fig.to_json())
    if size > MAX_FIGURE_BYTES:
        raise SaetmError(
            f"the chart {div_id!r} embeds {size / 1e6:.1f} MB of data (limit {MAX_FIGURE_BYTES / 1e6:.0f} MB); "
            "draw it from fewer points (e.g. a smaller max_docs) to keep the report small"
        )
    height = fig.layout.height or 480
    heading = f'<h3 class="chart-title">{html.escape(str(title))}</h3>' if title else ""
    return heading + fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, default_width="100%", default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True, "toImageButtonOptions": {"filename": div_id, "scale": 2}},
    )


def _gallery_html(galleries) -> str:
    """One row per topic: its label, then its thumbnails (captions as tooltips)."""
    rows = []
    for label, thumbs in galleries:
        imgs = "".join(
            f'<img src="{t.uri}" width="{t.width}" height="{t.height}" alt="{html.escape(caption)}" '
            f'title="{html.escape(caption)}">'
            for caption, t in thumbs
        ) or '<span class="none">no readable image</span>'
        rows.append(f'<div class="row"><div class="label">{html.escape(str(label))}</div>'
                    f'<div class="thumbs">{imgs}</div></div>')
    return f'<div class="gallery">{"".join(rows)}</div>'


def share_permissions(path) -> None:
    """Give a written file the usual permissions (atomic_write's temporary file is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def render_report(path, *, title: str, settings: dict, topic_table: pd.DataFrame, figures, notes=(),
                  galleries=None, word_lists=None, word_caption: str = "", table_caption: str = "",
                  max_table_rows: int = MAX_TABLE_ROWS) -> None:
    """Write one self-contained HTML report to ``path`` (atomically).

    settings: (nested) dict shown as a key/value table; topic_table: one row per topic
    (list cells are joined with ", "), the first ``max_table_rows`` rows are shown;
    figures: ``[(heading, plotly Figure), ...]`` in page order, each figure's title
    printed above it and its ``layout.meta["caption"]`` under it; notes: sentences shown at the top;
    galleries: ``[(topic label, [(caption, Thumbnail), ...]), ...]`` shown after the
    topic table (image models), or ``None``; word_lists: ``[(topic label, line of figures,
    [(word, bar score 0–1, weight), ...]), ...]`` shown as a "Top words" section of one
    card per topic (the first ``max_table_rows``), with ``word_caption`` above them;
    table_caption: a line above the topic table (what its columns mean).
    plotly.js is inlined once, so the file works offline (about 5 MB of it is plotly.js).
    """
    from plotly.offline import get_plotlyjs

    from saetm import __version__
    from saetm.io.persist import atomic_write

    figures = list(figures)
    notes = [str(n) for n in notes]
    if len(topic_table) > max_table_rows:
        notes.append(f"The topic table shows the first {max_table_rows:,} of {len(topic_table):,} topics.")
    used: set = set()
    toc, body = [], []

    def section(heading: str, inner: str, slug: str | None = None) -> None:
        slug = slug or _slug(heading, used)
        toc.append(f'<li><a href="#{slug}">{html.escape(heading)}</a></li>')
        body.append(f'<section id="{slug}"><h2>{html.escape(heading)}</h2>{inner}</section>')

    for slug in ("notes", "topics", "top-words", "images", "settings"):
        used.add(slug)
    charts = []
    for heading, fig in figures:
        slug = _slug(str(heading), used)
        caption = fig.layout.meta.get("caption") if isinstance(fig.layout.meta, dict) else None
        cap = f'<p class="caption">{html.escape(str(caption))}</p>' if caption else ""
        charts.append((str(heading), f'<div class="figure">{_figure_html(fig, "chart-" + slug)}</div>{cap}', slug))
    if notes:
        section("Notes", '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>", "notes")
    cap = f'<p class="caption">{html.escape(table_caption)}</p>' if table_caption else ""
    section("Topics", cap + _table_html(topic_table, max_table_rows), "topics")
    if word_lists:
        cap = f'<p class="caption">{html.escape(word_caption)}</p>' if word_caption else ""
        section("Top words", cap + _word_lists_html(list(word_lists)[:max_table_rows]), "top-words")
    if galleries:
        n = max(len(thumbs) for _, thumbs in galleries)
        intro = (f"Up to {n} of the images most about each topic, best first (hover for the file and its words)."
                 if n else "None of the topics' images could be read (see the notes).")
        section("Images", f'<p class="caption">{html.escape(intro)}</p>{_gallery_html(galleries)}', "images")
    for heading, inner, slug in charts:
        section(heading, inner, slug)
    section("Settings", _settings_html(settings), "settings")

    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    plotly_js = _script(get_plotlyjs()) if figures else ""
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="saetm {html.escape(__version__)}">
<title>{html.escape(title)}</title>
{_script(_ERROR_SCRIPT)}
<style>{_CSS}</style>
{plotly_js}
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<p class="meta">Made with saetm {html.escape(__version__)} on {html.escape(stamp)} · {len(topic_table):,} topics · {len(figures)} charts · works offline</p>
<div id="js-error-banner" hidden></div>
<nav class="toc"><strong>Contents</strong><ol>{"".join(toc)}</ol></nav>
</header>
<main>
{"".join(body)}
</main>
<footer>Charts are interactive: hover for details, drag to zoom, double-click to reset.</footer>
</body>
</html>
"""
    with atomic_write(Path(path), "wb") as f:
        f.write(page.encode("utf-8"))
    share_permissions(path)
    logger.info("wrote report %s (%.1f MB)", path, len(page.encode("utf-8")) / 1e6)
