"""Word-list diversity after the first 10 words (``wordrank`` step 4): TD and NPMI per tail factor.

    python bench/rank_tail.py [--corpora 20newsgroups,reuters-r8,...] [--topics 20,50]
        [--factors 0,2.5,5,10] [--out bench/results/rank-tail.md]

TD is scored on each topic's top 25 words and NPMI on its top 10, so the words at ranks
11–25 decide TD alone. Per corpus and T, saetm (shipped SAE, defaults, seed 0) is fitted
once on the same seeded half that ``bench/bench_topics.py --holdout 0.5`` fits on; then
only the word lists are re-ranked with ``wordrank.TAIL_FACTOR`` set to each factor (0 = no
step 4: the ranking before it). Columns: TD (top 25), NPMI of the top 10 on the held-out
half and on the fitted half, NPMI of all 25 on the held-out half (what step 4 costs the
words it changes), and how many topics' top 10 differ from factor 0's (step 4
leaves them alone by construction, so this column must read 0). NMI does not depend on the
word lists. Prints the table and writes it with ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench_topics import CorpusData  # noqa: E402

N_WORDS = 25


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default="20newsgroups,reuters-r8,reuters-r52,election-tweets,fortunes,brown")
    p.add_argument("--topics", default="20,50")
    p.add_argument("--factors", default="0,2.5,5,10")
    p.add_argument("--holdout", type=float, default=0.5)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from saetm.evaluation.coherence import npmi_coherence
    from saetm.evaluation.measures import topic_diversity
    from saetm.model import SAETM
    from saetm.topics import wordrank

    factors = [float(f) for f in args.factors.split(",")]
    work = Path(os.environ.get("SAETM_CACHE", Path.home() / ".cache" / "saetm")) / "bench_topics"
    lines = ["| corpus | T | tail factor | TD | NPMI held-out | NPMI fitted | NPMI held-out, top 25 | top-10 changed | fit s | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    default = wordrank.TAIL_FACTOR
    for name in args.corpora.split(","):
        data = CorpusData(name, None, 0, work, holdout=args.holdout)
        import numpy as np
        emb = np.load(data.embeddings_path, allow_pickle=False)[data.rows]
        for T in [int(t) for t in args.topics.split(",")]:
            t0 = time.process_time()
            model = SAETM(n_topics=T, sae="default", seed=0, cache=False, verbose=False).fit(data.texts, emb)
            fit_cpu = time.process_time() - t0
            base = None
            for f in factors:
                wordrank.TAIL_FACTOR = f
                model.__dict__.pop("_word_lists", None)
                words = [[w for w, _ in model.get_topic(k, n_words=N_WORDS)] for k in range(model.n_topics)]
                words = [w for w in words if w]
                base = base or [w[:10] for w in words]
                changed = sum(a[:10] != b for a, b in zip(words, base))
                row = [name, str(T), f"{f:g}", f"{topic_diversity(words, 25):.3f}",
                       f"{npmi_coherence(words, data.heldout_tokens)['mean']:.3f}",
                       f"{npmi_coherence(words, data.tokens)['mean']:.3f}",
                       f"{npmi_coherence(words, data.heldout_tokens, top_n=N_WORDS)['mean']:.3f}", str(changed),
                       f"{fit_cpu:.0f}", f"{os.getloadavg()[0]:.1f}"]
                lines.append("| " + " | ".join(row) + " |")
                print(lines[-1], flush=True)
            wordrank.TAIL_FACTOR = default
    if args.out:
        from saetm.io.persist import atomic_write

        head = ["# Word-list diversity after the first 10 words (`bench/rank_tail.py`)", "",
                f"Command: `python bench/rank_tail.py {' '.join(argv or sys.argv[1:])}`", "",
                "`fit s`: CPU seconds of the fit (2 shared cores); `load`: 1-minute load average.", ""]
        with atomic_write(args.out, "w") as fh:
            fh.write("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
