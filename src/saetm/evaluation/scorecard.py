"""One fitted model's topics scored with every measure of SPEC §7 that its inputs allow.

:func:`scorecard` is what ``SAETM.evaluate`` and ``saetm evaluate`` report. It calls
the measures of :mod:`saetm.evaluation.measures`, :mod:`~saetm.evaluation.coherence`
and :mod:`~saetm.evaluation.judge` with fixed, documented settings, and returns the
per-topic values and notes on what was skipped as well as the means. It works on
plain inputs (top words, a reference corpus, document–topic weights, labels), so
it knows nothing of the model class.

Settings (those of the paper and ``bench/bench_topics.py``):

- TD over each topic's top 25 words; WMD diversity over the top 20 (GloVe).
- NPMI (document co-occurrence), C_V (sliding window of 110 tokens) and
  embedding coherence (GloVe cosine) over the top ``top_n`` words.
- NMI / ARI of each document's main topic against its label; documents without a
  topic form their own cluster, documents without a label are left out.
- With a judge: LLM coherence (5 top words, 3 shuffles, 0–100) and intruder
  detection (4 top words + 1 word of another topic; chance 0.2).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from saetm.errors import SaetmError
from saetm.evaluation.coherence import _is_token_lists, cv_coherence, npmi_coherence, topic_word_lists
from saetm.evaluation.measures import embedding_coherence, label_agreement, topic_diversity, wmd_diversity

TD_TOP = 25
WMD_TOP = 20
CV_WINDOW = 110
JUDGE_WORDS = 5
JUDGE_SHUFFLES = 3
INTRUDER_WORDS = 4

#: Table order and a few words on what each measure means.
MEANINGS = {
    "topic_diversity": f"distinct share of the top {TD_TOP} words (1 = no overlap)",
    "wmd_diversity": f"mean Word Mover's Distance between topics' top {WMD_TOP} (higher = more distinct)",
    "npmi": "co-occurrence of top-{n} word pairs in documents (-1..1, higher = more coherent)",
    "cv": f"C_V coherence of the top {{n}}, window {CV_WINDOW} (0..1, higher = more coherent)",
    "npmi_heldout": "NPMI as above, on the documents held out of the fit (fit --holdout)",
    "cv_heldout": "C_V as above, on the documents held out of the fit",
    "embedding_coherence": "mean GloVe cosine between the top {n} (higher = more related)",
    "nmi": "main topic vs label, normalised mutual information (0..1)",
    "ari": "main topic vs label, adjusted Rand index (0 = chance, 1 = identical)",
    "unassigned": "share of documents with no topic",
    "llm_coherence": f"judge's rating of the top {JUDGE_WORDS} words (0..100, {JUDGE_SHUFFLES} shuffles)",
    "llm_coherence_unparsed": "judge ratings that could not be read",
    "intruder_accuracy": f"judge spots a word of another topic among {INTRUDER_WORDS} (chance {1 / (INTRUDER_WORDS + 1):.1f})",
    "intruder_unparsed": "intruder answers that could not be read",
}


def reference_tokens(texts: Sequence[str], stop_words="english", *, extra_stop_words=None, lemmatize=False,
                     merged_vocab=None) -> list[list[str]]:
    """Token lists for NPMI / C_V: the tokens stage 2 counts (lowercase letter runs of
    two or more, stop words removed), in document order, without the vocabulary
    cut — C_V's window counts every remaining token, as in the benchmark.

    ``stop_words``: ``"english"`` (saetm's list), None, or a list of words, and
    ``extra_stop_words``, ``lemmatize``: the model's settings; ``merged_vocab``: the
    vocabulary of a model fitted with ``merge_inflections``, so that "guns" counts as its "gun".
    """
    from saetm.words.vocab import analyzer, stop_word_set

    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise SaetmError("the reference must be a list of document texts (or of token lists)")
    analyze = analyzer(stop_word_set(stop_words, extra_stop_words), lemmatize=lemmatize, merged_vocab=merged_vocab)
    return [analyze(t) for t in texts]


def _missing(label) -> bool:
    if isinstance(label, str):
        return not label.strip()
    try:
        return bool(pd.isna(label))
    except (TypeError, ValueError):  # a list or array: not missing, compared as text
        return False


def scorecard(topics: Sequence[Sequence[str]], *, reference=None, doc_topics=None, labels=None,
              word_vectors=None, judge=None, top_n: int = 10, seed: int = 0) -> dict:
    """Score ``topics`` (ranked words per topic, at least ``max(25, top_n)`` each where
    the topic has them) with every measure whose inputs are given.

    ``reference``: token lists (NPMI and C_V) or ``(counts CSR, vocab)`` (NPMI only);
    ``doc_topics`` (n_docs, T) with ``labels`` (n_docs,): NMI / ARI; ``word_vectors``:
    an object with ``vectors_for(words)``; ``judge``: a callable ``prompt -> answer``.
    Returns ``{"measures": {name: number}, "per_topic": {name: list}, "notes": [str],
    "judge_responses": {...}}`` (the last only with a judge); measures are in
    :data:`MEANINGS` order.
    """
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 2:
        raise SaetmError(f"top_n must be a whole number of at least 2 (words per topic), got {top_n!r}")
    top_n = int(top_n)
    lists = topic_word_lists(topics, None)
    measures, per_topic, notes, responses = {}, {}, [], {}

    measures["topic_diversity"] = topic_diversity(lists, TD_TOP)
    if word_vectors is not None:
        if sum(1 for t in lists if t) >= 2:
            try:
                measures["wmd_diversity"] = wmd_diversity(lists, word_vectors, WMD_TOP)
            except SaetmError as e:  # POT not installed: the other measures still stand
                notes.append(f"{e}; skipped")
        else:
            notes.append("WMD diversity needs at least two topics with words")
    if reference is not None:
        npmi = npmi_coherence(lists, reference, top_n=top_n)
        measures["npmi"], per_topic["npmi"] = npmi["mean"], npmi["per_topic"]
        if _is_token_lists(reference):
            cv = cv_coherence(lists, reference, top_n=top_n, window=CV_WINDOW)
            measures["cv"], per_topic["cv"] = cv["mean"], cv["per_topic"]
        else:
            notes.append("C_V needs the reference as token lists (its window follows word order); skipped")
    else:
        notes.append("no reference corpus: NPMI and C_V skipped")
    if word_vectors is not None:
        emb = embedding_coherence(lists, word_vectors, top_n=top_n)
        measures["embedding_coherence"], per_topic["embedding_coherence"] = emb["mean"], emb["per_topic"]
    else:
        notes.append("no word vectors: WMD diversity and embedding coherence skipped")

    if (doc_topics is None) != (labels is None):
        raise SaetmError("label agreement needs both doc_topics and labels")
    if labels is not None:
        measures.update(_label_measures(doc_topics, labels, notes))
    else:
        notes.append("no labels: NMI and ARI skipped (fit with labels, or give labels)")

    if judge is not None:
        measures.update(_judge_measures(lists, judge, top_n, seed, per_topic, responses, notes))
    out = {"measures": measures, "per_topic": per_topic, "notes": notes}
    if responses:
        out["judge_responses"] = responses
    return out


def _label_measures(doc_topics, labels, notes: list) -> dict:
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise SaetmError("labels must be a list with one label per document")
    labels = list(labels)
    n_docs = doc_topics.shape[0]
    if len(labels) != n_docs:
        raise SaetmError(f"got {len(labels)} labels for {n_docs} documents; give one label per fitted document, "
                         "in the order they were fitted")
    keep = np.array([not _missing(x) for x in labels], dtype=bool)
    if not keep.any():
        raise SaetmError("every label is empty; give labels for the fitted documents")
    if not keep.all():
        notes.append(f"{int((~keep).sum())} documents without a label left out of NMI / ARI")
    rows = np.flatnonzero(keep)
    return label_agreement(doc_topics[rows], [str(labels[i]) for i in rows])


def _judge_measures(lists, judge, top_n: int, seed: int, per_topic: dict, responses: dict, notes: list) -> dict:
    from saetm.evaluation.judge import intruder_detection, llm_coherence

    out = {}
    rating = llm_coherence(lists, judge, n_words=JUDGE_WORDS, n_shuffles=JUDGE_SHUFFLES, seed=seed)
    out["llm_coherence"], out["llm_coherence_unparsed"] = rating["mean"], rating["n_unparsed"]
    per_topic["llm_coherence"], responses["coherence"] = rating["per_topic"], rating["responses"]
    if sum(1 for t in lists if t) >= 2:
        # Intruders come from the topic's top_n list; it must list more than the words shown.
        intruder = intruder_detection([t[:top_n] for t in lists], judge, n_words=INTRUDER_WORDS, seed=seed)
        out["intruder_accuracy"], out["intruder_unparsed"] = intruder["accuracy"], intruder["n_unparsed"]
        per_topic["intruder_accuracy"], responses["intruder"] = intruder["per_topic"], intruder["responses"]
        if intruder["n_skipped"]:
            notes.append(f"intruder detection skipped {intruder['n_skipped']} topics with too few words")
    else:
        notes.append("intruder detection needs at least two topics; skipped")
    return out


def jsonable(obj):
    """``obj`` with NaN / inf turned into None and numpy scalars into Python numbers (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def format_table(measures: dict, top_n: int = 10) -> str:
    """A small text table: measure, value, what it means."""
    rows = [(name, value, MEANINGS.get(name, "").replace("{n}", str(top_n))) for name, value in measures.items()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'measure':<{width}}  {'value':>8}  meaning"]
    for name, value, meaning in rows:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            shown = f"{value:>8d}"
        elif value is None or not math.isfinite(float(value)):
            shown = f"{'n/a':>8}"
        else:
            shown = f"{float(value):>8.3f}"
        lines.append(f"{name:<{width}}  {shown}  {meaning}")
    return "\n".join(lines)
