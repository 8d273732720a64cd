"""Assemble a fitted model's report: which charts apply, the topic table, settings, notes.

:func:`build_report` only reads the model (its current topics, the metadata kept
with the fitted documents, its settings) and hands plain values to
:func:`saetm.report.html.render_report`. Charts that need data the model does not
have are left out (over time without dates, per class without classes, a hierarchy
of one topic); everything capped for size is said in the page's notes. Topics are
measured by their share of the documents' weight and their main-topic counts (a document
holds many topics a little, so "any weight" counts hardly separate them); the over-time
and per-class charts show the topics whose main-topic counts differ most
(:func:`saetm.analysis.time.pick_significant`). A model fitted
on images with their paths also gets thumbnails of each topic's top images; files
that can no longer be read are left out, counted in the notes and logged.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from saetm.errors import SaetmError

log = logging.getLogger("saetm")

EXAMPLE_CHARS = 160  # characters of each topic's example document in the table
WORDS_PER_TOPIC = 10  # words in the topic table and in each topic's word list
OVER_TIME_TOPICS = 8  # topics in the over-time chart
CLASS_TOPICS = 10  # topics in the per-class chart
MAX_HEATMAP_DOCS = 200  # documents sampled for the document × topic heatmap
MAX_CLASSES = 40  # classes compared in the per-class chart (the largest ones)
IMAGES_PER_TOPIC = 6  # thumbnails per topic, for models fitted on images
MAX_IMAGE_TOPICS = 100  # topics shown with thumbnails (a few KB per image)
IMAGE_CANDIDATES = 3  # × IMAGES_PER_TOPIC top documents tried, so unreadable files are replaced
CAPTION_CHARS = 100  # characters of an image's words in its tooltip


def build_report(model, path, *, dates=None, classes=None, freq=None, title: str | None = None) -> Path:
    """Write ``model``'s self-contained HTML report to ``path`` and return the path.

    dates / classes: one per fitted document (default: those kept with the model);
    freq: period frequency for the over-time chart (default: chosen from the span).
    """
    from saetm.report.html import render_report

    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise SaetmError(f"the report is an HTML page; give a path ending in .html, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    n_docs, T = model.doc_topics_.shape
    notes: list[str] = []
    table = topic_table(model)
    figures = []
    if T >= 2:
        figures.append(("Topic map", model.visualize_topics(method="mds")))

    time_cols = _over_time(model, dates, freq, notes, figures)
    if time_cols is not None:
        table = table.join(time_cols, on="topic")
    class_cols = _per_class(model, classes, notes, figures)
    if class_cols is not None:
        table = table.join(class_cols, on="topic")

    if T >= 2:
        figures.append(("Topic hierarchy", model.visualize_hierarchy()))
    figures.append(("Documents", model.visualize_heatmap(max_docs=MAX_HEATMAP_DOCS)))
    if "example document" in table:  # the widest column goes last
        table = table[[c for c in table.columns if c != "example document"] + ["example document"]]
        notes.append(f"Example documents in the topic table are cut to {EXAMPLE_CHARS} characters.")

    galleries = image_galleries(model, notes)
    title = title or f"Topics of {n_docs:,} {'images' if galleries else 'documents'} ({T} topics)"
    render_report(path, title=title, settings=settings(model), topic_table=table, figures=figures, notes=notes,
                  galleries=galleries, word_lists=word_lists(model, table), word_caption=WORD_CAPTION,
                  table_caption=_table_caption(table))
    return path


WORD_CAPTION = (f"The top {WORDS_PER_TOPIC} words of every topic in the model's order, best first. A bar is the "
                "word's score relative to the topic's first word: β made non-increasing down the list (get_topic); "
                "hover a word for its β in the topic.")


def _table_caption(table: pd.DataFrame) -> str:
    parts = ["share: the topic's mean share of a document's topic weight",
             "main topic of: the documents whose largest topic it is"]
    if any(c.startswith("change rank") for c in table.columns):
        parts.append("change rank: 1 = the topic whose main-topic counts differ most between periods (chi-square); "
                     "trend: Mann–Kendall test of its share per period (p < 0.05)")
    if "difference rank" in table.columns:
        parts.append("difference rank: 1 = the topic whose main-topic counts differ most between classes "
                     "(chi-square); most over-represented in: by prior-smoothed log-odds of the topic being present")
    return "; ".join(parts) + "."


def word_lists(model, table: pd.DataFrame) -> list:
    """Every topic's words for the report's "Top words" cards: ``[(label, figures, [(word, bar, β), ...])]``."""
    labels = model.topic_labels()
    rows = table.set_index("topic")
    out = []
    for t, triples in model.get_topics(n_words=WORDS_PER_TOPIC, with_beta=True).items():
        top = max((score for _, score, _ in triples), default=0.0)
        words = [(w, score / top if top > 0 else 0.0, beta) for w, score, beta in triples]
        figures = f"share {rows.loc[t, 'share']:.1%} · main topic of {int(rows.loc[t, 'main topic of']):,} docs"
        out.append((labels[t] if getattr(model, "custom_labels_", None) else f"topic {t}", figures, words))
    return out


def image_galleries(model, notes: list) -> list | None:
    """Thumbnails of each topic's top images: ``[(topic label, [(caption, Thumbnail), ...]), ...]``,
    or ``None`` for a model without image paths (text models).

    Per topic, the first ``IMAGES_PER_TOPIC`` readable images among its top documents
    (:meth:`get_representative_images`); unreadable ones are skipped, counted in ``notes``
    and logged."""
    from saetm.io.images import UnreadableImage
    from saetm.report.thumbnails import thumbnail

    meta = getattr(model, "documents_", None) or {}
    paths = meta.get("image")
    if paths is None:
        return None
    texts = meta.get("text") or [""] * len(paths)
    words = {}
    for p, text in zip(paths, texts):
        words.setdefault(p, " ".join(str(text).split()))
    T = min(model.n_topics, MAX_IMAGE_TOPICS)
    best = model.get_representative_images(n=IMAGE_CANDIDATES * IMAGES_PER_TOPIC)
    labels = model.topic_labels()
    made, failed, galleries = {}, {}, []
    for t in range(T):
        thumbs = []
        for p in best[t]:
            if len(thumbs) == IMAGES_PER_TOPIC:
                break
            if p in failed:
                continue
            if p not in made:
                try:
                    made[p] = thumbnail(p)
                except UnreadableImage as e:
                    failed[p] = str(e)
                    continue
            name = Path(p).name
            thumbs.append((f"{name}: {_cut(words[p], CAPTION_CHARS)}" if words[p] else name, made[p]))
        galleries.append((labels[t], thumbs))
    if failed:
        first, why = next(iter(failed.items()))
        log.warning("the report leaves out %d images that cannot be read (moved, deleted or broken files); "
                    "the first: %s (%s)", len(failed), first, why)
        notes.append(f"{len(failed):,} of the topics' top images could not be read (moved, deleted or broken "
                     f"files) and are left out of the thumbnails; the first: {first} ({why}).")
    if model.n_topics > T:
        notes.append(f"Thumbnails are shown for the first {T} of {model.n_topics} topics.")
    return galleries


def topic_table(model) -> pd.DataFrame:
    """One row per topic: top words, its share of the documents' weight, the documents whose
    main topic it is, its atoms, and its most representative document.

    The generated label repeats the top words, so the table shows a label column
    only when the user has named the topics (``set_topic_labels``).
    """
    from saetm.analysis.time import grouped_shares

    info = model.get_topic_info(n_words=WORDS_PER_TOPIC)
    n_docs = model.doc_topics_.shape[0]
    share, _, n_main = grouped_shares(model.doc_topics_, np.zeros(n_docs, dtype=np.int64), 1)
    # share and main-topic counts separate topics; coverage (any weight at all) is high for most
    table = pd.DataFrame({"topic": info["topic"], "top words": info["top_words"],
                          "share": share[0] / max(n_docs, 1), "main topic of": n_main[0],
                          "atoms": info["n_atoms"]})
    if getattr(model, "custom_labels_", None):
        table.insert(1, "label", info["label"])
    texts = (getattr(model, "documents_", None) or {}).get("text")
    if texts is not None:
        best = model.get_representative_docs(n=1)
        table["example document"] = [_cut(" ".join(best[t][0].split()), EXAMPLE_CHARS) if best[t] else ""
                                     for t in range(model.n_topics)]
    return table


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _kept_or_given(model, given, key: str):
    """(values, source): explicit values, else those kept with the fitted documents, else None."""
    if given is not None:
        return list(given), "given"
    kept = (getattr(model, "documents_", None) or {}).get(key)
    if kept is None or all(_missing(v) for v in kept):
        return None, None
    return list(kept), "kept"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() in ("", "NaT", "nan", "None")


def _over_time(model, dates, freq, notes: list, figures: list) -> pd.DataFrame | None:
    """Adds the over-time chart; returns per-topic columns for the table (or None)."""
    dates, source = _kept_or_given(model, dates, "date")
    if dates is None:
        return None
    try:
        ranking = model.rank_changing_topics(dates, freq, measure="share")
        # the chart picks its topics as the table ranks them: by the main-topic chi-square
        fig = model.visualize_topics_over_time(dates, freq, top=OVER_TIME_TOPICS, measure="share")
    except SaetmError as e:
        if source == "given":
            raise
        notes.append(f"The over-time chart is left out: the dates kept with the model cannot be used ({e}).")
        return None
    n_missing = sum(_missing(v) for v in dates)
    if n_missing:
        notes.append(f"{n_missing:,} of {len(dates):,} documents have no date; the over-time chart leaves them out.")
    n_periods = int(ranking["n_periods"].max())
    figures.append(("Topics over time", fig))
    return _significance_columns(ranking, f"change rank ({n_periods} periods)", "trend")


def _significance_columns(ranking: pd.DataFrame, rank_name: str, *keep: str) -> pd.DataFrame:
    """Rank by the main-topic chi-square (as the charts pick topics), plus ``keep`` columns."""
    ordered = ranking.sort_values(["main_chi2", "topic"], ascending=[False, True], kind="stable")
    cols = ordered.set_index("topic")[list(keep)].copy()
    cols.insert(0, rank_name, np.arange(1, len(cols) + 1))
    return cols


def _per_class(model, classes, notes: list, figures: list) -> pd.DataFrame | None:
    """Adds the per-class chart; returns per-topic columns for the table (or None)."""
    classes, source = _kept_or_given(model, classes, "label")
    if classes is None:
        return None
    counts = pd.Series([None if _missing(c) else str(c) for c in classes]).value_counts()
    if len(counts) < 2:
        notes.append(f"The per-class chart is left out: the documents have {len(counts)} class; comparing needs two.")
        return None
    if len(counts) > MAX_CLASSES:
        keep = set(counts.index[:MAX_CLASSES])
        classes = [c if (not _missing(c) and str(c) in keep) else None for c in classes]
        notes.append(f"The per-class chart and columns compare the {MAX_CLASSES} largest of {len(counts):,} classes.")
    ranking = model.rank_differing_topics(classes)
    figures.append(("Topics by class", model.visualize_topics_per_class(classes, top=CLASS_TOPICS, measure="share")))
    cols = _significance_columns(ranking, "difference rank", "class")
    return cols.astype({"class": str}).rename(columns={"class": "most over-represented in"})


def settings(model) -> dict:
    """The run's settings for the report: parameters, encoder, SAE, fit report, data sizes."""
    from saetm import __version__

    params = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else repr(v))
              for k, v in model.get_params(deep=True).items()
              if not hasattr(v, "get_params")}  # a component is listed by its fields (words__ranking)
    fit = getattr(model, "fit_report_", None)
    fit = dataclasses.asdict(fit) if dataclasses.is_dataclass(fit) else (getattr(model, "fit_info_", None) or {})
    sae_cfg = getattr(getattr(model, "sae_", None), "config", None)
    sae = {"source": (fit.get("sae") or {}).get("source", "loaded")}
    if dataclasses.is_dataclass(sae_cfg):
        sae.update({k: v for k, v in dataclasses.asdict(sae_cfg).items() if v is not None})
    for key, value in (fit.get("sae") or {}).items():
        if key != "source" and isinstance(value, (int, float)):
            sae[f"metric.{key}"] = round(float(value), 4)
    used = int((np.asarray(model.feature_prob_) > 0).sum())
    return {
        "saetm": __version__,
        "parameters": params,
        "encoder": getattr(model.encoder_, "name", str(model.encoder_)),
        "sae": sae,
        "data": {"documents": int(model.doc_topics_.shape[0]), "vocabulary": len(model.vocab_),
                 "atoms used": used, "topics": int(model.n_topics)},
        "fit": {"seconds": {k: round(float(v), 2) for k, v in (fit.get("seconds") or {}).items()},
                "word distributions": fit.get("words") or {}},
    }
