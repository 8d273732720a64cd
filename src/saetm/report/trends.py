"""Charts of the analysis tables: topics over time and topics per group.

Both draw a topic's **share** of the documents' weight by default (see
:mod:`saetm.analysis.time`), with a 95% interval (±1.96 standard errors) and the number
of documents behind each period or group, so a group of four documents is not read like
one of ninety. Unless topics are given, both show the topics whose main-topic counts
differ most (:func:`saetm.analysis.time.pick_significant`), falling back to the variance
of the measure for tables without main-topic counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from saetm.report.plots import _caption, _layout, short, short_words

Z95 = 1.96
FRACTIONS = ("share", "coverage")  # measures drawn as percentages
BAR_LABEL_CHARS = 30


def _measure_words(measure: str) -> str:
    """The measure in a caption's sentence (axis titles are shorter)."""
    return {"share": "share of the documents' weight"}.get(measure, _measure_title(measure))


def _measure_title(measure: str) -> str:
    return {"coverage": "coverage (share of documents)", "prevalence": "prevalence (mean topic weight)",
            "share": "share of weight"}.get(measure, measure)


def _interval(wide: pd.DataFrame, se: pd.DataFrame | None):
    """(lower, upper) distances of the 95% interval, clipped to [0, 1]; None without SEs."""
    if se is None:
        return None
    y = wide.to_numpy(dtype=float)
    half = Z95 * np.nan_to_num(se.to_numpy(dtype=float))
    return y - np.clip(y - half, 0, None), np.clip(y + half, None, 1) - y


def _pick(table: pd.DataFrame, key: str, measure: str, top: int) -> tuple[list[int], str]:
    """The topics to draw and how they were chosen (for the caption)."""
    from saetm.analysis.time import MIN_MAIN, main_topic_tests, pick_significant

    if "n_main" in table.columns:
        tests = main_topic_tests(table, key).reset_index()
        picked = pick_significant(tests, top)
        if picked:
            return picked, (f"the {len(picked)} topics whose share of main-topic documents differs most between "
                            f"{key}s (chi-square on the counts; of the topics that are the main topic of at least "
                            f"{MIN_MAIN} documents)")
    obs = table[table["n_docs"] > 0]
    var = obs.pivot_table(index=key, columns="topic", values=measure, observed=True).var(axis=0, ddof=0)
    picked = var.sort_values(ascending=False, kind="stable").index[:top].astype(int).tolist()
    return picked, f"the {len(picked)} topics whose {measure} varies most between {key}s"


def topics_over_time_lines(table: pd.DataFrame, topic_labels, top: int = 8, measure: str = "share",
                           topics=None) -> go.Figure:
    """Small multiples: documents per period on top, then one panel per topic with its
    ``measure`` per period (and a 95% interval for ``share``).

    table: the output of ``topics_over_time``; ``topics`` picks topics explicitly,
    otherwise the ``top`` topics whose main-topic counts change most are drawn.
    Periods without documents appear as gaps.
    """
    chosen = ""  # topics given by the caller need no explanation
    if topics is None:
        topics, chosen = _pick(table, "period", measure, top)
    labels = [str(x) for x in topic_labels]
    periods = table["period"].cat.categories if isinstance(table["period"].dtype, pd.CategoricalDtype) else sorted(table["period"].unique())
    pivot = lambda col: table.pivot_table(index="period", columns="topic", values=col, observed=False,  # noqa: E731
                                          dropna=False).reindex(periods)
    wide = pivot(measure)
    se = pivot("share_se") if measure == "share" and "share_se" in table.columns else None
    main = pivot("n_main") if "n_main" in table.columns else None
    n_docs = table.drop_duplicates("period").set_index("period")["n_docs"].reindex(periods).fillna(0).astype(int)
    x, x_title = [str(p) for p in wide.index], "period"
    if x and all(p.startswith("week of ") for p in x):  # shorter ticks for weekly periods
        x, x_title = [p[len("week of "):] for p in x], "week (starting Monday)"
    names = [short(labels[t]) if t < len(labels) else f"topic {t}" for t in topics]
    rows = len(topics) + 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=min(0.05, 0.6 / rows),
                        subplot_titles=["documents per period"] + names, row_heights=[0.7] + [1.0] * len(topics))
    fig.add_trace(go.Bar(x=x, y=n_docs.to_numpy(), name="documents", marker_color="#9aa5b1", showlegend=False,
                         hovertemplate="%{x}: %{y:,} documents<extra></extra>"), row=1, col=1)
    fig.update_yaxes(title_text="documents", row=1, col=1, rangemode="tozero")
    interval = _interval(wide[topics], se[topics]) if se is not None else None
    pct = measure in FRACTIONS
    fmt = ".1%" if pct else ".3f"
    for i, (t, name) in enumerate(zip(topics, names)):
        y = wide[t].to_numpy(dtype=float)
        custom = np.stack([n_docs.to_numpy(), main[t].to_numpy() if main is not None else np.full(len(y), np.nan)], axis=1)
        err = None
        hover = "%{x}: %{y:" + fmt + "}"
        if interval is not None:
            err = dict(type="data", symmetric=False, arrayminus=interval[0][:, i], array=interval[1][:, i],
                       thickness=1.2, width=0, color="rgba(47,95,152,0.45)")
            custom = np.column_stack([custom, y - interval[0][:, i], y + interval[1][:, i]])
            hover += " (95% interval %{customdata[2]:" + fmt + "} – %{customdata[3]:" + fmt + "})"
        hover += "<br>%{customdata[0]:,} documents" + (", %{customdata[1]:,} with this main topic" if main is not None else "")
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, showlegend=False, connectgaps=False,
                                 line=dict(color="#2f5f98", width=1.8), marker=dict(size=5), error_y=err,
                                 customdata=custom, hovertemplate=hover + "<extra>" + name + "</extra>"),
                      row=i + 2, col=1)
        fig.update_yaxes(title_text=measure, tickformat=".0%" if pct else None, rangemode="tozero", row=i + 2, col=1)
    fig.update_xaxes(type="category")
    fig.update_xaxes(title_text=x_title, row=rows, col=1)
    fig.update_annotations(font_size=12, xanchor="left", x=0)
    n_total = table["topic"].nunique()
    title = f"Topics over time: {len(topics)} of {n_total} topics"
    band = " with its 95% interval (±1.96 standard errors)" if interval is not None else ""
    _caption(fig, f"Each panel shows a topic's {_measure_words(measure)} per period{band}; the top panel counts "
                  f"the documents of each period." + (f" The topics are {chosen}." if chosen else ""))
    return _layout(fig, title, height=int(170 + 150 * len(topics)))


