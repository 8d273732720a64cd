"""The commands a user runs most, timed as whole processes.

    python bench/bench_cli.py MODEL_DIR [--src src --src /other/checkout/src] [--repeat 5]
                              [--topics 15] [--out bench/results/cli.md]

For each ``--src`` (the ``src`` folder of a saetm checkout, put first on PYTHONPATH; give
two to compare versions under the same load) it runs, round-robin so that a busy
machine slows every version alike: ``saetm --help``; ``saetm transform`` of a missing
file (the argument-error path); ``saetm topics MODEL_DIR``; ``saetm retopic COPY --topics
T`` on a private copy (alternating T and the model's own number, so every run regroups);
``saetm transform`` of 5 of the model's own documents (with an empty embedding cache, so
they are encoded); and, in one process, ``SAETM.load``
and a warm ``model.retopic``. Per command: the best and median wall-clock seconds, the
CPU seconds (user + system) of the best run and the peak resident memory of the process
(``os.wait4``; it includes this script's own ~20 MB, which the child starts from), and which
of torch, sentence-transformers, transformers, scikit-learn and pandas were imported
(``-X importtime`` of one extra run). CPU seconds are the steadier figure on a shared machine. Prints one
Markdown table (with the machine, the versions and this command) and writes it to ``--out``.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

IN_PROCESS = r"""
import json, sys, time
from saetm.model import SAETM
directory, T, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {"load": [], "retopic": [], "retopic+words": []}
for _ in range(n):
    w, c = time.perf_counter(), time.process_time()
    m = SAETM.load(directory)
    out["load"].append((time.perf_counter() - w, time.process_time() - c))
T0 = m.n_topics
m.retopic(T); m.retopic(T0)  # warm: imports and first calls done
for i in range(n):
    w, c = time.perf_counter(), time.process_time()
    m.retopic(T if i % 2 == 0 else T0)
    out["retopic"].append((time.perf_counter() - w, time.process_time() - c))
for i in range(n):
    w, c = time.perf_counter(), time.process_time()
    m.retopic(T if i % 2 == 0 else T0).get_topic_info()
    out["retopic+words"].append((time.perf_counter() - w, time.process_time() - c))
out["torch"] = "torch" in sys.modules
print(json.dumps(out))
"""


def run(argv: list[str], env: dict, cwd: Path) -> dict:
    """One process: wall seconds, CPU seconds and peak RSS (MB) of that child alone (``wait4``),
    exit code, output. Started by ``posix_spawn`` (no fork of this process, whose memory a
    forked child would count as its own) through ``sh``, which changes folder and execs."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", 'cd "$0" || exit 127; exec "$@"', str(cwd), *argv], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fo.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, fe.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        fo.seek(0), fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "rc": os.waitstatus_to_exitcode(status), "stdout": out, "stderr": err[-300:]}


