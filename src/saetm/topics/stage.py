"""Stage 3: atoms grouped into topics, and the documents' topic weights (word distributions → topics).

Functions of plain values: an :class:`AtomState` (what stage 3 reads of a fitted model), the
settings of a :class:`saetm.components.Clustering` and the seed; they return a :class:`TopicResult`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

log = logging.getLogger("saetm")


def check_doc_smoothing(value) -> float:
    """``clustering.doc_smoothing`` as a float in [0, 1], or a one-line SaetmError."""
    from saetm.settings import check

    return check("clustering.doc_smoothing", value)


def check_doc_word_weight(value) -> float | None:
    """``clustering.doc_word_weight`` as a float ≥ 0 or None, or a one-line SaetmError."""
    from saetm.settings import check

    return check("clustering.doc_word_weight", value)


def check_prevalence_power(value) -> float:
    """``clustering.prevalence_power`` as a float in [0, 1], or a one-line SaetmError."""
    from saetm.settings import check

    return check("clustering.prevalence_power", value)


def check_n_topics(n_topics, feature_prob: np.ndarray) -> int:
    """``n_topics`` as an int between 1 and the number of used atoms, or a one-line SaetmError."""
    from saetm.settings import check

    n_used = int((np.asarray(feature_prob) > 0).sum())
    n_topics = check("n_topics", n_topics)
    if n_topics > n_used:
        raise SaetmError(f"n_topics={n_topics} is more than the {n_used} atoms this corpus uses; "
                         f"lower --topics (n_topics) to at most {n_used}")
    return n_topics


def warn_if_many_topics(n_topics: int, n_documents: int, feature_prob: np.ndarray) -> None:
    """One warning when T is large for the data: more than one topic per 5 documents, or
    fewer than 5 used atoms per topic on average. Such topics are a few atoms and documents
    each (100 topics on 50 documents: 1–3 atoms per topic) and mostly split one theme."""
    n_used = int((np.asarray(feature_prob) > 0).sum())
    if n_topics > 1 and (n_topics > n_documents / 5 or n_used < 5 * n_topics):
        fit = max(1, min(n_documents // 5, n_used // 5))
        log.warning("%d topics is many for %d documents and %d used atoms (%.1f documents and %.1f atoms per "
                    "topic); the topics will be small fragments: try %d or fewer (retopic changes it without refitting)",
                    n_topics, n_documents, n_used, n_documents / n_topics, n_used / n_topics, fit)


def word_vector_source(word_vectors: str, encoder):
    """GloVe for ``word_vectors="glove"``, else the word vectors of ``encoder``."""
    from saetm.topics.wordvectors import EncoderWordVectors, GloveVectors

    return GloveVectors() if word_vectors == "glove" else EncoderWordVectors(encoder)


def atom_embeddings(B: sp.csr_matrix, clustering, *, vocab, encoder, sae, seed: int,
                    theta: sp.csr_matrix | None = None, X: np.ndarray | None = None,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Atoms as points to cluster, per ``clustering.atom_space`` (see :mod:`saetm.topics.atomspace`).

    ``B``: the atoms' word distributions over ``vocab``; ``encoder``: gives the word vectors
    unless ``clustering.word_vectors`` is ``"glove"``; ``sae``: its decoder rows for the
    ``"decoder"`` space; ``theta``: (n_docs, n_atoms); ``X``: the embeddings of documents ``rows`` of θ."""
    from saetm.topics import atomspace, merge

    space = clustering.atom_space
    parts = []
    if space == "words":
        vectors = word_vector_source(clustering.word_vectors, encoder).vectors_for(vocab)
        return merge.atom_embeddings(merge.sparsify_rows(B, clustering.tau), vectors)
    if space == "decoder":
        return atomspace.decoder_embeddings(sae.W_dec.detach().cpu().numpy())
    if space in ("documents", "documents+coactivation"):
        th = sp.csr_matrix(theta)[rows] if rows is not None else theta
        parts.append(atomspace.document_embeddings(th, X))
    if space in ("coactivation", "documents+coactivation"):
        parts.append(atomspace.coactivation_embeddings(theta, seed=seed))
    return parts[0] if len(parts) == 1 else atomspace.combine(*parts)


