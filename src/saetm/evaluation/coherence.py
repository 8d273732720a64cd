"""Co-occurrence coherence of topics on a reference corpus: NPMI and C_V.

Definitions (Röder, Both & Hinneburg 2015, "Exploring the space of topic coherence
measures"; the numerics are those of gensim's ``CoherenceModel``):

- A *window* is a virtual document. ``window=None`` makes every reference document
  one window (boolean-document co-occurrence — the project's headline NPMI). An
  integer ``w`` slides a window of ``w`` consecutive tokens over every document:
  a document of ``n >= w`` tokens gives ``n - w + 1`` windows, a shorter (or empty)
  one gives a single window. Positions count every token of the reference as
  given, so tokens that are in no topic still take up room in the window.
- ``P(w)`` = share of windows containing ``w``; ``P(a, b)`` = share containing both.
- ``NPMI(a, b) = log((P(a,b) + eps) / (P(a) P(b))) / -log(P(a,b) + eps)``, with
  ``eps = 1e-12`` as in gensim, so a pair that never co-occurs scores just above -1.
- A topic word that never occurs in the reference (absent from its vocabulary)
  counts as never occurring: every pair it is in scores exactly -1 (the limit of
  NPMI when the joint probability vanishes). gensim instead silently drops such
  words from the topic, which would let a model score well with words the
  reference has never seen.
- ``npmi_coherence``: mean NPMI over the pairs of a topic's ``top_n`` words (one-one
  segmentation), then the mean over topics.
- ``cv_coherence``: one-set segmentation with indirect cosine confirmation. For a
  topic with words ``W`` and NPMI matrix ``N`` over ``W`` (self pairs included),
  every word ``w`` is scored by ``cos(N[w], sum_i N[i])``; the topic's C_V is the
  mean over ``w`` (gensim's 'c_v': sliding window 110, gamma 1).

Counting is done once for the union of the topics' words: every (window, word)
incidence is stored as a merged interval of window indices, consecutive windows
with the same word set are collapsed into one weighted row, and all joint counts
come from one sparse product ``Mᵀ diag(weights) M``.

``gensim_compat=True`` reproduces a quirk of gensim's sliding-window counter
(``WordOccurrenceAccumulator``, gensim 4.4): when the token leaving the window
occurs again inside the window, gensim still marks the word absent until it is
next seen entering the window, so repeated words are under-counted (on all of
20 Newsgroups, 20 label topics: C_V 0.679 in gensim vs 0.695 counted exactly).
With the default ``False`` a word is counted in every window that contains it.
With ``window=None`` (one window per document) both agree. Compare with gensim
run with ``processes=1``: its multi-process counter also counts
``len(doc) - w + 1`` windows for documents shorter than the window.
A topic's repeated words are kept once.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from saetm.errors import SaetmError

EPSILON = 1e-12  # gensim / Röder et al.


# --------------------------------------------------------------------------- inputs

def topic_word_lists(topics: Sequence[Sequence[str]], top_n: int | None) -> list[list[str]]:
    """Each topic's first ``top_n`` distinct words (order kept); validates the input."""
    if isinstance(topics, (str, bytes)) or not hasattr(topics, "__iter__"):
        raise SaetmError("topics must be a list of word lists, e.g. [['car', 'engine'], ['god', 'church']]")
    out = []
    for i, topic in enumerate(topics):
        if isinstance(topic, (str, bytes)):
            raise SaetmError(f"topic {i} is a string; give every topic as a list of words")
        words = list(dict.fromkeys(str(w) for w in topic))
        out.append(words if top_n is None else words[:top_n])
    if not out:
        raise SaetmError("no topics given")
    return out


def _is_token_lists(reference) -> bool:
    return isinstance(reference, (list, tuple)) and (len(reference) == 0 or isinstance(reference[0], (list, tuple)))


def _check_reference(reference):
    """Return ('tokens', docs) or ('counts', (csr, vocab))."""
    if isinstance(reference, tuple) and len(reference) == 2 and (
            sp.issparse(reference[0]) or getattr(reference[0], "ndim", 0) == 2):
        counts, vocab = reference
        counts = sp.csr_matrix(counts)
        vocab = [str(w) for w in vocab]
        if counts.shape[1] != len(vocab):
            raise SaetmError(f"the reference counts have {counts.shape[1]} columns "
                             f"but the vocabulary has {len(vocab)} words")
        return "counts", (counts, vocab)
    if _is_token_lists(reference):
        if len(reference) == 0:
            raise SaetmError("the reference corpus is empty")
        return "tokens", reference
    if isinstance(reference, (list, tuple)) and reference and isinstance(reference[0], str):
        raise SaetmError("the reference corpus must be tokenised: give a list of token lists, "
                         "or (counts CSR, vocab) for document co-occurrence")
    raise SaetmError("the reference corpus must be a list of token lists or a (counts CSR (n_docs, V), vocab) pair")


