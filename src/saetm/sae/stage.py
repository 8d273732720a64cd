"""Stage 1: the SAE a fit uses, and the documents' atoms (embeddings → atoms).

Functions of plain values: what ``sae`` names (``"auto"``, ``"default"``, ``"train"``, an
:class:`saetm.components.SAETraining`, a folder or a fitted SAE), the training settings and the
embeddings. A corpus-trained SAE is cached, keyed by the embeddings and settings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

log = logging.getLogger("saetm")

# encoder name -> the folder under saetm/assets/ of the pretrained SAE shipped for it
SHIPPED_SAES = {"all-MiniLM-L6-v2": "sae-minilm", "static-all-MiniLM-L6-v2": "sae-static"}


def shipped_sae_dir(encoder_name: str | None = None) -> Path | None:
    """The shipped SAE for ``encoder_name`` (the default encoder's for None or an encoder
    without one of its own), or None if this build lacks it."""
    folder = SHIPPED_SAES.get(encoder_name or "", SHIPPED_SAES["all-MiniLM-L6-v2"])
    root = Path(__file__).parents[1] / "assets" / folder
    return root if (root / "sae.json").exists() else None


def get_sae(choice, X: np.ndarray, *, training, embedding_name: str | None, cache: bool, seed: int,
            progress: bool):
    """Resolve ``choice`` (the ``sae`` setting) into a fitted SAE for embeddings ``X``; returns
    (sae, info). ``training``: the :class:`saetm.components.SAETraining` in use when one is trained;
    ``embedding_name``: the embeddings' encoder; ``cache``, ``seed``, ``progress``: of the training."""
    from saetm.components import SAETraining
    from saetm.sae.models import SparseAutoencoder
    from saetm.sae.persist import load_sae

    choice = "train" if isinstance(choice, SAETraining) else choice
    if isinstance(choice, SparseAutoencoder):
        return _checked(choice, X, embedding_name), {"source": "given"}
    if choice == "auto":
        choice = "default" if shipped_fits(training, embedding_name) else "train"
    if choice == "default":
        root = shipped_sae_dir(embedding_name)
        if root is None:
            raise SaetmError("no pretrained SAE ships with this saetm build; use sae='train'")
        sae = _checked(load_sae(root), X, embedding_name)
        log.info("SAE: the one shipped with saetm (%d atoms, trained on generic English texts); "
                 "sae='train' (--sae train) trains one on this corpus instead", sae.config.n_atoms)
        return sae, {"source": "default", "path": str(root)}
    if choice == "train":
        return train_corpus_sae(X, training, embedding_name=embedding_name, cache=cache, seed=seed,
                                progress=progress)
    path = Path(str(choice))
    if not path.exists():
        raise SaetmError(f"sae={choice!r} is neither 'auto', 'default', 'train' nor an existing SAE folder")
    return _checked(load_sae(path), X, embedding_name), {"source": "folder", "path": str(path)}


def shipped_fits(training, embedding_name: str | None) -> bool:
    """``sae="auto"`` takes the shipped SAE when it is what was asked for: one ships for the
    embeddings' encoder ``embedding_name`` (:data:`SHIPPED_SAES`), and no explicit size, length
    or architecture in ``training`` (an :class:`saetm.components.SAETraining`) other than its
    own asks for training."""
    root = shipped_sae_dir(embedding_name) if embedding_name in SHIPPED_SAES else None
    if root is None:
        return False
    from saetm.io.persist import read_json

    config = read_json(root / "sae.json").get("config", {})
    return (training.n_atoms in (None, config.get("n_atoms")) and training.steps is None
            and training.arch == config.get("arch") and training.k == config.get("k"))


def _checked(sae, X, embedding_name):
    d_in = sae.config.d_in
    if X.shape[1] != d_in:
        raise SaetmError(f"embeddings have {X.shape[1]} columns but the SAE expects {d_in}; "
                         "use embeddings from the encoder the SAE was trained for")
    name = getattr(sae.config, "encoder_name", "")
    if name and embedding_name and name != embedding_name:
        log.warning("the SAE was trained for encoder %r but the embeddings come from %r", name, embedding_name)
    return sae


def train_corpus_sae(X: np.ndarray, training, *, embedding_name: str | None, cache: bool, seed: int,
                     progress: bool):
    """An SAE trained on ``X`` with ``training`` (an :class:`saetm.components.SAETraining`);
    reused from the cache (``cache``) when these embeddings and settings trained one before."""
    import dataclasses

    from saetm._memory import release_freed_memory
    from saetm.checks import check_sae_memory
    from saetm.sae.models import SAEConfig
    from saetm.sae.train import TrainConfig, default_batch_size, train_sae

    d = X.shape[1]
    n_atoms = training.n_atoms or 16 * d
    if training.k >= n_atoms:
        raise SaetmError(f"k={training.k} must be smaller than the number of atoms ({n_atoms}); "
                         "lower --k (sae__k) or raise --n-atoms (sae__n_atoms)")
    check_sae_memory(n_atoms, d, default_batch_size(X.shape[0]))  # torch would fail with a traceback
    cfg = SAEConfig(d_in=d, n_atoms=n_atoms, k=training.k, arch=training.arch, encoder_name=embedding_name)
    train_cfg = TrainConfig(steps=training.steps, seed=seed)
    cached = _sae_cache_dir(X, cfg, train_cfg) if cache else None
    sae = _load_cached_sae(cached) if cached is not None else None
    if sae is not None:
        log.info("SAE: reusing the one trained on these embeddings with these settings (%s)", cached)
        return sae, {"source": "train", "cached": True, **sae.meta.get("metrics", {})}
    if cached is not None:  # checkpoints beside the cache entry: a killed fit resumes the training
        train_cfg = dataclasses.replace(train_cfg, checkpoint_dir=_sae_checkpoint_dir(cached),
                                        checkpoint_every=SAE_CHECKPOINT_EVERY, keep_checkpoints=1, resume=True)
    sae, metrics = train_sae(X, cfg, train_cfg, progress=progress)
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
    """The SAE's sparse activations of the embeddings ``X``: (len(X), n_atoms) CSR."""
    from saetm._memory import release_freed_memory
    from saetm.sae.encode import encode_activations

    A = encode_activations(sae, X)
    release_freed_memory()
    return A


def theta_of(sae, X: np.ndarray, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """θ of ``n_rows`` documents: the normalised activations of ``X`` at ``rows``, empty rows elsewhere."""
    from saetm.encoders.embed import expand_rows
    from saetm.words.em import normalize_theta

    return normalize_theta(expand_rows(activations(sae, X), rows, n_rows), copy=False)  # its own matrix
