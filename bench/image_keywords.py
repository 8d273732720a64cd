"""Do images' main topics name what is in them? (README, section Images.)

    python bench/image_keywords.py [--images 1000] [--seeds 0,1,2]

Fits saetm on Open Clip Art images (EfficientNet-Lite0 embeddings, a corpus-trained SAE:
2,048 atoms, k=16, 500 steps; T=10; min_df=3) and prints, per seed, the mean share of an
image's keyword tokens found among the top 25 words of its main topic — with the default
document weights (``doc_weights="centroid"``), with the paper's θ share, and for a random
topic (each image's main topic shuffled across images, 20 times). Needs the Open Clip Art
package (``apt-get install openclipart-png openclipart-svg``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

TOKENS = re.compile(r"(?u)\b[^\W\d_]{2,}\b")  # the vocabulary's token pattern


def overlap(doc_topics, top_words, keywords, main=None):
    D = doc_topics.toarray()
    main = D.argmax(1) if main is None else main
    rows = [i for i in range(len(keywords)) if D[i].sum() > 0 and keywords[i]]
    return float(np.mean([len(keywords[i] & top_words[main[i]]) / len(keywords[i]) for i in rows])), rows, main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()
    import torch

    from saetm import SAETM
    from saetm.components import SAETraining
    from saetm.encoders.image import ImageEncoder, encode_collection
    from saetm.io.images import load_openclipart
    from saetm.topics import merge

    torch.set_num_threads(1)
    corpus, X, _ = encode_collection(load_openclipart(n=args.images), ImageEncoder())
    keywords = [set(TOKENS.findall(" ".join(k).lower())) for k in corpus.extra["keywords"]]
    print("| seed | centroid weights (default) | θ share (paper) | random topic |\n|---:|---:|---:|---:|")
    for seed in (int(s) for s in args.seeds.split(",")):
        m = SAETM(n_topics=10, sae=SAETraining(n_atoms=2048, k=16, steps=500), min_df=3, seed=seed, verbose=False)
        m.fit(corpus.texts, X, labels=corpus.labels)
        top = [{w for w, _ in m.get_topic(t, 25)} for t in range(m.n_topics)]
        default, rows, main_topic = overlap(m.doc_topics_, top, keywords)
        theta, _, _ = overlap(merge.doc_topics(m.theta_, m.atom_topic_, m.n_topics), top, keywords)
        rng = np.random.default_rng(0)
        chance = np.mean([overlap(m.doc_topics_, top, keywords, dict(zip(rows, rng.permutation(main_topic[rows]))))[0]
                          for _ in range(20)])
        print(f"| {seed} | {default:.3f} | {theta:.3f} | {chance:.3f} |", flush=True)


if __name__ == "__main__":
    main()
