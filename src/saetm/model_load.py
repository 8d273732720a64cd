"""Loading a saved ``SAETM``: every file read, upgraded to the current format and checked.

Older formats pass through :func:`saetm.migrate.upgrade` first; from there on only the
current format is read. Every invariant later code relies on is checked, because files
may be truncated, mixed from different fits or edited by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from saetm._version import FORMAT_VERSION, __version__
from saetm.errors import SaetmError
from saetm.fast_load import mapped_tensors, saved_or_refitted, unread_documents
from saetm.io.directory import MODEL_FILE, MODEL_FILES, check_one_fit, refuse_links
from saetm.io.documents import read_documents as _read_documents
from saetm.io.persist import csr_from_tensors, read_json, read_tensors
from saetm.io.provenance import checked_record
from saetm.migrate import OLDEST, upgrade, upgrade_arrays
from saetm.model_fields import check_model_info, fit_info
from saetm.topic_table import check_exports

log = logging.getLogger("saetm")


def _saved_setting(arrays: dict, key: str, check, path: Path, missing: float | None = None) -> float:
    """The one value saved as ``arrays[key]``, validated by ``check`` (a ``saetm.topics.stage.check_*``);
    ``missing`` when the file need not hold it (None: it must)."""
    if key not in arrays:
        if missing is None:
            raise SaetmError(f"{path} lacks the array '{key}'; the file is corrupt, re-run `saetm fit`")
        return missing
    value = np.asarray(arrays[key]).ravel()
    try:
        if value.shape != (1,):
            raise SaetmError(f"{value.shape[0]} values")
        return check(float(value[0]))
    except SaetmError as e:
        raise SaetmError(f"{path} holds an invalid {key} ({e}); the file is corrupt, re-run `saetm fit`") from None


def _check_rounds(x: float) -> float:
    if not (x >= 1 and x == int(x)):
        raise SaetmError(f"{x} is not a whole number of rounds")
    return x


def load_model(cls, directory: Path, *, documents: bool = True):
    """``documents=False`` (``saetm retopic``): documents.parquet is checked, not read; no ``documents_``."""
    from saetm.components import coerce
    from saetm.settings import check_params
    from saetm.topics.stage import TopicResult, check_doc_smoothing, check_doc_word_weight, check_prevalence_power
    from saetm.sae.config import read_sae
    from saetm.topics.hierarchy import AtomTree
    from saetm.topics.merge import Topics

    if not directory.is_dir():
        raise SaetmError(f"{directory} is not a directory; give the folder written by `saetm fit`")
    refuse_links(directory, ["sae", *MODEL_FILES])
    if not (directory / MODEL_FILE).exists():
        raise SaetmError(f"{directory} holds no complete saetm model (no {MODEL_FILE}); "
                         "it was not written by `saetm fit`, or that run did not finish")
    info = read_json(directory / MODEL_FILE)
    if not isinstance(info, dict) or info.get("format") != "saetm-model":
        raise SaetmError(f"{directory / MODEL_FILE} is not a saetm model file")
    version = info.get("format_version")
    if not isinstance(version, int) or not OLDEST <= version <= FORMAT_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise SaetmError(f"{directory} was saved by saetm {info.get('saetm_version', '?')} (model format {version!r}); "
                         f"this saetm {__version__} reads format {FORMAT_VERSION}: "
                         + ("upgrade saetm to load it, or refit" if newer else "refit it with this version"))
    info = upgrade(info)  # an older format as the current one

    params = info.get("params", {})
    if not isinstance(params, dict):
        raise SaetmError(f"{directory / MODEL_FILE} has no valid settings (params); the file is corrupt, "
                         "re-run `saetm fit`")
    check_model_info(info, directory / MODEL_FILE)
    try:
        model = cls(**{k: v for k, v in params.items() if k in cls().get_params(deep=False) and k != "sae"})
        if isinstance(params.get("sae"), dict):  # the settings the model's SAE was trained with
            model.sae = coerce("sae", params["sae"])
        check_params(model)
    except SaetmError as e:
        raise SaetmError(f"{directory / MODEL_FILE} holds an invalid setting ({e}); the file was edited or is corrupt, "
                         "re-run `saetm fit`") from None
    vocab = read_json(directory / "vocab.json")
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise SaetmError(f"{directory / 'vocab.json'} is not a list of words; the file is corrupt, re-run `saetm fit`")
    check_one_fit(directory, info)  # reads headers only: names a swapped file before the arrays are read
    state = mapped_tensors(directory / "state.safetensors")
    topics = read_tensors(directory / "topics.safetensors")
    upgrade_arrays(version, info, state, topics)
    try:
        model.vocab_ = [str(w) for w in vocab]
        model.theta_ = csr_from_tensors("theta", state)
        model.feature_words_ = csr_from_tensors("feature_words", state)
        model.background_ = state["background"]
        model.feature_prob_ = state["feature_prob"]
        model.atom_embeddings_ = state["atom_embeddings"]
        # the p of the weights θ̄^p the tree was built with
        power = _saved_setting(state, "tree.power", check_prevalence_power, directory / "state.safetensors")
        model.atom_tree_ = AtomTree(state["tree.linkage"], state["tree.atoms"], len(model.feature_prob_), power=power)
        tp = Topics(atom_topic=topics["atom_topic"], topic_words=topics["topic_words"],
                    prevalence=topics["prevalence"], n_atoms=topics["n_atoms"])
        coverage = topics["coverage"]
    except KeyError as e:
        raise SaetmError(f"{directory} lacks the array {e}; the model files are corrupt or from another version") from None
    _check_consistent(model, tp, coverage, directory)
    model.doc_words_ = _doc_words(state, model.theta_.shape[0], len(model.vocab_), directory,
                                  says=model.word_ranking == "coherent")
    model._defer_sae(sae := read_sae(directory / "sae"))  # checked now, built on first use (by encoding)
    if sae.config.n_atoms != model.theta_.shape[1]:
        raise SaetmError(f"{directory / 'sae'} has {sae.config.n_atoms} atoms but the model has "
                         f"{model.theta_.shape[1]}; the files are mixed from different fits, re-run `saetm fit`")
    model.encoder_ = _restore_encoder(info, state.get("encoder.idf"))
    name = info.get("embedding_name")
    model.embedding_name_ = name if isinstance(name, str) and name else model.encoder_.name

    model.doc_embeddings_ = _doc_embeddings(state, model, directory, sae.config.d_in)
    # the s the saved weights were fitted with; files without it hold no centroid weights, which use it
    smoothing = _saved_setting(topics, "doc_smoothing", check_doc_smoothing, directory / "topics.safetensors",
                               float(model.doc_smoothing))
    # the EM's rounds of weights that were not saved (migrate.py); None: the current default
    rounds = int(_saved_setting(topics, "doc_rounds", _check_rounds, directory / "topics.safetensors", 0)) or None
    # b of the words the weights were fitted with; files without it (saetm < 0.12) fitted them without
    word_weight = _saved_setting(topics, "doc_word_weight", check_doc_word_weight, directory / "topics.safetensors",
                                 0.0)
    W, centroids, priors, word_centroids = saved_or_refitted(
        topics, model, tp, smoothing, directory / "topics.safetensors", rounds=rounds, word_weight=word_weight)
    model._set_topics(TopicResult(tp.atom_topic, tp, W, coverage, centroids, priors,
                                  None if centroids is None else smoothing, word_centroids,
                                  0.0 if word_centroids is None else word_weight))
    read = _read_documents if documents else unread_documents
    model.documents_ = read(directory / "documents.parquet", model.theta_.shape[0])
    model.custom_labels_ = _custom_labels(info.get("custom_labels"), model.n_topics, directory, model.topic_labels)
    model.fit_info_ = fit_info(info.get("fit_report"), directory / MODEL_FILE)
    model.input_ = checked_record(info.get("input"))
    model.heldout_ = (model.input_ or {}).get("holdout")  # `saetm fit --holdout`: the rows left out
    check_exports(directory, model.n_topics, model.theta_.shape[0])
    return model


def _doc_embeddings(state: dict, model, directory: Path, dim: int):
    """The documents' embeddings for ``doc_weights="centroid"`` (float16), checked."""
    if model.doc_weights == "theta":
        return None
    E = state.get("doc_embeddings")
    if E is None:  # saved by saetm ≤ 0.2 or with doc_weights="theta"
        log.info("%s was saved without document embeddings: document-topic weights are the atoms' θ share "
                 "(doc_weights='theta'); refit to weight them by embedding", directory)
        return None
    if E.shape != (model.theta_.shape[0], dim) or not np.isfinite(E).all():
        raise SaetmError(f"{directory} is inconsistent (the document embeddings do not match the documents and "
                         "the SAE); the files are corrupt or mixed from different fits, re-run `saetm fit`")
    return E


