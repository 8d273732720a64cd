"""Change the number of topics after fitting: every analysis follows, nothing is refitted.

    python examples/change_topics.py                  # 3,000 posts of 20 Newsgroups
    python examples/change_topics.py --docs 0         # all 18,821 posts

Fits SAE-TM once, then for several numbers of topics T re-runs stage 3 only
(:meth:`SAETM.retopic`) and times every analysis and chart on the new topics. The
SAE, the word distributions and the atom tree stay as fitted (checked at the end).
20 Newsgroups has no dates; for the over-time timings each post's position in the
corpus stands in for a date (12 equal-width bins), which costs the same as real dates.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=3000, help="posts to use, a seeded sample (0: all)")
    p.add_argument("--topics", type=int, nargs="+", default=[10, 20, 50, 100])
    p.add_argument("--sae-steps", type=int, default=None, help="SAE training steps (default: by corpus size)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    p.add_argument("--model", help="a model folder: loaded if it holds a model, else the fitted model is saved there")
    args = p.parse_args()

    import numpy as np
    import torch

    from saetm.io.datasets import load_20newsgroups
    from saetm.model import SAETM

    torch.set_num_threads(args.threads)
    corpus = load_20newsgroups(n=args.docs or None, seed=0)
    if args.model and (Path(args.model) / "model.json").exists():
        model = SAETM.load(args.model)
        if model.doc_topics_.shape[0] != len(corpus):
            raise SystemExit(f"{args.model} holds a model of {model.doc_topics_.shape[0]:,} documents, not {len(corpus):,}")
    else:
        model = SAETM(n_topics=args.topics[0], sae_steps=args.sae_steps, seed=0)
        model.fit(corpus.texts, labels=corpus.labels, ids=corpus.ids)
        if args.model:
            model.save(args.model)
    fitted = [np.array(a, copy=True) for a in (model.theta_.data, model.feature_words_.data, model.feature_prob_,
                                               model.atom_embeddings_, model.atom_tree_.linkage)]
    position = np.arange(len(corpus))  # stands in for dates (see above)

    steps = {
        "retopic": lambda T: model.retopic(T),
        "get_topic_info": lambda T: model.get_topic_info(),
        "topics_per_class + rank_differing_topics": lambda T: (model.topics_per_class(), model.rank_differing_topics()),
        "topics_over_time + rank_changing_topics": lambda T: (model.topics_over_time(position, 12),
                                                              model.rank_changing_topics(position, 12)),
        "hierarchy (text)": lambda T: model.hierarchy(),
        "get_representative_docs (all topics)": lambda T: model.get_representative_docs(n=5),
        "find_topics": lambda T: model.find_topics("the space shuttle launch was delayed"),
        "visualize_* (6 charts)": lambda T: (model.visualize_barchart(), model.visualize_topics(),
                                             model.visualize_topics_over_time(position, 12),
                                             model.visualize_topics_per_class(), model.visualize_hierarchy(),
                                             model.visualize_heatmap()),
    }
    print(f"\n{len(corpus):,} documents, {model.theta_.shape[1]:,} atoms "
          f"({int((model.feature_prob_ > 0).sum()):,} used), vocabulary {len(model.vocab_):,}")
    print(f"{'wall-clock seconds':<42}" + "".join(f"{'T=' + str(T):>9}" for T in args.topics))
    for step in steps.values():  # first calls import scikit-learn and plotly modules: not timed
        step(model.n_topics)
    times = {name: [] for name in steps}
    cpu = []  # process CPU time: equals wall time on an idle machine, not on a shared one
    for T in args.topics:
        c = time.process_time()
        for name, step in steps.items():
            t = time.perf_counter()
            step(T)
            times[name].append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    for name, row in times.items():
        print(f"{name:<42}" + "".join(f"{s:9.3f}" for s in row))
    total = [sum(col) for col in zip(*times.values())]
    print(f"{'total: retopic + every analysis and chart':<42}" + "".join(f"{s:9.3f}" for s in total))
    print(f"{'  the same in CPU seconds':<42}" + "".join(f"{s:9.3f}" for s in cpu))
    same = all(np.array_equal(a, b) for a, b in zip(fitted, (model.theta_.data, model.feature_words_.data,
                                                            model.feature_prob_, model.atom_embeddings_,
                                                            model.atom_tree_.linkage)))
    print(f"SAE activations, word distributions, atom embeddings and atom tree unchanged: {same}")


if __name__ == "__main__":
    main()