def atom_tree(atom_embeddings: np.ndarray, feature_prob: np.ndarray, prevalence_power):
    """Weighted Ward tree over the used atoms (weights θ̄^p, p = ``prevalence_power``):
    every granularity at once, and the starting point that makes k-means for any T fast
    and stable."""
    from dataclasses import replace

    from saetm.topics.hierarchy import build_atom_tree
    from saetm.topics.merge import cluster_weights

    power = check_prevalence_power(prevalence_power)  # set_params does not validate
    return replace(build_atom_tree(atom_embeddings, cluster_weights(feature_prob, power)), power=power)


@dataclass
class AtomState:
    """What stage 3 reads of a fitted model: the atoms' word distributions B and prevalence θ̄,
    θ, the atoms as points and their tree, the documents' embedding directions (or None), their
    word directions ŵ (or None; :mod:`saetm.topics.docwords`), the encoder's default weight b
    of those words and the model's seed (of the mixture's sample on very large collections)."""

    feature_words: sp.csr_matrix
    feature_prob: np.ndarray
    theta: sp.csr_matrix
    atom_embeddings: np.ndarray
    atom_tree: object
    doc_embeddings: np.ndarray | None
    doc_words: sp.csr_matrix | None = None
    word_weight: float = 0.0
    seed: int = 0


@dataclass
class TopicResult:
    atom_topic: np.ndarray
    topics: object
    doc_topics: sp.csr_matrix
    coverage: np.ndarray
    centroids: np.ndarray | None = None  # (T, dim) with doc_weights="centroid"
    priors: np.ndarray | None = None  # (T,) ρ, the topic weights, with doc_weights="centroid"
    smoothing: float | None = None  # s those centroids and ρ were fitted with (doc_smoothing)
    word_centroids: np.ndarray | None = None  # (T, V) ν of the word view (None: weights without words)
    word_weight: float = 0.0  # b those weights were fitted with


def cluster(atoms: AtomState, n_topics: int, clustering, *, seed: int) -> TopicResult:
    """``n_topics`` topics: k-means over the atoms started from the tree cut at ``n_topics``."""
    from saetm.topics import merge
    from saetm.topics.hierarchy import cut

    n_topics = check_n_topics(n_topics, atoms.feature_prob)
    # k-means weighs the atoms as the tree that starts it did
    weights = merge.cluster_weights(atoms.feature_prob, atoms.atom_tree.power)
    labels = merge.cluster_atoms(atoms.atom_embeddings, weights, n_topics, seed=seed,
                                 init=cut(atoms.atom_tree, n_topics))
    return topics_from_labels(atoms, labels, n_topics, clustering)


def topics_from_labels(atoms: AtomState, atom_topic: np.ndarray, n_topics: int, clustering) -> TopicResult:
    """Topics, document weights and coverage of the atoms grouped by ``atom_topic``
    (ids in [0, n_topics) or −1)."""
    from saetm.topics import merge

    topics = merge.build_topics(atoms.feature_words, atoms.feature_prob, atom_topic, n_topics)
    smoothing = check_doc_smoothing(clustering.doc_smoothing)  # set_params does not validate
    word_weight = word_weight_of(clustering, atoms.word_weight)
    W, centroids, priors, word_centroids = document_weights(
        atoms.theta, atoms.doc_embeddings, topics.atom_topic, n_topics, clustering, smoothing=smoothing,
        words=atoms.doc_words, word_weight=word_weight, seed=atoms.seed)
    return TopicResult(topics.atom_topic, topics, W, merge.coverage(W), centroids, priors,
                       None if centroids is None else smoothing, word_centroids,
                       0.0 if word_centroids is None else word_weight)


def word_weight_of(clustering, default: float) -> float:
    """b: ``clustering.doc_word_weight`` checked, or ``default`` (the encoder's) when it is None."""
    value = check_doc_word_weight(clustering.doc_word_weight)  # set_params does not validate
    return float(default) if value is None else value


