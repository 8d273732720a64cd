"""Where the static encoder's NMI on 20 Newsgroups goes: the embeddings alone, then saetm's settings.

    python bench/static_variants.py      # ~10 min on 2 shared cores (the corpus-trained SAE is most of it)

Encodes all 18,821 posts with the static encoder once, then prints NMI against the
newsgroups of (1) k-means (k = 20) on the embeddings themselves, a ceiling of sorts for
what the embeddings separate; (2) saetm at T = 20 with the shipped static SAE and (3) with
an SAE trained on the corpus (``sae="train"``), each with ``doc_smoothing`` 0.5 / 0 and
``prevalence_power`` 0.5 / 1 (stage 3 only, through ``retopic``), with NPMI and TD.
"""

from __future__ import annotations

import time


def scores(model) -> str:
    s = model.evaluate(word_vectors=None)
    return f"NPMI {s['npmi']:.3f}  TD {s['topic_diversity']:.3f}  NMI {s['nmi']:.3f}"


def main() -> None:
    import torch
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    from saetm.encoders.static import StaticEncoder
    from saetm.io.datasets import load_20newsgroups
    from saetm.model import SAETM

    torch.set_num_threads(1)
    corpus = load_20newsgroups()
    X = StaticEncoder().encode(corpus.texts)
    km = KMeans(20, n_init=1, random_state=0).fit(X)
    print(f"k-means on the static embeddings: NMI {normalized_mutual_info_score(corpus.labels, km.labels_):.3f}")
    for sae in ("auto", "train"):
        t = time.perf_counter()
        model = SAETM(n_topics=20, encoder="static", sae=sae, verbose=False, cache=False).fit(
            corpus.texts, X, labels=corpus.labels)
        print(f"sae={sae} ({model.fit_report_.sae['source']}, fit {time.perf_counter() - t:.0f}s)")
        for smoothing in (0.5, 0.0):
            for power in (0.5, 1.0):
                model.set_params(clustering__doc_smoothing=smoothing, clustering__prevalence_power=power)
                model.retopic(20)
                print(f"  doc_smoothing {smoothing}  prevalence_power {power}:  {scores(model)}", flush=True)


if __name__ == "__main__":
    main()
