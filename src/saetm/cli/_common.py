"""Helpers shared by the ``saetm`` commands: argument types, the parser class, input alignment, printing."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from saetm.errors import SaetmError

log = logging.getLogger("saetm")
DEMO_OUT = "saetm-demo"


def _refuse_existing(out: Path, overwrite: bool, inputs=()) -> None:
    from saetm.model_files import check_output_dir

    check_output_dir(out, overwrite, inputs)


def _aligned(corpus):
    """Texts and metadata with one entry per input row: the reader skips empty rows,
    but outputs (and precomputed embeddings) are aligned with the input file, so
    skipped rows come back as empty documents, which get no topic."""
    rows = list(corpus.extra.get("row_index", range(len(corpus))))
    skipped = list(corpus.extra.get("skipped_rows", []))
    n = max(rows + skipped, default=-1) + 1
    if not skipped and rows == list(range(n)):
        return corpus.texts, {"ids": corpus.ids, "dates": corpus.dates, "labels": corpus.labels}
    # (the reader has already logged how many rows it skipped)
    def spread(values, fill):
        if values is None:
            return None
        out = [fill(i) for i in range(n)]
        for r, v in zip(rows, values):
            out[r] = v
        return out

    texts = corpus.texts.placed(n, rows) if getattr(corpus.texts, "lazy", False) else spread(corpus.texts, lambda i: "")
    return texts, {
        "ids": spread(corpus.ids, str) or [str(i) for i in range(n)],
        "dates": spread(corpus.dates, lambda i: None),
        "labels": spread(corpus.labels, lambda i: None),
    }


def _read_embeddings_for(n_rows: int, path):
    if path is None:
        return None
    from saetm.io.readers import read_embeddings

    return read_embeddings(path, n_rows=n_rows, mmap=True)  # read a block at a time by the fit


def _print_topics(model, n_words: int) -> None:
    from saetm.topic_table import print_table

    print_table(model.get_topic_info(n_words=n_words).to_dict("records"))


def _must_exist(documents, embeddings=None) -> None:
    """The readers' messages for missing files, without the readers' imports."""
    for what, path in (("", documents), ("embeddings file ", embeddings)):
        if path is not None and not Path(path).exists():
            raise SaetmError(f"{what}{path} does not exist; check the path")


def _fit_summary(model, out) -> str:
    """One line after a fit: documents, seconds per stage, where the model is."""
    rep = model.fit_report_
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in rep.seconds.items())
    return f"fitted {rep.n_documents} documents ({secs}); model in {out}/"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like every other saetm error
        message = " ".join(str(message).split())
        print(f"saetm: error: {message}; see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(2)

