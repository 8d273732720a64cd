"""The static encoder against the default one on three corpora: held-out NPMI, TD, NMI.

    python bench/static_corpora.py [--out bench/results/static-corpora.md] [--topics 20]

For 20 Newsgroups, Reuters R8 and fortunes (``bench/corpora.py``), the documents are split
as in ``bench/bench_topics.py --holdout 0.5`` (a seeded half held out, seed 0). On the
other half, saetm with its shipped SAE (``sae="default"``, T topics, seed 0, all other
settings default) is fitted twice: with the default encoder (all-MiniLM-L6-v2, its
embeddings from saetm's cache, as ``bench_topics.py`` uses them) and with
``encoder="static"`` from the raw texts. Both are scored by ``bench_topics.evaluate``, the
call behind ``bench/results/topics-heldout.md``: NPMI of the top 10 words on the
held-out half, TD of the top 25, NMI of each document's main topic against the labels.
"k-means NMI" is k-means (k = the number of labels, 3 seeds, mean) on the fitted half's
embeddings themselves: what the embeddings separate before any SAE. Deterministic: the
same numbers on every run; only the seconds depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_topics import CorpusData, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ("20newsgroups", "reuters-r8", "fortunes")
N_WORDS = 25


def write_report(lines: list[str], out) -> int:
    """Write the report's ``lines`` to ``out`` (atomically) and print them; the scripts' exit code."""
    from saetm.io.persist import atomic_write

    text = "\n".join(lines) + "\n"
    with atomic_write(Path(out), "w") as f:
        f.write(text)
    print(text)
    return 0


def report_command(script: str, argv) -> str:
    """The command line that made a report, as this process runs: its ``OMP_NUM_THREADS`` and
    niceness (when set), ``bench/<script>`` and the arguments (``argv``, else ``sys.argv``)."""
    parts = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    parts += [f"nice -n {os.nice(0)}"] if os.nice(0) else []
    parts += [f"python bench/{script}", *(argv if argv is not None else sys.argv[1:])]
    return "`" + " ".join(parts) + "`"


def kmeans_nmi(X: np.ndarray, labels) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    k = len(set(labels))
    return float(np.mean([normalized_mutual_info_score(labels, KMeans(k, n_init=1, random_state=s).fit(X).labels_)
                          for s in range(3)]))


def run(data: CorpusData, encoder: str, topics: int) -> dict:
    from saetm.encoders.static import StaticEncoder
    from saetm.model import SAETM

    if encoder == "static":
        X = StaticEncoder().encode(data.texts)  # fits its IDF table on these texts, as the fit does
        kwargs = {"encoder": "static"}
    else:
        X = np.asarray(np.load(data.embeddings_path, mmap_mode="r")[data.rows], dtype=np.float32)
        kwargs = {}
    t, c = time.perf_counter(), time.process_time()
    model = SAETM(n_topics=topics, sae="default", seed=0, cache=False, verbose=False, **kwargs)
    model.fit(data.texts, None if encoder == "static" else X)  # the static fit encodes the raw texts itself
    words = [[w for w, _ in model.get_topic(k, n_words=N_WORDS)] for k in range(model.n_topics)]
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    m = evaluate(data, words, model.doc_topics_)
    return {"encoder": model.embedding_name_, "wall_s": wall, "cpu_s": cpu, "npmi_heldout": m["npmi_heldout"],
            "npmi": m["npmi"], "td": m["topic_diversity"], "nmi": m["nmi"], "kmeans_nmi": kmeans_nmi(X, data.labels)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/static-corpora.md"))
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--corpora", default=",".join(CORPORA))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.corpora.split(","):
            data = CorpusData(name, None, 0, Path(tmp), holdout=0.5)
            for encoder in ("default", "static"):
                r = {"corpus": name, "docs": len(data.texts), "held_out": len(data.heldout_tokens),
                     "load": os.getloadavg()[0], **run(data, encoder, args.topics)}
                print(r, flush=True)
                rows.append(r)
    lines = [
        "# The static encoder against the default one on three corpora",
        "",
        f"Command: {report_command('static_corpora.py', argv)} (2 shared CPU cores; load average "
        f"{load_before:.1f} at the start, per row below). T = {args.topics}, shipped SAE of each encoder, "
        "seed 0; half of each corpus held out (seed 0) for the held-out NPMI. Fit seconds: the static rows "
        "include encoding the raw texts, the default rows start from cached embeddings.",
        "",
        "| corpus | fitted / held out | encoder | NPMI held-out | NPMI fitted | TD | NMI | k-means NMI | fit wall (s) | fit CPU (s) | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['docs']:,} / {r['held_out']:,} | {r['encoder']} | {r['npmi_heldout']:.3f} | "
                     f"{r['npmi']:.3f} | {r['td']:.3f} | {r['nmi']:.3f} | {r['kmeans_nmi']:.3f} | {r['wall_s']:.1f} | "
                     f"{r['cpu_s']:.1f} | {r['load']:.1f} |")
    return write_report(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