# --------------------------------------------------------------------------- counting

def cooccurrence_counts(words: Sequence[str], reference, window: int | None = None,
                        gensim_compat: bool = False) -> tuple[np.ndarray, int]:
    """Window counts for ``words`` in ``reference``.

    ``reference``: list of token lists, or ``(counts (n_docs, V) CSR, vocab)`` (only
    with ``window=None``, since counts have no word order).
    Returns ``joint: (R, R) float64`` — the number of windows containing both words,
    with the single-word counts on the diagonal — and the number of windows.
    """
    words = [str(w) for w in words]
    if len(set(words)) != len(words):
        raise SaetmError("cooccurrence_counts needs distinct words")
    if window is not None and (int(window) != window or window < 1):
        raise SaetmError(f"window must be a positive number of tokens or None, got {window!r}")
    kind, ref = _check_reference(reference)
    if kind == "counts":
        if window is not None:
            raise SaetmError("a sliding window needs the reference as token lists (counts have no word order); "
                             "pass window=None for document co-occurrence")
        counts, vocab = ref
        cols = pd.Index(vocab).drop_duplicates().get_indexer(words) if vocab else np.full(len(words), -1)
        present = (cols >= 0).astype(np.float64)
        if not present.any():
            return np.zeros((len(words), len(words))), counts.shape[0]
        X = sp.csr_matrix(counts[:, np.maximum(cols, 0)])
        X.eliminate_zeros()
        X.data = np.ones_like(X.data, dtype=np.float64)
        X = X @ sp.diags(present)  # words missing from the vocabulary never occur
        return np.asarray((X.T @ X).toarray(), dtype=np.float64), counts.shape[0]
    return _window_counts(words, ref, window, gensim_compat)


def _window_counts(words: list[str], docs, window: int | None, gensim_compat: bool) -> tuple[np.ndarray, int]:
    R = len(words)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    index = {w: i for i, w in enumerate(words)}
    tokens = itertools.chain.from_iterable(docs)
    word_of = np.fromiter(map(index.get, tokens, itertools.repeat(-1)), dtype=np.int64, count=int(lengths.sum()))
    hit = np.flatnonzero(word_of >= 0)
    doc_end = np.cumsum(lengths)
    doc = np.searchsorted(doc_end, hit, side="right")
    pos = hit - (doc_end - lengths)[doc]
    word = word_of[hit].astype(np.int64)

    if window is None:
        n_win = np.ones(len(docs), dtype=np.int64)
        lo = np.zeros(len(hit), dtype=np.int64)
        hi = lo.copy()
    else:
        w = int(window)
        n_win = np.maximum(1, lengths - w + 1)
        lo = np.maximum(0, pos - w + 1)
        hi = np.minimum(pos, n_win[doc] - 1)

    # Sort occurrences by (doc, word, position) so each (doc, word) group is contiguous.
    order = np.lexsort((pos, word, doc))
    doc, word, pos, lo, hi = doc[order], word[order], pos[order], lo[order], hi[order]
    group = doc * max(R, 1) + word
    new_group = np.ones(len(group), dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    rank = np.cumsum(new_group) - 1
    stride = int(lengths.max(initial=0)) + 1  # rank * stride + position sorts by group, then position

    if gensim_compat and window is not None:
        # gensim clears a word's flag when one of its occurrences leaves the window (even
        # if another is still inside) and sets it again only when one enters. So an
        # occurrence at q keeps the word flagged only up to window f, the first earlier
        # occurrence of the word in [q - w + 1, q - 1], when there is one.
        first = np.searchsorted(rank * stride + pos, rank * stride + lo)
        earlier = first < np.arange(len(pos))
        hi = np.where(earlier, np.minimum(hi, pos[np.minimum(first, len(pos) - 1)]), hi)

    # Merge the intervals of each (doc, word) group into disjoint runs.
    run_hi = np.maximum.accumulate(rank * stride + hi) if len(hi) else hi
    starts = new_group.copy()
    starts[1:] |= (rank[1:] * stride + lo[1:]) > run_hi[:-1] + 1
    s_idx = np.flatnonzero(starts)
    r_lo = lo[s_idx]
    r_hi = np.maximum.reduceat(hi, s_idx) if len(s_idx) else hi[:0]
    r_doc, r_word = doc[s_idx], word[s_idx]

    # Global window indices; collapse runs of windows with the same word set into segments.
    offset = np.concatenate([[0], np.cumsum(n_win)[:-1]])
    n_windows = int(n_win.sum())
    g_lo = offset[r_doc] + r_lo
    g_end = offset[r_doc] + r_hi + 1
    bounds = np.unique(np.concatenate([g_lo, g_end]))
    seg_first = np.searchsorted(bounds, g_lo)
    seg_stop = np.searchsorted(bounds, g_end)
    n_seg = seg_stop - seg_first
    total = int(n_seg.sum())
    rows = np.arange(total) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg) + np.repeat(seg_first, n_seg)
    cols = np.repeat(r_word, n_seg)
    weights = np.diff(bounds).astype(np.float64) if len(bounds) > 1 else np.zeros(0)
    M = sp.csr_matrix((np.ones(total), (rows, cols)), shape=(max(len(bounds) - 1, 0), R))
    joint = (M.T @ sp.diags(weights) @ M).toarray() if total else np.zeros((R, R))
    return np.asarray(joint, dtype=np.float64), n_windows


