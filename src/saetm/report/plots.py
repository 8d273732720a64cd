"""Plotly figures over plain arrays and the analysis tables.

Every function returns a ``plotly.graph_objects.Figure`` with a title and labelled
axes. Figures that show a sample or a subset say so in their title and carry the
same sentence in ``fig.layout.meta["caption"]``, which the HTML report prints under
the chart. :func:`save_static` writes PNG/SVG/PDF through kaleido (optional).
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import scipy.sparse as sp
from plotly.subplots import make_subplots

from saetm.errors import SaetmError

TEMPLATE = "plotly_white"
LABEL_CHARS = 42  # longer topic labels are cut with an ellipsis (full label on hover)
MAP_LABEL_CHARS = 24  # the label printed next to each bubble of the topic map


def short(label: str, n: int = LABEL_CHARS) -> str:
    """A topic label cut to ``n`` characters, for axes and legends."""
    label = str(label)
    return label if len(label) <= n else label[: n - 1].rstrip(" ,") + "…"


def short_words(label: str, n: int) -> str:
    """A label cut to ``n`` characters at a comma ("3: space, nasa"), or by :func:`short`."""
    label = str(label)
    if len(label) <= n:
        return label
    cut = label[:n + 1].rfind(",")
    return label[:cut] if cut > label.find(":") + 2 else short(label, n)


def _caption(fig: go.Figure, text: str) -> go.Figure:
    meta = dict(fig.layout.meta) if isinstance(fig.layout.meta, dict) else {}
    meta["caption"] = text
    fig.update_layout(meta=meta)
    return fig


def _check_labels(topic_labels, n: int, what: str) -> list[str]:
    labels = [str(x) for x in topic_labels]
    if len(labels) != n:
        raise SaetmError(f"got {len(labels)} topic labels for {n} {what}; pass one label per topic")
    return labels


def _layout(fig: go.Figure, title: str, height: int, **kwargs) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        template=TEMPLATE,
        height=height,
        margin=dict(l=20, r=20, t=70, b=50),
        font=dict(size=12),
        **kwargs,
    )
    return fig


def topic_words_bars(topic_words, topic_weights, topic_labels, top_n: int = 8, max_topics: int = 12,
                     cols: int = 3) -> go.Figure:
    """Small multiples: each topic's ``top_n`` words as horizontal bars of their weight.

    topic_words / topic_weights: per topic, words and their weights, in the listed order
    (best first), which the bars keep from the top down whatever the weights; the first
    ``max_topics`` topics are drawn.
    """
    T = len(topic_words)
    labels = _check_labels(topic_labels, T, "topics")
    if len(topic_weights) != T:
        raise SaetmError(f"got {len(topic_weights)} weight lists for {T} topics; pass one per topic")
    if T == 0:
        raise SaetmError("there are no topics to draw")
    shown = min(T, max_topics)
    cols = max(1, min(cols, shown))
    rows = math.ceil(shown / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[short(x, 36) for x in labels[:shown]],
                        horizontal_spacing=0.14, vertical_spacing=min(0.12, 0.5 / rows))
    for i in range(shown):
        words = [short(w, 18) for w in topic_words[i][:top_n]][::-1]
        weights = [float(w) for w in topic_weights[i][:top_n]][::-1]
        r, c = divmod(i, cols)
        fig.add_trace(go.Bar(x=weights, y=words, orientation="h", name=short(labels[i]), showlegend=False,
                             marker_color="#3b6ea8", hovertemplate="%{y}: %{x:.4f}<extra>" + short(labels[i], 30) + "</extra>"),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(title_text="word weight", title_font_size=11, row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="word" if c == 0 else None, automargin=True, categoryorder="array",
                         categoryarray=words, row=r + 1, col=c + 1)
    for i in range(shown, rows * cols):  # empty cells of the last row
        r, c = divmod(i, cols)
        fig.update_xaxes(visible=False, row=r + 1, col=c + 1)
        fig.update_yaxes(visible=False, row=r + 1, col=c + 1)
    fig.update_annotations(font_size=12)
    title = "Top words per topic"
    caption = ("Words in the listed order, best first from the top; a bar is the word's weight β in the topic, "
               "which need not decrease down the list.")
    if shown < T:
        title += f" (first {shown} of {T} topics)"
        caption = f"The first {shown} of {T} topics are shown. " + caption
    _caption(fig, caption)
    return _layout(fig, title, height=90 + rows * (22 * min(top_n, 15) + 80))


def topic_map(topic_embeddings, prevalence, topic_labels, seed: int = 0, method: str = "pca") -> go.Figure:
    """Topics on a 2-D map of their embeddings; bubble area = prevalence.

    topic_embeddings: (T, d); rows are L2-normalised first, so the map reflects
    direction (cosine), then projected by PCA (default) or metric MDS on cosine
    distances (``method="mds"``, seeded by ``seed``).
    """
    E = np.asarray(topic_embeddings, dtype=np.float64)
    if E.ndim != 2 or E.shape[0] == 0:
        raise SaetmError(f"topic embeddings must be a (n_topics, dim) array, got shape {E.shape}")
    T = E.shape[0]
    labels = _check_labels(topic_labels, T, "topic embeddings")
    prev = np.asarray(prevalence, dtype=np.float64).ravel()
    if prev.shape != (T,):
        raise SaetmError(f"got {prev.size} prevalence values for {T} topics; pass one per topic")
    E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    axis_names = ["dimension 1", "dimension 2"]
    xy = np.zeros((T, 2))
    if T >= 2 and method == "pca":
        from sklearn.decomposition import PCA

        k = min(2, T, E.shape[1])
        pca = PCA(n_components=k, random_state=seed).fit(E)
        xy[:, :k] = pca.transform(E)
        axis_names = [f"PC {i + 1} ({v:.0%} of variance)" for i, v in enumerate(pca.explained_variance_ratio_)] + axis_names[k:]
    elif T >= 2 and method == "mds":
        from sklearn.manifold import MDS

        D = np.clip(1 - E @ E.T, 0, 2)
        np.fill_diagonal(D, 0)
        kw = dict(n_components=2, random_state=seed, n_init=1)
        if "metric_mds" in inspect.signature(MDS).parameters:  # scikit-learn >= 1.8 renamed the options
            kw.update(metric="precomputed", init="classical_mds")
        else:
            kw.update(dissimilarity="precomputed")
        xy = MDS(**kw).fit_transform(D)
        axis_names = ["MDS dimension 1", "MDS dimension 2"]
    elif method not in ("pca", "mds"):
        raise SaetmError(f"unknown map method {method!r}; use 'pca' or 'mds'")
    size = np.sqrt(np.maximum(prev, 0) / max(prev.max(), 1e-12)) * 55 + 8
    fig = go.Figure(go.Scatter(
        x=xy[:, 0], y=xy[:, 1], mode="markers+text", text=[short_words(lab, MAP_LABEL_CHARS) for lab in labels],
        textposition="top center", textfont=dict(size=10, color="#323f4b"), cliponaxis=False,
        # no colour bar: the bubble's area already gives prevalence, and a phone needs the width
        marker=dict(size=size, color=prev, colorscale="Tealgrn", opacity=0.75, line=dict(width=1, color="#335"),
                    showscale=False),
        customdata=np.stack([labels, prev], axis=1), hovertemplate="%{customdata[0]}<br>prevalence %{customdata[1]:.4f}<extra></extra>",
    ))
    fig.update_xaxes(title_text=axis_names[0], zeroline=False)
    fig.update_yaxes(title_text=axis_names[1], zeroline=False)
    return _layout(fig, "Topic map (bubble area = prevalence; hover for the full label)", height=620)


def topic_dendrogram(linkage_matrix, topic_labels, max_leaves: int = 120) -> go.Figure:
    """A horizontal dendrogram of a scipy linkage matrix ((n-1, 4)) over n topics.

    With more than ``max_leaves`` leaves the tree is cut to its last ``max_leaves``
    merges (leaf labels then give the number of topics merged, e.g. "(12)").
    """
    from scipy.cluster import hierarchy

    Z = np.asarray(linkage_matrix, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != 4 or not hierarchy.is_valid_linkage(Z):
        raise SaetmError(f"the linkage matrix must be a valid scipy linkage of shape (n-1, 4), got shape {Z.shape}")
    n = Z.shape[0] + 1
    labels = _check_labels(topic_labels, n, "leaves of the linkage")
    truncate = n > max_leaves
    tree = hierarchy.dendrogram(Z, no_plot=True, labels=[short(x) for x in labels], orientation="left",
                                truncate_mode="lastp" if truncate else None, p=max_leaves)
    fig = go.Figure()
    for xs, ys in zip(tree["dcoord"], tree["icoord"]):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#3b6ea8", width=1.4), hoverinfo="skip", showlegend=False))
    leaves = tree["ivl"]
    fig.update_yaxes(title_text="topic", tickmode="array", tickvals=[5 + 10 * i for i in range(len(leaves))], ticktext=leaves,
                     automargin=True, range=[0, 10 * len(leaves)], showgrid=False)
    fig.update_xaxes(title_text="merge distance", rangemode="tozero")
    title = "Topic hierarchy"
    if truncate:
        title += f" (last {max_leaves} merges of {n} leaves)"
        _caption(fig, f"The tree over {n} leaves is cut to its last {max_leaves} merges.")
    return _layout(fig, title, height=min(160 + 18 * len(leaves), 2400))


def doc_topic_heatmap(doc_topics, topic_labels, max_docs: int = 200, seed: int = 0, max_topics: int = 30) -> go.Figure:
    """Topic weights of a seeded sample of documents (columns sorted by main topic).

    doc_topics: (n_docs, T) CSR. At most ``max_docs`` documents and the ``max_topics``
    topics with most weight in the sample are drawn, so the figure stays small.
    """
    X = sp.csr_matrix(doc_topics)
    n, T = X.shape
    labels = _check_labels(topic_labels, T, "topics in doc_topics")
    if n == 0 or T == 0:
        raise SaetmError("doc_topics is empty; there is nothing to draw")
    rows = np.arange(n)
    if n > max_docs:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_docs, replace=False))
    S = np.asarray(X[rows].todense(), dtype=np.float64)
    cols = np.arange(T)
    if T > max_topics:
        cols = np.sort(np.argsort(-S.sum(axis=0), kind="stable")[:max_topics])
    S = S[:, cols]
    main = np.where(S.max(axis=1) > 0, S.argmax(axis=1), len(cols))
    order = np.lexsort((-S.max(axis=1), main))
    S, rows = S[order], rows[order]
    fig = go.Figure(go.Heatmap(
        z=S.T, x=[str(r) for r in rows], y=[short(labels[c], 36) for c in cols], colorscale="Blues",
        colorbar=dict(title="weight"), hovertemplate="document %{x}<br>%{y}<br>weight %{z:.3f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="document (sorted by main topic)", type="category", showticklabels=len(rows) <= 60)
    fig.update_yaxes(title_text="topic", automargin=True, autorange="reversed")
    parts = []
    if len(rows) < n:
        parts.append(f"a seeded sample of {len(rows):,} of {n:,} documents")
    if len(cols) < T:
        parts.append(f"the {len(cols)} of {T} topics with most weight in it")
    title = "Topic weights per document"
    if parts:
        title += f" ({'; '.join(parts)})"
        _caption(fig, "The chart shows " + " and ".join(parts) + ".")
    return _layout(fig, title, height=min(220 + 24 * len(cols), 1000))


_STATIC = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
STATIC_HELP = ("static images need the optional kaleido package and a Chrome/Chromium browser: "
               "`pip install kaleido` and `apt-get install chromium` (or `plotly_get_chrome`); "
               "the HTML report needs neither")


def save_static(fig: go.Figure, path, scale: float = 2.0) -> Path:
    """Write ``fig`` as PNG/SVG/PDF/JPEG/WebP (format from the suffix), atomically.

    Uses plotly's kaleido exporter, an optional dependency that drives a local
    Chrome/Chromium; nothing is downloaded. Raises :class:`SaetmError` saying how to
    enable it when either is missing.
    """
    from saetm.io.persist import atomic_write
    from saetm.report.html import share_permissions

    path = Path(path)
    fmt = _STATIC.get(path.suffix.lower())
    if fmt is None:
        raise SaetmError(f"cannot tell the image format from {path.name!r}; use a .png, .svg, .pdf, .jpg or .webp path")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise SaetmError(f"cannot write {path.name}: {STATIC_HELP}") from None
    try:
        data = fig.to_image(format=fmt, scale=scale)
    except Exception as e:  # kaleido/choreographer raise their own types (e.g. no browser found)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise SaetmError(f"cannot write {path.name} ({reason}); {STATIC_HELP}") from None
    with atomic_write(path, "wb") as f:
        f.write(data)
    share_permissions(path)
    return path


# The charts of the analysis tables live in trends.py (imported last: it uses the helpers above).
from saetm.report.trends import group_comparison_bars, topics_over_time_lines  # noqa: E402, F401
