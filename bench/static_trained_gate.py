"""Issue 17's shipping gate for the trained static vectors: held-out NPMI, TD and NMI against today's static encoder.

    OMP_NUM_THREADS=1 nice -n 10 python bench/static_trained_gate.py \\
        --vectors /tmp/static2/trained-idf-lr0.01-e4.npy [--topics 20,50] [--seeds 0,1,2]

``--vectors``: the word-piece vectors written by ``bench/static_tokenlearn.py`` (a ``.npy``,
one 384-d row per word piece of the shipped static encoder's tokenizer). On the fitted half of
20 Newsgroups, Reuters R8 and fortunes (``bench/static_corpora.py``'s split, half held out
with seed 0), saetm is fitted from the raw texts twice per T and seed: with today's
``encoder="static"`` and its shipped SAE, and with a :class:`StaticEncoder` reading the
trained vectors (stored as float16, as an asset would ship them) and the shipped **MiniLM**
SAE (``assets/sae-minilm``, the vectors live in MiniLM's output space). Both are scored by
``bench_topics.evaluate`` as in ``static_corpora.py``. The gate (seed 0, T = 20): NMI rises on
all three corpora, held-out NPMI drops by at most 0.01 on any, TD ≥ 0.85. Deterministic apart
from the seconds.
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
from static_corpora import N_WORDS, report_command, write_report  # noqa: E402
from static_tokenlearn import vector_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ("20newsgroups", "reuters-r8", "fortunes")


def fit(data: CorpusData, encoder: str, vdir: Path, topics: int, seed: int) -> dict:
    from saetm.encoders.static import StaticEncoder
    from saetm.model import SAETM

    if encoder == "trained":
        kwargs = {"encoder": StaticEncoder(vdir, name="static-trained"),
                  "sae": str(ROOT / "src/saetm/assets/sae-minilm")}
    else:
        kwargs = {"encoder": "static", "sae": "default"}
    t = time.perf_counter()
    model = SAETM(n_topics=topics, seed=seed, cache=False, verbose=False, **kwargs).fit(data.texts)
    words = [[w for w, _ in model.get_topic(k, n_words=N_WORDS)] for k in range(model.n_topics)]
    wall = time.perf_counter() - t
    m = evaluate(data, words, model.doc_topics_)
    return {"npmi_heldout": m["npmi_heldout"], "npmi": m["npmi"], "td": m["topic_diversity"], "nmi": m["nmi"],
            "wall_s": wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--out", default=str(ROOT / "bench/results/static-trained-gate.md"))
    ap.add_argument("--topics", default="20,50")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    topics = [int(t) for t in args.topics.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        vdir = vector_folder(np.load(args.vectors), Path(tmp) / "vectors")
        for name in CORPORA:
            data = CorpusData(name, None, 0, Path(tmp), holdout=0.5)
            for T in topics:
                for encoder in ("today", "trained"):
                    runs = [fit(data, encoder, vdir, T, s) for s in seeds]
                    r = {"corpus": name, "T": T, "encoder": encoder, "runs": runs, "load": os.getloadavg()[0]}
                    print(name, T, encoder, runs[0], flush=True)
                    rows.append(r)
    seed_txt = ", ".join(map(str, seeds))
    lines = [
        "# Trained static vectors + the MiniLM SAE against today's static encoder (issue 17's gate)",
        "",
        f"Command: {report_command('static_trained_gate.py', argv)} (2 shared CPU cores; load average "
        f"{load_before:.1f} at the start). Fitted half of each corpus, the other half held out (seed 0). "
        "today: `encoder=\"static\"` with `sae-static`; trained: the trained vectors (float16) with `sae-minilm`. "
        f"Columns at seed {seeds[0]}, then the mean over seeds {seed_txt}. Fit wall seconds include encoding.",
        "",
        "| corpus | T | static vectors | NPMI held-out | NPMI fitted | TD | NMI | NPMI held-out (mean) | "
        "NMI (mean) | fit wall (s) | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a, runs = r["runs"][0], r["runs"]
        lines.append(f"| {r['corpus']} | {r['T']} | {r['encoder']} | {a['npmi_heldout']:.3f} | {a['npmi']:.3f} | "
                     f"{a['td']:.3f} | {a['nmi']:.3f} | {np.mean([x['npmi_heldout'] for x in runs]):.3f} | "
                     f"{np.mean([x['nmi'] for x in runs]):.3f} | {a['wall_s']:.1f} | {r['load']:.1f} |")
    return write_report(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
