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

Image files are decoded by ``load_rgb`` (:mod:`saetm.io.image_files`) (paths, encoded ``bytes``, ``{"bytes", "path"}``
records or ``PIL`` images → RGB, transparency on white), which raises
``UnreadableImage`` with a reason the encoders report instead of crashing. Only
regular files of at most ``MAX_IMAGE_BYTES`` (64 MB) are read: devices, named pipes
and folders given as images are unreadable images, never opened for reading.

``load_openclipart(n, seed)`` (:mod:`saetm.io.openclipart`) reads Debian's Open Clip Art Library (``apt-get install
openclipart-png openclipart-svg``): 6,900 distinct public-domain PNG images, their
title and keywords from the SVG's metadata, the top-level folder (22 categories) as
label.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from saetm.errors import SaetmError
from saetm.io import readers
from saetm.io.datasets import Corpus
from saetm.io.image_files import (MAX_IMAGE_BYTES, MAX_SIDE, UnreadableImage, describe_image,  # noqa: F401
                                  image_bytes, image_fingerprint, image_location, load_rgb)
from saetm.io.openclipart import OPENCLIPART_DEMO_SIZE, OPENCLIPART_ROOT, load_openclipart  # noqa: F401

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_FIELD_NAMES = ("image", "image_path", "file_name", "filename", "file", "path", "img")
WORD_FIELD_NAMES = ("title", "caption", "description", "text", "keywords", "tags", "subject")
MANIFEST_NAMES = tuple(f"metadata{ext}" for ext in (".jsonl", ".csv", ".tsv", ".parquet", ".json"))
FOLDER_LABEL = "folder"




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
