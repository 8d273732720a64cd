"""Topic quality measures over plain inputs, so saetm and peer models are scored alike.

Inputs: ``topics`` — ranked top words per topic (``list[list[str]]``); a reference
corpus (token lists, or a ``(counts CSR, vocab)`` pair); a word-vectors object with
``vectors_for(words) -> (n, d)`` (e.g. :class:`saetm.topics.wordvectors.GloveVectors`);
``doc_topics`` and ``labels``; a judge (see :mod:`saetm.evaluation.judge`).

Word vectors are requested once per call for the union of the topics' words, so an
out-of-vocabulary word gets the same (mean) vector in every topic it appears in.
"""

from __future__ import annotations

import itertools
import logging
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.evaluation.coherence import _is_token_lists, cv_coherence, npmi_coherence, topic_word_lists

logger = logging.getLogger("saetm")


def topic_diversity(topics: Sequence[Sequence[str]], top_n: int = 25) -> float:
    """TD (Dieng et al. 2020): distinct words / all words among every topic's ``top_n``.

    1.0 = no word shared between topics. Topics shorter than ``top_n`` contribute
    the words they have.
    """
    lists = topic_word_lists(topics, top_n)
    total = sum(len(t) for t in lists)
    if total == 0:
        raise SaetmError("the topics have no words")
    return len(set(itertools.chain.from_iterable(lists))) / total


def _topic_vectors(lists: list[list[str]], word_vectors, normalize: bool) -> list[np.ndarray]:
    if not hasattr(word_vectors, "vectors_for"):
        raise SaetmError("word_vectors must have a vectors_for(words) method, "
                         "e.g. saetm.topics.wordvectors.GloveVectors()")
    vocab = list(dict.fromkeys(itertools.chain.from_iterable(lists)))
    if not vocab:
        raise SaetmError("the topics have no words")
    vectors = np.asarray(word_vectors.vectors_for(vocab), dtype=np.float64)
    if vectors.shape[0] != len(vocab):
        raise SaetmError(f"word_vectors returned {vectors.shape[0]} vectors for {len(vocab)} words")
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms > 0, norms, 1.0)
    index = {w: i for i, w in enumerate(vocab)}
    return [vectors[[index[w] for w in t]] for t in lists]


def wmd_diversity(topics: Sequence[Sequence[str]], word_vectors, top_n: int = 20, normalize: bool = True) -> float:
    """Mean Word Mover's Distance over all pairs of topics (the paper's diversity).

    Each topic is a uniform distribution over its ``top_n`` words; the ground cost
    is the Euclidean distance between word vectors, which are L2-normalised first
    when ``normalize`` (as in gensim's ``KeyedVectors.wmdistance``, the usual WMD
    implementation); the transport cost is solved exactly with POT's ``ot.emd2``.
    Higher = more diverse. Needs at least two topics, and POT (the extra ``eval``).
    """
    try:
        import ot
    except ImportError:
        raise SaetmError("WMD diversity needs the package POT: pip install 'saetm[eval]'") from None

    lists = topic_word_lists(topics, top_n)
    mats = _topic_vectors(lists, word_vectors, normalize)
    mats = [(m, np.full(len(m), 1.0 / len(m))) for m in mats if len(m)]
    if len(mats) < 2:
        raise SaetmError("WMD diversity needs at least two topics with words")
    dists = []
    for (x, a), (y, b) in itertools.combinations(mats, 2):
        cost = ot.dist(x, y, metric="euclidean")
        dists.append(float(ot.emd2(a, b, cost)))
    return float(np.mean(dists))


