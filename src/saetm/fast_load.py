"""What saving stores so that loading and ``saetm topics`` do less work.

The fitted document weights: W (``doc_topics_``), the topic centroids μ and the topic
weights ρ of ``doc_weights="centroid"``, in ``topics.safetensors``. Loading reads them
instead of refitting the mixture that made them (its EM takes seconds on 20,000
documents). They are optional: a model saved without them, or one that cannot use them
(saved with ``doc_weights="theta"`` or without document embeddings), gets its weights
recomputed as before.

The seal in ``model.json`` (:mod:`saetm.topic_table`), which lets ``saetm topics`` print
``topics.json`` without loading the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from saetm.errors import SaetmError
from saetm.io.persist import csr_from_tensors, csr_to_tensors
from saetm.topic_table import sealed  # noqa: F401 (model_files imports it from here)


def as_stored(x) -> float:
    """``x`` rounded to float32, as ``topics.safetensors`` keeps it: ``topics.json`` then
    agrees with the loaded model to the last digit."""
    return float(np.float32(x))


def weight_tensors(model) -> dict:
    """The arrays to save; none when the weights are not centroid-weighted."""
    centroids = getattr(model, "topic_centroids_", None)
    if centroids is None:
        return {}
    return {**csr_to_tensors("doc_topics", model.doc_topics_), "centroids": np.asarray(centroids, np.float32),
            "priors": np.asarray(model.topic_priors_, np.float64)}


def stored_weights(arrays: dict, model, n_topics: int, path: Path):
    """(W, μ, ρ) read from ``arrays`` (the contents of ``path``) and checked against the loaded
    ``model`` (θ, document embeddings) and ``n_topics``; None when the file holds none or the
    model cannot use them."""
    E = getattr(model, "doc_embeddings_", None)
    if "centroids" not in arrays or E is None or model.doc_weights != "centroid":
        return None
    try:
        W = csr_from_tensors("doc_topics", arrays)
        centroids, priors = np.asarray(arrays["centroids"]), np.asarray(arrays["priors"])
    except KeyError as e:
        raise SaetmError(f"{path} lacks the array {e}; the file is corrupt, re-run `saetm fit`") from None
    ok = (W.shape == (model.theta_.shape[0], n_topics) and W.dtype == np.float32
          and np.isfinite(W.data).all() and (W.data >= 0).all()
          and centroids.shape == (n_topics, E.shape[1]) and centroids.dtype == np.float32
          and np.isfinite(centroids).all()
          and priors.shape == (n_topics,) and priors.dtype.kind == "f" and np.isfinite(priors).all()
          and (priors > 0).all())
    if not ok:
        raise SaetmError(f"{path} holds document weights that do not match the model's documents and topics; "
                         "the files are corrupt or mixed from different fits, re-run `saetm fit`")
    W.sum_duplicates()  # canonical, as the fitted weights (see merge.doc_topics)
    return W, centroids, np.asarray(priors, np.float64)


def saved_or_refitted(arrays: dict, model, topics, smoothing: float, path: Path):
    """(W, μ, ρ) of a model being loaded: those saved in ``arrays`` (from ``path``), else
    recomputed from θ and the document embeddings for ``topics`` with the smoothing ``smoothing``."""
    from saetm.pipeline import document_weights

    n_topics = topics.topic_words.shape[0]
    return (stored_weights(arrays, model, n_topics, path)
            or document_weights(model, topics.atom_topic, n_topics, smoothing=smoothing))
