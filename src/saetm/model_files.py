"""Saving and loading ``SAETM`` models: safetensors + JSON, atomic, versioned, no pickle.

Directory layout (``DIR``)::

    model.json          settings, versions, fit report, the input ``saetm fit`` read (path,
                        SHA-256, text field) — written LAST: its presence means the
                        directory is complete
    vocab.json          the vocabulary (list of words)
    state.safetensors   θ (CSR), B (CSR), p0, θ̄, atom embeddings, atom tree — stages 1–2;
                        document-word incidence (word ranking) and float16 document
                        embeddings (doc_weights="centroid"; absent in the oldest files);
                        the static encoder's IDF table (``encoder.idf``)
    topics.safetensors  atom→topic, topic word distributions, prevalence, coverage, document weights — stage 3
    sae/                the SAE (sae.safetensors + sae.json)
    documents.parquet   text (cut to 1,000 characters), and id / date / label / image
                        path of each fitted document when given (the ``image`` column is
                        optional: models saved before it existed load without it)
    topics.json         top words per topic (for other tools)
    doc_topics.npz      documents × topics weights (scipy.sparse), rows in input order

Every file carries the id of its save (``fit_id`` in ``model.json``), and loading refuses
files of different saves. Writing goes through :mod:`saetm.io.directory` (a lock, a
staging folder, one commit step), so a failure leaves the previous model untouched and
a killed run leaves a directory that refuses to load rather than a mixed one.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os  # noqa: F401  (tests patch model_files.os)
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from saetm._version import FORMAT_VERSION, __version__
from saetm.io.directory import (FIT_ID, LOCK_FILE, MODEL_FILE, MODEL_FILES, STAGING, TOPIC_FILES,  # noqa: F401
                                _commit, _staging, _write_problem, check_one_fit, check_output_dir, directory_lock,
                                new_fit_id, refuse_links)
from saetm.io.documents import TEXT_CHARS  # noqa: F401  (saetm.model imports it from here)
from saetm.io.documents import write_documents as _write_documents
from saetm.io.persist import csr_to_tensors, read_json, write_json, write_npz, write_tensors
from saetm.io.provenance import content_sha256
from saetm.fast_load import as_stored, sealed, weight_tensors

log = logging.getLogger("saetm")


def save_model(model, directory: Path, *, overwrite: bool = False) -> Path:
    from saetm.sae.persist import save_sae

    check_output_dir(directory, overwrite)
    try:
        with directory_lock(directory):
            check_output_dir(directory, overwrite)  # again: another process may have saved meanwhile
            with _staging(directory) as stage:
                fit_id = new_fit_id()  # in every file: load refuses files mixed from different saves
                write_json(stage / "vocab.json", list(model.vocab_))
                state = {
                    **csr_to_tensors("theta", model.theta_),
                    **csr_to_tensors("feature_words", model.feature_words_),
                    **_doc_words_tensors(model),
                    **_doc_embeddings_tensors(model),
                    **_encoder_tensors(model),
                    "background": np.asarray(model.background_, np.float32),
                    "feature_prob": np.asarray(model.feature_prob_, np.float32),
                    "atom_embeddings": np.asarray(model.atom_embeddings_, np.float32),
                    "tree.linkage": np.asarray(model.atom_tree_.linkage, np.float64),
                    "tree.atoms": np.asarray(model.atom_tree_.atoms, np.int64),
                    "tree.power": np.asarray([model.atom_tree_.power], np.float64),
                }
                write_tensors(stage / "state.safetensors", state, metadata={FIT_ID: fit_id})
                save_sae(model.sae_, stage / "sae", fit_id=fit_id)
                _write_documents(stage / "documents.parquet", model.documents_, fit_id)
                write_topics(model, stage, fit_id)
                write_json(stage / MODEL_FILE, sealed({**_model_json(model), "fit_id": fit_id,
                                                       "vocab_sha256": content_sha256(stage / "vocab.json")}, stage))
                _commit(stage, directory, MODEL_FILES, incomplete_first=True)
    except OSError as e:
        raise _write_problem(directory, e) from None
    return directory


def save_topics(model, directory: Path) -> None:
    """Rewrite the stage-3 files and ``model.json`` of a saved model after ``retopic`` (or
    a new ``words.diversity``); a directory of an older format is rewritten whole.

    ``topics.safetensors`` is renamed in first and is what ``load`` reads; the exports
    and ``model.json`` follow, each replaced whole."""
    labels = getattr(model, "custom_labels_", None)
    if read_json(directory / MODEL_FILE).get("format_version") != FORMAT_VERSION:
        # an older format (loaded through saetm.migrate): rewrite the whole directory in this one
        save_model(model, directory, overwrite=True)
        return
    try:
        with directory_lock(directory), _staging(directory) as stage:
            info = read_json(directory / MODEL_FILE)
            info["params"] = saved_params(model)
            info["custom_labels"] = labels if labels is not None and len(labels) == model.n_topics else None
            fit_id = info.get("fit_id")  # the same fit: the new topics keep its id
            write_topics(model, stage, fit_id if isinstance(fit_id, str) else None)
            write_json(stage / MODEL_FILE, sealed(info, stage, directory))  # the other files stay
            _commit(stage, directory, TOPIC_FILES, incomplete_first=False)
    except OSError as e:
        raise _write_problem(directory, e) from None


def write_topics(model, directory: Path, fit_id: str | None = None) -> None:
    """Write the stage-3 state (tagged with ``fit_id``) and the two exports; called by
    save and by retopic."""
    t = model.topics_
    write_tensors(directory / "topics.safetensors", {
        "atom_topic": np.asarray(model.atom_topic_, np.int64),
        "topic_words": np.asarray(t.topic_words, np.float32),
        "prevalence": np.asarray(t.prevalence, np.float32),
        "n_atoms": np.asarray(t.n_atoms, np.int64),
        "coverage": np.asarray(model.coverage_, np.float32),
        # the s the weights were fitted with, which a later set_params(doc_smoothing) may differ from
        # and the b of the documents' words
        **({} if model.doc_smoothing_ is None else {
            "doc_smoothing": np.asarray([model.doc_smoothing_], np.float64),
            "doc_word_weight": np.asarray([model.doc_word_weight_], np.float64)}),
        **weight_tensors(model),  # read back by load instead of refitting the mixture
    }, metadata=None if fit_id is None else {FIT_ID: fit_id})
    write_json(directory / "topics.json", topics_json(model))
    write_npz(directory / "doc_topics.npz", model.doc_topics_)


def topics_json(model, n_words: int = 25) -> dict:
    """Per topic its words in listed order with their "scores" (non-increasing down the list, see
    ``SAETM.get_topic``) and "weights" (β, the topic's word distribution, in the same order)."""
    lists = model.get_topics(n_words, with_beta=True)  # {topic: [(word, score, β)]}
    labels = model.topic_labels()
    return {
        "n_topics": int(model.n_topics),
        "topics": [
            {"id": t, "label": labels[t], "words": [w for w, _, _ in lists[t]],
             "scores": [s for _, s, _ in lists[t]], "weights": [b for _, _, b in lists[t]],
             "prevalence": as_stored(model.topics_.prevalence[t]), "coverage": as_stored(model.coverage_[t]),
             "n_atoms": int(model.topics_.n_atoms[t])}
            for t in range(model.n_topics)
        ],
    }


def _model_json(model) -> dict:
    return {**_header(), **_rest_of_model_json(model)}


def _header() -> dict:
    return {"format": "saetm-model", "format_version": FORMAT_VERSION, "saetm_version": __version__,
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def saved_params(model) -> dict:
    """The settings as ``model.json`` keeps them: top-level values, and each component as an
    object of its fields (``sae`` only when it holds training settings; the encoder is saved
    apart, and the SAE itself in ``sae/``)."""
    from saetm.components import SAETraining

    params = {k: v for k, v in model.get_params(deep=False).items() if k not in ("encoder", "sae")}
    for key in ("words", "clustering"):
        params[key] = dict(params[key].get_params(deep=False))
    if isinstance(model.sae, SAETraining):
        params["sae"] = dict(model.sae.get_params(deep=False))
    for key in ("stop_words", "extra_stop_words"):  # word lists may be sets or tuples: JSON wants lists
        if params[key] is not None and not isinstance(params[key], str):
            params[key] = sorted({str(w) for w in params[key]})
    return _jsonable(params)


def _rest_of_model_json(model) -> dict:
    report = getattr(model, "fit_report_", None)
    return {
        "params": saved_params(model),
        "encoder": model.encoder_.name,
        "encoder_is_callable": callable(model.encoder_.model),
        "embedding_name": getattr(model, "embedding_name_", model.encoder_.name),
        "sae_source": getattr(report, "sae", {}).get("source", "loaded") if report else "loaded",
        "n_documents": int(model.theta_.shape[0]),
        "vocabulary_size": len(model.vocab_),
        "custom_labels": getattr(model, "custom_labels_", None),
        "input": getattr(model, "input_", None),  # the file `saetm fit` read: path, sha256, text_field
        "fit_report": _jsonable(report.__dict__) if report else getattr(model, "fit_info_", None),
    }


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _doc_words_tensors(model) -> dict:
    """Which documents hold which words (for the ``coherent`` word ranking), as CSR."""
    m = getattr(model, "doc_words_", None)
    return {} if m is None else csr_to_tensors("doc_words", sp.csr_matrix(m))


def _encoder_tensors(model) -> dict:
    """The static encoder's IDF table (``transform`` weighs new documents' word pieces with it)."""
    idf = getattr(model.encoder_, "idf", None)
    return {} if idf is None else {"encoder.idf": np.asarray(idf, np.float32)}


def _doc_embeddings_tensors(model) -> dict:
    E = getattr(model, "doc_embeddings_", None)
    return {} if E is None else {"doc_embeddings": np.asarray(E, np.float16)}


from saetm.model_load import load_model  # noqa: E402,F401  (SAETM.load and callers import it from here)
