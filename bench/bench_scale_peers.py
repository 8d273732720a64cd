"""The peers of ``bench_scale.py``: whole processes of scikit-learn NMF/LDA, BERTopic and
Turftopic KeyNMF/GMM on the same replicated corpora, with the same given embeddings.

    /work/peers-venv/bin/python bench/bench_scale_peers.py [--sizes 20000,75000,150000]
        [--models nmf,lda,bertopic,keynmf,gmm] [--timeout 900] [--rss-limit-gb 8]

Corpora: ``docs-<n>.jsonl`` / ``emb-<n>.npy`` under ``--work``, written by
``bench_scale.py`` (20 Newsgroups **replicated**: a per-replica token in the texts,
jittered MiniLM embeddings; see that script). Every (model, size) runs as a fresh
process (``--worker``) that reads the JSONL and the embeddings, imports the model's
libraries, loads the encoder object where the model needs one, fits with T=``--topics``
through the runner of ``bench/peers.py`` (documented defaults, the shared vocabulary,
the given embeddings; ``peers.PEER_SETTINGS``) and writes its outputs (topic words as
JSON, the document-topic matrix as ``.npy``, or ``.npz`` when sparse) — what "saved MB"
measures; these are outputs, not a model that can be reloaded.

The shared vocabulary (``build_vocabulary`` defaults, as saetm's fit builds it) is
computed once per size by this script and cached as ``vocab-<n>.json``, outside every
timed process; each peer vectorises the texts itself with ``vocabulary=`` that list.

Measured per run, as in ``bench_scale.py``: wall and CPU seconds and ``ru_maxrss`` of the
process (``os.wait4``), plus the summed resident set of the process and its
descendants sampled every 0.5 s (joblib/loky workers, which ``wait4`` does not see when
the worker leaves them to exit on their own); peak RSS and CPU seconds = the larger of the two.
Guards: a run is killed past ``--cpu-limit`` CPU seconds of its process tree or
``--timeout`` wall seconds ("did not finish"; on a shared machine the CPU limit is the
one that does not depend on the load), or when its
sampled resident set passes ``--rss-limit-gb`` or the machine's MemAvailable falls
under ``--min-free-gb`` ("out of memory"). Once a model fails at a size, its larger
sizes are skipped. Results go to ``--results``.json/.md, one row per (model, size); a
rerun replaces only the rows it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SECTION = "## Peers at the same sizes (bench/bench_scale_peers.py)"
MODELS = ["nmf", "lda", "bertopic", "keynmf", "gmm"]
NAMES = {"nmf": "scikit-learn NMF", "lda": "scikit-learn LDA", "bertopic": "BERTopic",
         "keynmf": "Turftopic KeyNMF", "gmm": "Turftopic GMM"}


# ============================================================================ worker

def worker(model: str, docs: Path, emb: Path, vocab_file: Path, topics: int, out: Path) -> int:
    """One fit in this process; prints a JSON line with the fit's own seconds."""
    sys.path.insert(0, str(HERE))
    import numpy as np
    import scipy.sparse as sp

    from peers import RUNNERS, SharedVocabulary

    t0 = time.perf_counter()
    with open(docs, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    embeddings = np.load(emb)
    vocab = SharedVocabulary(**json.loads(vocab_file.read_text()))
    read_s = time.perf_counter() - t0
    res = RUNNERS[model](texts, embeddings, vocab, topics, 0)
    out.mkdir(parents=True, exist_ok=True)
    (out / "topics.json").write_text(json.dumps(res.topic_words))
    if sp.issparse(res.doc_topics):
        sp.save_npz(out / "doc_topics.npz", sp.csr_matrix(res.doc_topics, dtype=np.float32))
    else:
        np.save(out / "doc_topics.npy", np.asarray(res.doc_topics, dtype=np.float32))
    extra = {k: v for k, v in res.extra.items() if isinstance(v, (int, float, str, bool))}
    print(json.dumps({"fit_s": res.fit_seconds, "read_s": read_s, "extra": extra,
                      "top_words": [w[:10] for w in res.topic_words]}))
    return 0


# ============================================================================ parent

def _tree_usage(pid: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (own + reaped children's) of ``pid`` and all its
    descendants, from /proc."""
    children: dict[int, list[int]] = {}
    use: dict[int, tuple[int, float]] = {}
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/statm") as f:
                rss = int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        use[int(d)] = (rss, sum(int(x) for x in fields[11:15]) / tick)
        children.setdefault(int(fields[1]), []).append(int(d))
    rss, cpu, todo = 0, 0.0, [pid]
    while todo:
        p = todo.pop()
        r, c = use.get(p, (0, 0.0))
        rss, cpu = rss + r, cpu + c
        todo.extend(children.get(p, []))
    return rss, cpu


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_one(cmd: list[str], env: dict, timeout: float, cpu_limit: float, rss_limit: float, min_free: float) -> dict:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    status_text, sampled, sampled_cpu, usage, status = "ok", 0, 0.0, None, 0
    os.set_blocking(proc.stdout.fileno(), False)
    os.set_blocking(proc.stderr.fileno(), False)
    out_b, err_b = b"", b""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        for stream, name in ((proc.stdout, "o"), (proc.stderr, "e")):
            chunk = stream.read()
            if chunk:
                if name == "o":
                    out_b += chunk
                else:
                    err_b = (err_b + chunk)[-20000:]
        if pid:
            break
        rss, cpu = _tree_usage(proc.pid)
        sampled, sampled_cpu = max(sampled, rss), max(sampled_cpu, cpu)
        reason = None
        if time.perf_counter() - t > timeout:
            reason = f"did not finish in {timeout / 60:.0f} min wall"
        elif cpu > cpu_limit:
            reason = f"did not finish in {cpu_limit:.0f} CPU s"
        elif sampled > rss_limit:
            reason = f"out of memory (passed {rss_limit / 2**30:.0f} GB, the guard)"
        elif _mem_available() < min_free:
            reason = f"out of memory (machine under {min_free / 2**30:.0f} GB free, the guard)"
        if reason:
            status_text = reason
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.5)
    wall = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if rc and status_text == "ok":
        status_text = f"failed (rc {rc})"
    maxrss = usage.ru_maxrss * 1024
    own_cpu = usage.ru_utime + usage.ru_stime  # with the children it reaped, not loky's orphaned workers
    row = {"status": status_text, "rc": rc, "wall_s": wall, "cpu_s": max(own_cpu, sampled_cpu),
           "wait4_cpu_s": own_cpu, "sampled_tree_cpu_s": sampled_cpu,
           "ru_maxrss_mb": maxrss / 2**20, "sampled_tree_mb": sampled / 2**20,
           "peak_rss_mb": max(maxrss, sampled) / 2**20, "stderr_tail": err_b.decode(errors="replace")[-1500:] if rc else ""}
    lines = [x for x in out_b.decode(errors="replace").splitlines() if x.startswith("{")]
    if status_text == "ok" and lines:
        row.update(json.loads(lines[-1]))
    return row


def shared_vocab(n: int, docs: Path, work: Path) -> Path:
    """``vocab-<n>.json``: the word list saetm's defaults give (built once, outside the timing)."""
    path = work / f"vocab-{n}.json"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        from peers import SharedVocabulary

        with open(docs, encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
        v = SharedVocabulary.build(texts)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"words": v.words, "settings": v.settings}))
        os.replace(tmp, path)
    return path


def save_row(result_json: Path, row: dict) -> list[dict]:
    """Adds ``row`` (replacing its model and size) to the JSON and rewrites the Markdown,
    under a lock: several runs of this script may share the files."""
    import fcntl

    result_json.parent.mkdir(parents=True, exist_ok=True)
    with open(str(result_json) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(result_json.read_text())["rows"] if result_json.exists() else []
        rows = [x for x in rows if not (x["model"] == row["model"] and x["n_docs"] == row["n_docs"])] + [row]
        data = {"machine": machine(), "corpus": "20 Newsgroups replicated (bench_scale.py)", "rows": rows}
        tmp = result_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, result_json)
        md = result_json.with_suffix(".md")
        md.write_text(f"# Peers' scaling (bench/bench_scale_peers.py)\n\nMachine: {json.dumps(data['machine'])}\n\n"
                      f"{table(rows)}\n")
    return rows


def combine(peer_json: Path, scale_json: Path, scale_md: Path, labels: list[str]) -> str:
    """The section written at the end of ``scale.md``: the peers' rows, their ratios to
    saetm's rows at the same size (the first of ``labels`` that has the size) and the
    compact table for the README, then ``<results>-notes.md`` if present. Rewrites only the
    part after ``SECTION``."""
    peers = json.loads(peer_json.read_text())
    saetm = {}
    for label in reversed(labels):
        saetm.update({r["n_docs"]: r for r in json.loads(scale_json.read_text())["rows"] if r["label"] == label})
    rows = peers["rows"]
    sizes = sorted(set(saetm) | {r["n_docs"] for r in rows})
    ratio = ["| model | documents | CPU s (× saetm) | peak RSS GB (× saetm) | saetm row |", "|---|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (MODELS.index(r["model"]), r["n_docs"])):
        s = saetm.get(r["n_docs"])
        if r["status"] != "ok" or s is None:
            continue
        ratio.append(f"| {NAMES[r['model']]} | {r['n_docs']:,} | {r['cpu_s']:.0f} ({r['cpu_s'] / s['cpu_s']:.1f}×) | "
                     f"{r['peak_rss_mb'] / 1024:.2f} ({r['peak_rss_mb'] / s['peak_rss_mb']:.1f}×) | {s['label']} |")
    models = [m for m in MODELS if any(r["model"] == m for r in rows)]
    compact = {}
    for key, fmt in (("wall", "{wall:.0f} s / {gb:.1f} GB"), ("cpu", "{cpu:.0f} s / {gb:.1f} GB")):
        lines = ["| documents | saetm | " + " | ".join(NAMES[m] for m in models) + " |",
                 "|---:|" + "---:|" * (len(models) + 1)]
        for n in sizes:
            cells = [fmt.format(wall=saetm[n]["wall_s"], cpu=saetm[n]["cpu_s"], gb=saetm[n]["peak_rss_mb"] / 1024)
                     if n in saetm else "–"]
            for m in models:
                r = next((x for x in rows if x["model"] == m and x["n_docs"] == n), None)
                if r is None:
                    cells.append("–")
                elif "memory" in r["status"]:
                    cells.append(f"stopped past {r['peak_rss_mb'] / 1024:.1f} GB")
                elif r["status"] != "ok":
                    cells.append(f"stopped: > {r['wall_s' if key == 'wall' else 'cpu_s']:.0f} s / "
                                 f"> {r['peak_rss_mb'] / 1024:.1f} GB")
                else:
                    cells.append(fmt.format(wall=r["wall_s"], cpu=r["cpu_s"], gb=r["peak_rss_mb"] / 1024))
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
        compact[key] = "\n".join(lines)
    section = (f"{SECTION}\n\nThe same corpora, T=50 and given embeddings, each peer a whole process "
               f"(`bench/bench_scale_peers.py`; settings: `bench/peers.py`'s `PEER_SETTINGS`, with saetm's "
               f"vocabulary word list). Machine: {json.dumps(peers['machine'])}\n\n{table(rows)}\n\n"
               f"Against saetm at the same size (saetm rows: {', '.join(labels)}, first that has the size):\n\n"
               f"{chr(10).join(ratio)}\n\nCompact, CPU s / peak RSS (load-independent; \"–\": not run, after a "
               f"failure at a smaller size or for want of time, see the notes):\n\n{compact['cpu']}\n\n"
               f"Compact, wall s / peak RSS (wall depends on the load before each run, in the tables above):\n\n"
               f"{compact['wall']}\n")
    notes = peer_json.with_name(peer_json.stem + "-notes.md")  # hand-written remarks on the runs, kept
    if notes.exists():
        section += "\n" + notes.read_text().strip() + "\n"
    text = scale_md.read_text()
    text = (text.split(SECTION)[0].rstrip() + "\n\n" + section) if SECTION in text else text.rstrip() + "\n\n" + section
    tmp = scale_md.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, scale_md)
    return section


def machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    vers = {}
    for p in ["scikit-learn", "bertopic", "turftopic", "umap-learn", "hdbscan", "torch", "numpy", "scipy"]:
        try:
            vers[p] = version(p)
        except PackageNotFoundError:
            vers[p] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1), **vers}


