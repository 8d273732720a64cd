"""Does the coherent ranking's minimum co-occurrence support help on held-out documents?

    python bench/min_support.py [--corpora 20newsgroups,reuters-r8,...] [--topics 20,50]
        [--rules 3,1,2,1/2000,1/1000,1/500] [--out bench/results/min-support.md]
    python bench/min_support.py --lever candidates --rules 60,40,25 --out bench/results/candidates.md
    python bench/min_support.py --lever shrink --rules 0,1,2,5,10,v2,v5 --smoothing 0.5,0.75,0.9 \
        --corpora 20newsgroups,...,sotu-n3000,wordnet [--data-seed 0] --out bench/results/shrink.md

``topics/wordrank.py`` orders a topic's words by their NPMI on the fitted documents and
counts pairs seen together in fewer than ``MIN_SUPPORT`` documents as never seen
together. A fixed minimum (3) means little on 10,000 documents; this script tries a
minimum that grows with the number of fitted documents n: rule ``1/500`` =
``max(3, round(n / 500))``, rule ``3`` = the fixed default.

Per corpus and T, saetm with the shipped SAE is fitted once on the same seeded half as
``bench/bench_topics.py --holdout 0.5`` (all defaults, seed 0); only the word ranking
is redone per rule (the topics, i.e. the atoms' clusters, do not depend on it). Each
rule's top words are scored like the benchmark: NPMI (top 10, document co-occurrence)
on the held-out half and on the fitted half, TD over the top 25, and NMI of the fitted
half's argmax topic against the labels (the same for every rule: the ranking does not
change the document weights). A corpus named ``NAME-nN`` is the seeded N-document
sample that ``bench_topics.py --limit N`` fits (``sotu-n3000``).

``--lever candidates`` tries ``N_CANDIDATES`` instead (how many of a topic's best
words by relevance the NPMI ordering may choose from; at least the 25 listed); rule
``3`` is then replaced by the default, 60, as the baseline.

``--lever shrink`` shrinks each pair's NPMI toward 0 by its support: rule ``c`` uses
NPMI · n_ij / (n_ij + c), n_ij = fitted documents holding both words (pairs below
``MIN_SUPPORT`` stay −1; ``0`` is the ranking as it is); rule ``vc`` shrinks toward the
words' GloVe cosine instead: w · NPMI + (1 − w) · cos, w = n_ij / (n_ij + c).
``--smoothing`` also recomputes the fitted documents' weights with each document prior
smoothing s (``SAETM(doc_smoothing=s)``; topics and words unchanged, only NMI moves) on
the same fitted model.

``--weights`` recomputes the fitted documents' weights with variants of the mixture
(``bench/weight_levers.py``: κ = 1/t estimated from the data, the argmax over all topics,
more EM rounds, another fixed t, the documents' words with weight b: ``wB``) on the same
fitted model and scores their NMI against ``base`` (the first variant listed); topics and
words unchanged. ``--encoder static`` fits with the static encoder from the raw texts (its
shipped SAE) instead of the cached MiniLM embeddings.
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

BASELINE = {"min_support": None, "candidates": None, "shrink": "0"}


def support(rule: str, n_docs: int) -> int:
    if "/" not in rule:
        return int(rule)
    return max(3, int(round(n_docs * float(Fraction(rule)))))


def corpus_spec(name: str) -> tuple[str, int | None]:
    """``sotu-n3000`` → ("sotu", 3000); other names → (name, None)."""
    base, _, n = name.rpartition("-n")
    return (base, int(n)) if base and n.isdigit() else (name, None)


def shrunk(npmi_among, c: float, unit_vectors: np.ndarray | None = None):
    """``npmi_among`` with each supported pair's NPMI shrunk by n_ij / (n_ij + c): toward 0,
    or toward the rows' cosine of ``unit_vectors`` (vocabulary order) when given."""
    def npmi(doc_words, words, min_support=None):
        out = npmi_among(doc_words, words) if min_support is None else npmi_among(doc_words, words, min_support)
        if c == 0:
            return out
        from saetm.topics.wordrank import MIN_SUPPORT
        sub = doc_words[:, words]
        together = np.asarray((sub.T @ sub).toarray(), dtype=np.float64)
        w = together / (together + c)
        target = 0.0 if unit_vectors is None else unit_vectors[words] @ unit_vectors[words].T
        seen = together >= max(MIN_SUPPORT if min_support is None else min_support, 1)
        return np.where(seen, w * out + (1.0 - w) * target, out)
    return npmi