def npmi_matrix(joint: np.ndarray, n_windows: int) -> np.ndarray:
    """NPMI between all word pairs from window counts (diagonal = self pairs, as gensim).

    ``joint``: (R, R) counts with single counts on the diagonal. Pairs with a word
    that never occurs are -1.
    """
    n = float(n_windows)
    p = np.diag(joint) / n
    p_ab = joint / n
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((p_ab + EPSILON) / np.outer(p, p))
        npmi = pmi / -np.log(p_ab + EPSILON)
    absent = p == 0
    npmi[absent, :] = -1.0
    npmi[:, absent] = -1.0
    return npmi


def _stats(topic_lists: list[list[str]], reference, window, gensim_compat):
    vocab = list(dict.fromkeys(itertools.chain.from_iterable(topic_lists)))
    joint, n = cooccurrence_counts(vocab, reference, window=window, gensim_compat=gensim_compat)
    index = {w: i for i, w in enumerate(vocab)}
    return npmi_matrix(joint, n), [np.array([index[w] for w in t], dtype=np.int64) for t in topic_lists]


def _summary(per_topic: list[float]) -> dict:
    per = np.asarray(per_topic, dtype=np.float64)
    mean = float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")
    return {"mean": mean, "per_topic": per.tolist()}


# --------------------------------------------------------------------------- measures

def npmi_coherence(topics: Sequence[Sequence[str]], reference, top_n: int = 10, window: int | None = None,
                   gensim_compat: bool = False) -> dict:
    """NPMI coherence: mean NPMI over each topic's top-word pairs, then over topics.

    ``topics``: ranked top words per topic; ``reference``: list of token lists or
    ``(counts (n_docs, V) CSR, vocab)``; ``window``: None = document co-occurrence
    (the default and the project's headline number), an int = sliding window of
    that many tokens (gensim's 'c_npmi' uses 10).
    Returns ``{"mean": float, "per_topic": list[float]}``; a topic with fewer than two
    words is NaN and left out of the mean.
    """
    topic_lists = topic_word_lists(topics, top_n)
    npmi, idx = _stats(topic_lists, reference, window, gensim_compat)
    per_topic = []
    for ids in idx:
        if len(ids) < 2:
            per_topic.append(float("nan"))
            continue
        sub = npmi[np.ix_(ids, ids)]
        per_topic.append(float(sub[np.triu_indices(len(ids), k=1)].mean()))
    return _summary(per_topic)


def cv_coherence(topics: Sequence[Sequence[str]], reference, top_n: int = 10, window: int | None = 110,
                 gensim_compat: bool = False) -> dict:
    """C_V coherence (Röder et al. 2015; gensim 'c_v'): one-set segmentation, NPMI
    context vectors over the topic's words, cosine confirmation, means.

    ``reference`` must be token lists for a sliding window (default 110 tokens);
    ``window=None`` uses document co-occurrence (then counts CSR also work).
    Returns ``{"mean": float, "per_topic": list[float]}``.
    """
    topic_lists = topic_word_lists(topics, top_n)
    npmi, idx = _stats(topic_lists, reference, window, gensim_compat)
    per_topic = []
    for ids in idx:
        if len(ids) < 2:
            per_topic.append(float("nan"))
            continue
        sub = npmi[np.ix_(ids, ids)]
        total = sub.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = (sub @ total) / (np.linalg.norm(sub, axis=1) * np.linalg.norm(total))
        per_topic.append(float(cos.mean()))
    return _summary(per_topic)
