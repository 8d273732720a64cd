#!/usr/bin/env python
"""Turn an SAE trained by ``saetm train-sae`` into the SAE shipped inside the package.

    python scripts/ship_sae.py TRAINED_DIR --pretrain DIR [--encoder default|static] [--out DIR]

Reads ``TRAINED_DIR`` (``sae.json`` + ``sae.safetensors``, float32), checks that it reads
the embeddings of the encoder it ships for (``--encoder``: the default all-MiniLM-L6-v2, or
the static encoder, whose vectors' SHA-256 it records: the SAE fits those vectors only),
writes it to that encoder's folder of ``saetm.sae.stage.SHIPPED_SAES`` unless ``--out``, stores the weight matrices as float16 (half the size;
biases and the threshold stay float32) with the provenance of its training collection
(``DIR/sources.json`` of ``scripts/pretrain_corpus.py``), and checks that the float16 copy
reconstructs a sample of the collection as well as the original (FVE, L0, and that the
active atoms agree). Prints what it wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from saetm.encoders.static import STATIC_ALIASES, STATIC_ENCODER, static_dir
from saetm.encoders.text import DEFAULT_ENCODER
from saetm.io.persist import read_json
from saetm.sae.stage import SHIPPED_SAES
from saetm.sae.persist import load_sae, save_sae
from saetm.sae.train import evaluate_sae

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trained", help="folder written by `saetm train-sae`")
    ap.add_argument("--pretrain", required=True, help="output folder of scripts/pretrain_corpus.py")
    ap.add_argument("--encoder", default="default", help="default or static: the encoder it ships for")
    ap.add_argument("--out", help="default: src/saetm/assets/<SHIPPED_SAES folder of the encoder>")
    ap.add_argument("--sample", type=int, default=8192, help="embeddings used to compare float16 with float32")
    ap.add_argument("--max-mb", type=float, default=25.0, help="refuse to ship a larger weights file")
    args = ap.parse_args(argv)

    encoder = STATIC_ENCODER if args.encoder in STATIC_ALIASES else DEFAULT_ENCODER
    out_dir = args.out or str(ROOT / "src/saetm/assets" / SHIPPED_SAES[encoder])
    sae = load_sae(args.trained)
    if sae.config.encoder_name != encoder:
        sys.exit(f"{args.trained} was trained for encoder {sae.config.encoder_name!r}, not {encoder!r}; "
                 "pass --encoder-name to `saetm train-sae`")
    pretrain = Path(args.pretrain)
    sources = json.loads((pretrain / "sources.json").read_text())
    emb = np.load(pretrain / "embeddings.npy", mmap_mode="r")
    rows = np.sort(np.random.default_rng(0).choice(len(emb), size=min(args.sample, len(emb)), replace=False))
    sample = np.asarray(emb[rows], dtype=np.float32)

    meta = dict(sae.meta)
    # where the embeddings lay on the machine that trained it means nothing to users
    meta["training_data"] = {**meta.get("training_data", {}), "sources": ["embeddings.npy"], "files": ["embeddings.npy"]}
    meta["shipped"] = {
        "purpose": f"saetm's shipped SAE for {encoder} embeddings (sae='auto' / 'default')",
        "collection": {name: {"texts": c["texts"], "mean_words": c.get("mean_words")}
                       for name, c in sources["counts"].items() if isinstance(c, dict)},
        "collection_size": int(len(emb)),
        "built_by": "scripts/pretrain_corpus.py, then `saetm train-sae`, then scripts/ship_sae.py",
    }
    if encoder == STATIC_ENCODER:
        manifest = read_json(pretrain / "shards" / "manifest.json")
        if manifest.get("encoder") != STATIC_ENCODER or static_dir() is None:
            sys.exit(f"{pretrain} was not embedded with the static encoder, or this checkout lacks it")
        meta["shipped"]["encoder_vectors_sha256"] = read_json(static_dir() / "static.json")["vectors_sha256"]
        # the pooling the embeddings were made with: word pieces weighted by the collection's own IDF
        meta["shipped"]["encoder_pooling"] = "idf"
    out = save_sae(sae, out_dir, extra_meta=meta, dtype="float16")
    shipped = load_sae(out)
    size_mb = (out / "sae.safetensors").stat().st_size / 2**20
    if size_mb > args.max_mb:
        sys.exit(f"the shipped weights are {size_mb:.1f} MB > --max-mb {args.max_mb}")

    full, half = evaluate_sae(sae, sample), evaluate_sae(shipped, sample)
    with torch.no_grad():
        x = sae.preprocess(torch.from_numpy(sample))
        a, b = sae.encode(x) > 0, shipped.encode(shipped.preprocess(torch.from_numpy(sample))) > 0
    agree = float((a & b).sum() / max(int((a | b).sum()), 1))
    print(f"wrote {out} ({size_mb:.1f} MB weights, {sae.config.n_atoms} atoms, k={sae.config.k}, {sae.config.arch})")
    print(f"float32: FVE {full['fve']:.4f} L0 {full['l0']:.1f} dead {full['dead_fraction']:.3f}")
    print(f"float16: FVE {half['fve']:.4f} L0 {half['l0']:.1f} dead {half['dead_fraction']:.3f}; "
          f"active atoms agree (Jaccard) {agree:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
