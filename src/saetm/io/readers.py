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

import logging
from pathlib import Path

import numpy as np

from saetm.errors import SaetmError
from saetm.io.datasets import Corpus
from saetm.io.embeddings import EMBEDDING_FORMATS, read_embeddings  # noqa: F401  (saetm.io.readers API)
from saetm.io.formats import (_decode, _read_delimited, _read_json, _read_jsonl, _read_parquet,  # noqa: F401
                              _read_txt_folder, _records_to_columns, txt_folder_files)
from saetm.io.values import (TEXT_FIELD_NAMES, _as_text, _blank, _check_field, _check_ids,  # noqa: F401
                             _detect_text_field, _image_ref, _not_scalar, _one_line, _parse_dates, _preview_list)

log = logging.getLogger(__name__)

DOCUMENT_FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt")


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
    lazy_text: bool = False,
) -> Corpus:
    """Read documents from ``.jsonl``/``.ndjson``/``.json``/``.csv``/``.tsv``/``.parquet``/``.txt``
    or a folder of ``.txt`` files (one document per file, id = file name).

    ``text_field=None`` picks a column named text/content/body/document/abstract, else
    the only string column. ``image_field`` values go to ``extra["images"]`` (relative
    paths resolved against the file's folder). See the module docstring for the rules.

    ``lazy_text``: for a JSON Lines file whose text field is ``text_field`` or, when that is
    None, ``"text"`` in its first object, ``corpus.texts`` is a
    :class:`~saetm.io.lazy_texts.JsonlTexts`: the texts are checked but not kept, and read
    again from the file when used (other files: ignored).
    """
    path = Path(path)
    if not path.exists():
        raise SaetmError(f"{path} does not exist; check the path")
    columns, n_rows, default_ids, where = _read_columns(path, _lazy_field(path, text_field) if lazy_text else None)
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
    lazy = columns[text_field] if getattr(columns[text_field], "lazy", False) else None
    if lazy is not None:  # checked as it was read; blank texts have no offset
        keep = np.flatnonzero(lazy.nonblank()).tolist()
        skipped = np.flatnonzero(~lazy.nonblank()).tolist()
        texts = lazy.take(keep)
    for i, value in enumerate(columns[text_field] if lazy is None else ()):
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


def _lazy_field(path: Path, text_field: str | None) -> str | None:
    """The field a lazy read leaves in the file: ``text_field``, else ``"text"`` when the
    first object has it (it is then the field the reader picks); None: read eagerly."""
    if path.is_dir() or path.suffix.lower() not in (".jsonl", ".ndjson"):
        return None
    if text_field is not None:
        return text_field
    from saetm.io.lazy_texts import first_record_fields

    return TEXT_FIELD_NAMES[0] if TEXT_FIELD_NAMES[0] in first_record_fields(path) else None


def _read_columns(path: Path, lazy_field: str | None = None) -> tuple[dict[str, list], int, list[str] | None, list[int] | None]:
    """Return ``(columns, n_rows, default_ids, line_of_row)``; every column has ``n_rows`` values
    (``lazy_field``: a JSON Lines file's texts left in the file, :func:`_read_jsonl`)."""
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
        return _read_jsonl(path, lazy_field)
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


