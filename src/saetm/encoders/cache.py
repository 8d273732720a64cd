"""On-disk cache of embeddings, keyed by encoder name and document content.

A second run over the same documents with the same encoder loads the ``.npy``
instead of re-encoding. The cache lives in ``$SAETM_CACHE`` (default
``~/.cache/saetm``) under ``embeddings/``; deleting it is always safe.

Long corpora are encoded in chunks of :func:`chunk_rows` documents, each stored as
soon as it is encoded under the key of (encoder, the chunk's texts): a run that is
killed loses at most the chunk in flight, and the re-run reads the finished chunks
back. Once every chunk is there, the whole corpus is stored under its own key (the
fast path of the next run) and the chunk entries are removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from saetm.errors import SaetmError
from saetm.io.persist import atomic_write

log = logging.getLogger("saetm")

CHUNK_ROWS = 2048


def default_cache_dir() -> Path:
    return Path(os.environ.get("SAETM_CACHE", Path.home() / ".cache" / "saetm"))


def chunk_rows() -> int:
    """Documents per encoding chunk: ``$SAETM_ENCODE_CHUNK`` or 2,048. Smaller chunks lose
    less work to a kill and cost one small file each while the corpus is encoded."""
    value = os.environ.get("SAETM_ENCODE_CHUNK", "")
    if not value:
        return CHUNK_ROWS
    if not value.isdigit() or int(value) < 1:
        raise SaetmError(f"SAETM_ENCODE_CHUNK must be a whole number of documents >= 1, got {value!r}")
    return int(value)


def chunk_bounds(n_rows: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of ``size`` rows (the last may be shorter)."""
    return [(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]


def content_key(encoder_name: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(encoder_name.encode("utf-8"))
    for t in texts:
        h.update(b"\x00")
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def cache_for(encoder, cache: "EmbeddingCache | None | bool") -> "EmbeddingCache | None":
    """The cache ``encoder``'s embeddings go through: ``True`` the default one, ``False`` or
    None none, and none for an encoder whose embeddings depend on more than its inputs
    (``cacheable = False``, the static encoder's corpus IDF)."""
    if not getattr(encoder, "cacheable", True):
        return None
    return EmbeddingCache() if cache is True else (cache or None)


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

    def remove(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError:
            pass


def encode_chunks(encoder, texts: Sequence[str], cache: EmbeddingCache | None, which: Iterable[int], *,
                  size: int, show_progress: bool = False) -> dict[int, np.ndarray]:
    """Embeddings of the chunks ``which`` (numbers of ``size``-row chunks of ``texts``):
    read from ``cache`` where stored, else encoded and stored at once. Logs how many
    chunks were read and how many encoded."""
    bounds = chunk_bounds(len(texts), size)
    which = list(which)
    bar = None
    if show_progress and len(which) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(bounds[i][1] - bounds[i][0] for i in which), desc="encoding", unit="doc",
                   dynamic_ncols=True)
    out, read = {}, 0
    try:
        for i in which:
            s, e = bounds[i]
            chunk = texts[s:e]
            key = content_key(encoder.name, chunk) if cache is not None else None
            emb = cache.get(key, e - s) if cache is not None else None
            if emb is None:
                emb = np.asarray(encoder.encode(chunk, show_progress=show_progress and bar is None),
                                 dtype=np.float32)
                if cache is not None:
                    cache.put(key, emb)
                log.debug("encoded chunk %d (documents %d-%d)", i, s, e)
            else:
                read += 1
            out[i] = emb
            if bar is not None:
                bar.update(e - s)
    finally:
        if bar is not None:
            bar.close()
    if len(bounds) > 1:
        log.info("embeddings: %d chunk(s) of %d documents encoded, %d read from the cache",
                 len(which) - read, size, read)
    return out


def stack_chunks(parts: dict[int, np.ndarray], n_chunks: int) -> np.ndarray:
    """The chunks' embeddings in order as one float32 array."""
    if n_chunks == 1:
        return parts[0]
    return np.concatenate([parts[i] for i in range(n_chunks)]).astype(np.float32, copy=False)
