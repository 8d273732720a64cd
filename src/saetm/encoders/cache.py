"""On-disk cache of embeddings, keyed by encoder name and document content.

A second run over the same documents with the same encoder loads the ``.npy``
instead of re-encoding. The cache lives in ``$SAETM_CACHE`` (default
``~/.cache/saetm``) under ``embeddings/``; deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from saetm.io.persist import atomic_write


def default_cache_dir() -> Path:
    return Path(os.environ.get("SAETM_CACHE", Path.home() / ".cache" / "saetm"))


def content_key(encoder_name: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(encoder_name.encode("utf-8"))
    for t in texts:
        h.update(b"\x00")
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


class EmbeddingCache:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir() / "embeddings"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def get(self, key: str, n_rows: int) -> np.ndarray | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # a corrupt entry is simply recomputed
        if arr.ndim != 2 or arr.shape[0] != n_rows or not np.isfinite(arr).all():
            return None
        return arr

    def put(self, key: str, emb: np.ndarray) -> None:
        try:
            with atomic_write(self.path(key), "wb") as f:
                np.save(f, np.ascontiguousarray(emb, dtype=np.float32), allow_pickle=False)
        except OSError:
            pass  # a cache that cannot be written (read-only home, full disk) must not fail the run