def embedding_coherence(topics: Sequence[Sequence[str]], word_vectors, top_n: int = 10) -> dict:
    """Mean pairwise cosine similarity of each topic's ``top_n`` word vectors.

    Returns ``{"mean": float, "per_topic": list[float]}`` (NaN for a topic with fewer
    than two words, left out of the mean).
    """
    lists = topic_word_lists(topics, top_n)
    mats = _topic_vectors(lists, word_vectors, normalize=True)
    per_topic = []
    for m in mats:
        if len(m) < 2:
            per_topic.append(float("nan"))
            continue
        sims = m @ m.T
        per_topic.append(float(sims[np.triu_indices(len(m), k=1)].mean()))
    per = np.asarray(per_topic)
    return {"mean": float(np.nanmean(per)) if np.isfinite(per).any() else float("nan"), "per_topic": per.tolist()}


def label_agreement(doc_topics, labels: Sequence) -> dict:
    """NMI and ARI between each document's argmax topic and its label.

    ``doc_topics``: (n_docs, n_topics) dense or sparse; ``labels``: (n_docs,) any
    hashable values. Documents whose row is all zero (no active topic) form their
    own "none" cluster rather than being dropped, so a model is not rewarded for
    leaving hard documents unassigned. Returns ``{"nmi", "ari", "unassigned"}``
    (the last: share of documents with no topic).
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    if sp.issparse(doc_topics):
        M = sp.csr_matrix(doc_topics, copy=True)
        M.eliminate_zeros()
        n = M.shape[0]
        has_topic = np.diff(M.indptr) > 0
        assigned = np.asarray(M.argmax(axis=1)).ravel()
    else:
        M = np.asarray(doc_topics, dtype=np.float64)
        if M.ndim != 2:
            raise SaetmError(f"doc_topics must be (n_docs, n_topics), got shape {M.shape}")
        n = M.shape[0]
        has_topic = (M != 0).any(axis=1)
        assigned = M.argmax(axis=1) if M.shape[1] else np.zeros(n, dtype=np.int64)
    if len(labels) != n:
        raise SaetmError(f"doc_topics has {n} rows but there are {len(labels)} labels")
    if n == 0:
        raise SaetmError("no documents to compare with labels")
    clusters = np.where(has_topic, assigned, -1)
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "unassigned": float(1.0 - has_topic.mean()),
    }


def evaluate_topics(topics: Sequence[Sequence[str]], *, reference=None, word_vectors=None, doc_topics=None,
                    labels=None, judge=None, seed: int = 0) -> dict:
    """Every measure whose inputs are given, as a flat ``{name: float}`` dict.

    Always: ``topic_diversity`` (top 25). With ``reference``: ``npmi`` (document
    co-occurrence, top 10) and, if the reference is token lists, ``cv`` (window 110).
    With ``word_vectors``: ``wmd_diversity`` (top 20), ``embedding_coherence`` (top 10).
    With ``doc_topics`` and ``labels``: ``nmi``, ``ari``, ``unassigned``. With
    ``judge``: ``llm_coherence``, ``intruder_accuracy`` (and their unparsed counts).
    """
    from saetm.evaluation.judge import intruder_detection, llm_coherence

    out = {"topic_diversity": topic_diversity(topics)}
    if reference is not None:
        out["npmi"] = npmi_coherence(topics, reference)["mean"]
        if _is_token_lists(reference):
            out["cv"] = cv_coherence(topics, reference)["mean"]
        else:
            logger.info("C_V skipped: its sliding window needs the reference as token lists")
    if word_vectors is not None:
        if len(topics) >= 2:
            out["wmd_diversity"] = wmd_diversity(topics, word_vectors)
        out["embedding_coherence"] = embedding_coherence(topics, word_vectors)["mean"]
    if (doc_topics is None) != (labels is None):
        raise SaetmError("label agreement needs both doc_topics and labels")
    if doc_topics is not None:
        out.update(label_agreement(doc_topics, labels))
    if judge is not None:
        rating = llm_coherence(topics, judge, seed=seed)
        out["llm_coherence"] = rating["mean"]
        out["llm_coherence_unparsed"] = rating["n_unparsed"]
        intruder = intruder_detection(topics, judge, seed=seed)
        out["intruder_accuracy"] = intruder["accuracy"]
        out["intruder_unparsed"] = intruder["n_unparsed"]
    return out
