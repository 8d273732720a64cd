"""Small inline thumbnails for the HTML report of an image model.

Each thumbnail is a JPEG of at most ``THUMB_SIDE`` pixels a side, embedded as a
``data:`` URI, so the report stays one file that opens anywhere (a few KB per image).
Images are decoded by :func:`saetm.io.images.load_rgb` (transparency on white), which
raises :class:`saetm.io.images.UnreadableImage` for a missing or broken file.
"""

from __future__ import annotations

import base64
import io
from typing import NamedTuple

THUMB_SIDE = 96  # pixels, the longer side
JPEG_QUALITY = 85


class Thumbnail(NamedTuple):
    uri: str  # data:image/jpeg;base64,...
    width: int
    height: int


def thumbnail(image, side: int = THUMB_SIDE) -> Thumbnail:
    """A JPEG thumbnail of ``image`` (a path, bytes or PIL image), aspect kept, at most
    ``side`` pixels a side (small images are not enlarged). Raises ``UnreadableImage``."""
    from PIL import Image

    from saetm.io.images import load_rgb

    im = load_rgb(image, max_side=4 * side)  # a cheap first shrink, then a sharp one
    im.thumbnail((side, side), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumbnail("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), *im.size)
