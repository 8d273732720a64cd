"""Image collections: images with the words that describe them (captions, titles, tags).

SAE-TM needs, per image, an embedding (from ``saetm.encoders.image`` or precomputed)
and some words; topics are then read off the SAE's atoms exactly as for text.
Both readers return a :class:`~saetm.io.datasets.Corpus` whose ``texts`` are the
words of each image and whose ``extra["images"]`` holds the image paths (or inline
image records), aligned with the texts.

``read_image_collection(path)`` accepts
  * a manifest — ``.csv``/``.tsv``/``.jsonl``/``.json``/``.parquet``, one row per image: an
    image column (detected among image/image_path/file_name/filename/file/path/img,
    or ``image_field``) with paths relative to the manifest's folder, absolute paths,
    or inline ``{"bytes", "path"}`` records; the words come from ``text_field`` — one
    column, several (a list or ``"title,tags"``), or by default every column named
    title/caption/description/text/keywords/tags/subject. List values (tags) are
    joined with ", ", fields with ". ".
  * a folder of images (searched recursively; .png .jpg .jpeg .gif .bmp .webp .tif .tiff),
    with the words of ``cat.png`` in a sidecar ``cat.txt`` (its text) or ``cat.json``
    (an object; the same fields as above), or a Hugging Face style ``metadata.csv`` /
    ``metadata.jsonl`` in the folder with a ``file_name`` column. ``label_field="folder"``
    labels each image with its top-level subfolder (``animals/birds/x.png`` → ``animals``);
    any other ``label_field``/``date_field`` is a key of the JSON sidecars.

Rows without an image are dropped (``extra["skipped_rows"]``); images without words
are kept with an empty text (they still shape the atoms and get topics through their
embedding) and counted in ``extra["n_without_words"]``. Unreadable image files are
found later, by the encoder (``saetm.encoders.image.encode_images``).

Image files are decoded by ``load_rgb`` (paths, encoded ``bytes``, ``{"bytes", "path"}``
records or ``PIL`` images → RGB, transparency on white), which raises
``UnreadableImage`` with a reason the encoders report instead of crashing. Only
regular files of at most ``MAX_IMAGE_BYTES`` (64 MB) are read: devices, named pipes
and folders given as images are unreadable images, never opened for reading.

``load_openclipart(n, seed)`` reads Debian's Open Clip Art Library (``apt-get install
openclipart-png openclipart-svg``): 6,900 distinct public-domain PNG images, their
title and keywords from the SVG's metadata, the top-level folder (22 categories) as
label.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from saetm.errors import SaetmError
from saetm.io import readers
from saetm.io.datasets import Corpus

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_FIELD_NAMES = ("image", "image_path", "file_name", "filename", "file", "path", "img")
WORD_FIELD_NAMES = ("title", "caption", "description", "text", "keywords", "tags", "subject")
MANIFEST_NAMES = tuple(f"metadata{ext}" for ext in (".jsonl", ".csv", ".tsv", ".parquet", ".json"))
FOLDER_LABEL = "folder"

MAX_SIDE = 1024  # pixels; larger images are shrunk while decoding (encoders look at 224-512)
MAX_IMAGE_BYTES = 64 * 2**20  # per image file: far above any photo or clip art, bounds memory per image

OPENCLIPART_ROOT = Path("/usr/share/openclipart")
OPENCLIPART_DEMO_SIZE = 1000  # images: encoding + fitting stay within a few minutes on 2 CPU cores


def read_image_collection(
    path,
    *,
    image_field: str | None = None,
    text_field: str | Sequence[str] | None = None,
    date_field: str | None = None,
    label_field: str | None = None,
    id_field: str | None = None,
) -> Corpus:
    """Images and their words from a manifest file or a folder (see the module docstring).

    Returns a :class:`Corpus`: ``texts`` (the words of each image, ``""`` when none),
    ``labels``/``dates``/``ids`` when asked, ``extra["images"]`` (paths, aligned)."""
    path = Path(path)
    if not path.exists():
        raise SaetmError(f"{path} does not exist; give a manifest file or a folder of images")
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            raise SaetmError(f"{path} is one image; give the folder that holds the images, or a manifest listing them")
        return _read_manifest(path, image_field, text_field, date_field, label_field, id_field)
    manifests = [path / name for name in MANIFEST_NAMES if (path / name).is_file()]
    if manifests:
        return _read_manifest(manifests[0], image_field or "file_name", text_field, date_field, label_field, id_field)
    return _read_folder(path, text_field, date_field, label_field)


# ---------------------------------------------------------------------------------- manifests


def _read_manifest(path: Path, image_field, text_field, date_field, label_field, id_field) -> Corpus:
    columns, n_rows, _, where = readers._read_columns(path)
    if n_rows == 0:
        raise SaetmError(f"{path} lists no images; give a file with at least one row")
    available = list(columns)
    if image_field is None:
        image_field = _detect(columns, IMAGE_FIELD_NAMES)
        if image_field is None:
            raise SaetmError(
                f"cannot tell which field of {path} holds the image paths; pass --image-field "
                f"(image_field=) with one of: {', '.join(map(repr, available))}"
            )
    for flag, name in (("image", image_field), ("id", id_field), ("date", date_field), ("label", label_field)):
        readers._check_field(path, name, available, flag)
    fields = _word_fields(text_field, available, path, exclude={image_field, id_field, date_field, label_field})
    for name in fields:
        readers._check_field(path, name, available, "text")

    keep = [i for i, v in enumerate(columns[image_field]) if not _blank_image(v)]
    kept = set(keep)
    skipped = [i for i in range(n_rows) if i not in kept]
    if not keep:
        raise SaetmError(f"every row of {path} has an empty {image_field!r}; check --image-field")
    if skipped:
        log.warning("skipped %d of %d rows of %s without an image", len(skipped), n_rows, path)

    texts = [_join_words([columns[f][i] for f in fields], i, fields, path, where) for i in keep]
    cell = lambda name, i: None if readers._blank(columns[name][i]) else columns[name][i]  # noqa: E731
    if id_field is not None:
        ids = [readers._as_text(cell(id_field, i), i, id_field, path, where) for i in keep]
        readers._check_ids(path, id_field, ids, keep, where)
    else:
        ids = [str(i) for i in keep]
    labels = None
    if label_field is not None:
        labels = [readers._as_text(cell(label_field, i), i, label_field, path, where) for i in keep]
    extra = {"source": str(path), "text_field": fields, "image_field": image_field,
             "images": [readers._image_ref(columns[image_field][i], path) for i in keep],
             "row_index": keep, "skipped_rows": skipped}
    dates = None
    if date_field is not None:
        dates, extra["date_kind"] = readers._parse_dates([cell(date_field, i) for i in keep])
    return _finish(Corpus(texts=texts, labels=labels, dates=dates, ids=ids, name=path.stem, extra=extra))


def _detect(columns: dict, names: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in reversed(list(columns))}
    return next((lower[n] for n in names if n in lower), None)


def _word_fields(text_field, available: list[str], path: Path, exclude: set) -> list[str]:
    if text_field is not None:
        fields = [f.strip() for f in text_field.split(",")] if isinstance(text_field, str) else list(text_field)
        if not fields or not all(isinstance(f, str) and f for f in fields):
            raise SaetmError(f"text_field must name one or more fields, got {text_field!r}")
        if len(fields) > 1 or fields[0] in available:
            return fields
        return [text_field]  # a single name with a comma in it: let the field check explain
    lower = {c.lower(): c for c in available if c not in exclude}
    fields = [lower[n] for n in WORD_FIELD_NAMES if n in lower]
    if not fields:
        raise SaetmError(
            f"{path} has no field with words (looked for {', '.join(WORD_FIELD_NAMES)}); pass --text-field "
            f"(text_field=) with one or more of: {', '.join(map(repr, available))}"
        )
    return fields


def _join_words(values: list, i: int, fields: list[str], path: Path, where) -> str:
    """The words of one image: fields joined with ". ", list values (tags) with ", "."""
    parts = []
    for value, field in zip(values, fields):
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            items = [readers._as_text(v, i, field, path, where) for v in value]
            text = ", ".join(t.strip() for t in items if t and t.strip())
        else:
            text = (readers._as_text(value, i, field, path, where) or "").strip()
        if text:
            parts.append(text)
    return ". ".join(parts)


def _blank_image(value) -> bool:
    if isinstance(value, dict):
        return value.get("bytes") is None and readers._blank(value.get("path"))
    return not isinstance(value, (bytes, bytearray)) and readers._blank(value)


def _finish(corpus: Corpus) -> Corpus:
    empty = sum(1 for t in corpus.texts if not t.strip())
    if empty == len(corpus):
        raise SaetmError(
            f"none of the {len(corpus)} images in {corpus.extra['source']} has words; give captions, titles or tags "
            "(a text field, or name.txt / name.json beside each image)"
        )
    if empty:
        log.warning("%d of %d images have no words; they are kept (they get topics through their embedding)",
                    empty, len(corpus))
    corpus.extra["n_without_words"] = empty
    return corpus


# ---------------------------------------------------------------------------------- folders


def _read_folder(folder: Path, text_field, date_field, label_field) -> Corpus:
    files = sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise SaetmError(
            f"folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}) and no metadata.csv/.jsonl manifest"
        )
    fields = None
    if text_field is not None:
        fields = [f.strip() for f in text_field.split(",")] if isinstance(text_field, str) else list(text_field)
    from_folder = label_field == FOLDER_LABEL
    texts, labels, dates = [], [], []
    for p in files:
        record = _sidecar(p)
        if isinstance(record, str):
            texts.append(record.strip())
            record = {}
        else:
            names = fields or [k for k in WORD_FIELD_NAMES if k in record]
            texts.append(_join_words([record.get(k) for k in names], 0, names, _sidecar_path(p), None))
        rel = p.relative_to(folder).parts
        labels.append((rel[0] if len(rel) > 1 else None) if from_folder else _scalar(record.get(label_field)))
        dates.append(_scalar(record.get(date_field)) if date_field else None)
    extra = {"source": str(folder), "images": [str(p) for p in files]}
    corpus = Corpus(texts=texts, labels=labels if label_field else None, dates=None,
                    ids=[p.relative_to(folder).as_posix() for p in files], name=folder.name, extra=extra)
    if date_field:
        corpus.dates, extra["date_kind"] = readers._parse_dates(dates)
    return _finish(corpus)


def _sidecar_path(image: Path) -> Path | None:
    for candidate in (image.with_suffix(".json"), image.with_suffix(".txt"),
                      image.with_name(image.name + ".json"), image.with_name(image.name + ".txt")):
        if candidate.is_file():
            return candidate
    return None


def _sidecar(image: Path) -> dict | str:
    """The words beside ``image``: a ``.txt`` file's text, a ``.json`` object, or ``{}``."""
    side = _sidecar_path(image)
    if side is None:
        return {}
    text = readers._decode(side.read_bytes(), side)
    if side.suffix == ".txt":
        return text
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise SaetmError(f"{side} is not valid JSON ({readers._one_line(e)}); fix it or write the words to a .txt file") from None
    if isinstance(record, list):  # a bare list of tags
        return {"tags": record}
    if not isinstance(record, dict):
        return str(record)
    return record


