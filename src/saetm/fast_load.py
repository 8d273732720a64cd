"""What saving stores so that loading and ``saetm topics`` do less work.

The fitted document weights: W (``doc_topics_``), the topic centroids μ, the topic
weights ρ and the word centroids ν with their weight b (when the weights use the documents'
words) of ``doc_weights="centroid"``, in ``topics.safetensors``. Loading reads them
instead of refitting the mixture that made them (its EM takes seconds on 20,000
documents). They are optional: a model saved without them, or one that cannot use them
(saved with ``doc_weights="theta"`` or without document embeddings), gets its weights
recomputed as before.

The seal in ``model.json`` (:mod:`saetm.topic_table`), which lets ``saetm topics`` print
``topics.json`` without loading the model.

:func:`mapped_tensors`: ``state.safetensors`` (hundreds of MB) mapped into memory instead
of read: its arrays are the file's pages, read as they are used, private to the process.
"""

from __future__ import annotations

import json
import mmap
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
    nu = getattr(model, "word_centroids_", None)
    words = {} if nu is None else {"word_centroids": np.asarray(nu, np.float32)}
    return {**csr_to_tensors("doc_topics", model.doc_topics_), "centroids": np.asarray(centroids, np.float32),
            "priors": np.asarray(model.topic_priors_, np.float64), **words}


def stored_weights(arrays: dict, model, n_topics: int, path: Path, word_weight: float = 0.0):
    """(W, μ, ρ, ν) read from ``arrays`` (the contents of ``path``) and checked against the
    loaded ``model`` (θ, document embeddings, vocabulary), ``n_topics`` and the weight b of the
    word view they were fitted with (``word_weight``; ν None when 0); None when the file holds
    none or the model cannot use them."""
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
    nu = arrays.get("word_centroids")
    if nu is not None or word_weight:
        ok = (ok and nu is not None and word_weight > 0 and nu.shape == (n_topics, len(model.vocab_))
              and nu.dtype == np.float32 and np.isfinite(nu).all())
    if not ok:
        raise SaetmError(f"{path} holds document weights that do not match the model's documents and topics; "
                         "the files are corrupt or mixed from different fits, re-run `saetm fit`")
    W.sum_duplicates()  # canonical, as the fitted weights (see merge.doc_topics)
    return W, centroids, np.asarray(priors, np.float64), nu


def saved_or_refitted(arrays: dict, model, topics, smoothing: float, path: Path, rounds: int | None = None,
                      word_weight: float = 0.0):
    """(W, μ, ρ, ν) of a model being loaded: those saved in ``arrays`` (from ``path``), else
    recomputed from θ, the document embeddings and words for ``topics`` with the smoothing
    ``smoothing``, the weight ``word_weight`` of the words and ``rounds`` of the mixture's EM
    (None: its default)."""
    from saetm.components import resolved
    from saetm.topics.docwords import fitted_directions
    from saetm.topics.stage import document_weights

    n_topics = topics.topic_words.shape[0]
    n_docs = model.theta_.shape[0]
    return (stored_weights(arrays, model, n_topics, path, word_weight)
            or document_weights(model.theta_, getattr(model, "doc_embeddings_", None), topics.atom_topic, n_topics,
                                resolved(model, "clustering"), rounds=rounds, smoothing=smoothing,
                                words=fitted_directions(model.doc_words_, n_docs, model.seed) if word_weight else None,
                                word_weight=word_weight, seed=model.seed))


_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def mapped_tensors(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the safetensors file ``path``, as :func:`saetm.io.persist.read_tensors`
    returns them, but mapped copy-on-write rather than read: nothing is copied until it is
    used, and writing to an array changes this process's copy only. The header is first
    checked by safetensors itself; a file it refuses, or one whose arrays this cannot map
    (a type it does not know, misaligned data), is read as before."""
    from saetm.io.persist import read_tensor_metadata, read_tensors

    read_tensor_metadata(path)  # safetensors parses and checks the header: a one-line error if broken
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
            buffer = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        start = 8 + size
        out = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(_DTYPES[entry["dtype"]])
            shape = tuple(int(n) for n in entry["shape"])
            begin, end = (start + int(x) for x in entry["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64))
            if end - begin != count * dtype.itemsize or end > len(buffer) or begin % dtype.alignment:
                raise ValueError(name)
            out[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=begin).reshape(shape)
        return out
    except (KeyError, ValueError, TypeError, OSError, AttributeError):
        return read_tensors(path)


def unread_documents(path: Path, n_docs: int) -> None:
    """What loading without the documents checks of ``documents.parquet`` (when present): that
    its footer reads and it has ``n_docs`` rows (its fit id is checked with every file's)."""
    if not path.exists():
        return None
    import pyarrow.parquet as pq

    try:
        rows = pq.read_metadata(path).num_rows
    except Exception as e:  # pyarrow raises its own types for corrupt files
        raise SaetmError(f"{path} is unreadable ({type(e).__name__}); the model directory is corrupt, "
                         "re-run `saetm fit`") from None
    if rows != n_docs:
        raise SaetmError(f"{path} has {rows} rows but the model has {n_docs} documents; the directory is inconsistent")
    return None
