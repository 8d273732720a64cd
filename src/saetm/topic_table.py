"""``saetm topics`` without loading the model: the table read from ``topics.json``, when
that file is provably the one written with the model as it is now on disk.

Saving records a seal in ``model.json``: a digest of ``topics.json``, of ``model.json``
itself and of the size and modification time of every other file that loading reads.
A directory whose seal matches is unchanged since it was written, so the table in
``topics.json`` is what ``SAETM.load(DIR).get_topic_info()`` lists (its prevalence and
coverage are written as float32, as the model stores them, and the coherent ranking lists
a prefix of its 25 words for any shorter length). Anything else — an edited, copied or
damaged file, another word ranking, more than 25 words — falls back to loading the model,
which checks everything. Reads only JSON: nothing heavy is imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from saetm._version import FORMAT_VERSION

log = logging.getLogger("saetm")
SEAL = "topics_seal"
TABLE_WORDS = 25  # words per topic in topics.json (model_files.topics_json)
# what loading reads besides model.json and topics.json (whose contents are sealed)
STATED = ["vocab.json", "state.safetensors", "sae/sae.safetensors", "sae/sae.json", "documents.parquet",
          "topics.safetensors", "doc_topics.npz"]


def _canonical(info: dict) -> bytes:
    return json.dumps({k: v for k, v in info.items() if k != SEAL}, sort_keys=True, ensure_ascii=False).encode()


def _digest(info: dict, table: bytes, locate) -> str:
    h = hashlib.sha256(_canonical(info))
    h.update(hashlib.sha256(table).digest())
    for name in STATED:
        try:
            st = os.stat(locate(name))
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
        except FileNotFoundError:
            h.update(f"{name}:-;".encode())
    return h.hexdigest()


def sealed(info: dict, stage: Path, directory: Path | None = None) -> dict:
    """``info`` (the contents of model.json) with the seal of the files staged in ``stage``;
    files not staged there are taken from ``directory`` (None: they will not exist)."""
    info = json.loads(json.dumps(info, ensure_ascii=False))  # as it will read back
    info.pop(SEAL, None)

    def locate(name):
        staged = stage / name
        return staged if staged.exists() or directory is None else directory / name

    info[SEAL] = _digest(info, (stage / "topics.json").read_bytes(), locate)
    return info


def _sealed_files(directory: Path) -> tuple[dict, bytes] | None:
    """(model.json parsed, topics.json's bytes) of ``directory`` when its seal holds, else None."""
    try:
        info = json.loads((directory / "model.json").read_bytes())
        table = (directory / "topics.json").read_bytes()
    except (OSError, ValueError, RecursionError):
        return None
    if not (isinstance(info, dict) and isinstance(info.get(SEAL), str)
            and _digest(info, table, lambda name: directory / name) == info[SEAL]):
        return None
    return info, table


def seal_holds(directory: str | os.PathLike) -> bool:
    """Whether every file of ``directory`` that loading reads is as saetm last wrote it (the
    seal in ``model.json`` matches): then ``documents.parquet``, checked when it was written,
    need not be read again by commands that do not use the texts (``retopic``, ``transform``)."""
    return _sealed_files(Path(directory)) is not None


def saved_topics(directory: str | os.PathLike, n_words: int) -> tuple[dict, dict] | None:
    """(model.json, topics.json) of ``directory`` when its seal holds and the table can give
    ``n_words`` words per topic exactly as the loaded model would; otherwise None."""
    files = _sealed_files(Path(directory))
    if files is None:
        return None
    info, table = files
    try:
        topics = json.loads(table)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(topics, dict) and info.get("format") == "saetm-model"
            and info.get("format_version") == FORMAT_VERSION):
        return None
    words = info["params"].get("words") if isinstance(info.get("params"), dict) else None
    if not isinstance(words, dict) or words.get("ranking") != "coherent" or not 1 <= n_words <= TABLE_WORDS:
        return None
    return info, topics


def print_saved_topics(directory, n_words: int, as_json: bool = False) -> bool:
    """Print the topic table (or, with ``as_json``, ``topics_json(model, n_words)``) from the
    sealed ``topics.json``; False, printing nothing, when the model must be loaded instead."""
    found = saved_topics(directory, n_words)
    if found is None:
        return False
    _, table = found
    rows = table["topics"]
    if as_json:
        cut = {"n_topics": table["n_topics"],
               "topics": [{**t, **{k: t[k][:n_words] for k in ("words", "weights", "scores") if k in t}}
                          for t in rows]}
        print(json.dumps(cut, indent=2, ensure_ascii=False))
        return True
    print_table([{"topic": t["id"], "prevalence": t["prevalence"], "coverage": t["coverage"],
                  "n_atoms": t["n_atoms"], "top_words": ", ".join(t["words"][:n_words])} for t in rows])
    return True


def model_rows(model, n_words: int) -> list[dict]:
    """The rows :func:`print_table` shows of a fitted model, as ``model.get_topic_info(n_words)``
    gives them, without building a DataFrame (nor importing pandas)."""
    words, _ = model._top_words(n_words)
    t = model.topics_
    return [{"topic": c, "prevalence": float(t.prevalence[c]), "coverage": float(model.coverage_[c]),
             "n_atoms": int(t.n_atoms[c]), "top_words": ", ".join(words[c])} for c in range(model.n_topics)]


def print_table(rows: list[dict]) -> None:
    """The topic table every command prints: rows of ``get_topic_info`` (as dicts)."""
    print(f"{'topic':>5}  {'prev':>5}  {'cover':>5}  {'atoms':>5}  top words")
    for row in rows:
        print(f"{row['topic']:>5}  {row['prevalence']:5.3f}  {row['coverage']:5.3f}  {row['n_atoms']:>5}  "
              f"{row['top_words']}")


def check_exports(directory: Path, n_topics: int, n_docs: int) -> None:
    """``topics.json`` and ``doc_topics.npz`` are for other tools and never read back; say
    when they disagree with the model (e.g. a ``saetm retopic`` killed while renaming)."""
    import numpy as np

    try:
        exported = json.loads((directory / "topics.json").read_bytes()).get("n_topics")
        with np.load(directory / "doc_topics.npz", allow_pickle=False) as z:
            shape = tuple(int(x) for x in z["shape"])
        ok = exported == n_topics and shape == (n_docs, n_topics)
    except Exception:  # missing or corrupt: the same advice
        ok = False
    if not ok:
        log.warning("%s: topics.json or doc_topics.npz do not match the model's %d topics; run "
                    "`saetm retopic %s --topics %d` to rewrite them", directory, n_topics, directory, n_topics)