def _doc_words(state: dict, n_docs: int, n_words: int, directory: Path, says: bool = True):
    from saetm.topics.wordrank import doc_word_incidence

    if "doc_words.shape" not in state:  # the oldest model files
        if says:
            log.info("%s was saved without document-word incidence: the 'coherent' word ranking "
                     "lists words without reordering them by co-occurrence; refit to get it", directory)
        return None
    m = csr_from_tensors("doc_words", state)  # (a sample of) the documents, by the vocabulary
    if m.shape[0] > n_docs or m.shape[1] != n_words or not (m.data == 1).all():
        raise SaetmError(f"{directory} is inconsistent (the document-word incidence does not match the documents "
                         "and vocabulary); the files are corrupt or mixed from different fits, re-run `saetm fit`")
    return doc_word_incidence(m, max_docs=None)


def _restore_encoder(info: dict, idf=None):
    """The fitted encoder; ``idf``: the static encoder's saved IDF table (checked against the
    encoder when it is first used)."""
    from saetm.encoders.text import TextEncoder

    name = info.get("encoder") or "default"
    if not info.get("encoder_is_callable"):
        from saetm.encoders.embed import make_encoder

        encoder = make_encoder(name)  # a TextEncoder, or the static encoder by its saved name
        if hasattr(encoder, "fit_encode"):
            # files saved before the static encoder weighted its word pieces: all weights 1, as it encoded then
            encoder.idf = np.ones(encoder.n_pieces, np.float32) if idf is None else np.asarray(idf, np.float32)
        return encoder

    def missing(texts):
        raise SaetmError(f"this model was fitted with the Python callable encoder {name!r}, which is not saved; "
                         "pass embeddings=..., or set model.encoder_ = TextEncoder(your_function)")

    return TextEncoder(missing, name=name)


