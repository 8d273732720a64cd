"""Atomic, pickle-free persistence: safetensors for arrays, JSON for everything else.

Every writer goes through :func:`atomic_write`, which writes to a temporary file in
the destination folder and renames it into place, so a crash never leaves a
half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from saetm.errors import SaetmError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str, path: Path) -> None:
    # mkstemp creates files readable by the owner only; give the final file the usual mode.
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path``; on success rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SaetmError(f"{path} is missing; the model directory is incomplete (re-run `saetm fit`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: absurd nesting
        raise SaetmError(f"{path} is not valid JSON ({type(e).__name__ if isinstance(e, RecursionError) else e}); "
                         "the file is corrupt, re-run `saetm fit`") from None


def write_tensors(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write numpy arrays to a safetensors file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp, metadata=metadata)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise SaetmError(f"{path} is missing; the model directory is incomplete (re-run `saetm fit`)")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise SaetmError(f"{path} is not a readable safetensors file ({e}); the file is corrupt, re-run `saetm fit`") from None


def read_tensor_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata in a safetensors file's header, without reading its arrays."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise SaetmError(f"{path} is missing; the model directory is incomplete (re-run `saetm fit`)")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise SaetmError(f"{path} is not a readable safetensors file ({e}); the file is corrupt, re-run `saetm fit`") from None


def csr_to_tensors(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """Flatten a CSR matrix into named arrays (safetensors stores dense arrays only); its
    indices keep their own integer type (int32 when they fit: no int64 copy at save time)."""
    m = sp.csr_matrix(m)
    return {
        f"{prefix}.data": m.data,
        f"{prefix}.indices": m.indices,
        f"{prefix}.indptr": m.indptr,
        f"{prefix}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from_tensors(prefix: str, t: dict[str, np.ndarray]) -> sp.csr_matrix:
    try:
        shape, data = t[f"{prefix}.shape"], t[f"{prefix}.data"]
        indices, indptr = t[f"{prefix}.indices"], t[f"{prefix}.indptr"]
    except KeyError as e:
        raise SaetmError(f"saved model lacks the array {e}; the file is corrupt or from another saetm version") from None
    # Files may be tampered with: scipy trusts CSR arrays and an index out of range crashes
    # the interpreter later, so every invariant is checked here (full_check).
    problem = None
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        problem = f"shape {shape.tolist()} is not two non-negative integers"
    elif indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu" or data.dtype.kind != "f":
        problem = "its arrays have the wrong types"
    elif data.ndim != 1 or not np.isfinite(data).all():
        problem = "its values are not a finite vector"
    if problem is None:
        try:
            m = sp.csr_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape))
            m.check_format(full_check=True)
            return m
        except (ValueError, TypeError, IndexError, OverflowError) as e:
            problem = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise SaetmError(f"saved sparse matrix {prefix!r} is inconsistent ({problem}); the file is corrupt")


def write_npz(path: str | os.PathLike, m: sp.spmatrix) -> None:
    """Write a scipy.sparse matrix as .npz atomically (readable by ``scipy.sparse.load_npz``)."""
    with atomic_write(path, "wb") as f:
        sp.save_npz(f, sp.csr_matrix(m), compressed=True)
