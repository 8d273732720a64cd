"""Reading users' embeddings: a validated ``(n, d)`` float32 array from ``.npy`` or ``.npz``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from saetm._memory import release_pages
from saetm.errors import SaetmError
from saetm.io.values import _one_line

EMBEDDING_FORMATS = (".npy", ".npz")


def read_embeddings(path, *, n_rows: int | None = None, dim: int | None = None, mmap: bool = False) -> np.ndarray:
    """Load embeddings ``(n, d)`` float32 from ``.npy`` (or a ``.npz`` holding one array).

    Never unpickles (``allow_pickle=False``). ``n_rows``/``dim``, when given, must match.
    Integer and other float dtypes are converted to float32. ``mmap=True`` memory-maps a
    ``.npy`` file (no copy when it is already float32; ignored for ``.npz``).
    """
    path = Path(path)
    if not path.exists():
        raise SaetmError(f"embeddings file {path} does not exist; check the path")
    if path.is_dir() or path.suffix.lower() not in EMBEDDING_FORMATS:
        raise SaetmError(f"{path} is not a .npy or .npz file; save embeddings with numpy.save(path, array)")
    arr = _load_npy(path, mmap) if path.suffix.lower() == ".npy" else _load_npz(path)

    if arr.ndim != 2:
        hint = " (one document? reshape to (1, -1))" if arr.ndim == 1 else ""
        raise SaetmError(f"embeddings in {path} must be a 2-D array (n_documents, dim) but have shape {arr.shape}{hint}")
    if arr.dtype.kind not in "iuf":
        raise SaetmError(f"embeddings in {path} have dtype {arr.dtype}, not numbers; save a float32 array")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SaetmError(f"embeddings in {path} are empty (shape {arr.shape}); recompute them")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise SaetmError(f"embeddings have {arr.shape[0]} rows but there are {n_rows} documents; recompute them for these documents")
    if dim is not None and arr.shape[1] != dim:
        raise SaetmError(f"embeddings have {arr.shape[1]} columns but the SAE expects {dim}; use embeddings from the same encoder")
    converted = arr.dtype != np.float32
    if converted:
        with np.errstate(over="ignore"):  # values too large for float32 become inf and are reported below
            arr = arr.astype(np.float32)
    _check_finite(arr, path, converted)
    return arr


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
        except Exception:  # numpy raises ValueError/EOFError/SyntaxError for bad headers
            raise SaetmError(f"{path} is not a valid .npy file (bad or missing header); re-save it with numpy.save") from None
        offset = f.tell()
    if dtype.hasobject:
        raise SaetmError(f"{path} holds Python objects (dtype object); saetm loads with allow_pickle=False, save a float32 array instead")
    expected = offset + math.prod(shape) * dtype.itemsize  # Python ints: a forged header cannot overflow
    size = path.stat().st_size
    if size < expected:
        raise SaetmError(
            f"{path} is truncated: its header says shape {shape} {dtype} ({expected} bytes) but the file has {size} bytes; re-save it"
        )
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:
        raise SaetmError(f"{path} is not a valid .npy file ({_one_line(e)}); re-save it with numpy.save") from None


def _load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if len(keys) != 1 and "embeddings" not in keys:
                raise SaetmError(
                    f"{path} holds {len(keys)} arrays ({', '.join(keys[:5])}); save one array, or name it 'embeddings'"
                )
            return npz["embeddings" if "embeddings" in keys else keys[0]]
    except SaetmError:
        raise
    except ValueError as e:
        if "pickle" in str(e) or "object" in str(e):
            raise SaetmError(f"{path} holds Python objects (dtype object); saetm loads with allow_pickle=False, save a float32 array instead") from None
        raise SaetmError(f"{path} is not a valid .npz file ({_one_line(e)}); re-save it with numpy.savez") from None
    except Exception as e:  # corrupt archives fail in many ways (BadZipFile, zlib.error, EOFError, ...)
        raise SaetmError(f"{path} is not a valid .npz file ({_one_line(e)}); re-save it with numpy.savez") from None


def _check_finite(arr: np.ndarray, path: Path, converted: bool, block: int = 65536) -> None:
    """Count rows holding NaN/inf, block by block so a memory-mapped file is not loaded at once."""
    bad_rows, first = 0, None
    for start in range(0, arr.shape[0], block):
        bad = ~np.isfinite(arr[start : start + block]).all(axis=1)
        release_pages(arr)
        if bad.any():
            bad_rows += int(bad.sum())
            first = start + int(np.argmax(bad)) if first is None else first
    if bad_rows:
        raise SaetmError(
            f"embeddings in {path} have NaN or infinite values{' (or values too large for float32)' if converted else ''} "
            f"in {bad_rows} rows (first: row {first}); recompute or drop those rows"
        )
