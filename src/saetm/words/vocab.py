"""Vocabulary and bag-of-words counts for stage 2 (feature word distributions).

Tokens are lowercase runs of two or more letters (no digits, no underscores), English
stop words are removed, and words must occur in at least ``min_df`` documents. Counting
is scikit-learn's ``CountVectorizer``; this module only fixes the settings and turns its
errors into messages a user can act on.

Defaults, and why:

- ``min_df=5`` (SPEC §3): a word seen in fewer documents cannot shape an atom's
  distribution and mostly adds typos and names.
- ``max_df=0.5``: a word in more than half the documents says nothing about any theme
  (e.g. newsgroup header words such as "writes" or "article"); the background
  distribution p0 would absorb it anyway, but it would crowd the vocabulary.
- ``max_features=10000``: the low end of SPEC §3's 10-20k; it keeps the support of the
  word distributions (atoms x words) small. On 20 Newsgroups 29k words pass
  ``min_df=5``; the 10k most frequent carry 89% of their tokens.
- ``stop_words="english"``: scikit-learn's list plus the fragments that the letters-only
  token pattern cuts from English contractions ("didn t" -> "didn").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from saetm.errors import SaetmError

#: Lowercase word tokens of two or more letters (Unicode letters; no digits or "_").
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"

# What remains of English contractions once apostrophes split them ("don't" -> "don", "t").
_CONTRACTION_PARTS = frozenset(
    "aren couldn didn doesn don hadn hasn haven isn ll mightn mustn needn shan shouldn ve "
    "wasn weren wouldn".split()
)
ENGLISH_STOP_WORDS_EXTENDED = frozenset(ENGLISH_STOP_WORDS) | _CONTRACTION_PARTS

Lemmatizer = Callable[[str], str]


def _stop_words(stop_words: str | Iterable[str] | None) -> frozenset[str] | None:
    if stop_words is None:
        return None
    if isinstance(stop_words, str):
        if stop_words != "english":
            raise SaetmError(f"stop_words={stop_words!r} is not supported; use 'english', None or a list of words")
        return ENGLISH_STOP_WORDS_EXTENDED
    return frozenset(w.lower() for w in stop_words)


def _lemmatizer(lemmatize: bool | Lemmatizer) -> Lemmatizer | None:
    if lemmatize is False or lemmatize is None:
        return None
    if callable(lemmatize):
        return lemmatize
    try:
        import simplemma
    except ImportError:
        raise SaetmError("lemmatize=True needs the package simplemma: pip install simplemma "
                         "(or pass your own function word -> lemma)") from None
    return lambda word: simplemma.lemmatize(word, lang="en")


def _lemma_function(token_pattern: str, lemmatizer: Lemmatizer) -> Callable[[str], str]:
    pattern = re.compile(token_pattern)

    @lru_cache(maxsize=1 << 18)
    def lemma(word: str) -> str:
        out = str(lemmatizer(word)).lower()
        return out if pattern.fullmatch(out) else word  # a lemma must still be a token

    return lemma


def _vectorizer(*, token_pattern: str, lemmatize: bool | Lemmatizer,
                stop_words: frozenset[str] | None = None, **kwargs) -> CountVectorizer:
    lemmatizer = _lemmatizer(lemmatize)
    tokenizer = None  # CountVectorizer's own regex tokenizer
    if lemmatizer is not None:
        lemma = _lemma_function(token_pattern, lemmatizer)
        find = re.compile(token_pattern).findall
        tokenizer = lambda text: [lemma(t) for t in find(text)]  # noqa: E731
        # Stop words are removed after lemmatisation, so their lemmas are stop words too.
        # (Lemmatisers need not be idempotent: a few rounds close the set under lemmatisation.)
        for _ in range(3 if stop_words is not None else 0):
            stop_words = stop_words | {lemma(w) for w in stop_words}
    return CountVectorizer(
        lowercase=True,
        token_pattern=None if tokenizer else token_pattern,
        tokenizer=tokenizer,
        stop_words=sorted(stop_words) if stop_words is not None else None,
        dtype=np.float32,
        **kwargs,
    )


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise SaetmError("texts must be a list of documents, not a single string")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise SaetmError(f"document {bad} is {type(texts[bad]).__name__}, not text; give one string per document")
    return texts


def build_vocabulary(
    texts: Sequence[str],
    *,
    min_df: int | float = 5,
    max_df: int | float = 0.5,
    max_features: int | None = 10000,
    stop_words: str | Iterable[str] | None = "english",
    lemmatize: bool | Lemmatizer = False,
    token_pattern: str = TOKEN_PATTERN,
) -> tuple[list[str], sp.csr_matrix]:
    """Learn a vocabulary from ``texts`` and count its words in each document.

    ``min_df`` / ``max_df``: a word must occur in at least ``min_df`` and at most
    ``max_df`` documents (an int is a number of documents, a float a fraction).
    ``max_features`` keeps the most frequent words (by total count). ``lemmatize``:
    ``True`` uses simplemma (English), or pass a function ``word -> lemma``.

    Returns ``(vocab, counts)``: ``vocab`` is the sorted list of V words and ``counts``
    a ``(n_docs, V)`` float32 CSR matrix of word counts with sorted indices. Nothing is
    lowered behind the user's back: if the settings leave no word, ``SaetmError`` says
    which setting to change.
    """
    texts = _check_texts(texts)
    if not texts:
        raise SaetmError("no documents were given; the vocabulary needs at least one document")
    if max_features is not None and (not isinstance(max_features, (int, np.integer)) or max_features < 1):
        raise SaetmError(f"max_features must be a positive integer or None, not {max_features!r}")
    vectorizer = _vectorizer(
        token_pattern=token_pattern,
        lemmatize=lemmatize,
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        stop_words=_stop_words(stop_words),
    )
    n = len(texts)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError as e:
        msg = str(e)
        if "max_df corresponds to < documents than min_df" in msg:
            raise SaetmError(f"min_df={min_df} asks for more documents than max_df={max_df} allows in a corpus "
                             f"of {n} documents; lower --min-df (min_df) or raise --max-df (max_df)") from None
        if "empty vocabulary" in msg or "no terms remain" in msg:
            raise SaetmError(f"the vocabulary is empty: no word of {n} documents passes min_df={min_df} and "
                             f"max_df={max_df} (after stop words); lower --min-df (min_df) "
                             "or raise --max-df (max_df)") from None
        if "min_df" in msg or "max_df" in msg:
            raise SaetmError(f"invalid document-frequency bounds: {msg}") from None
        raise
    except re.error as e:
        raise SaetmError(f"token_pattern is not a valid regular expression ({e})") from None
    vocab = vectorizer.get_feature_names_out().tolist()
    counts = sp.csr_matrix(counts, dtype=np.float32)
    counts.sort_indices()
    return vocab, counts


def count_words(
    texts: Sequence[str],
    vocab: Sequence[str],
    *,
    lemmatize: bool | Lemmatizer = False,
    token_pattern: str = TOKEN_PATTERN,
) -> sp.csr_matrix:
    """Count the words of a fixed ``vocab`` in new ``texts``.

    Use the same ``lemmatize`` and ``token_pattern`` as :func:`build_vocabulary`.
    Returns a ``(n_docs, len(vocab))`` float32 CSR matrix; column j counts ``vocab[j]``.
    """
    texts = _check_texts(texts)
    vocab = list(vocab)
    if not vocab:
        raise SaetmError("the vocabulary is empty; build it with build_vocabulary first")
    if len(set(vocab)) != len(vocab):
        raise SaetmError("the vocabulary has repeated words; every word must appear once")
    vectorizer = _vectorizer(token_pattern=token_pattern, lemmatize=lemmatize, vocabulary=vocab)
    counts = sp.csr_matrix(vectorizer.transform(texts), dtype=np.float32)
    counts.sort_indices()
    return counts