def _cell(r: dict) -> str:
    return f"{r['wall_s']:.0f} / {r['cpu_s']:.0f} / {r['peak_rss_mb'] / 1024:.2f}"


def table(rows: list[dict]) -> str:
    lines = ["| model | documents | status | wall s | CPU s | fit s | peak RSS GB | saved MB | topics | "
             "load avg before | when |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (MODELS.index(r["model"]), r["n_docs"])):
        ok = r["status"] == "ok"
        fit = f"{r['fit_s']:.0f}" if ok and "fit_s" in r else "–"
        lines.append(f"| {NAMES[r['model']]} | {r['n_docs']:,} | {r['status']} | {r['wall_s']:.0f} | "
                     f"{r['cpu_s']:.0f} | {fit} | {r['peak_rss_mb'] / 1024:.2f} | "
                     f"{r.get('saved_mb', 0):.1f} | {r.get('extra', {}).get('n_topics_found', '–')} | "
                     f"{r['load_before']:.2f} | {r['when']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20000,75000,150000,300000")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--work", default="/tmp/saetm-bench-scale")
    ap.add_argument("--src", default=str(HERE.parent / "src"), help="the src folder saetm's vocabulary comes from")
    ap.add_argument("--timeout", type=float, default=2700, help="wall seconds per run")
    ap.add_argument("--cpu-limit", type=float, default=1800,
                    help="CPU seconds per run (the machine is shared: wall depends on the load)")
    ap.add_argument("--rss-limit-gb", type=float, default=8.0)
    ap.add_argument("--min-free-gb", type=float, default=3.0)
    ap.add_argument("--results", default=str(RESULTS / "scale-peers"))
    ap.add_argument("--combine", action="store_true",
                    help="only write the peers' section of scale.md (with ratios to saetm's rows) from the JSONs")
    ap.add_argument("--saetm-labels", default="stream,0.9.0", help="scale.json labels, first that has a size wins")
    ap.add_argument("--worker", nargs=5, metavar=("MODEL", "DOCS", "EMB", "VOCAB", "OUT"))
    args = ap.parse_args()
    if args.worker:
        m, docs, emb, vocab, out = args.worker
        return worker(m, Path(docs), Path(emb), Path(vocab), args.topics, Path(out))
    if args.combine:
        print(combine(Path(args.results + ".json"), RESULTS / "scale.json", RESULTS / "scale.md",
                      args.saetm_labels.split(",")))
        return 0
    sys.path.insert(0, args.src)
    work = Path(args.work)
    result_json = Path(args.results + ".json")
    rows = json.loads(result_json.read_text())["rows"] if result_json.exists() else []
    env = {**os.environ, "PYTHONPATH": args.src, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# peers' scaling: 20 Newsgroups REPLICATED (bench_scale.py's corpora), T={args.topics}, given "
          f"embeddings; limits per run {args.cpu_limit:.0f} CPU s, {args.timeout:.0f} s wall, {args.rss_limit_gb:.0f} GB")
    print("# command: " + " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), flush=True)
    for model in args.models.split(","):
        failed = next((r for r in rows if r["model"] == model and r["status"] != "ok" and r["n_docs"] < min(sizes)),
                      None)
        for n in sizes:
            docs, emb = work / f"docs-{n}.jsonl", work / f"emb-{n}.npy"
            if failed is not None:
                print(f"{model} n={n:,}: skipped ({failed['status']} at {failed['n_docs']:,})", flush=True)
                continue
            vocab = shared_vocab(n, docs, work)
            out = work / f"peer-{model}-{n}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            load = os.getloadavg()[0]
            cmd = [sys.executable, str(Path(__file__).resolve()), "--topics", str(args.topics),
                   "--worker", model, str(docs), str(emb), str(vocab), str(out)]
            r = run_one(cmd, env, args.timeout, args.cpu_limit, args.rss_limit_gb * 2**30, args.min_free_gb * 2**30)
            r["saved_mb"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20 if out.exists() else 0
            r.update({"model": model, "n_docs": n, "topics": args.topics, "load_before": load,
                      "load_after": os.getloadavg()[0], "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            subprocess.run(["rm", "-rf", str(out)], check=True)
            rows = save_row(result_json, r)
            print(f"{model} n={n:,}: {r['status']}, wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s, "
                  f"peak {r['peak_rss_mb'] / 1024:.2f} GB, saved {r['saved_mb']:.0f} MB, load {load:.2f}", flush=True)
            if r["rc"] and r["stderr_tail"]:
                print(r["stderr_tail"], file=sys.stderr)
            if r["status"] != "ok":
                failed = r
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
