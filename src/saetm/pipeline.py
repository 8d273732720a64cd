"""The glue between the user's model and the three stages.

Each function takes plain values (plus the model's settings) and returns plain
values; ``SAETM`` calls them in order and stores the results. Keeping this apart
from ``model.py`` keeps the estimator thin and the stage modules model-free.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

log = logging.getLogger("saetm")



# ---------------------------------------------------------------- validation
def _int_in(name: str, value, lo: int, hi: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SaetmError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise SaetmError(f"{name} must be at least {lo}, got {value}" if hi == math.inf
                         else f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def check_word_diversity(value) -> float:
    """``words.diversity`` as a float ≥ 0 (finite), or a one-line SaetmError."""
    from saetm.settings import check

    return check("words.diversity", value)


def check_doc_smoothing(value) -> float:
    """``clustering.doc_smoothing`` as a float in [0, 1], or a one-line SaetmError."""
    from saetm.settings import check

    return check("clustering.doc_smoothing", value)


def check_prevalence_power(value) -> float:
    """``clustering.prevalence_power`` as a float in [0, 1], or a one-line SaetmError."""
    from saetm.settings import check

    return check("clustering.prevalence_power", value)


def check_params(m) -> None:
    """Validate the estimator's settings once, at the boundary (:func:`saetm.settings.check_params`)."""
    from saetm.settings import check_params as check_settings

    check_settings(m)


def check_n_topics(n_topics, feature_prob: np.ndarray) -> int:
    n_used = int((np.asarray(feature_prob) > 0).sum())
    n_topics = _int_in("n_topics", n_topics, 1)
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


def check_documents(documents) -> list[str]:
    if isinstance(documents, (str, bytes)):
        raise SaetmError("documents must be a list of strings, not a single string")
    try:
        docs = list(documents)
    except TypeError:
        raise SaetmError(f"documents must be a list of strings, got {type(documents).__name__}") from None
    if not docs:
        raise SaetmError("no documents given; pass a non-empty list of strings")
    bad = [i for i, d in enumerate(docs) if not isinstance(d, str)]
    if bad:
        raise SaetmError(
            f"{len(bad)} documents are not strings (first at position {bad[0]}: {type(docs[bad[0]]).__name__}); "
            "convert or drop them first (saetm.io.readers.read_documents does this for files)"
        )
    empty = [i for i, d in enumerate(docs) if not d.strip()]
    if len(empty) == len(docs):
        raise SaetmError("all documents are empty")
    if empty:
        log.warning("%d of %d documents are empty; they get no topic unless their embeddings are given",
                    len(empty), len(docs))
    return docs


def check_metadata(n_docs: int, **columns) -> dict:
    meta = {}
    for name, values in columns.items():
        if values is None:
            meta[name.rstrip("s")] = None
            continue
        values = list(values)
        if len(values) != n_docs:
            raise SaetmError(f"{name} has {len(values)} entries but there are {n_docs} documents")
        meta[name.rstrip("s")] = values
    return meta


# ---------------------------------------------------------------- embeddings
def make_encoder(spec):
    """The encoder for ``spec``: an encoder object as given, ``"static"`` (or its saved name) for
    :class:`saetm.encoders.static.StaticEncoder`, anything else for a TextEncoder."""
    from saetm.encoders.static import STATIC_ALIASES, StaticEncoder
    from saetm.encoders.text import TextEncoder

    if isinstance(spec, (TextEncoder, StaticEncoder)):
        return spec
    return StaticEncoder() if isinstance(spec, str) and spec in STATIC_ALIASES else TextEncoder(spec)