def document_weights(theta: sp.csr_matrix, doc_embeddings: np.ndarray | None, atom_topic: np.ndarray,
                     n_topics: int, clustering, *, rounds: int | None = None, fit_priors: bool = True,
                     smoothing: float | None = None, words: sp.csr_matrix | None = None, word_weight: float = 0.0,
                     seed: int = 0):
    """The fitted documents' topic weights, the topic centroids μ, weights ρ and word centroids ν
    (μ and ρ ``None`` with ``clustering.doc_weights="theta"`` or without document embeddings;
    ν ``None`` also without ``words`` or with ``word_weight`` 0). ``rounds`` and ``fit_priors``:
    of the mixture's EM (:func:`saetm.topics.docweights.fit_mixture`; its default rounds if
    None); ``smoothing``: ``clustering.doc_smoothing`` if None; ``words``, ``word_weight``: ŵ
    and b of the word view (:mod:`saetm.topics.docwords`); ``seed``: of the mixture's sample
    past ``docweights.MAX_MIXTURE_DOCS`` documents (the model's, so that the sample is the
    documents whose words the model keeps)."""
    from saetm.topics import docweights, merge

    W = merge.doc_topics(theta, atom_topic, n_topics)
    E = doc_embeddings
    if clustering.doc_weights == "theta" or E is None:
        return W, None, None, None
    if smoothing is None:
        smoothing = check_doc_smoothing(clustering.doc_smoothing)  # set_params does not validate
    units = docweights.UnitRows(E, keep=True)  # one set of unit rows for the mixture and the weights
    centroids, priors, word_centroids = docweights.fit_mixture(W, units, n_iter=rounds, fit_priors=fit_priors,
                                                               smoothing=smoothing, words=words,
                                                               word_weight=word_weight, seed=seed)
    W = docweights.sharpen(W, units, centroids, priors=priors, smoothing=smoothing, words=words,
                           word_centroids=word_centroids, word_weight=word_weight)
    return W, centroids, priors, word_centroids


def document_embeddings(X: np.ndarray, rows: np.ndarray, n_rows: int, doc_weights: str) -> np.ndarray | None:
    """What a model keeps of the embeddings for ``doc_weights="centroid"``: their directions
    (only cosines are used) as ``(n_rows, dim)`` float16 — unit rows cannot overflow it —, all-zero
    rows for documents without one (empty texts); ``None`` otherwise."""
    return None if doc_weights == "theta" else directions(X, rows, n_rows)


def directions(X: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Unit rows of ``X`` placed at ``rows`` of an ``(n_rows, dim)`` float16 array (others zero)."""
    from saetm.encoders import embed
    from saetm.topics.atomspace import unit_rows

    out = np.zeros((n_rows, X.shape[1]), dtype=np.float16)
    for lo in embed.row_blocks(X):
        out[rows[lo:lo + embed.BLOCK_ROWS]] = unit_rows(X[lo:lo + embed.BLOCK_ROWS])
    return out


def topic_weights(theta: sp.csr_matrix, X: np.ndarray, rows: np.ndarray, *, atom_topic: np.ndarray,
                  n_topics: int, centroids: np.ndarray | None, priors: np.ndarray | None,
                  smoothing: float | None, normalize: bool, words: sp.csr_matrix | None = None,
                  word_centroids: np.ndarray | None = None, word_weight: float = 0.0) -> sp.csr_matrix:
    """Topic weights of new documents (θ of their atoms, embeddings ``X`` at ``rows``, word
    directions ``words`` or None) under the fitted ``atom_topic``, topic ``centroids``,
    ``priors``, ``smoothing``, ``word_centroids`` and ``word_weight`` (no centroids: θ's)."""
    from saetm.topics import docweights, merge

    W = merge.doc_topics(theta, atom_topic, n_topics, normalize=normalize)
    if centroids is None:
        return W
    # Weighted whenever the fitted documents are (the centroids say so, whatever set_params
    # changed since), and in float16 as theirs: the same text gets the same weights.
    return docweights.sharpen(W, directions(X, rows, theta.shape[0]), centroids, priors=priors, smoothing=smoothing,
                              words=words, word_centroids=word_centroids, word_weight=word_weight)
