"""The ``"coherent"`` word ranking: which of a topic's words to show, and in what order.

β (the θ̄-weighted mean of the topic's atoms' word distributions) ranks the words a
topic's atoms emit most, and corpus-wide frequent words ("said", "time", "people") come
first in many topics. ``"coherent"`` keeps β as the source of every word and changes only
the selection and the order, in three steps:

1. relevance against the atoms' marginal word distribution m (LDAvis, λ = 0.4):
   λ·log β_tw + (1−λ)·log(β_tw / m_w) — words the topic's atoms emit more than the
   atoms do on average;
2. each word is kept in the ``MAX_TOPICS_PER_WORD`` topics where its relevance is
   highest (diversity across topics); a topic left with fewer than ``MIN_WORDS`` words
   gets its own best ones back;
3. of the topic's ``N_CANDIDATES`` best words, each next one listed is the candidate with
   the highest mean NPMI (document co-occurrence in the fitted corpus) with those already
   listed — the listed words describe one set of documents instead of several. The list is
   built from each of the ``N_ANCHORS`` best candidates as its first word, and the one whose
   first ``N_SCORED`` words have the highest mean NPMI among themselves (less their repeat
   penalty, below) is kept: a top word that seldom meets the others (a rare name) no longer
   decides what the rest of the list is about. Pairs seen together in fewer than ``MIN_SUPPORT`` documents count as never
   seen together: on short texts (fortunes) chance co-occurrences of rare words otherwise
   win, and the order then fits the corpus it was computed on rather than the topic
   (without the minimum, the order fits chance co-occurrences of the fitted documents).
   Topics are taken in their order (saetm numbers them largest first), and a candidate
   already among the first ``MIN_WORDS`` words of an earlier topic has ``REPEAT_PENALTY``
   subtracted from its mean NPMI per such topic: a word shared by two topics is listed
   twice only when it fits the second topic's words clearly better than any unlisted
   candidate. Near-duplicate topics (Reuters' earnings reports) then show more of what
   sets them apart; topics with distinct vocabularies barely change.
4. the words after the first ``N_SCORED`` are chosen again, each topic's first
   ``N_SCORED`` kept: the greedy of step 3 goes on from them with ``TAIL_FACTOR`` times
   the repeat penalty per other topic listing the candidate (among the first ``MIN_WORDS``
   words of an earlier topic or the first ``N_SCORED`` of a later one). A word shared by
   two topics' leading words is what places the topic; further down the list a shared
   word mostly repeats what another topic already shows, so there it gives way to the
   topic's own candidates unless it co-occurs far better. The first ``N_SCORED`` words,
   and so the topic's labels and any coherence scored on its top 10, do not change.

Steps 3 and 4 need which documents hold which words (:func:`doc_word_incidence`, kept with the
model); without it (model files that lack it) the order of step 2 is used.
``bench/README.md`` says what each step was measured to do.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

LAMBDA = 0.4
MAX_TOPICS_PER_WORD = 2
N_CANDIDATES = 60
MIN_SUPPORT = 3
REPEAT_PENALTY = 0.2  # mean NPMI a word loses per earlier topic listing it (step 3)
MAX_DOCS = 200_000
MIN_WORDS = 25  # words every topic can list despite the cap (get_topic's default length)
N_ANCHORS = 5  # candidates tried as a topic's first word (step 3)
N_SCORED = 10  # leading words whose mean NPMI picks the first word (NPMI's usual top 10)
TAIL_FACTOR = 2.5  # the repeat penalty after the first N_SCORED words, × REPEAT_PENALTY (step 4)


def sample_rows(n_rows: int, size: int, seed: int) -> np.ndarray:
    """The seeded sample of ``size`` of ``n_rows`` rows that :func:`doc_word_incidence` keeps, sorted."""
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=int(size), replace=False))


def doc_word_incidence(counts, max_docs: int | None = MAX_DOCS, seed: int = 0) -> sp.csc_matrix:
    """Which words each document holds: ``counts`` (n_docs, V) → CSC float32 of ones.

    Co-occurrence is estimated on at most ``max_docs`` documents (a seeded sample of the
    rows, kept in their order; None: all), which bounds what the model keeps on very large
    corpora; the NPMI of the frequent pairs that decide the order barely moves."""
    counts = sp.csr_matrix(counts)
    if max_docs is not None and counts.shape[0] > max_docs:
        counts = counts[sample_rows(counts.shape[0], max_docs, seed)]
    m = sp.csc_matrix(counts, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def relevance(beta: np.ndarray, reference: np.ndarray, lam: float = LAMBDA) -> np.ndarray:
    """λ·log β + (1−λ)·log(β / reference), −inf where β = 0. (T, V) float64."""
    b = np.asarray(beta, dtype=np.float64)
    ref = np.maximum(np.asarray(reference, dtype=np.float64).ravel(), 1e-300)
    with np.errstate(divide="ignore"):
        logb = np.log(b)
    return np.where(b > 0, logb - (1.0 - lam) * np.log(ref)[None, :], -np.inf)


def keep_best_topics(score: np.ndarray, max_topics: int = MAX_TOPICS_PER_WORD,
                     min_words: int = MIN_WORDS) -> np.ndarray:
    """``score`` with each word left only in the ``max_topics`` topics where it scores
    highest (ties: lower topic id); elsewhere −inf. A topic left with fewer than
    ``min_words`` words (a small topic whose words all serve larger ones better) gets its
    own best words back, so that no topic is listed without words."""
    s = np.asarray(score, dtype=np.float64)
    if s.shape[0] <= max_topics:
        return s
    rank = np.argsort(np.argsort(-s, axis=0, kind="stable"), axis=0, kind="stable")
    out = np.where(rank < max_topics, s, -np.inf)
    for t in np.flatnonzero(np.isfinite(out).sum(axis=1) < min_words):
        own = np.argsort(-s[t], kind="stable")[:min_words]
        own = own[np.isfinite(s[t, own])]
        out[t, own] = s[t, own]
    return out


def npmi_among(doc_words: sp.csc_matrix, words: np.ndarray, min_support: int = MIN_SUPPORT) -> np.ndarray:
    """NPMI of every pair of ``words`` over documents: (k, k), −1 for pairs that co-occur
    in fewer than ``min_support`` documents, 1 on pairs present in every document."""
    sub = doc_words[:, words]
    n = doc_words.shape[0]
    together = np.asarray((sub.T @ sub).toarray(), dtype=np.float64)
    both = together / max(n, 1)
    single = np.diag(both).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(both / np.outer(single, single))
        out = pmi / -np.log(both)
    out[together < max(min_support, 1)] = -1.0
    out[both >= 1] = 1.0
    return out


def coherent_order(score: np.ndarray, n: int, doc_words: sp.csc_matrix | None,
                   n_candidates: int = N_CANDIDATES, repeat_penalty: float | None = None,
                   tail_factor: float | None = None) -> list[np.ndarray]:
    """Per topic, the indices of its ``n`` listed words (step 3 above; by ``score`` when
    ``doc_words`` is None). ``score``: (T, V), −inf for words the topic cannot list.
    ``repeat_penalty``: None → ``REPEAT_PENALTY``; 0 lists each topic on its own.
    ``tail_factor``: None → ``TAIL_FACTOR``; the words after the first ``N_SCORED`` are
    chosen with ``tail_factor × repeat_penalty`` per other topic listing the word (step 4).
    The order is the same for every ``n`` up to ``n_candidates`` (a shorter list is a
    prefix): the penalties count the first ``MIN_WORDS`` words of other topics whatever ``n``."""
    s = np.asarray(score, dtype=np.float64)
    if doc_words is not None and doc_words.shape[1] != s.shape[1]:
        raise SaetmError(f"doc_words has {doc_words.shape[1]} words but the topics have {s.shape[1]}")
    penalty = REPEAT_PENALTY if repeat_penalty is None else float(repeat_penalty)
    if not np.isfinite(penalty) or penalty < 0:
        raise SaetmError(f"repeat_penalty must be a number ≥ 0, got {repeat_penalty}")
    factor = TAIL_FACTOR if tail_factor is None else float(tail_factor)
    if not np.isfinite(factor) or factor < 0:
        raise SaetmError(f"tail_factor must be a number ≥ 0, got {tail_factor}")
    shown = np.zeros(s.shape[1])  # per word: earlier topics listing it among their first MIN_WORDS
    lists, plans = [], []  # plans: per reordered topic, (candidates, NPMI among them, length)
    for row in s:
        k = min(max(n, n_candidates), row.shape[0])
        cand = np.argpartition(-row, k - 1)[:k] if k < row.shape[0] else np.arange(row.shape[0])
        cand = cand[np.lexsort((cand, -row[cand]))]  # by score, ties by word index
        cand = cand[np.isfinite(row[cand])]
        if doc_words is None or len(cand) <= 2:
            shown[cand[:MIN_WORDS]] += 1
            lists.append(cand)
            plans.append(None)
            continue
        npmi = npmi_among(doc_words, cand)
        repeats = penalty * shown[cand]
        length = min(max(n, MIN_WORDS), len(cand))
        # the anchor: of the N_ANCHORS best candidates, the one whose list leads with the most
        # coherent (and least repeated) N_SCORED words; first of equals: the higher-scored
        options = [_greedy(npmi, repeats, [start], length) for start in range(min(N_ANCHORS, len(cand)))]
        quality = [_lead_quality(npmi, repeats, o[:N_SCORED]) for o in options]
        best = options[int(np.argmax(quality))]
        shown[cand[best[:MIN_WORDS]]] += 1
        lists.append(cand[best])
        plans.append((cand, npmi, best[:N_SCORED], length))
    if factor * penalty > 0:  # step 4: the tails, against every other topic's listed words
        heads = np.zeros(s.shape[1])
        for idx, plan in zip(lists, plans):
            heads[idx[:N_SCORED] if plan is not None else idx[:MIN_WORDS]] += 1
        for t, plan in enumerate(plans):
            if plan is None:
                continue
            cand, npmi, head, length = plan
            others = heads.copy()
            others[cand[head]] -= 1
            order = _greedy(npmi, factor * penalty * others[cand], list(head), length)
            lists[t] = cand[order]
            heads[cand[order[len(head):MIN_WORDS]]] += 1
    return [idx[:n] for idx in lists]


def _lead_quality(npmi: np.ndarray, repeats: np.ndarray, lead: np.ndarray) -> float:
    """Mean NPMI of the pairs among ``lead`` less their mean repeat penalty."""
    pairs = npmi[np.ix_(lead, lead)][np.triu_indices(len(lead), 1)]
    return float(pairs.mean() - repeats[lead].mean())


def _greedy(npmi: np.ndarray, repeats: np.ndarray, start: list[int], length: int) -> np.ndarray:
    """Candidate positions listed after those in ``start``: each next one has the highest mean
    NPMI with those already listed less its repeat penalty (first of equals: the higher-scored)."""
    chosen = list(start)
    total = npmi[chosen].sum(axis=0)  # Σ NPMI with the listed words, per candidate
    free = np.ones(len(npmi), dtype=bool)
    free[chosen] = False
    while len(chosen) < length:
        gain = total / len(chosen) - repeats
        j = int(np.argmax(np.where(free, gain, -np.inf)))
        chosen.append(j)
        free[j] = False
        total += npmi[j]
    return np.asarray(chosen)


def listed_scores(weights) -> list[np.ndarray]:
    """Per topic, a score for each listed word that never increases down the list.

    ``weights``: per topic, β of its words in listed order (as :func:`saetm.topics.merge.top_words`
    returns them). The score is the closest non-increasing sequence to those β (least squares,
    pool-adjacent-violators): where a word is listed ahead of words with a higher β, they all
    get their mean β. It is positive, equals β wherever β already decreases (always with the
    ``"beta"`` ranking), and the scores of a topic's listed words sum to their β."""
    out = []
    for w in weights:
        w = np.asarray(w, dtype=np.float64)
        s = _non_increasing_fit(w) if w.size > 1 else w.copy()
        out.append(s.astype(np.float32))
    return out


