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

import numbers
import re
from array import array
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import CountVectorizer

#: Lowercase word tokens of two or more letters (Unicode letters; no digits or "_").
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"

# What remains of English contractions once apostrophes split them ("don't" -> "don", "t").
_CONTRACTION_PARTS = frozenset(
    "aren couldn didn doesn don hadn hasn haven isn ll mightn mustn needn shan shouldn ve "
    "wasn weren wouldn".split()
)

Lemmatizer = Callable[[str], str]
#: documents tokenised per chunk by :func:`build_vocabulary`
CHUNK_DOCS = 5000


@lru_cache(maxsize=1)
def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _CONTRACTION_PARTS


def __getattr__(name: str):
    # ENGLISH_STOP_WORDS_EXTENDED (scikit-learn's list and the contraction fragments) is built
    # on first use: importing scikit-learn takes a second, which checking settings should not.
    if name == "ENGLISH_STOP_WORDS_EXTENDED":
        return _english_stop_words()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_stop_words(stop_words: str | Iterable[str] | None, extra: Iterable[str] | None = None) -> None:
    """The one-line error :func:`stop_word_set` would give for these settings, without building
    the English list (nor importing scikit-learn)."""
    _stop_words(stop_words, extra, english=frozenset())


def _stop_words(stop_words: str | Iterable[str] | None, extra: Iterable[str] | None = None, *,
                english: frozenset[str] | None = None) -> frozenset[str] | None:
    """The stop words: ``stop_words`` ("english", None or words) plus the ``extra`` words;
    ``english``: the list "english" stands for (None: :func:`_english_stop_words`)."""
    if isinstance(extra, str):
        raise SaetmError("extra_stop_words must be a list of words, not one string")
    extra = frozenset(str(w).strip().lower() for w in extra or ()) - {""}
    if stop_words is None:
        return extra or None
    if isinstance(stop_words, str):
        if stop_words != "english":
            raise SaetmError(f"stop_words={stop_words!r} is not supported; use 'english', None or a list of words")
        return (_english_stop_words() if english is None else english) | extra
    return frozenset(str(w).lower() for w in stop_words) | extra


def stop_word_set(stop_words: str | Iterable[str] | None = "english",
                  extra_stop_words: Iterable[str] | None = None) -> frozenset[str] | None:
    """The words stage 2 removes: ``stop_words`` ("english": saetm's English list; None; or a
    list that replaces it) plus ``extra_stop_words``; None when there are none."""
    return _stop_words(stop_words, extra_stop_words)


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


def _is_inflection(form: str, lemma: str) -> bool:
    """``form`` is a regular inflection of ``lemma``: it starts with the lemma, less a final
    e or y (guns/gun, coined/coin, using/use, studies/study). Irregular lemmas (better →
    good, left → leave, saw → see) change the meaning too often to merge."""
    stem = lemma[:-1] if lemma[-1:] in ("e", "y") else lemma
    return len(stem) >= 2 and form.startswith(stem) and form != lemma


def inflection_key(lemmatizer: Lemmatizer | None = None) -> Callable[[str], str]:
    """``word -> key``: words with the same key are inflections of one lemma (simplemma's
    English lemmas by default); a word that is not a regular inflection is its own key."""
    lemma = _lemma_function(TOKEN_PATTERN, lemmatizer or _lemmatizer(True))

    def key(word: str) -> str:
        base = lemma(word)
        return base if _is_inflection(word, base) else word

    return key