def _scalar(value):
    return None if value is None or isinstance(value, (dict, list)) else str(value)


# ---------------------------------------------------------------------------------- image files


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


# ---------------------------------------------------------------------------------- openclipart


def load_openclipart(n: int | None = None, seed: int = 0, *, root: str | Path | None = None) -> Corpus:
    """Debian's Open Clip Art Library: PNG images with their title and keywords.

    ``n`` draws a seeded random subset (``None``: all 6,900 images; ``OPENCLIPART_DEMO_SIZE``
    = 1,000 keeps a demo within a few minutes on 2 CPU cores). Texts are ``"title. kw1,
    kw2, ..."`` (titles without the upload timestamps and "Clipart by NAME - " credits
    many carry; underscores as spaces); labels are the top-level folder (22 categories, e.g. ``animals``,
    ``food``, ``computer``); ``extra``: ``images`` (PNG paths), ``keywords`` (lists),
    ``titles``. Images filed under two categories (symlinks) appear once.
    """
    root = Path(root) if root is not None else OPENCLIPART_ROOT
    png_root, svg_root = root / "png", root / "svg"
    if not png_root.is_dir() or not svg_root.is_dir():
        raise SaetmError(
            f"Open Clip Art is not installed under {root}; run `apt-get install openclipart-png openclipart-svg` "
            "(images from the first, their titles and keywords from the second)"
        )
    real = png_root.resolve()
    files = sorted({p.resolve() for p in png_root.rglob("*.png")})
    files = [p for p in files if p.is_relative_to(real)]
    if n is not None:
        if not isinstance(n, int) or n < 1:
            raise SaetmError(f"n must be a positive number of images, got {n!r}")
        if n < len(files):
            pick = np.sort(np.random.default_rng(seed).choice(len(files), size=n, replace=False))
            files = [files[i] for i in pick]
    rel = [p.relative_to(real) for p in files]
    titles, keywords = [], []
    for r in rel:
        title, words = _svg_metadata(svg_root / r.with_suffix(".svg"))
        titles.append(title)
        keywords.append(words)
    texts = [". ".join(x for x in (t, ", ".join(k)) if x) for t, k in zip(titles, keywords)]
    extra = {"source": str(root), "images": [str(p) for p in files], "keywords": keywords, "titles": titles}
    corpus = Corpus(texts=texts, labels=[r.parts[0] for r in rel], ids=[r.with_suffix("").as_posix() for r in rel],
                    name="openclipart", extra=extra)
    corpus.extra["n_without_words"] = sum(1 for t in texts if not t)
    return corpus


