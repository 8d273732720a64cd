"""Image files as saetm reads them: bytes, decoded RGB, fingerprint, location, description.

``load_rgb`` decodes paths, encoded ``bytes``, ``{"bytes", "path"}`` records or ``PIL``
images to RGB (transparency on white) and raises :class:`UnreadableImage` with a reason the
encoders report instead of crashing. Only regular files of at most ``MAX_IMAGE_BYTES`` are
read: devices, named pipes and folders given as images are unreadable images.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings


MAX_SIDE = 1024  # pixels; larger images are shrunk while decoding (encoders look at 224-512)
MAX_IMAGE_BYTES = 64 * 2**20  # per image file: far above any photo or clip art, bounds memory per image


class UnreadableImage(Exception):
    """One image could not be read; the message is the reason shown to the user."""


def image_bytes(image) -> bytes:
    """The encoded bytes of ``image``: a path, ``bytes``, or a ``{"bytes": ..., "path": ...}``
    record (the Hugging Face / Parquet image column); raises :class:`UnreadableImage`."""
    if isinstance(image, dict):
        if image.get("bytes") is not None:
            return bytes(image["bytes"])
        image = image.get("path")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if image is None:
        raise UnreadableImage("no image given")
    if isinstance(image, (str, os.PathLike)):
        if "://" in str(image):
            raise UnreadableImage("is a URL; saetm reads local files only (download the images first)")
        try:
            return _read_image_file(image)
        except FileNotFoundError:
            raise UnreadableImage("file not found") from None
        except OSError as e:
            raise UnreadableImage(f"cannot read the file ({e.strerror or type(e).__name__})") from None
    raise UnreadableImage(f"is a {type(image).__name__}, not a path, bytes or PIL image")


def _read_image_file(path) -> bytes:
    """The bytes of a regular file of at most ``MAX_IMAGE_BYTES``. Devices (``/dev/zero``
    never ends), named pipes (reading one waits for a writer forever), folders and
    sockets are refused without reading them."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: opening some devices acts on them
        raise UnreadableImage(_NOT_REGULAR)
    # O_NONBLOCK: if a pipe replaced the file since the check, opening it must not wait
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableImage(_NOT_REGULAR)
        if info.st_size > MAX_IMAGE_BYTES:
            raise UnreadableImage(_TOO_BIG)
        data = f.read(MAX_IMAGE_BYTES + 1)  # the file may grow while it is read
    if len(data) > MAX_IMAGE_BYTES:
        raise UnreadableImage(_TOO_BIG)
    return data


_NOT_REGULAR = "is not a regular file (a device, named pipe, socket or folder)"
_TOO_BIG = f"is larger than {MAX_IMAGE_BYTES // 2**20} MB, more than any image saetm reads"


def load_rgb(image, max_side: int = MAX_SIDE):
    """Decode ``image`` (path, bytes, record or ``PIL.Image``) to an RGB ``PIL.Image``;
    transparent parts become white and images larger than ``max_side`` pixels on a side are
    shrunk to it (aspect kept; no encoder looks at more). Raises :class:`UnreadableImage`."""
    from PIL import Image

    if isinstance(image, Image.Image):
        im = image
    else:
        data = image_bytes(image)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # big but allowed
                im = Image.open(io.BytesIO(data))
                im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, much faster
                im.load()  # decode now: truncated or corrupt files fail here, not later
        except Image.DecompressionBombError:
            raise UnreadableImage("is too large to decode safely (over PIL's decompression bomb limit)") from None
        except Exception as e:  # PIL raises many types for bad data (OSError, SyntaxError, ValueError ...)
            kind = "an SVG (convert it to PNG first)" if data.lstrip()[:5] in (b"<?xml", b"<svg ") else "not a readable image"
            raise UnreadableImage(f"is {kind} ({type(e).__name__})") from None
    try:
        transparent = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if transparent else "RGB")  # palette images only resize well once converted
        if max(im.size) > max_side:
            scale = max_side / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR,
                           reducing_gap=2.0)
        if transparent:
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, im).convert("RGB")
        return im
    except Exception as e:
        raise UnreadableImage(f"cannot be converted to RGB ({type(e).__name__})") from None


def image_fingerprint(image) -> str:
    """A content hash of one image for the cache key (``"unreadable"`` when it has no bytes)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        h = hashlib.sha256(f"{image.mode}{image.size}".encode())
        h.update(image.tobytes())
        return h.hexdigest()
    try:
        return hashlib.sha256(image_bytes(image)).hexdigest()
    except UnreadableImage:
        return "unreadable"


def image_location(image) -> str | None:
    """Where ``image`` lives on disk, as an absolute path kept with a fitted model (for the
    report's thumbnails); ``None`` for inline data (bytes, PIL images) and URLs."""
    if isinstance(image, dict):
        image = image.get("path") if image.get("bytes") is None else None
    if isinstance(image, (str, os.PathLike)) and str(image).strip() and "://" not in str(image):
        return os.path.abspath(os.fspath(image))
    return None


def describe_image(image) -> str:
    """How an image is named in messages: its path, or a short stand-in for inline data."""
    if isinstance(image, dict):
        return str(image.get("path") or "<image bytes>")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"<{len(image)} bytes>"
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"<{type(image).__name__}>"


