"""The configuration of an SAE and the arrays it is saved as, without importing torch:
loading a model checks its SAE files with these, and builds the network only when
something encodes with it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from saetm._version import FORMAT_VERSION
from saetm.errors import SaetmError
from saetm.io.persist import read_json, read_tensors

WEIGHTS, META = "sae.safetensors", "sae.json"
FORMAT = "saetm.sae"

ARCHITECTURES = ("topk", "batchtopk", "relu", "jumprelu")
INPUT_NORMS = ("l2", "scale")


@dataclass
class SAEConfig:
    """Architecture and loss hyper-parameters of one SAE (saved with the model).

    ``None`` fields are resolved: ``n_atoms`` = 16·d_in, ``aux_k`` = min(512, n_atoms/2)
    (OpenAI's k_aux), ``target_l0`` = k; ``input_scale`` (for ``input_norm="scale"``) and
    ``sparsity_warmup_steps`` (5% of training) are chosen by the trainer.
    """

    d_in: int
    n_atoms: int | None = None
    k: int = 32
    arch: str = "batchtopk"
    input_norm: str = "l2"
    input_scale: float | None = None
    aux_k: int | None = None
    aux_coef: float = 1 / 32
    l1_coef: float = 0.1
    target_l0: float | None = None
    l0_coef: float = 1.0
    bandwidth: float = 1e-3
    sparsity_warmup_steps: int | None = None
    encoder_name: str = ""

    def __post_init__(self):
        if not isinstance(self.d_in, (int, np.integer)) or self.d_in < 1:
            raise SaetmError(f"SAE d_in must be a positive integer, got {self.d_in!r}")
        self.d_in = int(self.d_in)
        if self.n_atoms is None:
            self.n_atoms = 16 * self.d_in
        if not isinstance(self.n_atoms, (int, np.integer)) or self.n_atoms < 2:
            raise SaetmError(f"SAE n_atoms must be an integer >= 2, got {self.n_atoms!r}")
        self.n_atoms = int(self.n_atoms)
        if self.arch not in ARCHITECTURES:
            raise SaetmError(f"unknown SAE architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if self.input_norm not in INPUT_NORMS:
            raise SaetmError(f"unknown input_norm {self.input_norm!r}; choose 'l2' or 'scale'")
        if not 1 <= int(self.k) <= self.n_atoms:
            raise SaetmError(f"k={self.k} must be between 1 and n_atoms={self.n_atoms}")
        self.k = int(self.k)
        if self.aux_k is None:
            self.aux_k = max(1, min(512, self.n_atoms // 2))
        if self.target_l0 is None:
            self.target_l0 = float(self.k)
        if self.input_scale is not None and not (self.input_scale > 0 and math.isfinite(self.input_scale)):
            raise SaetmError(f"input_scale must be a positive number, got {self.input_scale!r}")
        for name in ("aux_coef", "l1_coef", "l0_coef"):
            if not getattr(self, name) >= 0:
                raise SaetmError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.bandwidth > 0 or not self.target_l0 > 0:
            raise SaetmError("bandwidth and target_l0 must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SAEConfig":
        if not isinstance(d, dict):
            raise SaetmError("SAE configuration must be a JSON object; the model file is corrupt")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SaetmError(f"SAE configuration has unknown fields {unknown}; "
                             "it was written by a newer saetm, upgrade saetm")
        if "d_in" not in d:
            raise SaetmError("SAE configuration lacks d_in; the model file is corrupt")
        try:
            return cls(**d)
        except SaetmError:
            raise
        except (TypeError, ValueError) as e:
            raise SaetmError(f"SAE configuration is invalid ({e}); the model file is corrupt") from None


def state_shapes(config: SAEConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every array in the saved state of an SAE of ``config`` (the
    ``state_dict`` of :func:`saetm.sae.models.build_sae`; tests/test_sae.py compares)."""
    d, n = config.d_in, config.n_atoms
    shapes = {"W_dec": (d, n), "W_enc": (n, d), "b_enc": (n,), "b_dec": (d,)}
    if config.arch == "batchtopk":
        shapes["threshold"] = ()
    elif config.arch == "jumprelu":
        shapes["log_threshold"] = (n,)
    return shapes


@dataclass
class SavedSAE:
    """An SAE as saved: its configuration, its arrays (float32, by ``state_dict`` name) and
    the ``extra_meta`` it was saved with."""

    config: SAEConfig
    state: dict
    meta: dict


def read_sae(directory: str | os.PathLike) -> SavedSAE:
    """Read and check an SAE saved by :func:`saetm.sae.persist.save_sae` (a corrupt, edited or
    mismatched file is a one-line SaetmError) without building its network."""
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
    expected = state_shapes(config)
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        what = f"lacks {missing}" if missing else f"has unexpected {unexpected}"
        raise SaetmError(f"{directory / WEIGHTS} {what} for a {config.arch} SAE; the file is corrupt or does not "
                         "match sae.json")
    state = {}
    for name, ref in expected.items():
        array = arrays[name]
        if ref == () and array.shape == (1,):  # safetensors stores scalars as (1,)
            array = array.reshape(())
        if tuple(array.shape) != ref:
            raise SaetmError(f"{directory / WEIGHTS}: {name} has shape {tuple(array.shape)}, "
                             f"sae.json implies {ref}; the files do not belong together")
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise SaetmError(f"{directory / WEIGHTS}: {name} contains NaN or infinite values; "
                             "the model is broken, retrain it")
        state[name] = array
    return SavedSAE(config, state, info.get("meta", {}))
