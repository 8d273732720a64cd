"""The README's peer tables (NPMI · TD · NMI and fit seconds per corpus), from bench_topics' JSON.

    python bench/readme_tables.py [--json bench/results/topics.json] [--topics 20,50,100]
    python bench/readme_tables.py --heldout     # the README's table: held-out NPMI, eight corpora, no seconds

Prints Markdown; bold marks the best value of each measure per corpus and T.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPORA = [("reuters-r8", "R8"), ("fortunes", "fortunes"), ("20newsgroups", "20NG")]
MODELS = [("saetm-shipped", "saetm, shipped SAE (default)"), ("saetm", "saetm, corpus-trained SAE"),
          ("bertopic", "BERTopic"), ("keynmf", "Turftopic KeyNMF"), ("s3", "Turftopic S³"), ("gmm", "Turftopic GMM"),
          ("lda", "scikit-learn LDA"), ("nmf", "scikit-learn NMF"), ("fastopic", "FASTopic")]
MEASURES = ("npmi", "topic_diversity", "nmi")
HELDOUT_CORPORA = [("20newsgroups", "20NG"), ("reuters-r8", "R8"), ("reuters-r52", "R52"), ("brown", "Brown"),
                   ("fortunes", "fortunes"), ("election-tweets", "tweets"), ("sotu", "SotU 3k"),
                   ("wordnet", "WordNet")]


def table(runs: dict, n_topics: int, corpora=CORPORA, measures=MEASURES, seconds: bool = True) -> str:
    CORPORA, MEASURES = corpora, measures  # noqa: N806 (the table's columns)
    def find(corpus, model):
        return next((r for r in runs.values() if r["corpus"] == corpus and r["model"] == model
                     and r["n_topics"] == n_topics and r.get("status") == "ok"), None)

    best = {}
    for c, _ in CORPORA:
        found = [find(c, m) for m, _ in MODELS]
        best[c] = {k: max((r["metrics"][k] for r in found if r), default=None) for k in MEASURES}
    head = "NPMI on held-out documents" if MEASURES[0] == "npmi_heldout" else "NPMI"
    lines = [f"**T = {n_topics}** ({head} · TD · NMI" + ("; fit seconds)" if seconds else ")"), "",
             "| model | " + " | ".join(f"{name} | s" if seconds else name for _, name in CORPORA) + " |",
             "|---|" + ("---:|---:|" if seconds else "---:|") * len(CORPORA)]
    for m, name in MODELS:
        cells = []
        for c, _ in CORPORA:
            r = find(c, m)
            if r is None:
                cells += ["–", "–"] if seconds else ["–"]
                continue
            mt = r["metrics"]

            def fmt(k):
                text = f"{mt[k]:.3f}".replace("-", "−")
                return f"**{text}**" if abs(mt[k] - best[c][k]) < 1e-12 else text

            s = r["fit_seconds"]
            cells += [" · ".join(fmt(k) for k in MEASURES)]
            if seconds:
                cells += [f"{s:.3g}" if s < 100 else f"{s:,.0f}"]
        if any(x != "–" for x in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(HERE / "results" / "topics.json"))
    ap.add_argument("--topics", default="20,50,100")
    ap.add_argument("--heldout", action="store_true",
                    help="held-out NPMI on the eight corpora of topics-heldout.json (--json defaults to it), no seconds")
    args = ap.parse_args(argv)
    if args.heldout and args.json == str(HERE / "results" / "topics.json"):
        args.json = str(HERE / "results" / "topics-heldout.json")
    runs = json.loads(Path(args.json).read_text())["runs"]
    kw = dict(corpora=HELDOUT_CORPORA, measures=("npmi_heldout", "topic_diversity", "nmi"), seconds=False) \
        if args.heldout else {}
    print("\n\n".join(table(runs, int(t), **kw) for t in args.topics.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
