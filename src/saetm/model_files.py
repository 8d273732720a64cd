"""Saving and loading ``SAETM`` models: safetensors + JSON, atomic, versioned, no pickle.

Directory layout (``DIR``)::

    model.json          settings, versions, fit report — written LAST: its presence
                        means the directory is complete
    vocab.json          the vocabulary (list of words)
    state.safetensors   θ (CSR), B (CSR), p0, θ̄, atom embeddings   — stages 1–2
    topics.safetensors  atom→topic, topic word distributions, prevalence, coverage — stage 3
    sae/                the SAE (sae.safetensors + sae.json)
    documents.parquet   id / date / label of each fitted document (when given)
    topics.json         top words per topic (for other tools)
    doc_topics.npz      documents × topics weights (scipy.sparse), rows in input order

Every file goes to a temporary name first and is renamed into place. A lock file
stops two processes from writing one directory at once.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from saetm._version import FORMAT_VERSION, __version__
from saetm.errors import SaetmError
from saetm.io.persist import (atomic_write, csr_from_tensors, csr_to_tensors, read_json, read_tensors,
                              write_json, write_npz, write_tensors)

MODEL_FILE = "model.json"
LOCK_FILE = ".saetm.lock"


@contextmanager
def directory_lock(directory: Path):
    """Hold an exclusive lock on ``directory`` (a lock file with our pid)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise SaetmError(f"another saetm process (pid {pid}) is writing {directory}; wait for it or use another --out") from None
            lock.unlink(missing_ok=True)  # stale: its writer died
        except PermissionError:
            raise SaetmError(f"cannot write to {directory}: permission denied; choose a writable --out") from None
    else:
        raise SaetmError(f"cannot lock {directory}; remove {lock} if no saetm process is running")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_output_dir(directory: Path, overwrite: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise SaetmError(f"{directory} exists and is not a directory; choose another --out")
    if (directory / MODEL_FILE).exists() and not overwrite:
        raise SaetmError(f"{directory} already holds a saetm model; pass --overwrite (or overwrite=True) to replace it")


def save_model(model, directory: Path, *, overwrite: bool = False) -> Path:
    from saetm.sae.persist import save_sae

    check_output_dir(directory, overwrite)
    try:
        with directory_lock(directory):
            (directory / MODEL_FILE).unlink(missing_ok=True)  # incomplete until rewritten last
            write_json(directory / "vocab.json", list(model.vocab_))
            state = {
                **csr_to_tensors("theta", model.theta_),
                **csr_to_tensors("feature_words", model.feature_words_),
                "background": np.asarray(model.background_, np.float32),
                "feature_prob": np.asarray(model.feature_prob_, np.float32),
                "atom_embeddings": np.asarray(model.atom_embeddings_, np.float32),
                "tree.linkage": np.asarray(model.atom_tree_.linkage, np.float64),
                "tree.atoms": np.asarray(model.atom_tree_.atoms, np.int64),
            }
            write_tensors(directory / "state.safetensors", state)
            save_sae(model.sae_, directory / "sae")
            _write_documents(directory / "documents.parquet", model.documents_)
            write_topics(model, directory)
            write_json(directory / MODEL_FILE, _model_json(model))
    except OSError as e:
        raise SaetmError(f"could not write the model to {directory}: {e.strerror or e}; "
                         "check free disk space and permissions (nothing was left half-written)") from None
    return directory


def write_topics(model, directory: Path) -> None:
    """Write the stage-3 state and the two exports; called by save and by retopic."""
    t = model.topics_
    write_tensors(directory / "topics.safetensors", {
        "atom_topic": np.asarray(model.atom_topic_, np.int64),
        "topic_words": np.asarray(t.topic_words, np.float32),
        "prevalence": np.asarray(t.prevalence, np.float32),
        "n_atoms": np.asarray(t.n_atoms, np.int64),
        "coverage": np.asarray(model.coverage_, np.float32),
    })
    write_json(directory / "topics.json", topics_json(model))
    write_npz(directory / "doc_topics.npz", model.doc_topics_)


def topics_json(model, n_words: int = 25) -> dict:
    words, weights = model._top_words(n_words)
    labels = model.topic_labels()
    return {
        "n_topics": int(model.n_topics),
        "topics": [
            {"id": t, "label": labels[t], "words": list(words[t]), "weights": [float(w) for w in weights[t]],
             "prevalence": float(model.topics_.prevalence[t]), "coverage": float(model.coverage_[t]),
             "n_atoms": int(model.topics_.n_atoms[t])}
            for t in range(model.n_topics)
        ],
    }


def _model_json(model) -> dict:
    params = {k: v for k, v in model.get_params().items() if k not in ("encoder", "sae")}
    report = getattr(model, "fit_report_", None)
    return {
        "format": "saetm-model",
        "format_version": FORMAT_VERSION,
        "saetm_version": __version__,
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "params": params,
        "encoder": model.encoder_.name,
        "encoder_is_callable": callable(model.encoder_.model),
        "sae_source": getattr(report, "sae", {}).get("source", "loaded") if report else "loaded",
        "n_documents": int(model.theta_.shape[0]),
        "vocabulary_size": len(model.vocab_),
        "custom_labels": getattr(model, "custom_labels_", None),
        "fit_report": _jsonable(report.__dict__) if report else getattr(model, "fit_info_", None),
    }


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


TEXT_CHARS = 1000  # saved per document: enough for representative documents and reports


def _write_documents(path: Path, meta: dict) -> None:
    cols = {k: v for k, v in (meta or {}).items() if v is not None}
    if "text" in cols:
        cols["text"] = [t[:TEXT_CHARS] for t in cols["text"]]
    if not cols:
        path.unlink(missing_ok=True)
        return
    df = pd.DataFrame({k: (pd.Series(v) if k == "date" else pd.Series(v, dtype="string")) for k, v in cols.items()})
    if "date" in df and df["date"].dtype == object:
        df["date"] = df["date"].astype("string")  # mixed or label-like periods are kept as text
    with atomic_write(path, "wb") as f:
        df.to_parquet(f, index=False)


def _read_documents(path: Path, n_docs: int) -> dict:
    meta = {"id": None, "date": None, "label": None, "text": None}
    if not path.exists():
        return meta
    try:
        df = pd.read_parquet(path)
    except Exception as e:
        raise SaetmError(f"{path} is unreadable ({type(e).__name__}); the model directory is corrupt, re-run `saetm fit`") from None
    if len(df) != n_docs:
        raise SaetmError(f"{path} has {len(df)} rows but the model has {n_docs} documents; the directory is inconsistent")
    for col in df.columns:
        meta[col] = df[col].tolist()
    return meta


def load_model(cls, directory: Path):
    from saetm.encoders.text import TextEncoder
    from saetm.pipeline import TopicResult
    from saetm.sae.persist import load_sae
    from saetm.topics.hierarchy import AtomTree
    from saetm.topics.merge import Topics, doc_topics

    if not directory.is_dir():
        raise SaetmError(f"{directory} is not a directory; give the folder written by `saetm fit`")
    if not (directory / MODEL_FILE).exists():
        raise SaetmError(f"{directory} holds no complete saetm model (no {MODEL_FILE}); "
                         "it was not written by `saetm fit`, or that run did not finish")
    info = read_json(directory / MODEL_FILE)
    if not isinstance(info, dict) or info.get("format") != "saetm-model":
        raise SaetmError(f"{directory / MODEL_FILE} is not a saetm model file")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise SaetmError(f"{directory} was saved by saetm {info.get('saetm_version', '?')} (model format {version}); "
                         f"this saetm {__version__} reads format {FORMAT_VERSION}: refit with this version")

    params = dict(info.get("params", {}))
    model = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
    vocab = read_json(directory / "vocab.json")
    state = read_tensors(directory / "state.safetensors")
    topics = read_tensors(directory / "topics.safetensors")
    try:
        model.vocab_ = [str(w) for w in vocab]
        model.theta_ = csr_from_tensors("theta", state)
        model.feature_words_ = csr_from_tensors("feature_words", state)
        model.background_ = state["background"]
        model.feature_prob_ = state["feature_prob"]
        model.atom_embeddings_ = state["atom_embeddings"]
        model.atom_tree_ = AtomTree(state["tree.linkage"], state["tree.atoms"], len(model.feature_prob_))
        tp = Topics(atom_topic=topics["atom_topic"], topic_words=topics["topic_words"],
                    prevalence=topics["prevalence"], n_atoms=topics["n_atoms"])
        coverage = topics["coverage"]
    except KeyError as e:
        raise SaetmError(f"{directory} lacks the array {e}; the model files are corrupt or from another version") from None
    _check_consistent(model, tp, directory)
    model.sae_ = load_sae(directory / "sae")
    model.encoder_ = _restore_encoder(info)

    W = doc_topics(model.theta_, tp.atom_topic, tp.topic_words.shape[0])
    model._set_topics(TopicResult(tp.atom_topic, tp, W, coverage))
    model.documents_ = _read_documents(directory / "documents.parquet", model.theta_.shape[0])
    model.custom_labels_ = info.get("custom_labels")
    model.fit_info_ = info.get("fit_report")
    return model


def _restore_encoder(info: dict):
    from saetm.encoders.text import TextEncoder

    name = info.get("encoder") or "default"
    if not info.get("encoder_is_callable"):
        return TextEncoder(name)

    def missing(texts):
        raise SaetmError(f"this model was fitted with the Python callable encoder {name!r}, which is not saved; "
                         "pass embeddings=..., or set model.encoder_ = TextEncoder(your_function)")

    return TextEncoder(missing, name=name)


def _check_consistent(model, tp, directory: Path) -> None:
    n_atoms = model.feature_words_.shape[0]
    V = len(model.vocab_)
    problems = []
    if model.feature_words_.shape[1] != V:
        problems.append(f"word distributions have {model.feature_words_.shape[1]} words, vocabulary {V}")
    if model.theta_.shape[1] != n_atoms or len(model.feature_prob_) != n_atoms or len(tp.atom_topic) != n_atoms:
        problems.append("atom counts differ between files")
    if tp.topic_words.shape[1] != V:
        problems.append("topic word distributions do not match the vocabulary")
    if problems:
        raise SaetmError(f"{directory} is inconsistent ({'; '.join(problems)}); the files are corrupt or mixed from different fits")
