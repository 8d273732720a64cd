"""The document file formats :func:`saetm.io.readers.read_documents` reads, each as columns.

UTF-8 text (``_decode``), JSON Lines, JSON, CSV/TSV, Parquet and folders of ``.txt`` files;
each parser returns ``{column: values}`` with one value per row, or raises a one-line
:class:`~saetm.errors.SaetmError` naming the line or row.
"""

from __future__ import annotations

import io
import json
import warnings
from array import array
from pathlib import Path

import numpy as np
import pandas as pd

from saetm.errors import SaetmError
from saetm.io.values import _json_type, _one_line


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


def _read_jsonl(path: Path, lazy_field: str | None = None):
    """One JSON object per line, read line by line: memory holds the values, never the file
    (nor a dict per row); columns in first-seen order, ``None`` where a row lacks a field.

    ``lazy_field``: that field's values are checked as texts (``_as_text``) but not kept;
    its column is a :class:`saetm.io.lazy_texts.JsonlTexts` over all rows (empty texts
    and rows without the field: offset -1)."""
    columns: dict[str, list] = {}
    lines: list[int] = []
    offset = 0
    if lazy_field is not None:
        from saetm.io.values import _as_text

        starts, lengths = array("q"), array("q")
        seen = False
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
            if lazy_field is not None:
                seen = seen or lazy_field in record
                text = _as_text(record.pop(lazy_field, None), len(lines), lazy_field, path, {len(lines): number})
                starts.append(offset - len(raw) if text is not None and text.strip() else -1)
                lengths.append(len(text) if text is not None and text.strip() else 0)
            for key in record:
                if key not in columns:
                    columns[key] = [None] * len(lines)
            for key, values in columns.items():
                values.append(record.get(key))
            lines.append(number)
    if lazy_field is not None and seen:
        from saetm.io.lazy_texts import JsonlTexts

        columns[lazy_field] = JsonlTexts(path, lazy_field, np.frombuffer(starts, np.int64), np.frombuffer(lengths, np.int64))
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


