"""Save and load a trained SAE: ``sae.safetensors`` (weights) + ``sae.json`` (everything else).

The JSON holds the format version, the architecture configuration (including the
input normalisation and scale and the encoder name) and whatever the caller passes in
``extra_meta`` (metrics, a summary of the training data). Weights may be stored as
float16 to ship small files; they always load back as float32.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from saetm._version import FORMAT_VERSION, __version__
from saetm.errors import SaetmError
from saetm.io.persist import write_json, write_tensors
from saetm.sae.config import FORMAT, META, WEIGHTS, SavedSAE, read_sae
from saetm.sae.models import SAEConfig, SparseAutoencoder, build_sae  # noqa: F401 (SAEConfig: re-exported)

# The big matrices may be stored in half precision; thresholds and biases stay float32.
_HALF_OK = ("W_enc", "W_dec")


def save_sae(sae: SparseAutoencoder, directory: str | os.PathLike, extra_meta: dict | None = None,
             dtype: str = "float32", fit_id: str | None = None) -> Path:
    """Write ``directory/sae.safetensors`` and ``directory/sae.json`` atomically; returns the folder.

    ``fit_id``: the id of the model directory's fit, stored in both files (see
    ``saetm.io.directory.check_one_fit``)."""
    if dtype not in ("float32", "float16"):
        raise SaetmError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    directory = Path(directory)
    tensors = {}
    for name, value in sae.state_dict().items():
        array = value.detach().cpu().numpy().astype(np.float32)
        if dtype == "float16" and name in _HALF_OK:
            array = array.astype(np.float16)
        tensors[name] = array
    tag = {} if fit_id is None else {"saetm_fit_id": fit_id}
    write_tensors(directory / WEIGHTS, tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION),
                                                          **tag})
    write_json(directory / META, {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "saetm_version": __version__,
        "arch": sae.config.arch,
        "config": sae.config.to_dict(),
        "dtype": dtype,
        "meta": _jsonable(dict(extra_meta or {})),
        **({} if fit_id is None else {"fit_id": fit_id}),
    })
    return directory


def _jsonable(obj):
    """numpy scalars/arrays and paths inside metadata -> plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return str(obj)
    return obj


def load_sae(directory: str | os.PathLike) -> SparseAutoencoder:
    """Load an SAE saved by :func:`save_sae` (float32, eval mode). ``sae.meta`` holds
    the ``extra_meta`` it was saved with."""
    return build_saved(read_sae(directory))


def build_saved(saved: SavedSAE) -> SparseAutoencoder:
    """The network of an SAE read (and checked) by :func:`saetm.sae.config.read_sae`."""
    sae = build_sae(saved.config)
    sae.load_state_dict({name: torch.from_numpy(array) for name, array in saved.state.items()})
    sae.meta = saved.meta
    return sae.eval()
