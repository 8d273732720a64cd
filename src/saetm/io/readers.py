"""Read users' documents and embeddings, checking them once at the boundary.

``read_documents`` turns a file (or a folder of ``.txt`` files) into a
:class:`~saetm.io.datasets.Corpus`; ``read_embeddings`` loads a validated
``(n, d)`` float32 array. Anything wrong with the input raises
:class:`~saetm.errors.SaetmError` with one line saying what and what to do.

Rules shared by every document format
-------------------------------------
* Rows are numbered from 0 in input order: one JSON object (blank JSONL lines are
  not rows; errors also give the file's line number), one CSV/TSV/Parquet record
  (CSV/TSV need a header row), one ``.txt`` line, one file of a folder (sorted by
  name, hidden files ignored, id = file name). Empty documents (missing,
  NaN, ``""`` or whitespace only) are skipped with a logged count; the numbers of
  the kept rows are in ``corpus.extra["row_index"]`` and of the skipped ones in
  ``corpus.extra["skipped_rows"]``, so outputs can be aligned with the input.
  Default ids are those row numbers as strings.
* Text values that are numbers become strings (``3`` → ``"3"``; a whole float
  ``3.0`` → ``"3"``, since pandas turns integer columns with gaps into floats);
  booleans, dicts, lists, bytes and timestamps are an error naming the row.
  CSV/TSV cells are read verbatim as strings (``"NA"``, ``"007"`` stay as written).
* Labels and ids are turned into strings the same way; ids must be unique.
* Dates are kept raw unless they parse: all-numeric values (e.g. years) are kept
  as numbers, unless all are above 10^8: Unix timestamps (seconds; milliseconds above
  10^11, see ``saetm.analysis.time.assign_periods``) become ``pd.Timestamp`` objects
  and the reading is logged; otherwise pandas ``to_datetime`` is tried (month first when
  ambiguous) and, when every value parses, ``pd.Timestamp`` objects are stored;
  else the raw strings are kept as ordered labels (mixed UTC offsets are converted
  to UTC; numbers mixed with text are labels). ``extra["date_kind"]`` says
  which: ``"datetime"``, ``"number"`` or ``"label"``. Missing dates are ``None``.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import math
import numbers
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from saetm._memory import release_pages
from saetm.errors import SaetmError
from saetm.io.datasets import Corpus

log = logging.getLogger(__name__)

DOCUMENT_FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt")
EMBEDDING_FORMATS = (".npy", ".npz")
TEXT_FIELD_NAMES = ("text", "content", "body", "document", "abstract")


# ---------------------------------------------------------------------------------------------
# documents


def read_documents(
    path,
    *,
    text_field: str | None = None,
    id_field: str | None = None,
    date_field: str | None = None,
    label_field: str | None = None,
    image_field: str | None = None,
) -> Corpus:
    """Read documents from ``.jsonl``/``.ndjson``/``.json``/``.csv``/``.tsv``/``.parquet``/``.txt``
    or a folder of ``.txt`` files (one document per file, id = file name).

    ``text_field=None`` picks a column named text/content/body/document/abstract, else
    the only string column. ``image_field`` values go to ``extra["images"]`` (relative
    paths resolved against the file's folder). See the module docstring for the rules.
    """
    path = Path(path)
    if not path.exists():
        raise SaetmError(f"{path} does not exist; check the path")
    columns, n_rows, default_ids, where = _read_columns(path)
    if n_rows == 0:
        raise SaetmError(f"{path} contains no documents; give a file with at least one row")
    available = list(columns)
    for flag, name in (("id", id_field), ("date", date_field), ("label", label_field), ("image", image_field)):
        _check_field(path, name, available, flag)
    if text_field is None:
        text_field = _detect_text_field(path, columns)
    else:
        _check_field(path, text_field, available, "text")

    texts, keep, skipped = [], [], []
    for i, value in enumerate(columns[text_field]):
        text = _as_text(value, i, text_field, path, where)
        if text is None or not text.strip():
            skipped.append(i)
        else:
            texts.append(text)
            keep.append(i)
    if not keep:
        raise SaetmError(f"all {n_rows} documents in field {text_field!r} of {path} are empty; check the file or pass --text-field")
    if skipped:
        log.warning("skipped %d empty documents of %d in %s (rows %s)", len(skipped), n_rows, path, _preview_list(skipped))

    # metadata cells that are blank (CSV has no other way to say "missing") count as missing
    pick = lambda name: [None if _blank(columns[name][i]) else columns[name][i] for i in keep]  # noqa: E731
    if id_field is not None:
        ids = [_as_text(v, i, id_field, path, where) for i, v in zip(keep, pick(id_field))]
        _check_ids(path, id_field, ids, keep, where)
    else:
        ids = [default_ids[i] for i in keep] if default_ids else [str(i) for i in keep]
    labels = None
    if label_field is not None:
        labels = [_as_text(v, i, label_field, path, where) for i, v in zip(keep, pick(label_field))]
    extra = {"source": str(path), "text_field": text_field, "row_index": keep, "skipped_rows": skipped}
    dates = None
    if date_field is not None:
        for i, v in zip(keep, pick(date_field)):
            if isinstance(v, (dict, list, tuple, np.ndarray, bytes)):
                raise _not_scalar(v, i, date_field, path, where, "a date")
        dates, extra["date_kind"] = _parse_dates(pick(date_field))
    if image_field is not None:
        extra["images"] = [_image_ref(v, path) for v in pick(image_field)]
    return Corpus(texts=texts, labels=labels, dates=dates, ids=ids, name=path.stem, extra=extra)


def _read_columns(path: Path) -> tuple[dict[str, list], int, list[str] | None, list[int] | None]:
    """Return ``(columns, n_rows, default_ids, line_of_row)``; every column has ``n_rows`` values."""
    if path.is_dir():
        return _read_txt_folder(path)
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_FORMATS:
        raise SaetmError(
            f"{path} has unsupported extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(DOCUMENT_FORMATS)} or a folder of .txt files"
        )
    if path.stat().st_size == 0:
        raise SaetmError(f"{path} is empty; give a file with at least one document")
    if suffix == ".parquet":
        return _read_parquet(path) + (None, None)
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    text = _decode(path.read_bytes(), path)
    if suffix == ".json":
        records = _read_json(text, path)
        return _records_to_columns(records, path), len(records), None, None
    if suffix == ".txt":
        lines = text.split("\n")
        if lines[-1] == "":  # a final newline ends the last line; it does not start a new one
            lines.pop()
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        return {"text": lines}, len(lines), None, None
    return _read_delimited(text, path, "\t" if suffix == ".tsv" else ",") + (None, None)


def _decode(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise SaetmError(
            f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset {e.start}, line {line}); "
            "re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in > out`"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text  # drop a byte-order mark


def txt_folder_files(folder: Path) -> list[Path]:
    """The documents of a folder: its ``.txt`` files, sorted by name, hidden ones left out."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file() and not p.name.startswith("."))


def _read_txt_folder(folder: Path):
    files = txt_folder_files(folder)
    if not files:
        raise SaetmError(f"folder {folder} contains no .txt files; put one document per .txt file there")
    texts = [_decode(p.read_bytes(), p) for p in files]
    names = [p.name for p in files]
    return {"id": names, "text": texts}, len(files), names, None


def _read_jsonl(path: Path):
    """One JSON object per line, read line by line: memory holds the values, never the file
    (nor a dict per row); columns in first-seen order, ``None`` where a row lacks a field."""
    columns: dict[str, list] = {}
    lines: list[int] = []
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):  # split at b"\n" only: JSON strings may hold U+2028
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise SaetmError(
                    f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset {offset + e.start}, line {number}); "
                    "re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in > out`"
                ) from None
            offset += len(raw)
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]  # a byte-order mark
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as e:
                raise SaetmError(f"{path} line {number} is not valid JSON ({_one_line(e)}); fix or remove that line") from None
            if not isinstance(record, dict):
                raise SaetmError(f"{path} line {number} is a JSON {_json_type(record)}, not an object; write one {{...}} object per line")
            for key in record:
                if key not in columns:
                    columns[key] = [None] * len(lines)
            for key, values in columns.items():
                values.append(record.get(key))
            lines.append(number)
    if not lines:
        raise SaetmError(f"{path} holds no JSON objects, only blank lines; give one document per line")
    if not columns:
        raise SaetmError(f"{path} holds only empty objects; give each document a text field")
    return columns, len(lines), None, lines


