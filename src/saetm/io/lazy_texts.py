"""The texts of a JSON Lines file, read from the file when they are used.

``saetm fit`` on a ``.jsonl`` file reads every row once (checking it as
:func:`saetm.io.readers.read_documents` does) but keeps, for the text field, only where
each row's line starts and how long its text is: a :class:`JsonlTexts` is then the
sequence of texts, decoded again a block of lines at a time whenever the fit goes
through them (counting the words; a large corpus's model keeps them as :class:`CutTexts`,
read again when saved). Memory holds 16 bytes per row instead of the texts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saetm.errors import SaetmError


class JsonlTexts(Sequence):
    """Text ``i`` is the ``field`` of the JSON object on the line at byte ``offsets[i]``
    of ``path`` (converted as the reader converts it: numbers become strings), ``""`` where
    the offset is -1 (an empty document). ``lengths[i]``: its number of characters.
    ``stamp``: the file's size and modification time when it was read; every read checks
    them, and each text's length, so that a file changed since is an error, not other texts."""

    lazy = True

    def __init__(self, path, field: str, offsets: np.ndarray, lengths: np.ndarray, stamp: tuple | None = None):
        self.path, self.field = Path(path), field
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.stamp = _stamp(self.path) if stamp is None else stamp

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def total_chars(self) -> int:
        """Characters of all texts."""
        return int(self.lengths.sum())

    def nonblank(self) -> np.ndarray:
        """Which texts are not empty (the reader keeps no text of only white space)."""
        return self.offsets >= 0

    def take(self, rows) -> "JsonlTexts":
        """The texts at ``rows``, still unread."""
        rows = np.asarray(rows, dtype=np.int64)
        return JsonlTexts(self.path, self.field, self.offsets[rows], self.lengths[rows], self.stamp)

    def placed(self, n_rows: int, rows) -> "JsonlTexts":
        """``n_rows`` texts: these at ``rows``, empty ones elsewhere."""
        offsets, lengths = np.full(n_rows, -1, dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
        offsets[np.asarray(rows, dtype=np.int64)] = self.offsets
        lengths[np.asarray(rows, dtype=np.int64)] = self.lengths
        return JsonlTexts(self.path, self.field, offsets, lengths, self.stamp)

    def cut(self, chars: int) -> "CutTexts":
        """These texts, each cut to its first ``chars`` characters when read."""
        return CutTexts(self, chars)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(self._read(range(*i.indices(len(self)))))
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return next(self._read([i % len(self)]))

    def __iter__(self):
        for lo in range(0, len(self), BLOCK_ROWS):
            yield from self._read(range(lo, min(lo + BLOCK_ROWS, len(self))))

    def _read(self, rows):
        from saetm.io.values import _as_text

        with open(self.path, "rb") as f:
            if _stamp(f.fileno()) != self.stamp:
                raise self._changed()
            for i in rows:
                offset = int(self.offsets[i])
                if offset < 0:
                    yield ""
                    continue
                if f.tell() != offset:
                    f.seek(offset)
                line = f.readline()
                try:
                    text = _as_text(json.loads(line.decode("utf-8").lstrip("\ufeff")).get(self.field), i,
                                    self.field, self.path, None)
                except (ValueError, AttributeError, SaetmError):
                    text = None
                if text is None or len(text) != self.lengths[i]:
                    raise self._changed()
                yield text

    def _changed(self) -> SaetmError:
        return SaetmError(f"{self.path} changed while it was being read (its texts are read again during the run); "
                          "leave the input unchanged until the run ends and run it again")


def _stamp(file) -> tuple[int, int]:
    """Size and modification time (ns) of a path or an open file descriptor."""
    st = os.stat(file)
    return st.st_size, st.st_mtime_ns


class CutTexts(Sequence):
    """The texts of a :class:`JsonlTexts`, each cut to ``chars`` characters, read when used:
    what a model fitted from a large JSON Lines file keeps of its texts until it is saved."""

    def __init__(self, texts: JsonlTexts, chars: int):
        self.texts, self.chars = texts, int(chars)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [t[:self.chars] for t in self.texts[i]]
        return self.texts[i][:self.chars]

    def __iter__(self):
        return (t[:self.chars] for t in self.texts)


#: rows decoded per block when all texts are gone through
BLOCK_ROWS = 4096


def first_record_fields(path: Path) -> list[str]:
    """The field names of the first JSON object of a JSON Lines file (empty when the
    first non-blank line is not one: the reader then says what is wrong)."""
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = raw.decode("utf-8").lstrip("\ufeff")
                if line.strip():
                    record = json.loads(line)
                    return list(record) if isinstance(record, dict) else []
            except (UnicodeDecodeError, ValueError, RecursionError):
                return []
    return []
