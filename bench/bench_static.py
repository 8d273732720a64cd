"""The static encoder on 20 Newsgroups: documents per second, and a whole `saetm fit` from raw text.

    python bench/bench_static.py [--out bench/results/static.md] [--default-sample 300] [--skip-fit]

(a) ``StaticEncoder.encode`` over all 18,821 posts (twice; the better run counts), wall and
    process CPU seconds; the default all-MiniLM-L6-v2 on a seeded sample of
    ``--default-sample`` posts for comparison (0 skips it).
(b) ``saetm fit POSTS.jsonl --encoder static --topics 20 --label-field group --no-cache -q``
    as a fresh process (Python start, imports, reading, encoding, shipped SAE, words, topics,
    writing the model), wall seconds and the child's CPU seconds; then the saved model's
    NPMI, TD and NMI against the newsgroups (``SAETM.evaluate`` with the posts as reference).

Prints (and writes to ``--out``) a Markdown table with the machine, the load average, the
package versions and this command. On a shared machine wall seconds are pessimistic: CPU
seconds say what the work costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def encoder_speed(texts, default_sample: int) -> list[dict]:
    import numpy as np

    from saetm.encoders.static import StaticEncoder
    from saetm.encoders.text import TextEncoder

    rows = []
    enc = StaticEncoder()
    t = time.perf_counter()
    enc.dim  # loading the vectors and tokenizer, timed apart
    load = time.perf_counter() - t
    runs = []
    for _ in range(2):
        t, c = time.perf_counter(), time.process_time()
        enc.encode(texts)
        runs.append((time.perf_counter() - t, time.process_time() - c))
    wall, cpu = min(runs)
    rows.append({"encoder": enc.name, "docs": len(texts), "load_s": load, "wall_s": wall, "cpu_s": cpu})
    if default_sample:
        pick = np.random.default_rng(0).choice(len(texts), size=min(default_sample, len(texts)), replace=False)
        sample = [texts[i] for i in pick]
        enc = TextEncoder()
        t = time.perf_counter()
        enc.dim
        load = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        enc.encode(sample, show_progress=False)
        rows.append({"encoder": enc.name, "docs": len(sample), "load_s": load,
                     "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c})
    return rows


def whole_fit(corpus, work: Path, topics: int) -> dict:
    from saetm.model import SAETM

    docs = work / "20ng.jsonl"
    with open(docs, "w") as f:
        for text, label in zip(corpus.texts, corpus.labels):
            f.write(json.dumps({"text": text, "group": label}) + "\n")
    out = work / "model"
    cmd = [sys.executable, "-m", "saetm", "fit", str(docs), "--out", str(out), "--encoder", "static",
           "--topics", str(topics), "--text-field", "text", "--label-field", "group", "--no-cache", "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    model = SAETM.load(out)
    report = model.fit_info_ or {}  # the saved fit report (a loaded model has no fit_report_)
    scores = model.evaluate(reference=corpus.texts, labels=corpus.labels)
    return {"command": " ".join(["saetm"] + cmd[3:]).replace(str(work) + "/", ""), "wall_s": wall, "cpu_s": cpu,
            "peak_rss_mb": after.ru_maxrss / 1024, "stage_seconds": report.get("seconds", {}),
            "sae": (report.get("sae") or {}).get("source"), "npmi": scores.get("npmi"), "td": scores.get("topic_diversity"),
            "nmi": scores.get("nmi"), "ari": scores.get("ari"), "docs": len(corpus)}


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def versions() -> str:
    from importlib.metadata import version

    names = ["saetm", "torch", "tokenizers", "numpy", "scipy", "safetensors"]
    out = []
    for n in names:
        try:
            out.append(f"{n} {version(n)}")
        except Exception:  # an editable checkout may not be installed under its name
            out.append(f"{n} ?")
    return ", ".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/static.md"))
    ap.add_argument("--default-sample", type=int, default=300)
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--skip-fit", action="store_true")
    args = ap.parse_args(argv)

    from saetm.io.datasets import load_20newsgroups
    from saetm.io.persist import atomic_write, write_json

    corpus = load_20newsgroups()
    load_before = os.getloadavg()
    speed = encoder_speed(corpus.texts, args.default_sample)
    fit = None
    if not args.skip_fit:
        with tempfile.TemporaryDirectory() as tmp:
            fit = whole_fit(corpus, Path(tmp), args.topics)
    load_after = os.getloadavg()

    lines = [
        "# The static encoder on 20 Newsgroups",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (shared machine: wall seconds "
        "are pessimistic, CPU seconds are what the work costs).  ",
        f"Versions: Python {platform.python_version()}, {versions()}.  ",
        f"Command: `python bench/bench_static.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "## (a) Encoding speed",
        "",
        "| encoder | documents | load (s) | wall (s) | docs/s (wall) | CPU (s) | docs per CPU-second |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in speed:
        lines.append(f"| {r['encoder']} | {r['docs']:,} | {r['load_s']:.2f} | {r['wall_s']:.2f} | "
                     f"{r['docs'] / r['wall_s']:,.0f} | {r['cpu_s']:.2f} | {r['docs'] / max(r['cpu_s'], 1e-9):,.0f} |")
    if fit:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in fit["stage_seconds"].items())
        lines += [
            "",
            f"## (b) A whole `saetm fit` from raw text, {fit['docs']:,} posts, T = {args.topics}",
            "",
            f"`{fit['command']}`",
            "",
            "| wall (s) | CPU (s) | peak RSS (MB) | SAE | NPMI | TD | NMI | ARI |",
            "|---:|---:|---:|---|---:|---:|---:|---:|",
            f"| {fit['wall_s']:.1f} | {fit['cpu_s']:.1f} | {fit['peak_rss_mb']:.0f} | {fit['sae']} | "
            + " | ".join(_num(fit[k]) for k in ("npmi", "td", "nmi", "ari")) + " |",
            "",
            f"Seconds per stage inside the fit (wall): {stages}.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    notes = _kept_notes(Path(args.out))
    text += "\n" + notes if notes else ""
    with atomic_write(args.out, "w") as f:
        f.write(text)
    write_json(Path(args.out).with_suffix(".json"), {"speed": speed, "fit": fit, "load": [load_before, load_after]})
    return 0


def _kept_notes(path: Path) -> str:
    """The ``## Notes`` section of the results file being replaced (written by hand after a
    run): kept, so that a rerun updates the tables without losing what was said about them."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    at = old.find("\n## Notes")
    return old[at + 1:] if at >= 0 else ""


if __name__ == "__main__":
    raise SystemExit(main())
