"""Which input a model was fitted on, so that ``saetm evaluate`` can re-read the full texts.

A saved model keeps its documents cut to 1,000 characters, too short for NPMI / C_V.
``saetm fit`` records the input's absolute path, the text field it read and a SHA-256 of
its content in ``model.json`` (``"input"``); :func:`read_fitted_texts` reads that input
again only when its content is still the same.
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


def checked_record(value) -> dict | None:
    """``value`` when it is a usable input record, else None (models saved without one,
    or a hand-edited file, load as before)."""
    if (isinstance(value, dict) and isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str)
            and isinstance(value.get("text_field"), (str, type(None)))):
        return value
    return None


def read_fitted_texts(record: dict, why: str) -> list[str]:
    """The texts of the recorded input, after checking it is unchanged.

    ``why`` begins the error message, saying what the texts were needed for; the
    message then says whether the input moved or changed and to pass ``--reference``."""
    from saetm.io.readers import read_documents

    path = Path(record["path"])
    if not path.exists():
        problem = f"the input it was fitted on, {path}, is no longer there"
    elif content_sha256(path) != record["sha256"]:
        problem = f"the input it was fitted on, {path}, has changed since `saetm fit`"
    else:
        log.info("reference corpus for NPMI / C_V: %s, the input the model was fitted on (unchanged since)", path)
        return read_documents(path, text_field=record.get("text_field")).texts
    raise SaetmError(f"{why}, and {problem}; give the full corpus with --reference INPUT "
                     "(Python: evaluate(reference=texts))")