def group_comparison_bars(table: pd.DataFrame, topic_labels, top: int = 10, measure: str = "share",
                          topics=None) -> go.Figure:
    """Per-group ``measure`` for the ``top`` topics that differ most across groups.

    table: the output of ``topics_per_group``. Up to 8 groups are drawn as grouped
    bars with 95% intervals (for ``share``), each group named with its number of
    documents; more groups as a heatmap (groups × topics, counts on the axis).
    """
    chosen = ""  # topics given by the caller need no explanation
    if topics is None:
        topics, chosen = _pick(table, "group", measure, top)
    labels = [str(x) for x in topic_labels]
    pivot = lambda col: table.pivot_table(index="group", columns="topic", values=col, observed=True)  # noqa: E731
    wide = pivot(measure)
    se = pivot("share_se") if measure == "share" and "share_se" in table.columns else None
    n_docs = table.drop_duplicates("group").set_index("group")["n_docs"].reindex(wide.index)
    # shorter names than elsewhere: the bars need the room on a narrow screen
    names = [short_words(labels[t], BAR_LABEL_CHARS) if t < len(labels) else f"topic {t}" for t in topics]
    groups = [f"{g} ({n:,})" for g, n in zip(wide.index, n_docs)]
    pct = measure in FRACTIONS
    fmt = ".1%" if pct else ".3f"
    interval = _interval(wide[topics], se[topics]) if se is not None else None
    if len(groups) <= 8:
        fig = go.Figure()
        for j, (g, gname) in enumerate(zip(wide.index, groups)):
            err = None
            if interval is not None:
                err = dict(type="data", symmetric=False, arrayminus=interval[0][j, ::-1], array=interval[1][j, ::-1],
                           thickness=1.2, width=3, color="#52606d")
            fig.add_trace(go.Bar(y=names[::-1], x=wide.loc[g, topics[::-1]].to_numpy(), name=gname, orientation="h",
                                 error_x=err, hovertemplate="%{y}<br>" + gname + ": %{x:" + fmt + "}<extra></extra>"))
        fig.update_layout(barmode="group", legend=dict(title="group (documents)", orientation="h", y=-0.12,
                                                       yanchor="top", x=0, xanchor="left"))
        fig.update_xaxes(title_text=_measure_title(measure), tickformat=".0%" if pct else None)
        fig.update_yaxes(title_text="topic", automargin=True)
        height = 180 + len(topics) * max(26, 11 * len(groups))
    else:
        fig = go.Figure(go.Heatmap(z=wide[topics].to_numpy().T, x=groups, y=names, colorscale="Blues",
                                   colorbar=dict(title=measure, tickformat=".0%" if pct else None),
                                   hovertemplate="%{y}<br>%{x}: %{z:" + fmt + "}<extra></extra>"))
        fig.update_xaxes(title_text="group (documents)", tickangle=-40, automargin=True)
        fig.update_yaxes(title_text="topic", automargin=True, autorange="reversed")
        height = 220 + len(topics) * 28
    band = ", with 95% intervals (±1.96 standard errors)" if interval is not None and len(groups) <= 8 else ""
    _caption(fig, f"Bars show each group's {_measure_words(measure)}{band}; the number after a group's name counts "
                  f"its documents." + (f" The topics are {chosen}." if chosen else ""))
    title = f"Topics by group: {len(topics)} topics"
    return _layout(fig, title, height=min(height, 1400))
