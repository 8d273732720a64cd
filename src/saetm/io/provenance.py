"""Which input a model was fitted on, so that ``saetm evaluate`` can re-read the full texts.

A saved model keeps its documents cut to 1,000 characters, too short for NPMI / C_V.
``saetm fit`` records the input's absolute path, the text field it read and a SHA-256 of
its content in ``model.json`` (``"input"``); :func:`read_fitted_texts` reads that input
again only when its content is still the same. With ``saetm fit --holdout`` the record
also keeps ``"holdout"`` (see :mod:`saetm.evaluation.holdout`): the input rows the model
was not fitted on, which :func:`read_fitted_texts` leaves out and
:func:`read_heldout_texts` returns.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from saetm.errors import SaetmError

log = logging.getLogger("saetm")

_CHUNK = 1 << 20


def content_sha256(path) -> str:
    """SHA-256 of a file's bytes, or for a folder of ``.txt`` files (what the reader takes
    from it: sorted, hidden files left out) of each file's name and content in turn."""
    path = Path(path)
    h = hashlib.sha256()
    if not path.is_dir():
        _update(h, path)
        return h.hexdigest()
    from saetm.io.readers import txt_folder_files

    for p in txt_folder_files(path):
        name = p.name.encode("utf-8", "surrogateescape")
        # lengths first, so that no two different folders give the same stream
        h.update(len(name).to_bytes(8, "little") + name + p.stat().st_size.to_bytes(8, "little"))
        _update(h, p)
    return h.hexdigest()


def _update(h, path: Path) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)


def input_record(path) -> dict:
    """Where a document input is and what it holds: ``{"path": absolute, "sha256"}``; the
    caller adds the ``"text_field"`` it was read with."""
    path = Path(path).resolve()
    return {"path": str(path), "sha256": content_sha256(path)}


def checked_record(value, where: str = "model.json") -> dict | None:
    """``value`` when it is a usable input record, else None (models saved without one,
    or a hand-edited file, load as before). A ``"holdout"`` entry that is not a held-out
    record refuses to load, in one line: evaluating as if nothing were held out would
    score the fitted documents as held-out ones."""
    if (isinstance(value, dict) and isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str)
            and isinstance(value.get("text_field"), (str, type(None)))):
        if value.get("holdout") is not None:
            from saetm.evaluation.holdout import checked_holdout

            checked_holdout(value["holdout"], f"{where}: input.holdout")
        return value
    return None


def read_fitted_texts(record: dict, why: str) -> list[str]:
    """The texts of the recorded input the model was fitted on (all of them, or those
    not held out), after checking the input is unchanged.

    ``why`` begins the error message, saying what the texts were needed for; the
    message then says whether the input moved or changed and to pass ``--reference``."""
    texts = _read_input(record, why)
    held = set((record.get("holdout") or {}).get("rows", ()))
    return [t for i, t in enumerate(texts) if i not in held] if held else texts


def read_heldout_texts(record: dict, why: str) -> list[str]:
    """The texts of the input rows ``saetm fit --holdout`` held out (see
    :func:`read_fitted_texts` for the checks and ``why``)."""
    texts = _read_input(record, why, "put the input back as it was to score the held-out documents, or "
                        "evaluate them yourself (Python: evaluate(reference=held_out_texts))",
                        what="held-out documents for npmi_heldout / cv_heldout: the rows `saetm fit --holdout` "
                        "left out of")
    rows = record["holdout"]["rows"]
    if rows and rows[-1] >= len(texts):
        raise SaetmError(f"{why}, but the input {record['path']} has {len(texts)} rows and the held-out record names "
                         f"row {rows[-1]}; the model file was edited, re-run `saetm fit --holdout`")
    return [texts[i] for i in rows]


def _read_input(record: dict, why: str, advice: str = "give the full corpus with --reference INPUT "
                "(Python: evaluate(reference=texts))",
                what: str = "reference corpus for NPMI / C_V:") -> list[str]:
    """The recorded input's texts, one per input row as ``saetm fit`` numbered them
    (rows the reader skips, e.g. empty ones, are empty texts)."""
    from saetm.io.readers import read_documents

    path = Path(record["path"])
    if not path.exists():
        problem = f"the input it was fitted on, {path}, is no longer there"
    elif content_sha256(path) != record["sha256"]:
        problem = f"the input it was fitted on, {path}, has changed since `saetm fit`"
    else:
        log.info("%s %s, the input the model was fitted on (unchanged since)", what, path)
        corpus = read_documents(path, text_field=record.get("text_field"))
        rows = list(corpus.extra.get("row_index", range(len(corpus))))
        texts = [""] * (max(rows + list(corpus.extra.get("skipped_rows", [])), default=-1) + 1)
        for r, t in zip(rows, corpus.texts):
            texts[r] = t
        return texts
    raise SaetmError(f"{why}, and {problem}; {advice}")
