"""Debian's Open Clip Art Library as an image collection (``apt-get install openclipart-png
openclipart-svg``): PNG images with the title and keywords of their SVG's metadata, the
top-level folder as label."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from saetm.errors import SaetmError
from saetm.io.datasets import Corpus

OPENCLIPART_ROOT = Path("/usr/share/openclipart")
OPENCLIPART_DEMO_SIZE = 1000  # images: encoding + fitting stay within a few minutes on 2 CPU cores


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
