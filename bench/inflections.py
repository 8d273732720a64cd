"""Inflections among the top words: the default vocabulary against ``merge_inflections`` and
``lemmatize`` on a seeded 20 Newsgroups slice (shipped SAE, all else default).

    python bench/inflections.py [--docs 3000] [--topics 20,50] [--seed 0]

Per setting and T: the vocabulary size; "repeats", listed words whose simplemma inflection
key (``saetm.words.vocab.inflection_key``) is that of a word above them in the same topic
(top 10 and top 25); "suffix pairs", pairs of a topic's top 10 words that differ by a plain
suffix (s, es, ed, d, ing, er, ers, y→ies: independent of simplemma); and ``evaluate``'s
TD, NPMI, C_V (each setting's own tokens: merged or lemmatised words count as one) and NMI.
Prints JSON lines, then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys


def suffix_pair(a: str, b: str) -> bool:
    a, b = sorted((a, b), key=len)
    return (any(b == a + s for s in ("s", "es", "ed", "d", "ing", "er", "ers"))
            or (a.endswith("y") and b == a[:-1] + "ies"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=3000)
    p.add_argument("--topics", default="20,50")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)

    import simplemma

    from saetm import __version__
    from saetm.encoders.text import TextEncoder, encode_cached
    from saetm.io.datasets import load_20newsgroups
    from saetm.model import SAETM
    from saetm.words.vocab import inflection_key

    print(f"# {' '.join(sys.argv)} | saetm {__version__}, simplemma {simplemma.__version__}, "
          f"Python {platform.python_version()}, {platform.machine()}", flush=True)
    corpus = load_20newsgroups(n=args.docs, seed=args.seed)
    X = encode_cached(TextEncoder(), corpus.texts, show_progress=False)
    key = inflection_key()

    def repeats(words, n):
        out = 0
        for ws in words:
            keys = [key(w) for w in ws[:n]]
            out += len(keys) - len(set(keys))
        return out

    rows = []
    for T in [int(t) for t in args.topics.split(",")]:
        for name, kw in (("default", {}), ("merge_inflections", {"merge_inflections": True}),
                         ("lemmatize", {"lemmatize": True})):
            m = SAETM(n_topics=T, seed=args.seed, verbose=False, **kw).fit(corpus.texts, X, labels=corpus.labels)
            words = m._top_words(25)[0]
            ev = m.evaluate(word_vectors=None)
            row = {"T": T, "setting": name, "vocabulary": len(m.vocab_), "repeats_top10": repeats(words, 10),
                   "repeats_top25": repeats(words, 25),
                   "suffix_pairs_top10": sum(suffix_pair(a, b) for ws in words for i, a in enumerate(ws[:10])
                                             for b in ws[i + 1:10]),
                   **{k: round(float(ev[k]), 4) for k in ("topic_diversity", "npmi", "cv", "nmi")},
                   "topic_0": " ".join(words[0][:10])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = ["T", "setting", "vocabulary", "repeats_top10", "repeats_top25", "suffix_pairs_top10",
            "topic_diversity", "npmi", "cv", "nmi"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