def _read_json(text: str, path: Path) -> list[dict]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise SaetmError(f"{path} is not valid JSON ({_one_line(e)}); fix the file or use .jsonl with one object per line") from None
    if isinstance(data, list) and all(isinstance(d, str) for d in data):
        return [{"text": d} for d in data]  # a plain list of strings is a list of documents
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise SaetmError(f"{path} must hold a JSON list of objects, one per document, e.g. [{{\"text\": \"...\"}}]")
    return data


def _records_to_columns(records: list[dict], path: Path) -> dict[str, list]:
    names = list(dict.fromkeys(k for r in records for k in r))  # first-seen order
    if not names and records:
        raise SaetmError(f"{path} holds only empty objects; give each document a text field")
    return {k: [r.get(k) for r in records] for k in names}


def _read_delimited(text: str, path: Path, sep: str) -> tuple[dict[str, list], int]:
    kind = "TSV" if sep == "\t" else "CSV"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # pandas would drop extra cells silently
            df = pd.read_csv(
                io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                index_col=False, skip_blank_lines=False, engine="c",
            )
    except pd.errors.EmptyDataError:
        raise SaetmError(f"{path} has no header row; the first line must name the columns") from None
    except Exception as e:  # pandas' parser raises several types for malformed input
        raise SaetmError(f"{path} is not a readable {kind} file ({_one_line(e)}); check its quoting and delimiters") from None
    return {str(c): df[c].tolist() for c in df.columns}, len(df)


