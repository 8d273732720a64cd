"""Does the coherent ranking's minimum co-occurrence support help on held-out documents?

    python bench/min_support.py [--corpora 20newsgroups,reuters-r8,...] [--topics 20,50]
        [--rules 3,1,2,1/2000,1/1000,1/500] [--out bench/results/min-support.md]
    python bench/min_support.py --lever candidates --rules 60,40,25 --out bench/results/candidates.md

``topics/wordrank.py`` orders a topic's words by their NPMI on the fitted documents and
counts pairs seen together in fewer than ``MIN_SUPPORT`` documents as never seen
together. A fixed minimum (3) means little on 10,000 documents; this script tries a
minimum that grows with the number of fitted documents n: rule ``1/500`` =
``max(3, round(n / 500))``, rule ``3`` = the fixed default.

Per corpus and T, saetm with the shipped SAE is fitted once on the same seeded half as
``bench/bench_topics.py --holdout 0.5`` (all defaults, seed 0); only the word ranking
is redone per rule (the topics, i.e. the atoms' clusters, do not depend on it). Each
rule's top words are scored like the benchmark: NPMI (top 10, document co-occurrence)
on the held-out half and on the fitted half, TD over the top 25.

``--lever candidates`` tries ``N_CANDIDATES`` instead (how many of a topic's best
words by relevance the NPMI ordering may choose from; at least the 25 listed); rule
``3`` is then replaced by the default, 60, as the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def support(rule: str, n_docs: int) -> int:
    if "/" not in rule:
        return int(rule)
    return max(3, int(round(n_docs * float(Fraction(rule)))))


def main(argv=None) -> int:
    from bench_topics import CorpusData
    from saetm.evaluation.coherence import npmi_coherence
    from saetm.evaluation.measures import topic_diversity
    from saetm.model import SAETM
    from saetm.topics import wordrank

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default="20newsgroups,reuters-r8,reuters-r52,brown,fortunes,election-tweets")
    p.add_argument("--topics", default="20,50")
    p.add_argument("--rules", default="3,1,2,1/2000,1/1000,1/500")
    p.add_argument("--lever", choices=["min_support", "candidates"], default="min_support")
    p.add_argument("--out", default=str(HERE / "results" / "min-support.md"))
    args = p.parse_args(argv)
    rules = args.rules.split(",")
    work = Path(tempfile.mkdtemp(prefix="min_support-"))
    default = wordrank.npmi_among.__defaults__, wordrank.coherent_order.__defaults__
    baseline = str(wordrank.MIN_SUPPORT if args.lever == "min_support" else wordrank.N_CANDIDATES)
    rows = []
    try:
        for c in args.corpora.split(","):
            data = CorpusData(c, None, 0, work, 0.5)
            emb = np.ascontiguousarray(np.load(data.embeddings_path, allow_pickle=False)[data.rows])
            for T in [int(t) for t in args.topics.split(",")]:
                t0 = time.process_time()
                model = SAETM(n_topics=T, sae="default", seed=0, cache=False, verbose=False).fit(data.texts, emb)
                n = model.doc_words_.shape[0]
                print(f"{c} T={T}: fitted on {n} documents in {time.process_time() - t0:.0f} CPU s", flush=True)
                for rule in rules:
                    if args.lever == "min_support":
                        ms = support(rule, n)
                        wordrank.npmi_among.__defaults__ = (ms,)
                    else:
                        ms = int(rule)
                        wordrank.coherent_order.__defaults__ = (ms, None)
                    model.__dict__.pop("_word_lists", None)  # the ranking is cached per model
                    words = [[w for w, _ in model.get_topic(k, n_words=25)] for k in range(model.n_topics)]
                    words = [w for w in words if w]
                    row = {"corpus": c, "T": T, "rule": rule, "value": ms, "n_fitted": n,
                           "npmi_heldout": npmi_coherence(words, data.heldout_tokens)["mean"],
                           "npmi_fitted": npmi_coherence(words, data.tokens)["mean"],
                           "td": topic_diversity(words, 25)}
                    rows.append(row)
                    print(f"  rule {rule:>7} ({ms:>3}): NPMI held-out {row['npmi_heldout']:.4f}, "
                          f"fitted {row['npmi_fitted']:.4f}, TD {row['td']:.3f}", flush=True)
    finally:
        wordrank.npmi_among.__defaults__, wordrank.coherent_order.__defaults__ = default
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    title = "Minimum co-occurrence support" if args.lever == "min_support" else "Candidate words (N_CANDIDATES)"
    lines = [f"# {title} of the coherent ranking (`bench/min_support.py`)", "",
             f"Command: `python bench/min_support.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             "saetm-shipped, defaults, seed 0, fitted on the seeded half (`--holdout 0.5`, data seed 0); "
             f"Δ = held-out NPMI minus that of rule `{baseline}` (the default) at the same corpus and T.", "",
             f"| corpus | T | rule | {args.lever.replace('_', ' ')} | NPMI held-out | Δ | NPMI fitted | TD |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    base = {(r["corpus"], r["T"]): r["npmi_heldout"] for r in rows if r["rule"] == baseline}
    for r in rows:
        d = r["npmi_heldout"] - base.get((r["corpus"], r["T"]), np.nan)
        lines.append(f"| {r['corpus']} | {r['T']} | {r['rule']} | {r['value']} | {r['npmi_heldout']:.4f} | "
                     f"{d:+.4f} | {r['npmi_fitted']:.4f} | {r['td']:.3f} |")
    lines += ["", "Mean over corpus × T cells:", "", "| rule | mean Δ held-out NPMI | cells better | min TD |",
              "|---|---:|---:|---:|"]
    for rule in rules:
        rs = [r for r in rows if r["rule"] == rule]
        ds = [r["npmi_heldout"] - base[(r["corpus"], r["T"])] for r in rs if (r["corpus"], r["T"]) in base]
        lines.append(f"| {rule} | {np.mean(ds):+.4f} | {sum(d > 0 for d in ds)}/{len(ds)} | "
                     f"{min(r['td'] for r in rs):.3f} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-len(rules) - 4:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