def _non_increasing_fit(y: np.ndarray) -> np.ndarray:
    """The least-squares non-increasing sequence closest to ``y`` (1-D, float64): pool adjacent
    violators in one pass with backtracking (Busing 2022, Algorithm 1) over the reversed
    sequence, fitted increasing with unit weights, ties pooled. The additions and divisions
    are those of ``scipy.optimize.isotonic_regression(y, increasing=False)`` (which
    scikit-learn's ``isotonic_regression`` calls), in the same order: the same floats, without
    importing either for at most a few dozen words."""
    x = [float(v) for v in y[::-1]]
    n = len(x)
    w = [1.0] * n
    ends = [0] * (n + 1)  # block b holds positions ends[b]..ends[b + 1] - 1
    ends[1] = 1
    b, x_prev, w_prev = 0, x[0], w[0]
    i = 1
    while i < n:
        b += 1
        xb, wb = x[i], w[i]
        if x_prev >= xb:  # pool with the previous block, then with any the pooled value violates
            b -= 1
            sb = w_prev * x_prev + wb * xb
            wb += w_prev
            xb = sb / wb
            while i < n - 1 and xb >= x[i + 1]:
                i += 1
                sb += w[i] * x[i]
                wb += w[i]
                xb = sb / wb
            while b > 0 and x[b - 1] >= xb:
                b -= 1
                sb += w[b] * x[b]
                wb += w[b]
                xb = sb / wb
        x[b] = x_prev = xb
        w[b] = w_prev = wb
        ends[b + 1] = i + 1
        i += 1
    fit = [0.0] * n
    for k in range(b + 1):
        fit[ends[k]:ends[k + 1]] = [x[k]] * (ends[k + 1] - ends[k])
    return np.asarray(fit[::-1], dtype=np.float64)
