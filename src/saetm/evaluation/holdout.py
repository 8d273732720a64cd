"""Held-out documents: fit on part of a corpus, score the topics' words on the rest.

NPMI and C_V on the documents a model was fitted on reward words that co-occur there,
including by chance; on documents the model never saw they measure whether the
words go together in the corpus at large. ``SAETM.fit(..., holdout=F)`` (CLI:
``saetm fit --holdout F``) holds out a seeded share ``F`` of the documents, and
``evaluate`` then reports ``npmi_heldout`` and ``cv_heldout`` next to ``npmi`` and
``cv`` on the fitted documents.

The split: ``round(F * n)`` documents, at least one and at most ``n - 1``, chosen by
a permutation of ``numpy.random.default_rng(seed)``; the record kept is
``{"fraction": F, "seed": seed, "rows": [...]}``, ``rows`` being the held-out
documents' positions in the input (ascending). The fitted documents keep their order;
without ``ids``, each keeps its input position as id so it can be found again.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

from saetm.errors import SaetmError


def check_fraction(fraction) -> float:
    """``fraction`` as a float strictly between 0 and 1, else a one-line error."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1 \
            or not math.isfinite(fraction):
        raise SaetmError(f"holdout must be a share of the documents between 0 and 1 (e.g. 0.2), got {fraction!r}")
    return float(fraction)


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fitted, held)``: ascending positions of the documents fitted on and held out."""
    fraction = check_fraction(fraction)
    if n < 2:
        raise SaetmError(f"holdout needs at least 2 documents to split, got {n}")
    n_held = min(n - 1, max(1, int(round(fraction * n))))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def hold_out(fraction, seed: int, docs: list[str], meta: dict, embeddings, embedding_rows):
    """Split checked documents, their metadata columns (``meta``: ``saetm.io.inputs.check_metadata``'s
    name -> list or None)
    and embeddings; returns ``(docs, meta, embeddings, embedding_rows, record, held_texts)``
    for the fitted part."""
    fit, held = split_rows(len(docs), fraction, seed)
    meta = dict(meta)
    if meta.get("id") is None:
        meta["id"] = [str(i) for i in range(len(docs))]
    meta = {k: None if v is None else [v[i] for i in fit] for k, v in meta.items()}
    if embeddings is not None:
        X = np.asarray(embeddings) if not hasattr(embeddings, "shape") else embeddings
        if embedding_rows is None:
            if X.shape[0] != len(docs):
                raise SaetmError(f"embeddings have {X.shape[0]} rows for {len(docs)} documents; give one row per "
                                 "document")
            embeddings = X[fit]
        else:
            r = np.asarray(embedding_rows)
            if r.ndim != 1 or r.shape[0] != X.shape[0]:
                raise SaetmError("embedding_rows must hold one document number per embedding row")
            keep = np.isin(r, fit)
            embeddings, embedding_rows = X[keep], np.searchsorted(fit, r[keep])
    record = {"fraction": float(fraction), "seed": int(seed), "rows": held.tolist()}
    if getattr(docs, "lazy", False):  # texts left in a file (saetm.io.lazy_texts)
        return docs.take(fit), meta, embeddings, embedding_rows, record, list(docs.take(held))
    return [docs[i] for i in fit], meta, embeddings, embedding_rows, record, [docs[i] for i in held]


def checked_holdout(value, where: str) -> dict:
    """A saved held-out record, checked; a malformed one refuses in one line (``where``:
    the file and field, for the message)."""
    rows = value.get("rows") if isinstance(value, dict) else None
    ok = (isinstance(value, dict) and isinstance(rows, list)
          and all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rows)
          and all(a < b for a, b in zip(rows, rows[1:]))
          and isinstance(value.get("seed"), int) and not isinstance(value.get("seed"), bool))
    if ok:
        try:
            check_fraction(value.get("fraction"))
        except SaetmError:
            ok = False
    if not ok:
        raise SaetmError(f"{where} is not a held-out record ({{fraction, seed, rows: ascending row numbers}}); "
                         "the file was edited or is corrupt, re-run `saetm fit`")
    return value


def heldout_texts(model) -> list[str] | None:
    """The texts of the documents ``model`` was not fitted on: kept in memory after
    ``fit(holdout=...)``, else re-read from the input ``saetm fit --holdout`` recorded
    (which must be unchanged). None when the model holds nothing out."""
    texts = getattr(model, "_heldout_texts", None)
    if texts is not None:
        return texts
    record = getattr(model, "input_", None)
    if not record or not record.get("holdout"):
        return None
    from saetm.io.provenance import read_heldout_texts

    return read_heldout_texts(record, "the model holds documents out for evaluation")


def add_heldout(model, record: dict, words: Sequence[Sequence[str]], top_n: int) -> None:
    """Add NPMI and C_V on the held-out documents to an ``evaluate`` record (in place):
    ``measures``/``per_topic`` ``npmi_heldout`` and ``cv_heldout``, placed right after
    ``cv``, and ``heldout``: what was scored."""
    from saetm.evaluation.coherence import cv_coherence, npmi_coherence
    from saetm.evaluation.scorecard import CV_WINDOW, topic_word_lists
    from saetm.words.stage import reference_tokens

    texts = heldout_texts(model)
    if texts is None:
        return
    tokens = reference_tokens([t for t in texts if t.strip()], stop_words=model.stop_words,
                              extra_stop_words=model.extra_stop_words, lemmatize=model.lemmatize,
                              merged_vocab=model.vocab_ if model.merge_inflections else None)
    lists = topic_word_lists(words, None)
    npmi = npmi_coherence(lists, tokens, top_n=top_n)
    cv = cv_coherence(lists, tokens, top_n=top_n, window=CV_WINDOW)
    measures, ordered = record["measures"], {}
    for name, value in measures.items():
        ordered[name] = value
        if name == "cv" or (name == "npmi" and "cv" not in measures):
            ordered.update(npmi_heldout=npmi["mean"], cv_heldout=cv["mean"])
    if "npmi_heldout" not in ordered:
        ordered.update(npmi_heldout=npmi["mean"], cv_heldout=cv["mean"])
    record["measures"] = ordered
    if "per_topic" in record:
        record["per_topic"].update(npmi_heldout=npmi["per_topic"], cv_heldout=cv["per_topic"])
    record["heldout"] = f"{len(tokens)} documents held out of the fit"
