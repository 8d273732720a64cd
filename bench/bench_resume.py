"""What the chunked embedding cache costs, and what a resumed encoding saves.

    python bench/bench_resume.py [--n 18000] [--encoder static] [--chunk 2048]

On one corpus (20 Newsgroups, the first --n posts) and one encoder, each in a fresh
cache folder: encoding it as one piece (the cache's behaviour before chunks), in
chunks of --chunk (each stored as it finishes, then replaced by the whole), the
whole-corpus cache hit, and finishing a run that was killed half-way (half the
chunks stored). Prints wall and CPU seconds, the load average (CPU seconds are the
fairer comparison on a shared machine), and how far each result is from the
one-piece encoding (a transformer pads each batch to its longest text, so chunks
can change the last bits) and whether it equals the cold chunked one.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=18000)
    ap.add_argument("--encoder", default="static")
    ap.add_argument("--chunk", type=int, default=2048)
    args = ap.parse_args()

    from saetm.encoders.cache import EmbeddingCache, chunk_bounds, content_key
    from saetm.encoders.text import encode_cached
    from saetm.io.datasets import load_20newsgroups
    from saetm.encoders.embed import make_encoder

    texts = [t for t in load_20newsgroups().texts[:args.n] if t.strip()]
    encoder = make_encoder(args.encoder)
    encoder.encode(texts[:8], show_progress=False)  # load the model outside the timings
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        def run(name, chunk, cache_dir, prepare=None):
            os.environ["SAETM_ENCODE_CHUNK"] = str(chunk)
            cache = EmbeddingCache(Path(tmp) / cache_dir)
            if prepare:
                prepare(cache)
            X, wall, cpu = _timed(lambda: encode_cached(encoder, texts, cache=cache, show_progress=False))
            results.append(X)
            diff = float(np.abs(X - results[0]).max())
            same = bool(np.array_equal(X, results[1])) if len(results) > 1 else "-"
            files = len(list(cache.root.glob("*.npy")))
            rows.append((name, wall, cpu, files, diff, same))

        def half(cache):  # a run killed after half the chunks
            bounds = chunk_bounds(len(texts), args.chunk)
            for s, e in bounds[:len(bounds) // 2]:
                cache.put(content_key(encoder.name, texts[s:e]), encoder.encode(texts[s:e], show_progress=False))

        run("one piece, cold", len(texts), "whole")
        run(f"chunks of {args.chunk}, cold", args.chunk, "chunks")
        run("whole-corpus hit", args.chunk, "chunks")
        run("resumed after half the chunks", args.chunk, "resumed", half)
    print(f"# bench_resume: {len(texts)} documents of 20 Newsgroups, encoder {encoder.name}")
    print(f"# {platform.platform()}, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
    print(f"# command: python bench/bench_resume.py --n {args.n} --encoder {args.encoder} --chunk {args.chunk}\n")
    print("| run | wall s | CPU s | cache files after | max abs difference from one piece | equal to chunks, cold |")
    print("|---|---:|---:|---:|---:|---|")
    for name, wall, cpu, files, diff, same in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {files} | {diff:.1e} | {same} |")


if __name__ == "__main__":
    main()