_WORK = re.compile(r"<cc:Work\b.*?</cc:Work>", re.S)
_AGENT = re.compile(r"<cc:Agent\b.*?</cc:Agent>", re.S)
_TITLE = re.compile(r"<dc:title>(.*?)</dc:title>", re.S)
_SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
_ITEM = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)


def _svg_metadata(svg: Path) -> tuple[str, list[str]]:
    """``(title, keywords)`` from an Inkscape SVG's RDF metadata (``dc:title``, ``dc:subject``).

    Only the text before ``</metadata>`` is read (a regular expression, not an XML parse:
    some files are large and a few are not well-formed)."""
    try:
        raw = svg.read_bytes()
    except OSError:
        return "", []
    end = raw.find(b"</metadata>")
    head = raw[: end if end >= 0 else 65536].decode("utf-8", "replace")
    work = _WORK.search(head)
    work = _AGENT.sub("", work.group(0)) if work else ""  # publisher/creator agents have titles too
    title = _TITLE.search(work)
    subject = _SUBJECT.search(work)
    items = _ITEM.findall(subject.group(1)) if subject else []
    words = []
    for item in items:
        word = " ".join(_unescape(item).replace("_", " ").split())
        if word and word.lower() not in (w.lower() for w in words):
            words.append(word)
    return _clean_title(_unescape(title.group(1))) if title else "", words


_STAMP = re.compile(r"\((Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} +\d+ [\d:]+ \d{4}\)")  # "(Wed Aug 25 23:29:46 2004)"
_CREDIT = re.compile(r"^Clipart by [^-]+ - ")  # "Clipart by Nicu Buculei - smiley1"


def _clean_title(title: str) -> str:
    """Drop upload timestamps and author credits that many titles carry (they are not
    about the picture); underscores become spaces."""
    title = _CREDIT.sub("", _STAMP.sub("", title)).replace("_", " ")
    return " ".join(title.split())


def _unescape(text: str) -> str:
    return html.unescape(html.unescape(text))  # some titles are escaped twice (&amp;#39;)
