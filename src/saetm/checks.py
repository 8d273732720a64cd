"""Setting checks that run before any data is read or encoded.

A setting that cannot work (more topics than the SAE has atoms, an SAE too large for
this machine's memory) should be refused in a second, not after the corpus has been
read, encoded and an SAE trained. What is known this early: the SAE that will be used
(the shipped one and a ``--sae`` folder declare their size in ``sae.json``, read here
without importing torch) and, for the default encoder or given embeddings, the
embedding dimension.
"""

from __future__ import annotations

import os
from pathlib import Path

from saetm.errors import SaetmError

DEFAULT_ENCODER_DIM = 384  # all-MiniLM-L6-v2, the bundled default encoder


def fraction(text: str) -> float:
    """A command-line share in (0, 1], such as ``--max-df``."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1], got {text}")
    return value


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def sae_training_bytes(n_atoms: int, dim: int, batch_rows: int = 0) -> int:
    """A lower bound on the memory training an SAE takes: encoder and decoder (2 × n_atoms ×
    dim float32) times four (weights, gradients and Adam's two moments), plus a few
    (batch_rows × n_atoms) float32 activation matrices (pre-activations, activations,
    their gradients)."""
    params = 2 * n_atoms * dim + n_atoms + dim
    return 4 * (4 * params + 3 * batch_rows * n_atoms)


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # unreachable


def check_sae_memory(n_atoms: int, dim: int, batch_rows: int = 0) -> None:
    """Refuse to train an SAE that cannot fit in this machine's memory (one line, what to lower)."""
    total = physical_memory()
    need = sae_training_bytes(n_atoms, dim, batch_rows)
    if total is not None and need > total:
        fits = max(int((total / 4 - 4 * dim) // (8 * dim + 4 + 3 * batch_rows)), 0)  # sae_training_bytes solved
        raise SaetmError(f"an SAE of {n_atoms:,} atoms on {dim}-d embeddings needs at least {_size(need)} of memory "
                         f"to train, more than this machine's {_size(total)}; "
                         f"lower --n-atoms (sae__n_atoms) well below "
                         f"{fits:,} (the default is {16 * dim:,}, 16 × dim)")


def width(embeddings) -> int | None:
    """Columns of given embeddings; None when none are given or they are not 2-D (checked later)."""
    shape = getattr(embeddings, "shape", None) if embeddings is not None else None
    return int(shape[1]) if shape is not None and len(shape) == 2 else None


def npy_width(path) -> int | None:
    """Columns of the array in a ``.npy`` file, from its header alone; None when unknown."""
    if path is None or not str(path).lower().endswith(".npy"):
        return None
    import numpy as np

    try:
        return width(np.load(path, mmap_mode="r", allow_pickle=False))
    except Exception:  # unreadable or not a plain array: reading the embeddings says what is wrong
        return None


def _sae_config(folder: Path) -> dict | None:
    """``config`` of the ``sae.json`` in ``folder``, when it is readable and names its size."""
    from saetm.io.persist import read_json

    try:
        config = read_json(folder / "sae.json").get("config")
    except (SaetmError, OSError, AttributeError):
        return None  # loading the SAE later says what is wrong with it
    ok = isinstance(config, dict) and all(isinstance(config.get(k), int) and not isinstance(config.get(k), bool)
                                          for k in ("n_atoms", "d_in"))
    return config if ok else None


def planned_sae(m, embedding_name: str | None, dim: int | None) -> tuple[str, int | None, int | None]:
    """Which SAE ``m.fit`` will use, known before data: ``(what, n_atoms, d_in)``, each size
    None where it is not known yet. ``what`` describes the SAE for messages; it starts with
    "a trained" when an SAE will be trained on the corpus."""
    from saetm.components import SAETraining, resolved
    from saetm.sae.stage import shipped_fits, shipped_sae_dir

    choice = "train" if isinstance(m.sae, SAETraining) else m.sae
    config = getattr(choice, "config", None)
    if config is not None:  # a fitted SparseAutoencoder
        return "the given SAE", config.n_atoms, config.d_in
    if choice == "auto":
        name = embedding_name if embedding_name is not None else getattr(m, "embedding_name_", None)
        choice = "default" if shipped_fits(resolved(m, "sae"), name) else "train"
    if choice == "train":
        n_atoms = m.n_atoms or (16 * dim if dim else None)
        return "a trained SAE", n_atoms, dim
    folder = shipped_sae_dir(embedding_name) if choice == "default" else Path(str(choice))
    if folder is None:
        raise SaetmError("no pretrained SAE ships with this saetm build; use --sae train (sae='train')")
    if not folder.exists():
        raise SaetmError(f"--sae {choice} (sae={str(choice)!r}) is neither auto, default, train nor an existing "
                         "SAE folder; check the path")
    config = _sae_config(folder)
    if config is None:
        return "the SAE", None, None  # missing or broken: get_sae says so
    what = "the shipped SAE" if choice == "default" else f"the SAE in {folder}"
    return what, config["n_atoms"], config["d_in"]


def check_before_data(m, embedding_name: str | None, dim: int | None, *, given: bool = False) -> None:
    """The settings of ``m`` checked against the SAE it will use, before any data is read.

    ``embedding_name``: what will make the embeddings (as ``m.embedding_name_`` will be);
    ``dim``: their dimension, None when not known yet; ``given``: embeddings are given
    (so the default encoder's width says nothing about them)."""
    from saetm.encoders.text import DEFAULT_ENCODER

    if dim is None and not given and embedding_name == DEFAULT_ENCODER:
        dim = DEFAULT_ENCODER_DIM
    what, n_atoms, d_in = planned_sae(m, embedding_name, dim)
    if n_atoms is None:
        return
    if m.n_topics > n_atoms:
        raise SaetmError(f"n_topics={m.n_topics} is more than the {n_atoms:,} atoms of {what}, and each topic "
                         f"needs one; lower --topics (n_topics) to at most {n_atoms}")
    if not what.startswith("a trained"):
        if dim is not None and d_in != dim:
            raise SaetmError(f"{'embeddings' if given else f'{embedding_name} embeddings'} have {dim} columns but "
                             f"the SAE expects {d_in}; use embeddings from the encoder the SAE was trained for")
        return
    if m.k >= n_atoms:
        raise SaetmError(f"k={m.k} must be smaller than the number of atoms ({n_atoms}); "
                         "lower --k (sae__k) or raise --n-atoms (sae__n_atoms)")
    if dim is not None:
        check_sae_memory(n_atoms, dim)