def unit_glove(vocab) -> np.ndarray:
    from saetm.topics.wordvectors import GloveVectors

    v = np.asarray(GloveVectors().vectors_for(list(vocab)), dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def nmi_with_smoothing(model, s: float, labels) -> float:
    """NMI of the fitted documents' weights recomputed with document prior smoothing ``s``
    (same atoms and topics; the mixture's EM is rerun)."""
    from saetm.components import resolved
    from saetm.evaluation.measures import label_agreement
    from saetm.topics.stage import document_weights

    atoms = model._atoms()
    W, _, _, _ = document_weights(atoms.theta, atoms.doc_embeddings, model.atom_topic_, model.n_topics,
                                  resolved(model, "clustering"), smoothing=s, words=atoms.doc_words,
                                  word_weight=model.doc_word_weight_, seed=model.seed)
    return label_agreement(W, labels)["nmi"]


def nmi_with_weights(model, variant: str, labels) -> tuple[float, dict]:
    """NMI of the fitted documents' weights recomputed by ``weight_levers.weights(variant)``."""
    import weight_levers
    from saetm.evaluation.measures import label_agreement
    from saetm.topics import merge

    atoms = model._atoms()
    theta_topic = merge.doc_topics(atoms.theta, model.atom_topic_, model.n_topics)
    W, info = weight_levers.weights(theta_topic, atoms.doc_embeddings, variant, smoothing=model.doc_smoothing_,
                                    doc_words=model.doc_words_)
    return label_agreement(W, labels)["nmi"], info


def main(argv=None) -> int:
    from bench_topics import CorpusData
    from saetm.evaluation.coherence import npmi_coherence
    from saetm.evaluation.measures import label_agreement, topic_diversity
    from saetm.model import SAETM
    from saetm.topics import wordrank

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default="20newsgroups,reuters-r8,reuters-r52,brown,fortunes,election-tweets")
    p.add_argument("--topics", default="20,50")
    p.add_argument("--rules", default="3,1,2,1/2000,1/1000,1/500")
    p.add_argument("--lever", choices=["min_support", "candidates", "shrink"], default="min_support")
    p.add_argument("--smoothing", default="", help="document prior smoothings to score NMI with (first: baseline)")
    p.add_argument("--weights", default="", help="document weight variants to score NMI with (first: baseline)")
    p.add_argument("--encoder", choices=["default", "static"], default="default",
                   help="static: the static encoder from the raw texts instead of the cached MiniLM embeddings")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the held-out half (and of a NAME-nN sample, whose embeddings must be cached)")
    p.add_argument("--out", default=str(HERE / "results" / "min-support.md"))
    args = p.parse_args(argv)
    rules = args.rules.split(",")
    smoothings = [float(s) for s in args.smoothing.split(",") if s]
    variants = [v for v in args.weights.split(",") if v]
    work = Path(tempfile.mkdtemp(prefix="min_support-"))
    original = wordrank.npmi_among
    default = wordrank.npmi_among.__defaults__, wordrank.coherent_order.__defaults__
    baseline = BASELINE[args.lever] or str(wordrank.MIN_SUPPORT if args.lever == "min_support" else wordrank.N_CANDIDATES)
    rows, nmis = [], []
    try:
        for c in args.corpora.split(","):
            name, limit = corpus_spec(c)
            data = CorpusData(name, limit, args.data_seed, work, 0.5)
            emb = np.ascontiguousarray(np.load(data.embeddings_path, allow_pickle=False)[data.rows])
            for T in [int(t) for t in args.topics.split(",")]:
                t0 = time.process_time()
                model = SAETM(n_topics=T, sae="default", seed=0, cache=False, verbose=False, encoder=args.encoder)
                model.fit(data.texts, None if args.encoder == "static" else emb)
                n = model.doc_words_.shape[0]
                nmi = label_agreement(model.doc_topics_, data.labels)["nmi"] if data.labels else float("nan")
                print(f"{c} T={T}: fitted on {n} documents in {time.process_time() - t0:.0f} CPU s, NMI {nmi:.4f}",
                      flush=True)
                glove = unit_glove(model.vocab_) if any(r.startswith("v") for r in rules) else None
                for rule in rules:
                    wordrank.npmi_among = original
                    if args.lever == "min_support":
                        ms = support(rule, n)
                        wordrank.npmi_among.__defaults__ = (ms,)
                    elif args.lever == "candidates":
                        ms = int(rule)
                        wordrank.coherent_order.__defaults__ = (ms, None, None)
                    else:
                        ms = float(rule.lstrip("v"))
                        wordrank.npmi_among = shrunk(original, ms, glove if rule.startswith("v") else None)
                    model.__dict__.pop("_word_lists", None)  # the ranking is cached per model
                    words = [[w for w, _ in model.get_topic(k, n_words=25)] for k in range(model.n_topics)]
                    words = [w for w in words if w]
                    row = {"corpus": c, "T": T, "rule": rule, "value": ms, "n_fitted": n,
                           "npmi_heldout": npmi_coherence(words, data.heldout_tokens)["mean"],
                           "npmi_fitted": npmi_coherence(words, data.tokens)["mean"],
                           "td": topic_diversity(words, 25), "nmi": nmi, "top10": [w[:10] for w in words]}
                    rows.append(row)
                    print(f"  rule {rule:>7} ({ms:>3}): NPMI held-out {row['npmi_heldout']:.4f}, "
                          f"fitted {row['npmi_fitted']:.4f}, TD {row['td']:.3f}", flush=True)
                for s in smoothings:
                    v = nmi_with_smoothing(model, s, data.labels)
                    nmis.append({"corpus": c, "T": T, "smoothing": s, "nmi": v})
                    print(f"  doc_smoothing {s}: NMI {v:.4f}", flush=True)
                for variant in variants:
                    v, info = nmi_with_weights(model, variant, data.labels)
                    nmis.append({"corpus": c, "T": T, "weights": variant, "nmi": v, **info})
                    print(f"  weights {variant}: NMI {v:.4f} (t {info['t_min']:.4f}–{info['t_max']:.4f}, "
                          f"{info['rounds']} rounds)", flush=True)
    finally:
        wordrank.npmi_among = original
        wordrank.npmi_among.__defaults__, wordrank.coherent_order.__defaults__ = default
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "smoothing": nmis}, indent=1))
    lines = report(rows, [x for x in nmis if "smoothing" in x], rules, smoothings, baseline, args.lever, argv,
                   args.data_seed)
    if variants:
        lines += weights_report([x for x in nmis if "weights" in x], variants)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[lines.index("Over corpus × T cells (worse: Δ < −0.01):"):]))
    return 0