def embed(encoder, docs, embeddings, *, cache: bool, progress: bool, expected_dim: int | None = None,
          rows=None):
    """Embeddings for the documents: ``(X, rows)`` where ``X[i]`` belongs to document ``rows[i]``.

    Given embeddings cover every row (an image with an empty caption still has an
    embedding), or the documents ``rows`` when given (an image that could not be read
    has none). Otherwise empty documents are not encoded. A document without an
    embedding gets no atoms, hence no topic, and keeps its row so outputs stay aligned
    with the input."""
    from saetm.encoders.text import encode_cached

    if embeddings is not None:
        X = np.asarray(embeddings)
        n = len(docs) if docs is not None else (X.shape[0] if X.ndim else 0)
        if rows is None:
            return validate_embeddings(X, n_rows=n, dim=expected_dim), np.arange(X.shape[0])
        rows = _embedding_rows(rows, n)
        return validate_embeddings(X, n_rows=len(rows), dim=expected_dim), rows
    if rows is not None:
        raise SaetmError("embedding_rows says which documents the given embeddings belong to; pass embeddings too")
    rows = np.flatnonzero([bool(d.strip()) for d in docs])
    texts = [docs[i] for i in rows]
    if _distributed():  # torchrun: every process encodes its share of the chunks
        from saetm.encoders.distributed import encode_sharded

        X = encode_sharded(encoder, texts, cache=cache, show_progress=progress)
    else:
        X = encode_cached(encoder, texts, cache=cache, show_progress=progress)
    return validate_embeddings(X, n_rows=len(rows), dim=expected_dim), rows


def _distributed() -> bool:
    """Inside a torch.distributed process group of several processes (torchrun)."""
    import sys

    if "torch.distributed" not in sys.modules:  # never imports torch for a single process
        return False
    from saetm.sae.distributed import process_info

    return process_info().enabled


def _embedding_rows(rows, n_docs: int) -> np.ndarray:
    r = np.asarray(rows)
    if r.ndim != 1 or (r.size and r.dtype.kind not in "iu"):
        raise SaetmError("embedding_rows must be a list of document numbers (whole numbers), one per embedding")
    r = r.astype(np.int64)
    if r.size and (r.min() < 0 or r.max() >= n_docs):
        raise SaetmError(f"embedding_rows must be document numbers from 0 to {n_docs - 1}; got {int(r.min())}..{int(r.max())}")
    if np.unique(r).size != r.size:
        raise SaetmError("embedding_rows repeats a document; give each document at most one embedding")
    return r


def expand_rows(m: sp.csr_matrix, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """Place the rows of ``m`` at positions ``rows`` of an ``n_rows``-row matrix (others empty)."""
    if len(rows) == n_rows:
        return sp.csr_matrix(m)
    pick = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))), shape=(n_rows, len(rows)))
    return sp.csr_matrix(pick @ m)