def heavy_imports(argv: list[str], env: dict, cwd: Path) -> str:
    """Which of the heavy packages the command imports (one run with -X importtime)."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    found = [n for n in ("torch", "sentence_transformers", "transformers", "sklearn", "pandas") if n in names]
    return ", ".join(found) if found else "none of these"


def versions(srcs: list[Path]) -> list[str]:
    lines = [f"python {platform.python_version()}"]
    for pkg in ("numpy", "scipy", "pandas", "scikit-learn", "torch", "sentence-transformers"):
        try:
            lines.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    for src in srcs:
        rev = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True).stdout.strip()
        lines.append(f"saetm from {src}: {rev or '(not a git checkout)'}{' (+ uncommitted changes)' if dirty else ''}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="a saved model directory (read only; retopic runs on a copy)")
    ap.add_argument("--src", type=Path, action="append", help="src folder of a saetm checkout (repeatable)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--topics", type=int, default=15, help="T for retopic (alternating with the model's own)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    srcs = [p.resolve() for p in (args.src or [Path(__file__).resolve().parent.parent / "src"])]
    model = args.model.resolve()
    info = json.loads((model / "model.json").read_text())
    T0 = int(info["params"]["n_topics"])
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    load_start = os.getloadavg()
    try:
        # in a child: this process stays small, since a child it starts counts its memory at the start
        subprocess.run([args.python, "-c", "import json, sys, pandas as pd\n"
                        "texts = pd.read_parquet(sys.argv[1])['text'].head(5)\n"
                        "open(sys.argv[2], 'w').writelines(json.dumps({'text': t}) + '\\n' for t in texts)",
                        str(model / "documents.parquet"), str(work / "five.jsonl")], check=True)
        copies = {}
        for i, src in enumerate(srcs):
            copies[src] = work / f"model-{i}"
            shutil.copytree(model, copies[src])
        py = args.python

        def commands(src):
            c = str(copies[src])
            return {
                "saetm --help": [py, "-m", "saetm", "--help"],
                "saetm transform DIR missing.jsonl --out x.csv": [py, "-m", "saetm", "transform", str(model),
                                                                   "missing.jsonl", "--out", "x.csv"],
                "saetm topics DIR": [py, "-m", "saetm", "topics", str(model)],
                f"saetm retopic COPY --topics {args.topics}|{T0}": [py, "-m", "saetm", "retopic", c, "--topics",
                                                                    "{T}", "-q"],
                "saetm transform DIR five.jsonl --out x.csv": [py, "-m", "saetm", "transform", str(model),
                                                               "five.jsonl", "--out", "x.csv", "-q"],
            }

        results: dict = {}
        for rep in range(args.repeat):
            for src in srcs:
                env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
                for name, argv in commands(src).items():
                    argv = [a.replace("{T}", str(args.topics if rep % 2 == 0 else T0)) for a in argv]
                    # an empty embedding cache each time: transform encodes, as for new documents
                    cache = Path(tempfile.mkdtemp(dir=work, prefix="cache-"))
                    r = run(argv, {**env, "SAETM_CACHE": str(cache)}, work)
                    expect_error = "missing" in name
                    if (r["rc"] != 0) != expect_error:
                        sys.exit(f"{name} ({src}) exited {r['rc']}: {r['stderr']}")
                    results.setdefault((name, src), []).append(r)
        heavy = {}
        for src in srcs:
            env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
            for name, argv in commands(src).items():
                cache = Path(tempfile.mkdtemp(dir=work, prefix="cache-"))
                heavy[(name, src)] = heavy_imports([a.replace("{T}", str(T0)) for a in argv],
                                                   {**env, "SAETM_CACHE": str(cache)}, work)
        in_process = {}
        for src in srcs:
            env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
            r = run([args.python, "-c", IN_PROCESS, str(copies[src]), str(args.topics), str(args.repeat)],
                           env, work)
            if r["rc"] != 0:
                sys.exit(f"in-process timing ({src}) failed: {r['stderr']}")
            in_process[src] = json.loads(r["stdout"].strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    names = [src.parent.name for src in srcs]  # the checkout's folder; its path where two share a name
    label = {src: ("" if len(srcs) == 1 else name if names.count(name) == 1 else str(src.parent))
             for src, name in zip(srcs, names)}
    lines = [
        f"# saetm CLI timings ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
        f"Command: `{' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`", "",
        f"Machine: {platform.node()}, {platform.platform()}, {os.cpu_count()} CPUs; load average "
        f"{load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end", "",
        "Versions: " + "; ".join(versions(srcs)), "",
        f"Model: {model} ({info.get('n_documents')} documents, {T0} topics, vocabulary "
        f"{info.get('vocabulary_size')}); best of {args.repeat} runs, run round-robin", "",
        "| command | saetm | best wall s | median wall s | CPU s (best run) | peak RSS MB | imports |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for (name, src), rs in results.items():
        best = min(rs, key=lambda r: r["wall"])
        lines.append(f"| `{name}` | {label[src]} | {best['wall']:.2f} | {statistics.median(r['wall'] for r in rs):.2f} "
                     f"| {best['cpu']:.2f} | {max(r['rss_mb'] for r in rs):.0f} | {heavy[(name, src)]} |")
    for src, r in in_process.items():
        for key, text in (("load", "SAETM.load(COPY)"), ("retopic", f"model.retopic({args.topics}|{T0}), warm"),
                          ("retopic+words", "model.retopic(...).get_topic_info(), warm")):
            walls = [w for w, _ in r[key]]
            best = min(r[key])
            lines.append(f"| `{text}` (in process) | {label[src]} | {best[0]:.3f} | {statistics.median(walls):.3f} "
                         f"| {best[1]:.3f} | | {'torch' if r['torch'] else 'no torch'} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)


if __name__ == "__main__":
    main()