TITLES = {"min_support": ("Minimum co-occurrence support", "min support"),
          "candidates": ("Candidate words (N_CANDIDATES)", "candidates"),
          "shrink": ("NPMI shrunk by co-occurrence support", "c")}


def report(rows, nmis, rules, smoothings, baseline, lever, argv, seed=0) -> list[str]:
    title, column = TITLES[lever]
    lines = [f"# {title} of the coherent ranking (`bench/min_support.py`)", "",
             f"Command: `python bench/min_support.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             "saetm-shipped, defaults, seed 0, fitted on the seeded half (`--holdout 0.5`, data seed "
             f"{seed}); "
             f"Δ = held-out NPMI minus that of rule `{baseline}` (the default) at the same corpus and T; "
             "top-10 changed: topics whose first 10 words differ from the default's; NMI: the fitted half's "
             "argmax topic against the labels (the ranking does not change it).", "",
             f"| corpus | T | rule | {column} | NPMI held-out | Δ | NPMI fitted | TD | NMI | top-10 changed |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    base = {(r["corpus"], r["T"]): r for r in rows if r["rule"] == baseline}
    for r in rows:
        b = base.get((r["corpus"], r["T"]))
        d = r["npmi_heldout"] - b["npmi_heldout"] if b else np.nan
        changed = sum(x != y for x, y in zip(r["top10"], b["top10"])) if b else "–"
        lines.append(f"| {r['corpus']} | {r['T']} | {r['rule']} | {r['value']:g} | {r['npmi_heldout']:.4f} | "
                     f"{d:+.4f} | {r['npmi_fitted']:.4f} | {r['td']:.3f} | {r['nmi']:.4f} | {changed} |")
    lines += ["", "Over corpus × T cells (worse: Δ < −0.01):", "",
              "| rule | mean Δ held-out NPMI | cells better | cells worse | mean Δ fitted NPMI | min TD |",
              "|---|---:|---:|---:|---:|---:|"]
    for rule in rules:
        rs = [r for r in rows if r["rule"] == rule and (r["corpus"], r["T"]) in base]
        ds = [r["npmi_heldout"] - base[(r["corpus"], r["T"])]["npmi_heldout"] for r in rs]
        fs = [r["npmi_fitted"] - base[(r["corpus"], r["T"])]["npmi_fitted"] for r in rs]
        lines.append(f"| {rule} | {np.mean(ds):+.4f} | {sum(d > 0 for d in ds)}/{len(ds)} | "
                     f"{sum(d < -0.01 for d in ds)}/{len(ds)} | {np.mean(fs):+.4f} | {min(r['td'] for r in rs):.3f} |")
    if smoothings:
        lines += ["", f"Document prior smoothing (`doc_smoothing`): NMI of the same fitted models, weights "
                  f"recomputed (EM rerun) with each s; Δ against s = {smoothings[0]:g}.", "",
                  "| corpus | T | " + " | ".join(f"s = {s:g}" for s in smoothings) + " |",
                  "|---|---:|" + "---:|" * len(smoothings)]
        cells = list(dict.fromkeys((x["corpus"], x["T"]) for x in nmis))  # in the order measured
        got = {(x["corpus"], x["T"], x["smoothing"]): x["nmi"] for x in nmis}
        for c, T in cells:
            b = got[(c, T, smoothings[0])]
            lines.append(f"| {c} | {T} | {b:.4f} | " + " | ".join(
                f"{got[(c, T, s)]:.4f} ({got[(c, T, s)] - b:+.4f})" for s in smoothings[1:]) + " |")
        lines += ["", "| s | mean Δ NMI | cells better | cells worse |", "|---:|---:|---:|---:|"]
        for s in smoothings[1:]:
            ds = [got[(c, T, s)] - got[(c, T, smoothings[0])] for c, T in cells]
            lines.append(f"| {s:g} | {np.mean(ds):+.4f} | {sum(d > 0 for d in ds)}/{len(ds)} | "
                         f"{sum(d < -0.01 for d in ds)}/{len(ds)} |")
    return lines


def weights_report(nmis, variants) -> list[str]:
    """NMI per corpus × T of each ``--weights`` variant, Δ against the first, and the summary."""
    got = {(x["corpus"], x["T"], x["weights"]): x for x in nmis}
    cells = list(dict.fromkeys((x["corpus"], x["T"]) for x in nmis))
    first = variants[0]
    lines = ["", f"Document weight variants (`--weights`, `bench/weight_levers.py`): NMI of the same fitted models, "
             f"weights recomputed; Δ against `{first}`; t: the final temperature (range over topics).", "",
             "| corpus | T | " + " | ".join(variants) + " |", "|---|---:|" + "---:|" * len(variants)]
    for c, T in cells:
        b = got[(c, T, first)]["nmi"]
        cols = [f"{b:.4f}"]
        for v in variants[1:]:
            x = got[(c, T, v)]
            t = f"{x['t_min']:.3f}" if abs(x["t_max"] - x["t_min"]) < 5e-4 else f"{x['t_min']:.3f}–{x['t_max']:.3f}"
            cols.append(f"{x['nmi']:.4f} ({x['nmi'] - b:+.4f}" + (f", t {t})" if v.startswith("ml") else
                        f", {x['rounds']} rounds)" if v.startswith("conv") else ")"))
        lines.append(f"| {c} | {T} | " + " | ".join(cols) + " |")
    lines += ["", "| weights | mean Δ NMI | cells better | cells worse by > 0.01 | min Δ |", "|---|---:|---:|---:|---:|"]
    for v in variants[1:]:
        ds = [got[(c, T, v)]["nmi"] - got[(c, T, first)]["nmi"] for c, T in cells]
        lines.append(f"| {v} | {np.mean(ds):+.4f} | {sum(d > 0 for d in ds)}/{len(ds)} | "
                     f"{sum(d < -0.01 for d in ds)}/{len(ds)} | {min(ds):+.4f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