def _custom_labels(labels, n_topics: int, directory: Path, word_labels=None):
    """The saved custom labels; one longer than ``MAX_LABEL_CHARS`` (an edited file)
    is replaced by the topic's word label, with a warning."""
    from saetm.model import MAX_LABEL_CHARS

    if labels is None:
        return None
    if isinstance(labels, list) and len(labels) == n_topics and all(isinstance(x, str) for x in labels):
        long = [t for t, x in enumerate(labels) if len(x) > MAX_LABEL_CHARS]
        if long:
            log.warning("%s: ignoring the saved label of topic %s, longer than %d characters; "
                        "set a shorter one with set_topic_labels", directory, ", ".join(map(str, long)),
                        MAX_LABEL_CHARS)
            if word_labels is None:
                return None
            words = word_labels()
            labels = [words[t] if t in long else x for t, x in enumerate(labels)]
        return labels
    log.warning("%s: ignoring the saved topic labels, which do not fit the %d topics", directory, n_topics)
    return None


def _check_consistent(model, tp, coverage, directory: Path) -> None:
    """Every invariant later code relies on: files may be truncated, mixed or edited by hand."""
    from saetm.topics.hierarchy import valid_linkage

    B, theta = model.feature_words_, model.theta_
    n_atoms, V = B.shape[0], len(model.vocab_)
    fp, bg, emb = model.feature_prob_, model.background_, model.atom_embeddings_
    tree, a, T = model.atom_tree_, tp.atom_topic, tp.topic_words.shape[0] if tp.topic_words.ndim == 2 else -1

    def vector(x, n, kind="f"):
        return x.ndim == 1 and x.shape[0] == n and x.dtype.kind in kind and (kind != "f" or np.isfinite(x).all())

    atoms_agree = theta.shape[1] == n_atoms and vector(fp, n_atoms) and vector(a, n_atoms, "iu")
    weights_ok = (B.data >= 0).all() and (theta.data >= 0).all() and (fp >= 0).all() and (fp > 0).any()
    checks = [
        (V > 0 and len(set(model.vocab_)) == V, "the vocabulary is empty or repeats words"),
        (B.shape[1] == V, f"word distributions have {B.shape[1]} words, vocabulary {V}"),
        (atoms_agree, "atom counts differ between files"),
        (vector(bg, V) and (bg >= 0).all(), "the background word distribution is broken"),
        (weights_ok, "negative or no weights"),
        (emb.ndim == 2 and emb.shape[0] == n_atoms and np.isfinite(emb).all()
         and bool((np.linalg.norm(emb.astype(np.float64), axis=1) <= 1.001).all()),  # rows are unit or zero
         "atom embeddings do not match the atoms"),
        (vector(tree.atoms, tree.atoms.shape[0], "iu") and np.array_equal(tree.atoms, np.flatnonzero(fp > 0))
         and tree.linkage.shape == (max(len(tree.atoms) - 1, 0), 4)
         and (len(tree.atoms) < 2 or valid_linkage(tree.linkage.astype(np.float64))), "the atom tree is broken"),
        (T > 0 and tp.topic_words.shape[1] == V and np.isfinite(tp.topic_words).all() and (tp.topic_words >= 0).all(),
         "topic word distributions do not match the vocabulary"),
        (T > 0 and vector(tp.prevalence, T) and vector(tp.n_atoms, T, "iu") and vector(coverage, T),
         "topic tables do not match the number of topics"),
    ]
    problems = [why for ok, why in checks if not ok]
    if not problems:  # the atom → topic map, once its shape is known to be right
        if a.min() < -1 or a.max() >= T or not np.array_equal(a >= 0, fp > 0) \
                or not np.array_equal(np.bincount(a[a >= 0], minlength=T), tp.n_atoms):
            problems.append("the atom-to-topic map does not match the topics")
    if problems:
        raise SaetmError(f"{directory} is inconsistent ({'; '.join(problems)}); the files are corrupt or mixed "
                         "from different fits, re-run `saetm fit`")
