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
from saetm.io.persist import read_json, read_tensors, write_json, write_tensors
from saetm.sae.models import SAEConfig, SparseAutoencoder, build_sae

WEIGHTS, META = "sae.safetensors", "sae.json"
FORMAT = "saetm.sae"
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
    directory = Path(directory)
    if not directory.is_dir():
        raise SaetmError(f"{directory} is not a folder with a saved SAE (sae.json + sae.safetensors)")
    info = read_json(directory / META)
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise SaetmError(f"{directory / META} is not a saetm SAE file; point to a folder written by save_sae")
    version = info.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SaetmError(f"{directory} was written in SAE format {version!r}, this saetm reads up to "
                         f"{FORMAT_VERSION}; upgrade saetm")
    try:
        config = SAEConfig.from_dict(info.get("config"))
    except (SaetmError, TypeError, ValueError) as e:
        raise SaetmError(f"{directory / META} holds an invalid SAE configuration ({e}); the file is corrupt or "
                         "was edited") from None
    arrays = read_tensors(directory / WEIGHTS)
    # Check the size sae.json claims against the stored weights before allocating a model
    # of that size: an edited sae.json must not make saetm ask for terabytes.
    W_dec = arrays.get("W_dec")
    if W_dec is None or tuple(W_dec.shape) != (config.d_in, config.n_atoms):
        raise SaetmError(f"{directory / WEIGHTS}: W_dec has shape {None if W_dec is None else tuple(W_dec.shape)}, "
                         f"sae.json implies {(config.d_in, config.n_atoms)}; the files do not belong together")
    sae = build_sae(config)
    expected = sae.state_dict()
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        what = f"lacks {missing}" if missing else f"has unexpected {unexpected}"
        raise SaetmError(f"{directory / WEIGHTS} {what} for a {config.arch} SAE; the file is corrupt or does not "
                         "match sae.json")
    state = {}
    for name, ref in expected.items():
        array = arrays[name]
        if ref.ndim == 0 and array.shape == (1,):  # safetensors stores scalars as (1,)
            array = array.reshape(())
        if tuple(array.shape) != tuple(ref.shape):
            raise SaetmError(f"{directory / WEIGHTS}: {name} has shape {tuple(array.shape)}, "
                             f"sae.json implies {tuple(ref.shape)}; the files do not belong together")
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise SaetmError(f"{directory / WEIGHTS}: {name} contains NaN or infinite values; "
                             "the model is broken, retrain it")
        state[name] = torch.from_numpy(array)
    sae.load_state_dict(state)
    sae.meta = info.get("meta", {})
    return sae.eval()
