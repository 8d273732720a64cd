#!/usr/bin/env python
"""Write a manifest (and optionally image embeddings) for Debian's Open Clip Art Library.

    apt-get install openclipart-png openclipart-svg
    python scripts/openclipart_manifest.py --out clipart.csv [--n 1000] [--seed 0] [--embeddings clipart.npy]

``clipart.csv`` has one row per image: ``id``, ``image`` (absolute PNG path), ``title``,
``keywords`` (comma-separated), ``category`` (top-level folder, 22 categories) and
``text`` (``"title. keyword, keyword, ..."``, what saetm reads as the image's words).
With ``--embeddings`` the images are encoded (``--encoder``: ``default`` =
EfficientNet-Lite0, or a local CLIP/SigLIP/ViT folder) and the ``.npy`` rows are aligned
with the CSV rows; unreadable images are left out of both. Then, for example:

    saetm fit clipart.csv --text-field text --label-field category \\
        --embeddings clipart.npy --sae train --topics 10 --min-df 3 --out clipart-model

``--n 1000`` (the default) encodes in about a minute or two on 2 CPU cores; ``--n 0`` takes
all 6,900 images.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from saetm.encoders.image import ImageEncoder, encode_collection
from saetm.errors import SaetmError
from saetm.io.images import OPENCLIPART_DEMO_SIZE, load_openclipart
from saetm.io.persist import atomic_write


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="manifest to write (.csv, .jsonl or .parquet)")
    p.add_argument("--n", type=int, default=OPENCLIPART_DEMO_SIZE, help=f"images to sample (default {OPENCLIPART_DEMO_SIZE}; 0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embeddings", type=Path, help="also encode the images and write this .npy")
    p.add_argument("--encoder", default="default", help="image encoder: default (EfficientNet-Lite0) or a local model folder")
    p.add_argument("--root", help="where Open Clip Art is installed (default /usr/share/openclipart)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        corpus = load_openclipart(args.n or None, seed=args.seed, root=args.root)
        X = None
        if args.embeddings is not None:
            corpus, X, failed = encode_collection(corpus, ImageEncoder(args.encoder))
            for image, reason in failed:
                logging.warning("left out %s: %s", image, reason)
        table = pd.DataFrame({
            "id": corpus.ids, "image": corpus.extra["images"], "title": corpus.extra["titles"],
            "keywords": [", ".join(k) for k in corpus.extra["keywords"]], "category": corpus.labels,
            "text": corpus.texts,
        })
        _write_table(table, args.out)
        if X is not None:
            with atomic_write(args.embeddings, "wb") as f:
                np.save(f, X, allow_pickle=False)
    except SaetmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.info("wrote %d images to %s%s", len(table), args.out,
                 f" and their {X.shape[1]}-d embeddings to {args.embeddings}" if X is not None else "")
    return 0


def _write_table(table: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        data = buf.getvalue()
    elif suffix == ".jsonl":
        data = table.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    elif suffix == ".csv":
        data = table.to_csv(index=False).encode("utf-8")
    else:
        raise SaetmError(f"--out must end in .csv, .jsonl or .parquet, not {path.suffix or '(none)'!r}")
    with atomic_write(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    sys.exit(main())
