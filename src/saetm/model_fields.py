"""Type checks of what a saved model keeps besides its arrays: the fields of ``model.json``
and the columns of ``documents.parquet``.

Both can be edited by hand. A field that loading or a later command relies on refuses
to load, in one line, when it has the wrong type; the fit report, which is only shown
(``saetm report``), is dropped with a warning instead. Nothing of the wrong type is
left to fail later with a traceback.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import numbers
from pathlib import Path

from saetm.errors import SaetmError

log = logging.getLogger("saetm")

_REFIT = "the file was edited or is corrupt, re-run `saetm fit`"


def _type(value) -> str:
    return "null" if value is None else type(value).__name__


def _corrupt(path: Path, what: str, value, expected: str) -> SaetmError:
    return SaetmError(f"{path}: {what} is {_type(value)}, not {expected}; {_REFIT}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_model_info(info: dict, path: Path) -> None:
    """The fields of ``model.json`` that loading and later commands read (``params`` values
    are checked by ``settings.check_params``; ``custom_labels`` and ``embedding_name`` fall back)."""
    if not isinstance(info.get("params"), dict):
        raise _corrupt(path, "params (the settings)", info.get("params"), "an object of settings")
    for key, kind, ok in [("encoder", "a name", lambda v: v is None or isinstance(v, str)),
                          ("encoder_is_callable", "true or false", lambda v: v is None or isinstance(v, bool))]:
        if not ok(info.get(key)):
            raise _corrupt(path, key, info.get(key), kind)
    params = info["params"]
    # settings check_params leaves alone: flags, components, and the stop words (a name or a list of words)
    for key in ("words", "clustering", "sae"):
        if key in params and not isinstance(params[key], dict):
            raise _corrupt(path, f"params.{key}", params[key], "an object of settings")
    for key in ("cache", "verbose"):
        if key in params and not isinstance(params[key], bool):
            raise _corrupt(path, f"params.{key}", params[key], "true or false")
    stop = params.get("stop_words")
    if not (stop is None or isinstance(stop, str) or isinstance(stop, list) and all(isinstance(w, str) for w in stop)):
        raise _corrupt(path, "params.stop_words", stop, "null, a name or a list of words")


def fit_info(report, path: Path) -> dict | None:
    """The saved fit report with only well-typed parts kept (it is informational: a broken
    one is dropped with a warning, never a reason to refuse the model)."""
    if report is None:
        return None
    if not isinstance(report, dict):
        log.warning("%s: ignoring the fit report, which is %s instead of an object", path, _type(report))
        return None
    kept, dropped = {}, []
    for key, value in report.items():
        if key == "seconds":
            ok = isinstance(value, dict) and all(_finite(v) for v in value.values())
        elif key in ("sae", "words"):
            ok = isinstance(value, dict)
        elif key in ("n_documents", "n_skipped"):
            ok = _is_int(value)
        else:
            ok = True  # unknown keys are only shown
        if ok:
            kept[key] = value
        else:
            dropped.append(key)
    if dropped:
        log.warning("%s: ignoring the malformed parts of the fit report (%s)", path, ", ".join(dropped))
    return kept


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _scalar(value) -> bool:
    """A value a document's id, label or date may be: a number, text, a time, or missing."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (str, numbers.Number, _dt.date, _dt.time, pd.Timestamp)) and not isinstance(value, bytes)


def check_document_columns(columns: dict, path: Path) -> None:
    """``documents.parquet``'s columns: ``text`` all strings (representative documents, the
    report and ``evaluate`` read them), ``id``/``label``/``date`` plain values."""
    text = columns.get("text")
    if text is not None:
        bad = next((i for i, t in enumerate(text) if not isinstance(t, str)), None)
        if bad is not None:
            raise SaetmError(f"{path}: the text of document {bad} is {_type(text[bad])}, not a string; {_REFIT}")
    for name in ("id", "label", "date"):
        values = columns.get(name)
        bad = None if values is None else next((i for i, v in enumerate(values) if not _scalar(v)), None)
        if bad is not None:
            raise SaetmError(f"{path}: the {name} of document {bad} is {_type(values[bad])}, not a plain value; "
                             f"{_REFIT}")
