"""The checks and conversions of single values :mod:`saetm.io.readers` applies to every format:
fields, header rows, text, ids, dates, image references, and the previews in its messages.
"""

from __future__ import annotations

import datetime
import math
import numbers
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from saetm.errors import SaetmError

TEXT_FIELD_NAMES = ("text", "content", "body", "document", "abstract")


def _check_field(path: Path, name: str | None, available: list[str], what: str) -> None:
    if name is not None and name not in available:
        if _data_as_header(path, available) is not None:
            raise SaetmError(_no_header_message(path, available))
        raise SaetmError(
            f"{path} has no field {name!r} (for --{what}-field); available fields: {_field_list(available)}"
        )


def _detect_text_field(path: Path, columns: dict[str, list]) -> str:
    lower = {c.lower(): c for c in reversed(columns)}
    for name in TEXT_FIELD_NAMES:
        if name in columns:
            return name
        if name in lower:
            return lower[name]
    if _data_as_header(path, list(columns)) is not None:
        # the first document was taken for the header: it would be lost, and named as a field
        raise SaetmError(_no_header_message(path, list(columns)))
    strings = [c for c, values in columns.items() if _is_string_column(values)]
    if len(strings) == 1:
        return strings[0]
    why = "several text-like columns" if strings else "no text column"
    raise SaetmError(
        f"cannot tell which field of {path} holds the text ({why}); "
        f"pass --text-field (text_field=) with one of: {_field_list(columns)}"
    )


_HEADER_MAX_WORDS = 5  # a column name of more words, or of more characters, is a row of data
_HEADER_MAX_CHARS = 60


def _data_as_header(path: Path, names) -> str | None:
    """The first CSV/TSV column name that reads like data rather than a name (a sentence,
    a paragraph), a sign that the file has no header row; ``None`` when all look like names."""
    if path.suffix.lower() not in (".csv", ".tsv"):
        return None
    return next((n for n in names if len(n) > _HEADER_MAX_CHARS or len(n.split()) > _HEADER_MAX_WORDS), None)


def _no_header_message(path: Path, names) -> str:
    first = _data_as_header(path, names)
    return (f"{path} seems to have no header row: its first line reads like data (a column named "
            f"{_short(first)!r}); add a first line naming the columns, such as `text` (or `text,label`), "
            "or, if that line is the header, pass --text-field with the text column's name")


def _short(name: str, limit: int = 40) -> str:
    name = " ".join(str(name).split())
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _field_list(names) -> str:
    return ", ".join(repr(_short(n)) for n in names)


def _is_string_column(values: list) -> bool:
    present = [v for v in values if not _missing(v)]
    if not present or not all(isinstance(v, str) for v in present):
        return False
    return not all(_looks_numeric(v) for v in present)  # CSV numbers arrive as strings


def _as_text(value, i: int, field: str, path: Path, where) -> str | None:
    """One cell as a string, ``None`` when missing; an error naming the row for non-scalars."""
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_, complex)):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    raise _not_scalar(value, i, field, path, where, "text")


def _not_scalar(value, i: int, field: str, path: Path, where, wanted: str) -> SaetmError:
    kind = "list" if isinstance(value, (list, tuple, np.ndarray)) else type(value).__name__
    return SaetmError(
        f"{_row(i, where)} of field {field!r} in {path} holds a {kind} ({_preview(value)}), not {wanted}; "
        "fix that row or choose another field"
    )


def _check_ids(path: Path, field: str, ids: list, keep: list[int], where) -> None:
    seen: dict[str, int] = {}
    for i, doc_id in zip(keep, ids):
        if doc_id is None:
            raise SaetmError(f"{_row(i, where)} of {path} has no {field!r}; every document needs an id (or leave out --id-field)")
        if doc_id in seen:
            raise SaetmError(f"id {doc_id!r} appears in {_row(seen[doc_id], where)} and {_row(i, where)} of {path}; ids must be unique")
        seen[doc_id] = i


def _parse_dates(values: list) -> tuple[list, str]:
    present = [v for v in values if not _missing(v)]
    if not present:
        return [None] * len(values), "label"
    if all(_looks_numeric(v) and not isinstance(v, bool) for v in present):
        out = [None if _missing(v) else _to_number(v) for v in values]
        from saetm.analysis.time import _epoch_timestamps

        stamps = _epoch_timestamps(pd.Series([v for v in out if v is not None], dtype=float))
        if stamps is None:
            return out, "number"
        it = iter(stamps.tolist())  # Unix timestamps, not years: stored as the dates they are
        return [None if v is None else next(it) for v in out], "datetime"
    if not all(isinstance(v, (str, datetime.date, np.datetime64)) for v in present):
        return [None if _missing(v) else v for v in values], "label"  # numbers mixed with text: pandas would read epochs
    for kwargs in ({}, {"format": "mixed"}, {"format": "mixed", "utc": True}):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "could not infer format" is expected for mixed input
                parsed = pd.to_datetime(pd.Series(present, dtype=object), **kwargs)
        except (ValueError, TypeError, OverflowError):
            continue
        if parsed.isna().any():
            continue
        it = iter(parsed.tolist())
        return [None if _missing(v) else next(it) for v in values], "datetime"
    return [None if _missing(v) else v for v in values], "label"


def _image_ref(value, path: Path):
    if _missing(value):
        return None
    if isinstance(value, str):
        p = Path(value)
        return str(p if p.is_absolute() or "://" in value else path.parent / p)
    return value  # bytes or other inline image data, left to the image encoder


def _blank(value) -> bool:
    return _missing(value) or (isinstance(value, str) and not value.strip())


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _looks_numeric(value) -> bool:
    if isinstance(value, numbers.Number):
        return not isinstance(value, complex)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _to_number(value):
    if isinstance(value, str):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def _row(i: int, where: list[int] | None) -> str:
    return f"row {i} (line {where[i]})" if where else f"row {i}"


def _preview(value, width: int = 40) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _preview_list(xs: list[int], k: int = 10) -> str:
    return ", ".join(map(str, xs[:k])) + (", ..." if len(xs) > k else "")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _json_type(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