def validate_embeddings(X: np.ndarray, *, n_rows: int | None, dim: int | None) -> np.ndarray:
    if X.dtype.kind not in "fiu":
        raise SaetmError(f"embeddings must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise SaetmError(f"embeddings must be a 2-D array (documents × dimensions), got shape {X.shape}")
    if n_rows is not None and X.shape[0] != n_rows:
        raise SaetmError(f"embeddings have {X.shape[0]} rows but there are {n_rows} documents")
    if dim is not None and X.shape[1] != dim:
        raise SaetmError(f"embeddings have {X.shape[1]} columns but the SAE expects {dim}; "
                         "use embeddings from the encoder the SAE was trained for")
    X = np.ascontiguousarray(X, dtype=np.float32)  # no copy of a float32 array (or memory-mapped file)
    bad = [lo + np.flatnonzero(~np.isfinite(X[lo:lo + BLOCK_ROWS]).all(axis=1)) for lo in _row_blocks(X)]
    bad = np.concatenate(bad) if bad else np.zeros(0, np.int64)
    if bad.size:
        raise SaetmError(f"embeddings contain NaN or inf in {bad.size} rows (first: row {bad[0]}); fix or drop those rows")
    return X


#: rows of the embeddings read at a time by the passes over them (a memory-mapped file is
#: never held whole: its pages are dropped after each block)
BLOCK_ROWS = 1 << 14


def _row_blocks(X):
    """Start rows of the blocks of ``BLOCK_ROWS`` rows of X; releases a memory map's pages
    after each block has been used."""
    from saetm._memory import release_pages

    for lo in range(0, X.shape[0], BLOCK_ROWS):
        yield lo
        release_pages(X)


# ---------------------------------------------------------------- stage 1
# encoder name -> the folder under saetm/assets/ of the pretrained SAE shipped for it
SHIPPED_SAES = {"all-MiniLM-L6-v2": "sae-minilm", "static-all-MiniLM-L6-v2": "sae-static"}


def shipped_sae_dir(encoder_name: str | None = None) -> Path | None:
    """The shipped SAE for ``encoder_name`` (the default encoder's for None or an encoder
    without one of its own), or None if this build lacks it."""
    folder = SHIPPED_SAES.get(encoder_name or "", SHIPPED_SAES["all-MiniLM-L6-v2"])
    root = Path(__file__).parent / "assets" / folder
    return root if (root / "sae.json").exists() else None


def get_sae(m, X: np.ndarray):
    """Resolve ``m.sae`` into a fitted SAE for embeddings ``X``; returns (sae, info)."""
    from saetm.components import SAETraining
    from saetm.sae.models import SparseAutoencoder
    from saetm.sae.persist import load_sae

    choice = "train" if isinstance(m.sae, SAETraining) else m.sae
    if isinstance(choice, SparseAutoencoder):
        return _checked(choice, X, m), {"source": "given"}
    if choice == "auto":
        choice = "default" if _shipped_fits(m) else "train"
    if choice == "default":
        root = shipped_sae_dir(getattr(m, "embedding_name_", None))
        if root is None:
            raise SaetmError("no pretrained SAE ships with this saetm build; use sae='train'")
        sae = _checked(load_sae(root), X, m)
        log.info("SAE: the one shipped with saetm (%d atoms, trained on generic English texts); "
                 "sae='train' (--sae train) trains one on this corpus instead", sae.config.n_atoms)
        return sae, {"source": "default", "path": str(root)}
    if choice == "train":
        return train_corpus_sae(m, X)
    path = Path(str(choice))
    if not path.exists():
        raise SaetmError(f"sae={choice!r} is neither 'auto', 'default', 'train' nor an existing SAE folder")
    return _checked(load_sae(path), X, m), {"source": "folder", "path": str(path)}


def _shipped_fits(m, embedding_name: str | None = None) -> bool:
    """``sae="auto"`` takes the shipped SAE when it is what was asked for: one ships for the
    embeddings' encoder (:data:`SHIPPED_SAES`), and no explicit size, length or architecture
    other than its own asks for training. ``embedding_name``: instead of ``m.embedding_name_``,
    before fit sets it."""
    name = embedding_name if embedding_name is not None else getattr(m, "embedding_name_", None)
    root = shipped_sae_dir(name) if name in SHIPPED_SAES else None
    if root is None:
        return False
    from saetm.io.persist import read_json

    config = read_json(root / "sae.json").get("config", {})
    return (m.n_atoms in (None, config.get("n_atoms")) and m.sae_steps is None and m.arch == config.get("arch")
            and m.k == config.get("k"))


def _checked(sae, X, m):
    d_in = sae.config.d_in
    if X.shape[1] != d_in:
        raise SaetmError(f"embeddings have {X.shape[1]} columns but the SAE expects {d_in}; "
                         "use embeddings from the encoder the SAE was trained for")
    name = getattr(sae.config, "encoder_name", "")
    enc = getattr(m, "embedding_name_", "")
    if name and enc and name != enc:
        log.warning("the SAE was trained for encoder %r but the embeddings come from %r", name, enc)
    return sae


def train_corpus_sae(m, X: np.ndarray):
    import dataclasses

    from saetm._memory import release_freed_memory
    from saetm.checks import check_sae_memory
    from saetm.sae.models import SAEConfig
    from saetm.sae.train import TrainConfig, default_batch_size, train_sae

    d = X.shape[1]
    n_atoms = m.n_atoms or 16 * d
    if m.k >= n_atoms:
        raise SaetmError(f"k={m.k} must be smaller than the number of atoms ({n_atoms}); "
                         "lower --k (sae__k) or raise --n-atoms (sae__n_atoms)")
    check_sae_memory(n_atoms, d, default_batch_size(X.shape[0]))  # torch would fail with a traceback
    cfg = SAEConfig(d_in=d, n_atoms=n_atoms, k=m.k, arch=m.arch, encoder_name=m.embedding_name_)
    train_cfg = TrainConfig(steps=m.sae_steps, seed=m.seed)
    cached = _sae_cache_dir(X, cfg, train_cfg) if m.cache else None
    sae = _load_cached_sae(cached) if cached is not None else None
    if sae is not None:
        log.info("SAE: reusing the one trained on these embeddings with these settings (%s)", cached)
        return sae, {"source": "train", "cached": True, **sae.meta.get("metrics", {})}
    if cached is not None:  # checkpoints beside the cache entry: a killed fit resumes the training
        train_cfg = dataclasses.replace(train_cfg, checkpoint_dir=_sae_checkpoint_dir(cached),
                                        checkpoint_every=SAE_CHECKPOINT_EVERY, keep_checkpoints=1, resume=True)
    sae, metrics = train_sae(X, cfg, train_cfg, progress=m.verbose)
    release_freed_memory()
    metrics = {k: float(v) for k, v in metrics.items() if np.isscalar(v)}
    if cached is not None:
        _store_cached_sae(sae, cached, metrics)
    return sae, {"source": "train", **metrics}


# steps between the checkpoints of a corpus-trained SAE (a kill loses at most this many)
SAE_CHECKPOINT_EVERY = 250


def _sae_cache_dir(X: np.ndarray, cfg, train_cfg) -> Path:
    """Where a corpus-trained SAE is cached: keyed by the embeddings' bytes, the SAE and
    training settings and the saetm version (training is seeded, so the key fixes the result)."""
    import dataclasses
    import hashlib
    import json

    from saetm._version import __version__
    from saetm.encoders.cache import default_cache_dir

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    h.update(json.dumps([cfg.to_dict(), dataclasses.asdict(train_cfg), __version__], sort_keys=True,
                        default=str).encode())
    return default_cache_dir() / "sae" / h.hexdigest()[:32]


def _sae_checkpoint_dir(cached: Path) -> str:
    """Checkpoints of the SAE to be cached in ``cached``; one folder per number of
    processes (a checkpoint fixes how each batch is split among them)."""
    from saetm.sae.distributed import process_info

    world = process_info().world_size
    return str(cached) + (".checkpoints" if world == 1 else f".checkpoints-{world}")


def _load_cached_sae(path: Path):
    """The SAE cached in ``path``, or None. Under torchrun rank 0 reads it and sends it
    to the others, so every process makes the same choice."""
    from saetm.sae.config import read_sae
    from saetm.sae.distributed import broadcast_object, process_info
    from saetm.sae.persist import build_saved

    info = process_info()
    saved = None
    if info.is_main and (path / "sae.json").exists():
        try:
            saved = read_sae(path)
        except SaetmError:
            saved = None  # a damaged cache entry is simply retrained
    saved = broadcast_object(saved, info)
    return build_saved(saved) if saved is not None else None


def _store_cached_sae(sae, path: Path, metrics: dict) -> None:
    """Rank 0 stores the SAE and removes its training checkpoints."""
    import shutil

    from saetm.sae.distributed import process_info
    from saetm.sae.persist import save_sae

    if not process_info().is_main:
        return
    try:
        save_sae(sae, path, extra_meta={"metrics": metrics})
    except (OSError, SaetmError):
        return  # a cache that cannot be written must not fail the fit
    for folder in path.parent.glob(path.name + ".checkpoints*"):
        shutil.rmtree(folder, ignore_errors=True)


def activations(sae, X: np.ndarray) -> sp.csr_matrix:
    from saetm._memory import release_freed_memory
    from saetm.sae.models import encode_activations

    A = encode_activations(sae, X)
    release_freed_memory()
    return A


def theta_of(sae, X: np.ndarray, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    from saetm.words.em import normalize_theta

    return normalize_theta(expand_rows(activations(sae, X), rows, n_rows))


# ---------------------------------------------------------------- stage 2
def vocabulary(m, docs: Sequence[str]):
    from saetm.words.vocab import build_vocabulary

    vocab, counts = build_vocabulary(docs, min_df=m.min_df, max_df=float(m.max_df), max_features=m.max_features,
                                     stop_words=m.stop_words, extra_stop_words=m.extra_stop_words,
                                     lemmatize=m.lemmatize, merge_inflections=m.merge_inflections)
    wordless = int(sum(1 for d, n in zip(docs, np.diff(counts.indptr)) if n == 0 and d.strip()))
    if wordless:
        log.warning("%d of %d documents contain no vocabulary word; they still get topics from their embeddings "
                    "but do not shape the topics' words (lower --min-df (min_df) to include more words)",
                    wordless, len(docs))
    return vocab, counts


#: characters of text a fitted model keeps whole; beyond, it keeps each text cut to what
#: documents.parquet saves (:data:`saetm.io.documents.TEXT_CHARS`), as a loaded model does
KEEP_TEXT_CHARS = 1 << 28


def kept_texts(docs: list[str]) -> tuple[list[str], bool]:
    """The texts a fitted model keeps for representative documents and reports, and whether
    they were cut: all of them up to :data:`KEEP_TEXT_CHARS` characters in all, else each cut."""
    from saetm.io.documents import TEXT_CHARS

    if sum(map(len, docs)) <= KEEP_TEXT_CHARS:
        return docs, False
    log.info("%d documents: the model keeps their texts cut to %d characters", len(docs), TEXT_CHARS)
    return [d[:TEXT_CHARS] for d in docs], True


def reference_tokens(m, texts: Sequence[str]) -> list[list[str]]:
    """The tokens of ``texts`` that a fitted model's stage 2 counts, for NPMI / C_V."""
    from saetm.evaluation.scorecard import reference_tokens as tokens

    return tokens(texts, m.stop_words, extra_stop_words=m.extra_stop_words, lemmatize=m.lemmatize,
                  merged_vocab=m.vocab_ if m.merge_inflections else None)


def feature_words(m, theta: sp.csr_matrix, counts: sp.csr_matrix):
    from saetm.words.em import fit_feature_words

    settings = dict(background_weight=m.background_weight, idf=m.idf, max_iter=m.em_max_iter, tol=m.em_tol)
    if _distributed():  # torchrun: each process runs the E-step over its block of documents
        from saetm.sae.distributed import process_info
        from saetm.words.distributed import fit_feature_words_distributed

        info = process_info()
        lo, hi = (theta.shape[0] * r // info.world_size for r in (info.rank, info.rank + 1))
        fw = fit_feature_words_distributed(theta[lo:hi], counts[lo:hi], **settings)
    else:
        fw = fit_feature_words(theta, counts, **settings)
    info = {"n_iter": int(fw.n_iter), "converged": bool(fw.converged),
            "nll_per_token": float(fw.nll_history[-1]) if len(fw.nll_history) else None,
            "n_used_atoms": int((fw.feature_prob > 0).sum()), "vocabulary_size": int(counts.shape[1])}
    return SimpleNamespace(theta=theta, feature_words=fw.feature_words, background=fw.background,
                           feature_prob=fw.feature_prob, info=info)


# ---------------------------------------------------------------- stage 3
def word_vector_source(m):
    from saetm.topics.wordvectors import EncoderWordVectors, GloveVectors

    return GloveVectors() if m.word_vectors == "glove" else EncoderWordVectors(m.encoder_)


def atom_embeddings(m, B: sp.csr_matrix, theta: sp.csr_matrix | None = None, X: np.ndarray | None = None,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Atoms as points to cluster, per ``m.atom_space`` (see :mod:`saetm.topics.atomspace`).

    ``theta``: (n_docs, n_atoms); ``X``: the embeddings of documents ``rows`` of θ."""
    from saetm.topics import atomspace, merge

    space = getattr(m, "atom_space", "words")
    parts = []
    if space == "words":
        vectors = word_vector_source(m).vectors_for(m.vocab_)
        return merge.atom_embeddings(merge.sparsify_rows(B, m.tau), vectors)
    if space == "decoder":
        return atomspace.decoder_embeddings(m.sae_.W_dec.detach().cpu().numpy())
    if space in ("documents", "documents+coactivation"):
        th = sp.csr_matrix(theta)[rows] if rows is not None else theta
        parts.append(atomspace.document_embeddings(th, X))
    if space in ("coactivation", "documents+coactivation"):
        parts.append(atomspace.coactivation_embeddings(theta, seed=m.seed))
    return parts[0] if len(parts) == 1 else atomspace.combine(*parts)


def atom_tree(m):
    """Weighted Ward tree over the used atoms (weights θ̄^p, p = ``m.prevalence_power``):
    every granularity at once, and the starting point that makes k-means for any T fast
    and stable."""
    from dataclasses import replace

    from saetm.topics.hierarchy import build_atom_tree
    from saetm.topics.merge import cluster_weights

    power = check_prevalence_power(m.prevalence_power)  # set_params does not validate
    return replace(build_atom_tree(m.atom_embeddings_, cluster_weights(m.feature_prob_, power)), power=power)


@dataclass
class TopicResult:
    atom_topic: np.ndarray
    topics: object
    doc_topics: sp.csr_matrix
    coverage: np.ndarray
    centroids: np.ndarray | None = None  # (T, dim) with doc_weights="centroid"
    priors: np.ndarray | None = None  # (T,) ρ, the topic weights, with doc_weights="centroid"
    smoothing: float | None = None  # s those centroids and ρ were fitted with (doc_smoothing)


def cluster(m, n_topics: int) -> TopicResult:
    from saetm.topics import merge

    n_topics = check_n_topics(n_topics, m.feature_prob_)
    from saetm.topics.hierarchy import cut

    # k-means weighs the atoms as the tree that starts it did
    weights = merge.cluster_weights(m.feature_prob_, m.atom_tree_.power)
    labels = merge.cluster_atoms(m.atom_embeddings_, weights, n_topics, seed=m.seed,
                                 init=cut(m.atom_tree_, n_topics))
    return topics_from_labels(m, labels, n_topics)


def topics_from_labels(m, atom_topic: np.ndarray, n_topics: int) -> TopicResult:
    """Topics, document weights and coverage of a fitted model's atoms grouped by ``atom_topic``
    (ids in [0, n_topics) or −1)."""
    from saetm.topics import merge

    topics = merge.build_topics(m.feature_words_, m.feature_prob_, atom_topic, n_topics)
    smoothing = check_doc_smoothing(m.doc_smoothing)  # set_params does not validate
    W, centroids, priors = document_weights(m, topics.atom_topic, n_topics, smoothing=smoothing)
    return TopicResult(topics.atom_topic, topics, W, merge.coverage(W), centroids, priors,
                       None if centroids is None else smoothing)


def document_weights(m, atom_topic: np.ndarray, n_topics: int, *, rounds: int | None = None,
                     fit_priors: bool = True, smoothing: float | None = None) -> tuple[sp.csr_matrix, np.ndarray | None, np.ndarray | None]:
    """The fitted documents' topic weights, the topic centroids μ and weights ρ (both ``None``
    with ``doc_weights="theta"`` or a model saved without document embeddings). ``rounds``
    and ``fit_priors``: of the mixture's EM (:func:`saetm.topics.docweights.fit_mixture`;
    its default rounds if None)."""
    from saetm.topics import docweights, merge

    W = merge.doc_topics(m.theta_, atom_topic, n_topics)
    E = getattr(m, "doc_embeddings_", None)
    if m.doc_weights == "theta" or E is None:
        return W, None, None
    if smoothing is None:
        smoothing = check_doc_smoothing(m.doc_smoothing)  # set_params does not validate
    centroids, priors = docweights.fit_mixture(W, E, n_iter=rounds, fit_priors=fit_priors, smoothing=smoothing)
    return docweights.sharpen(W, E, centroids, priors=priors, smoothing=smoothing), centroids, priors


def document_embeddings(m, X: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray | None:
    """What the model keeps of the embeddings for ``doc_weights="centroid"``: their directions
    (only cosines are used) as ``(n_rows, dim)`` float16 — unit rows cannot overflow it —, all-zero
    rows for documents without one (empty texts); ``None`` otherwise."""
    return None if m.doc_weights == "theta" else _directions(X, rows, n_rows)


def _directions(X: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    from saetm.topics.atomspace import unit_rows

    out = np.zeros((n_rows, X.shape[1]), dtype=np.float16)
    for lo in _row_blocks(X):
        out[rows[lo:lo + BLOCK_ROWS]] = unit_rows(X[lo:lo + BLOCK_ROWS])
    return out


def topic_weights(m, theta: sp.csr_matrix, X: np.ndarray, rows: np.ndarray, *, normalize: bool) -> sp.csr_matrix:
    """Topic weights of new documents (θ of their atoms, embeddings ``X`` at ``rows``)."""
    from saetm.topics import docweights, merge

    W = merge.doc_topics(theta, m.atom_topic_, m.n_topics, normalize=normalize)
    centroids = getattr(m, "topic_centroids_", None)
    if centroids is None:
        return W
    # Weighted whenever the fitted documents are (the centroids say so, whatever set_params
    # changed since), and in float16 as theirs: the same text gets the same weights.
    return docweights.sharpen(W, _directions(X, rows, theta.shape[0]), centroids,
                              priors=getattr(m, "topic_priors_", None), smoothing=m.doc_smoothing_)
