"""How a whole ``saetm fit`` process scales with the number of documents: wall and CPU
seconds, peak memory, model folder size.

    python bench/bench_scale.py [--sizes 20000,75000,150000] [--topics 50] [--label after]

The corpus is **replicated** 20 Newsgroups (18,8xx documents): replica r of every text
is the text plus one token of its own (``zqrep<r>``; replica 0 unchanged), so the texts
are distinct and the vocabulary grows a little with the size, and its cached MiniLM
embeddings plus seeded Gaussian noise (σ = ``--jitter``, then renormalised to unit
length). A corpus of n documents is the first n rows of the replicas in order. Such a
corpus has 20 Newsgroups' word statistics at every size: the benchmark measures the
cost of the size, not topics of a larger collection.

Every size runs ``saetm fit DOCS.jsonl --embeddings X.npy --topics T --out DIR --quiet``
as a fresh process (shipped SAE, the defaults otherwise); peak RSS is that process's
``ru_maxrss`` (``os.wait4``). Corpora are written once under ``--work`` (kept for reuse;
about 2.6 GB per million documents). Results go to ``bench/results/scale.md`` / ``.json``,
one row per (label, size): rerun with another ``--label`` to compare checkouts
(``--src`` picks the ``src`` folder whose saetm runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _base():
    from saetm.encoders.text import TextEncoder, encode_cached
    from saetm.io.datasets import load_20newsgroups

    corpus = load_20newsgroups()
    X = encode_cached(TextEncoder(), corpus.texts, show_progress=False)  # from the on-disk cache
    return corpus, np.asarray(X, dtype=np.float32)


def build_corpus(n: int, work: Path, jitter: float, seed: int) -> tuple[Path, Path]:
    """``docs-<n>.jsonl`` and ``emb-<n>.npy`` under ``work`` (reused when present)."""
    docs, emb = work / f"docs-{n}.jsonl", work / f"emb-{n}.npy"
    if docs.exists() and emb.exists():
        return docs, emb
    corpus, X = _base()
    base = len(corpus)
    work.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(str(emb) + ".tmp.npy", mode="w+", dtype=np.float32, shape=(n, X.shape[1]))
    with open(str(docs) + ".tmp", "w", encoding="utf-8") as f:
        for start in range(0, n, base):
            r, m = start // base, min(base, n - start)
            rng = np.random.default_rng([seed, r])
            block = X[:m] if r == 0 else X[:m] + rng.normal(0.0, jitter, size=(m, X.shape[1])).astype(np.float32)
            out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
            for i in range(m):
                text = corpus.texts[i] if r == 0 else f"{corpus.texts[i]} zqrep{r}"
                f.write(json.dumps({"id": f"{r}-{i}", "text": text, "label": corpus.labels[i]}) + "\n")
    out.flush()
    del out
    os.replace(str(emb) + ".tmp.npy", emb)
    os.replace(str(docs) + ".tmp", docs)
    return docs, emb


def run_fit(docs: Path, emb: Path, topics: int, out: Path, src: Path, timeout: float) -> dict:
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": str(src), "SAETM_CACHE": os.environ.get("SAETM_CACHE", "")}
    if not env["SAETM_CACHE"]:
        env.pop("SAETM_CACHE")
    cmd = [sys.executable, "-m", "saetm.cli", "fit", str(docs), "--embeddings", str(emb), "--topics", str(topics),
           "--out", str(out), "--quiet"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    rc = os.waitstatus_to_exitcode(status)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.exists() else 0
    topics_json = out / "topics.json"
    words = None
    if topics_json.exists():
        data = json.loads(topics_json.read_text())
        words = [[w if isinstance(w, str) else w[0] for w in t.get("words", [])][:10]
                 for t in data.get("topics", [])] if isinstance(data, dict) else None
    return {"rc": rc, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "model_mb": size / 2**20, "stderr_tail": stderr[-2000:] if rc else "", "top_words": words,
            "stdout_tail": stdout[-300:] if rc else ""}


def machine() -> dict:
    import numpy
    import scipy
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| label | documents | wall s | CPU s | peak RSS GB | model MB | load avg (1 min) before | rc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["label"], r["n_docs"])):
        lines.append(f"| {r['label']} | {r['n_docs']:,} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
                     f"{r['peak_rss_mb'] / 1024:.2f} | {r['model_mb']:.0f} | {r['load_before']:.2f} | {r['rc']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20000,75000,150000,300000,1000000")
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--label", default="current")
    ap.add_argument("--src", default=str(HERE.parent / "src"), help="the src folder whose saetm runs")
    ap.add_argument("--work", default="/tmp/saetm-bench-scale", help="where corpora and models are written")
    ap.add_argument("--jitter", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--results", default=str(RESULTS / "scale"))
    args = ap.parse_args()
    work = Path(args.work)
    result_json = Path(args.results + ".json")
    old = json.loads(result_json.read_text()) if result_json.exists() else {"rows": []}
    rows = old["rows"]
    print(f"# saetm fit scaling: 20 Newsgroups REPLICATED to each size (texts + a per-replica token, "
          f"embeddings + N(0, {args.jitter}²) noise, renormalised), T={args.topics}, shipped SAE, "
          f"given embeddings; label {args.label!r}, src {args.src}")
    print("# command: " + " ".join([Path(sys.argv[0]).name] + sys.argv[1:]))
    for n in [int(s) for s in args.sizes.split(",")]:
        docs, emb = build_corpus(n, work, args.jitter, args.seed)
        load = os.getloadavg()[0]
        r = run_fit(docs, emb, args.topics, work / f"model-{args.label}-{n}", Path(args.src), args.timeout)
        r.update({"label": args.label, "n_docs": n, "load_before": load, "load_after": os.getloadavg()[0],
                  "topics": args.topics, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
        rows = [x for x in rows if not (x["label"] == args.label and x["n_docs"] == n)] + [r]
        print(f"{args.label} n={n:,}: rc={r['rc']} wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s, "
              f"peak {r['peak_rss_mb'] / 1024:.2f} GB, model {r['model_mb']:.0f} MB, load {load:.2f}", flush=True)
        if r["rc"]:
            print(r["stderr_tail"], file=sys.stderr)
        shutil.rmtree(work / f"model-{args.label}-{n}", ignore_errors=True)
        out = {"machine": machine(), "corpus": "20 Newsgroups replicated (see bench_scale.py)", "rows": rows}
        RESULTS.mkdir(exist_ok=True)
        result_json.write_text(json.dumps(out, indent=1, default=str))
        md = (f"# `saetm fit` scaling (bench/bench_scale.py)\n\n20 Newsgroups **replicated** to each size "
              f"(texts + a per-replica token, jittered embeddings), T={args.topics}, shipped SAE, given "
              f"embeddings, whole process.\nMachine: {json.dumps(out['machine'])}\n\n{table(rows)}\n")
        Path(args.results + ".md").write_text(md + _kept_notes(Path(args.results + ".md")))
    print()
    print(table(rows))
    return 0


def _kept_notes(path: Path) -> str:
    """What follows the table in the results file being replaced (notes written by hand, the
    peers' section of bench_scale_peers.py --combine): kept, so that a rerun adds its row
    without losing them."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    table = old.find("\n| label |")
    end = old.find("\n\n", table + 1) if table >= 0 else -1
    return old[end + 1:] if end >= 0 else ""


if __name__ == "__main__":
    sys.exit(main())
