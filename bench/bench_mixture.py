"""The document weights' mixture EM on a large collection: every document vs a seeded sample.

    python bench/bench_mixture.py --embeddings /tmp/saetm-bench-scale/emb-1000000.npy [--topics 50]
        [--out bench/results/mixture.md]

``topics/docweights.fit_mixture`` runs the von Mises–Fisher mixture's EM (20 rounds) and, past
``MAX_MIXTURE_DOCS`` documents, reads a seeded sample of that many. This times, on the given
(memory-mapped) embeddings, the EM as saetm 0.10 ran it (10 rounds over every document), the
same 20 rounds over every document, and the default (20 rounds, sampled), each followed by the
weights of every document (``sharpen``). θ is a seeded stand-in (each document 4 topics with
Dirichlet weights): the EM's cost depends on the sizes, not on θ's values. With ``--model``
(a fitted model whose ``documents.parquet`` has a ``label`` column, e.g. all of 20 Newsgroups),
what a sample costs in quality: the model's own θ and embeddings, the EM over every document and
over seeded samples of a quarter and a tenth of them (as 200,000 of 1,000,000 would be a fifth),
NMI of the main topic with the labels and the share of documents whose main topic stays.
Prints Markdown tables (CPU and wall seconds; the machine's load average beside them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent


def stand_in_theta(n: int, T: int, per_doc: int = 4, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    cols = np.stack([rng.choice(T, size=per_doc, replace=False) for _ in range(min(n, 4096))])
    cols = cols[np.arange(n) % len(cols)]
    vals = rng.dirichlet(np.ones(per_doc), size=n)
    return sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, n * per_doc + 1, per_doc)), shape=(n, T))


def quality(folder: str) -> list[str]:
    """NMI and main-topic agreement of the 20-round mixture over every document vs seeded samples."""
    import pyarrow.parquet as pq
    from sklearn.metrics import normalized_mutual_info_score

    from saetm.model import SAETM
    from saetm.topics import docweights, merge

    m = SAETM.load(folder)
    labels = pq.read_table(Path(folder) / "documents.parquet", columns=["label"]).column("label").to_pylist()
    theta = merge.doc_topics(m.theta_, m.atom_topic_, m.n_topics)
    units = docweights.UnitRows(np.asarray(m.doc_embeddings_), keep=True)
    n = theta.shape[0]
    out = [f"Quality on `{folder}` ({n:,} documents, T = {m.n_topics}, its own θ and embeddings; "
           "20 rounds; NMI of the main topic with `label`):", "",
           "| EM reads | seed | NMI | main topic as with every document |", "|---|---:|---:|---:|"]
    main = {}
    for share, seeds in ((1, [0]), (4, [0, 1, 2]), (10, [0, 1, 2])):
        for seed in seeds:
            max_docs = None if share == 1 else n // share
            C, rho = docweights.fit_mixture(theta, units, max_docs=max_docs, seed=seed, smoothing=m.doc_smoothing_)
            top = np.asarray(docweights.sharpen(theta, units, C, priors=rho, smoothing=m.doc_smoothing_)
                             .argmax(axis=1)).ravel()
            main.setdefault(share, top)
            what = "every document" if share == 1 else f"a sample of {n // share:,} (1/{share})"
            out.append(f"| {what} | {seed} | {normalized_mutual_info_score(labels, top):.4f} | "
                       f"{np.mean(top == main[1]):.1%} |")
            print(out[-1], flush=True)
    return out


def main(argv=None) -> int:
    from saetm.topics import docweights

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings", required=True, help="a .npy of (n, dim) embeddings (memory-mapped)")
    p.add_argument("--topics", type=int, default=50)
    p.add_argument("--model", help="a fitted model directory with labels (the quality check)")
    p.add_argument("--out", default=str(HERE / "results" / "mixture.md"))
    args = p.parse_args(argv)
    E = np.load(args.embeddings, mmap_mode="r", allow_pickle=False)
    theta = stand_in_theta(E.shape[0], args.topics)
    runs = [("0.10: 10 rounds, every document", 10, None), ("20 rounds, every document", 20, None),
            (f"default: 20 rounds, sample of {docweights.MAX_MIXTURE_DOCS:,}", 20, docweights.MAX_MIXTURE_DOCS)]
    rows, weights = [], {}
    for label, rounds, max_docs in runs:
        c0, w0 = time.process_time(), time.perf_counter()
        units = docweights.UnitRows(E, keep=True)
        C, rho = docweights.fit_mixture(theta, units, n_iter=rounds, max_docs=max_docs, smoothing=docweights.SMOOTHING)
        c1, w1 = time.process_time(), time.perf_counter()
        W = docweights.sharpen(theta, units, C, priors=rho, smoothing=docweights.SMOOTHING)
        c2, w2 = time.process_time(), time.perf_counter()
        weights[label] = np.asarray(W.argmax(axis=1)).ravel()
        rows.append((label, c1 - c0, w1 - w0, c2 - c1, w2 - w1))
        print(rows[-1], flush=True)
    lines = [f"# The mixture's EM on {E.shape[0]:,} documents (`bench/bench_mixture.py`)", "",
             f"Command: `python bench/bench_mixture.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
             f"T = {args.topics}, {E.shape[1]}-d embeddings memory-mapped; 2 CPU cores, load average "
             f"{os.getloadavg()[0]:.1f} at the end.", "",
             "| EM | EM CPU s | EM wall s | weights CPU s | weights wall s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} |" for r in rows]
    if args.model:
        lines += ["", *quality(args.model)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
