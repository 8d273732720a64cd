"""Fit time per stage, peak memory and retopic time of saetm on a real corpus.

    python bench/bench_fit.py [--corpus 20newsgroups] [--sae train|default] [--topics 20]

Embeddings come from the on-disk cache (computed once; not part of the fit time).
Peak memory is the process's maximum resident set size (ru_maxrss) measured in a fresh
subprocess, minus the same process's RSS just before ``fit`` (data, libraries and
embeddings already loaded), so it is what the fit itself adds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(args) -> dict:
    import numpy as np
    import torch

    from saetm.encoders.text import TextEncoder, encode_cached
    from saetm.io.datasets import load_bundled
    from saetm.model import SAETM

    torch.set_num_threads(args.threads)
    corpus = load_bundled(args.corpus)
    X = encode_cached(TextEncoder(), corpus.texts, show_progress=False)
    import saetm.sae.stage, saetm.words.stage, saetm.topics.stage, saetm.words.em, saetm.topics.merge, saetm.topics.hierarchy, saetm.sae.train  # noqa: F401,E401
    before = _rss_mb()
    model = SAETM(n_topics=args.topics, sae=args.sae, seed=0, cache=False, verbose=False)  # never a cached SAE
    t = time.perf_counter()
    model.fit(corpus.texts, X, labels=corpus.labels)
    total = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    retopic = {}
    for T in (50, 20, 100, 20):
        t = time.perf_counter()
        model.retopic(T)
        retopic.setdefault(f"->{T}", []).append(time.perf_counter() - t)
    rep = model.fit_report_
    return {
        "corpus": args.corpus, "n_docs": len(corpus), "sae": args.sae, "topics": args.topics,
        "seconds": rep.seconds, "total_seconds": total, "peak_mb_added": peak - before,
        "peak_mb_process": peak, "rss_before_fit_mb": before, "retopic_seconds": retopic,
        "sae_metrics": rep.sae, "words": rep.words, "threads": args.threads,
        "top_words": model.get_topic_info().top_words.tolist(),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", default="20newsgroups")
    p.add_argument("--sae", default="train")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="default: bench/results/fit.json, fit-shipped.json with --sae default")
    p.add_argument("--worker", action="store_true")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    cmd = [sys.executable, __file__, "--worker", "--corpus", args.corpus, "--sae", args.sae,
           "--topics", str(args.topics), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    r = json.loads(out)
    import torch
    r["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}
    r["command"] = "python bench/bench_fit.py " + " ".join(sys.argv[1:])
    path = args.out or ("bench/results/fit-shipped.json" if args.sae == "default" else "bench/results/fit.json")
    with open(path, "w") as f:
        json.dump(r, f, indent=2)
    s = r["seconds"]
    print(f"# saetm fit on {r['corpus']} ({r['n_docs']} documents, precomputed embeddings, SAE: {r['sae']}, T={r['topics']})")
    print(f"command: {r['command']}; {r['machine']}")
    print("| stage | seconds |\n|---|---:|")
    for k, v in s.items():
        print(f"| {k} | {v:.1f} |")
    print(f"| **total fit** | **{r['total_seconds']:.1f}** |")
    print(f"\npeak memory added by fit: {r['peak_mb_added']:.0f} MB (process peak {r['peak_mb_process']:.0f} MB)")
    print("retopic: " + ", ".join(f"{k} {min(v):.3f}s" for k, v in r["retopic_seconds"].items()))
    print(f"SAE: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r['sae_metrics'].items()})}")
    print(f"words: {r['words']}")
    for i, w in enumerate(r["top_words"]):
        print(f"  {i:>2}  {w}")


if __name__ == "__main__":
    main()