def _read_parquet(path: Path) -> tuple[dict[str, list], int]:
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises its own error types for corrupt files
        raise SaetmError(f"{path} is not a readable Parquet file ({_one_line(e)}); re-export it") from None
    return {str(c): df[c].tolist() for c in df.columns}, len(df)


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


# ---------------------------------------------------------------------------------------------
# embeddings


def read_embeddings(path, *, n_rows: int | None = None, dim: int | None = None, mmap: bool = False) -> np.ndarray:
    """Load embeddings ``(n, d)`` float32 from ``.npy`` (or a ``.npz`` holding one array).

    Never unpickles (``allow_pickle=False``). ``n_rows``/``dim``, when given, must match.
    Integer and other float dtypes are converted to float32. ``mmap=True`` memory-maps a
    ``.npy`` file (no copy when it is already float32; ignored for ``.npz``).
    """
    path = Path(path)
    if not path.exists():
        raise SaetmError(f"embeddings file {path} does not exist; check the path")
    if path.is_dir() or path.suffix.lower() not in EMBEDDING_FORMATS:
        raise SaetmError(f"{path} is not a .npy or .npz file; save embeddings with numpy.save(path, array)")
    arr = _load_npy(path, mmap) if path.suffix.lower() == ".npy" else _load_npz(path)

    if arr.ndim != 2:
        hint = " (one document? reshape to (1, -1))" if arr.ndim == 1 else ""
        raise SaetmError(f"embeddings in {path} must be a 2-D array (n_documents, dim) but have shape {arr.shape}{hint}")
    if arr.dtype.kind not in "iuf":
        raise SaetmError(f"embeddings in {path} have dtype {arr.dtype}, not numbers; save a float32 array")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SaetmError(f"embeddings in {path} are empty (shape {arr.shape}); recompute them")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise SaetmError(f"embeddings have {arr.shape[0]} rows but there are {n_rows} documents; recompute them for these documents")
    if dim is not None and arr.shape[1] != dim:
        raise SaetmError(f"embeddings have {arr.shape[1]} columns but the SAE expects {dim}; use embeddings from the same encoder")
    converted = arr.dtype != np.float32
    if converted:
        with np.errstate(over="ignore"):  # values too large for float32 become inf and are reported below
            arr = arr.astype(np.float32)
    _check_finite(arr, path, converted)
    return arr


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
        except Exception:  # numpy raises ValueError/EOFError/SyntaxError for bad headers
            raise SaetmError(f"{path} is not a valid .npy file (bad or missing header); re-save it with numpy.save") from None
        offset = f.tell()
    if dtype.hasobject:
        raise SaetmError(f"{path} holds Python objects (dtype object); saetm loads with allow_pickle=False, save a float32 array instead")
    expected = offset + math.prod(shape) * dtype.itemsize  # Python ints: a forged header cannot overflow
    size = path.stat().st_size
    if size < expected:
        raise SaetmError(
            f"{path} is truncated: its header says shape {shape} {dtype} ({expected} bytes) but the file has {size} bytes; re-save it"
        )
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:
        raise SaetmError(f"{path} is not a valid .npy file ({_one_line(e)}); re-save it with numpy.save") from None


def _load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if len(keys) != 1 and "embeddings" not in keys:
                raise SaetmError(
                    f"{path} holds {len(keys)} arrays ({', '.join(keys[:5])}); save one array, or name it 'embeddings'"
                )
            return npz["embeddings" if "embeddings" in keys else keys[0]]
    except SaetmError:
        raise
    except ValueError as e:
        if "pickle" in str(e) or "object" in str(e):
            raise SaetmError(f"{path} holds Python objects (dtype object); saetm loads with allow_pickle=False, save a float32 array instead") from None
        raise SaetmError(f"{path} is not a valid .npz file ({_one_line(e)}); re-save it with numpy.savez") from None
    except Exception as e:  # corrupt archives fail in many ways (BadZipFile, zlib.error, EOFError, ...)
        raise SaetmError(f"{path} is not a valid .npz file ({_one_line(e)}); re-save it with numpy.savez") from None


def _check_finite(arr: np.ndarray, path: Path, converted: bool, block: int = 65536) -> None:
    """Count rows holding NaN/inf, block by block so a memory-mapped file is not loaded at once."""
    bad_rows, first = 0, None
    for start in range(0, arr.shape[0], block):
        bad = ~np.isfinite(arr[start : start + block]).all(axis=1)
        release_pages(arr)
        if bad.any():
            bad_rows += int(bad.sum())
            first = start + int(np.argmax(bad)) if first is None else first
    if bad_rows:
        raise SaetmError(
            f"embeddings in {path} have NaN or infinite values{' (or values too large for float32)' if converted else ''} "
            f"in {bad_rows} rows (first: row {first}); recompute or drop those rows"
        )