def merge_inflected_words(vocab: Sequence[str], counts: sp.csr_matrix,
                          lemmatizer: Lemmatizer | None = None) -> tuple[list[str], sp.csr_matrix]:
    """Merge the words of ``vocab`` that are inflections of one another (gun, guns; coin,
    coins, coined) into one word, shown as the group's most frequent form (ties: the first
    in order), and add up their columns of ``counts``. Only words already in ``vocab`` merge,
    so the vocabulary shrinks. Returns ``(vocab, counts)`` like :func:`build_vocabulary`."""
    vocab = list(vocab)
    counts = sp.csr_matrix(counts)
    total = np.asarray(counts.sum(axis=0)).ravel()
    key = inflection_key(lemmatizer)
    keys = [key(w) for w in vocab]
    best: dict[str, int] = {}  # key -> the vocabulary index of its shown form
    for j, k in enumerate(keys):
        i = best.get(k)
        if i is None or total[j] > total[i]:
            best[k] = j
    shown = sorted(vocab[j] for j in best.values())
    column = {w: i for i, w in enumerate(shown)}
    target = np.array([column[vocab[best[k]]] for k in keys], dtype=np.int64)
    merge = sp.csr_matrix((np.ones(len(vocab), np.float32), (np.arange(len(vocab)), target)),
                          shape=(len(vocab), len(shown)))
    out = sp.csr_matrix(counts @ merge, dtype=np.float32)
    out.sort_indices()
    return shown, out


def tokenizer(lemmatize: bool | Lemmatizer = False, token_pattern: str = TOKEN_PATTERN) -> Callable[[str], list[str]]:
    """The tokens of a text as stage 2 cuts them before removing stop words (lowercase, then
    ``token_pattern``, then the lemmas with ``lemmatize``); scikit-learn is not imported."""
    find = re.compile(token_pattern).findall
    lemmatizer = _lemmatizer(lemmatize)
    if lemmatizer is None:
        return lambda text: find(text.lower())
    lemma = _lemma_function(token_pattern, lemmatizer)
    return lambda text: [lemma(t) for t in find(text.lower())]


def analyzer(stop_words: frozenset[str] | None = None, lemmatize: bool | Lemmatizer = False,
             merged_vocab: Sequence[str] | None = None,
             token_pattern: str = TOKEN_PATTERN) -> Callable[[str], list[str]]:
    """The tokens stage 2 counts in a text, in order and without the vocabulary cut
    (``stop_words``: e.g. :func:`stop_word_set`). ``merged_vocab``: the vocabulary of a model
    fitted with merged inflections, whose shown form replaces every inflection of it."""
    analyze = _vectorizer(token_pattern=token_pattern, lemmatize=lemmatize, stop_words=stop_words).build_analyzer()
    if merged_vocab is None:
        return analyze
    key = inflection_key()
    shown = {key(w): w for w in merged_vocab}

    @lru_cache(maxsize=1 << 18)
    def form(token: str) -> str:
        return shown.get(key(token), token)

    return lambda text: [form(t) for t in analyze(text)]


