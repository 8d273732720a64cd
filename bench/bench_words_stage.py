"""Where the words stage of a large fit spends its time, and what threads do to its EM.

    python bench/bench_words_stage.py [--docs 150000] [--threads 1,2] [--iterations 3]

On the replicated 20 Newsgroups corpus of ``bench_scale.py`` (written under ``--work`` by
it: run ``bench_scale.py --sizes N`` first), times the parts of stage 2 as ``saetm fit``
runs them with the defaults and the shipped SAE: the vocabulary (the texts read from the
JSONL a block at a time), θ from the given embeddings, then the EM of
:func:`saetm.words.em.fit_feature_words` once per thread count (``em_chunks.THREADS``):
building the chunked pair matrix (support pass + temporary file) and ``--iterations``
E/M passes, with ``tol=0`` so that every count runs the same passes. The B of every thread
count must be bit for bit the first's; the table says so. Prints one table.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


class _Marks(logging.Handler):
    """Times of the EM's log lines: the pair file opened, the plan built, each iteration."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.marks: list[tuple[float, str]] = []

    def emit(self, record):
        self.marks.append((time.perf_counter(), record.getMessage()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=150000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--work", default="/tmp/saetm-bench-scale")
    args = ap.parse_args()
    docs_path = Path(args.work) / f"docs-{args.docs}.jsonl"
    emb_path = Path(args.work) / f"emb-{args.docs}.npy"
    if not docs_path.exists() or not emb_path.exists():
        print(f"{docs_path} or {emb_path} is missing: run bench/bench_scale.py --sizes {args.docs} first",
              file=sys.stderr)
        return 2

    import saetm
    from saetm import SAETM
    from saetm.components import resolved
    from saetm.io.readers import read_documents
    from saetm.sae import stage as sae_stage
    from saetm.words import em_chunks, stage as words_stage
    from saetm.words.em import fit_feature_words

    model = SAETM(n_topics=50)
    rows = []
    t = time.perf_counter()
    texts = read_documents(docs_path, lazy_text=True).texts
    vocab, counts = words_stage.vocabulary(texts, **model._vocabulary_settings())
    rows.append(("read + vocabulary", time.perf_counter() - t, f"{len(vocab):,} words, {counts.nnz:,} counts"))
    X = np.load(emb_path, mmap_mode="r")
    t = time.perf_counter()
    sae, _ = sae_stage.get_sae("default", X, training=resolved(model, "sae"), embedding_name=None, cache=False,
                               seed=0, progress=False)
    theta = sae_stage.theta_of(sae, X, np.arange(len(X)), len(X))
    rows.append(("θ (shipped SAE)", time.perf_counter() - t, f"{theta.nnz:,} active atoms"))
    pairs = em_chunks.count_pairs(theta, counts)

    marks = _Marks()
    for name in ("saetm.words.em", "saetm.words.em_chunks"):
        logging.getLogger(name).addHandler(marks)
        logging.getLogger(name).setLevel(logging.DEBUG)
    first = None
    for threads in [int(x) for x in args.threads.split(",")]:
        em_chunks.THREADS = threads
        marks.marks.clear()
        t = time.perf_counter()
        fw = fit_feature_words(theta, counts, background_weight=0.3, max_iter=args.iterations, tol=0.0)
        total = time.perf_counter() - t
        built = next((m for m, msg in marks.marks if "documents," in msg), t)
        iters = [m for m, msg in marks.marks if msg.startswith("EM iteration")]
        per_pass = (iters[-1] - built) / (len(iters) + 2) if iters else float("nan")  # + first statistics, E-step
        same = "" if first is None else ("; B bit for bit the same" if
                                         np.array_equal(fw.feature_words.data, first.data) and
                                         np.array_equal(fw.feature_words.indices, first.indices) else "; B DIFFERS")
        first = fw.feature_words if first is None else first
        rows.append((f"EM, {threads} thread(s): build", built - t, f"{pairs:,} pairs ({pairs * 8 / 2**30:.1f} GB)"))
        rows.append((f"EM, {threads} thread(s): one pass", per_pass,
                     f"{args.iterations} iterations, first statistics and E-step; EM total {total:.1f} s{same}"))

    print(f"# words stage, replicated 20 Newsgroups, {args.docs:,} documents, T=50 defaults, shipped SAE")
    print(f"# saetm {saetm.__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"{len(os.sched_getaffinity(0))} CPUs; command: python bench/{Path(__file__).name} "
          + " ".join(sys.argv[1:]))
    print(f"# peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB\n")
    print("| part | seconds | notes |\n|---|---:|---|")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds:.1f} | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
