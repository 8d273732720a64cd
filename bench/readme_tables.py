"""The README's peer tables (NPMI · TD · NMI and fit seconds per corpus), from bench_topics' JSON.

    python bench/readme_tables.py [--json bench/results/topics.json] [--topics 20,50,100]

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


def table(runs: dict, n_topics: int) -> str:
    def find(corpus, model):
        return next((r for r in runs.values() if r["corpus"] == corpus and r["model"] == model
                     and r["n_topics"] == n_topics and r.get("status") == "ok"), None)

    best = {}
    for c, _ in CORPORA:
        found = [find(c, m) for m, _ in MODELS]
        best[c] = {k: max((r["metrics"][k] for r in found if r), default=None) for k in MEASURES}
    lines = [f"**T = {n_topics}** (NPMI · TD · NMI; fit seconds)", "",
             "| model | " + " | ".join(f"{name} | s" for _, name in CORPORA) + " |",
             "|---|" + "---:|---:|" * len(CORPORA)]
    for m, name in MODELS:
        cells = []
        for c, _ in CORPORA:
            r = find(c, m)
            if r is None:
                cells += ["–", "–"]
                continue
            mt = r["metrics"]

            def fmt(k):
                text = f"{mt[k]:.3f}".replace("-", "−")
                return f"**{text}**" if abs(mt[k] - best[c][k]) < 1e-12 else text

            s = r["fit_seconds"]
            cells += [" · ".join(fmt(k) for k in MEASURES), f"{s:.3g}" if s < 100 else f"{s:,.0f}"]
        if any(x != "–" for x in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(HERE / "results" / "topics.json"))
    ap.add_argument("--topics", default="20,50,100")
    args = ap.parse_args(argv)
    runs = json.loads(Path(args.json).read_text())["runs"]
    print("\n\n".join(table(runs, int(t)) for t in args.topics.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