def _vectorizer(*, token_pattern: str, lemmatize: bool | Lemmatizer,
                stop_words: frozenset[str] | None = None, **kwargs) -> CountVectorizer:
    from sklearn.feature_extraction.text import CountVectorizer

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
    if getattr(texts, "lazy", False):  # texts read from a file a chunk at a time (saetm.io.lazy_texts)
        return texts
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
    extra_stop_words: Iterable[str] | None = None,
    merge_inflections: bool = False,
) -> tuple[list[str], sp.csr_matrix]:
    """Learn a vocabulary from ``texts`` and count its words in each document.

    ``min_df`` / ``max_df``: a word must occur in at least ``min_df`` and at most
    ``max_df`` documents (an int is a number of documents, a float a fraction).
    ``max_features`` keeps the most frequent words (by total count). ``stop_words``
    ("english", None or a list that replaces it) and ``extra_stop_words`` are removed.
    ``lemmatize``: ``True`` replaces every token by its lemma (simplemma, English), or pass
    a function ``word -> lemma``. ``merge_inflections``: afterwards, the words that are
    regular inflections of one lemma are counted as one, shown as their most frequent form
    (:func:`merge_inflected_words`).

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
        stop_words=_stop_words(stop_words, extra_stop_words),
    )
    n = len(texts)
    try:
        vectorizer._validate_params()
        vocab, counts = _count_in_chunks(vectorizer, (texts[i:i + CHUNK_DOCS] for i in range(0, n, CHUNK_DOCS)))
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
    if merge_inflections:
        return merge_inflected_words(vocab, counts)
    return vocab, counts


def _count_in_chunks(vectorizer: CountVectorizer, chunks: Iterable[Sequence[str]]) -> tuple[list[str], sp.csr_matrix]:
    """What ``vectorizer.fit_transform`` returns (the vocabulary and float32 counts with sorted
    indices), counted a chunk of documents at a time: memory holds each document's distinct
    tokens once (8 bytes each) and never the matrix over all tokens in its wider types.
    The cut (min_df, max_df, max_features, ties in the same order) is scikit-learn's."""
    analyze = vectorizer.build_analyzer()
    terms: dict[str, int] = {}
    parts = []
    n = 0
    for chunk in chunks:
        indices, values, indptr = array("i"), array("i"), array("q", [0])
        for doc in chunk:
            counter: dict[int, int] = {}
            for token in analyze(doc):
                j = terms.setdefault(token, len(terms))
                counter[j] = counter.get(j, 0) + 1
            indices.extend(counter.keys())
            values.extend(counter.values())
            indptr.append(len(indices))
        parts.append((np.frombuffer(indptr, np.int64), np.frombuffer(indices, np.int32), np.frombuffer(values, np.int32)))
        n += len(indptr) - 1
    if not terms:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    df = np.zeros(len(terms), np.int64)
    tf = np.zeros(len(terms), np.float64)
    for _, idx, val in parts:
        df += np.bincount(idx, minlength=len(terms))
        tf += np.bincount(idx, weights=val, minlength=len(terms))
    words = sorted(terms)  # columns in term order, as scikit-learn sorts them
    old = np.fromiter((terms[w] for w in words), dtype=np.int64, count=len(words))
    del terms
    max_df, min_df = vectorizer.max_df, vectorizer.min_df
    high = max_df if isinstance(max_df, numbers.Integral) else max_df * n
    low = min_df if isinstance(min_df, numbers.Integral) else min_df * n
    if high < low:
        raise ValueError("max_df corresponds to < documents than min_df")
    dfs = df[old]
    mask = (dfs <= high) & (dfs >= low)
    limit = vectorizer.max_features
    if limit is not None and mask.sum() > limit:
        tfs = tf[old].astype(np.float32)  # scikit-learn's column sums are float32
        mask_inds = (-tfs[mask]).argsort()[:limit]
        new_mask = np.zeros(len(dfs), dtype=bool)
        new_mask[np.where(mask)[0][mask_inds]] = True
        mask = new_mask
    kept = np.flatnonzero(mask)
    if len(kept) == 0:
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    column = np.full(len(words), -1, dtype=np.int32)
    column[old[kept]] = np.arange(len(kept))
    return [words[i] for i in kept], _kept_counts(parts, column, n, len(kept))


def _kept_counts(parts: list, column: np.ndarray, n_docs: int, n_words: int) -> sp.csr_matrix:
    """The ``(n_docs, n_words)`` float32 CSR (sorted indices) of the chunks' counts of the
    kept words (``column``: each term's column, -1 when cut), written into arrays allocated
    once: memory holds the chunks not yet copied and the result, never a second copy."""
    nnz = sum(int(np.count_nonzero(column[idx] >= 0)) for _, idx, _ in parts)
    data, indices = np.empty(nnz, dtype=np.float32), np.empty(nnz, dtype=np.int32)
    row_nnz = np.empty(n_docs, dtype=np.int64)
    at = row = 0
    while parts:
        indptr, idx, val = parts.pop(0)
        new = column[idx]
        keep = new >= 0
        n_rows = len(indptr) - 1
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))[keep]
        order = np.lexsort((new[keep], rows))  # by row, then column: each row's indices sorted
        indices[at:at + len(order)] = new[keep][order]
        data[at:at + len(order)] = val[keep][order]
        row_nnz[row:row + n_rows] = np.bincount(rows, minlength=n_rows)
        at, row = at + len(order), row + n_rows
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(row_nnz, out=indptr[1:])
    index_type = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    counts = sp.csr_matrix((data, indices.astype(index_type, copy=False), indptr.astype(index_type)),
                           shape=(n_docs, n_words))
    counts.has_sorted_indices = True
    return counts


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
