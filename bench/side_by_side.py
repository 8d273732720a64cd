"""Top words of saetm (shipped SAE) and the best peer, topic by topic, per corpus.

    python bench/side_by_side.py [--json bench/results/topics-heldout.json]
        [--corpora 20newsgroups,...] [--topics 20,50] [--words 10] [--out-dir bench/results]

Reads the runs ``bench/bench_topics.py`` stored (each run keeps its topics' words) and
writes ``heldout-vs-best-peer.md`` (one row per corpus × T) and ``words-<corpus>.md``: for each T, saetm-shipped's topics next to those of the
peer with the highest held-out NPMI at that corpus and T. Each topic shows its top
words and its own NPMI on the held-out documents (the same seeded split, vocabulary
analyzer and ``npmi_coherence`` call the benchmark uses), so a reader can judge the
words and see which topics carry the mean.

The peer's topics are paired with saetm's by the largest overlap of their top 25
words (Hungarian assignment on Jaccard similarity); pairs that share no word are
listed after the matched ones, each model's topics in its own order. Nothing is refit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SAETM = "saetm-shipped"
OVERLAP_WORDS = 25


def best_peer(runs: dict, corpus: str, T: int, holdout: float) -> str | None:
    """The model other than saetm with the highest held-out NPMI at (corpus, T)."""
    from bench_topics import run_key

    best, score = None, -np.inf
    for key, r in runs.items():
        if (r.get("corpus"), r.get("n_topics"), r.get("holdout")) != (corpus, T, holdout):
            continue
        if r.get("status") != "ok" or r["model"] in (SAETM, "saetm") or run_key(corpus, r["model"], T, holdout) != key:
            continue
        s = r["metrics"].get("npmi_heldout", -np.inf)
        if s > score:
            best, score = r["model"], s
    return best


def saetm_and_best_peer(runs: dict, corpus: str, T: int, holdout: float) -> tuple[dict, str, dict] | None:
    """saetm's run, the best peer's name and its run at (corpus, T); None when either is missing."""
    from bench_topics import run_key

    ours = runs.get(run_key(corpus, SAETM, T, holdout), {})
    peer = best_peer(runs, corpus, T, holdout)
    if ours.get("status") != "ok" or peer is None:
        return None
    return ours, peer, runs[run_key(corpus, peer, T, holdout)]


def pair_topics(a: list[list[str]], b: list[list[str]]) -> list[tuple[int | None, int | None]]:
    """Pairs (i, j) of topics of ``a`` and ``b`` with the largest total Jaccard overlap of
    their top words; unmatched or disjoint topics come last, paired with None."""
    from scipy.optimize import linear_sum_assignment

    sa, sb = [set(t[:OVERLAP_WORDS]) for t in a], [set(t[:OVERLAP_WORDS]) for t in b]
    sim = np.array([[len(x & y) / max(1, len(x | y)) for y in sb] for x in sa]) if sa and sb else np.zeros((0, 0))
    rows, cols = linear_sum_assignment(-sim) if sim.size else ([], [])
    matched = sorted((i, j) for i, j in zip(rows, cols) if sim[i, j] > 0)
    used_a, used_b = {i for i, _ in matched}, {j for _, j in matched}
    rest_a = [i for i in range(len(a)) if i not in used_a]
    rest_b = [j for j in range(len(b)) if j not in used_b]
    tail = [(rest_a[k] if k < len(rest_a) else None, rest_b[k] if k < len(rest_b) else None)
            for k in range(max(len(rest_a), len(rest_b)))]
    return matched + tail


def corpus_markdown(corpus: str, runs: dict, topics: list[int], holdout: float, n_words: int, heldout_tokens) -> str:
    from saetm.evaluation.coherence import npmi_coherence

    lines = [f"# Topics on {corpus}: saetm (shipped SAE) vs the best peer", "",
             f"Written by `bench/side_by_side.py` from `bench/bench_topics.py --holdout {holdout:g}` runs. "
             f"Each cell: the topic's top {n_words} words, then (in brackets) its NPMI on the held-out documents "
             "(top 10, document co-occurrence). Peer topics are paired with saetm's by the overlap of their top "
             f"{OVERLAP_WORDS} words; '–' = no counterpart.", ""]
    for T in topics:
        pair = saetm_and_best_peer(runs, corpus, T, holdout)
        if pair is None:
            continue
        ours, peer, theirs = pair
        a, b = [t for t in ours["topic_words"] if t], [t for t in theirs["topic_words"] if t]
        pa = npmi_coherence(a, heldout_tokens)["per_topic"]
        pb = npmi_coherence(b, heldout_tokens)["per_topic"]
        ma, mb = ours["metrics"], theirs["metrics"]
        lines += [f"## T = {T}: {SAETM} vs {peer}", "",
                  "| | model | topics | NPMI held-out | C_V held-out | TD | NMI |", "|---|---|---:|---:|---:|---:|---:|"]
        for name, r, m, n in (("saetm", SAETM, ma, len(a)), ("peer", peer, mb, len(b))):
            lines.append(f"| {name} | {r} | {n} | {m.get('npmi_heldout', float('nan')):.3f} | "
                         f"{m.get('cv_heldout', float('nan')):.3f} | {m['topic_diversity']:.3f} | "
                         f"{m.get('nmi', float('nan')):.3f} |")
        lines += ["", f"| # | {SAETM} | {peer} |", "|---:|---|---|"]
        for k, (i, j) in enumerate(pair_topics(a, b), 1):
            left = "–" if i is None else f"{' '.join(a[i][:n_words])} ({pa[i]:.2f})"
            right = "–" if j is None else f"{' '.join(b[j][:n_words])} ({pb[j]:.2f})"
            lines.append(f"| {k} | {left} | {right} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def summary_markdown(runs: dict, corpora: list[str], topics: list[int], holdout: float) -> str:
    """One row per corpus × T: saetm-shipped and the best peer (held-out NPMI), with the margin."""
    def cell(r):
        m = r["metrics"]
        return (f"{m.get('npmi_heldout', float('nan')):.3f} ({m.get('npmi', float('nan')):.3f}) · "
                f"{m['topic_diversity']:.2f} · {m.get('nmi', float('nan')):.3f}")

    lines = ["# saetm vs the best peer on held-out documents (`bench/side_by_side.py`)", "",
             f"From `bench/bench_topics.py --holdout {holdout:g}`: NPMI held-out (NPMI fitted) · TD · NMI. "
             "Best peer = the highest held-out NPMI among the other models run at that corpus and T "
             "(which ones ran: `peers run`). Δ = saetm − best peer, held-out NPMI.", "",
             "| corpus | T | saetm-shipped | best peer | peer | Δ NPMI held-out | peers run |",
             "|---|---:|---:|---|---:|---:|---|"]
    for c in corpora:
        for T in topics:
            pair = saetm_and_best_peer(runs, c, T, holdout)
            if pair is None:
                continue
            ours, peer, theirs = pair
            ran = sorted(r["model"] for r in runs.values() if (r.get("corpus"), r.get("n_topics"), r.get("holdout"))
                         == (c, T, holdout) and r.get("status") == "ok" and r["model"] not in (SAETM, "saetm"))
            d = ours["metrics"]["npmi_heldout"] - theirs["metrics"]["npmi_heldout"]
            name = c if not ours.get("limit") else f"{c} (seeded {ours['limit']:,}-document sample)"
            lines.append(f"| {name} | {T} | {cell(ours)} | {peer} | {cell(theirs)} | {d:+.3f} | {', '.join(ran)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from bench_topics import CorpusData, load_db

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=str(HERE / "results" / "topics-heldout.json"))
    p.add_argument("--corpora", default=None, help="default: every corpus with a saetm-shipped run")
    p.add_argument("--topics", default="20,50")
    p.add_argument("--words", type=int, default=10)
    p.add_argument("--holdout", type=float, default=0.5)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument("--work", default=None, help="folder for the split's scratch files (default: a temporary one, "
                   "so that a running benchmark's files are never rewritten)")
    p.add_argument("--summary-only", action="store_true", help="only write heldout-vs-best-peer.md")
    args = p.parse_args(argv)
    runs = load_db(Path(args.json))["runs"]
    topics = [int(t) for t in args.topics.split(",") if t]
    corpora = (args.corpora.split(",") if args.corpora else
               list(dict.fromkeys(r["corpus"] for r in runs.values()
                                  if r.get("model") == SAETM and r.get("holdout") == args.holdout)))
    import tempfile

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="side_by_side-"))
    summary = Path(args.out_dir) / "heldout-vs-best-peer.md"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(summary_markdown(runs, corpora, topics, args.holdout))
    print(summary.read_text())
    if args.summary_only:
        return 0
    for c in corpora:
        if not any(best_peer(runs, c, T, args.holdout) for T in topics):
            print(f"{c}: no peer run yet, skipped")
            continue
        # the same split and analyzer (and the same seeded subset where the runs were of one: --limit)
        limit = next((r.get("limit") for r in runs.values() if r.get("corpus") == c and r.get("model") == SAETM
                      and r.get("holdout") == args.holdout), None)
        data = CorpusData(c, limit, args.data_seed, work, args.holdout)
        out = Path(args.out_dir) / f"words-{c}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(corpus_markdown(c, runs, topics, args.holdout, args.words, data.heldout_tokens))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
