"""Ablation of saetm's stage-2/3 choices on the benchmark corpora (issue #4).

    python bench/ablation.py [--sae train|default] [--corpora reuters-r8,fortunes] [--topics 20,50]
        [--variants NAME,...] [--out bench/results/ablation.md] [--force] [--table-only]

Per corpus, saetm is fitted once with the benchmark's settings on the cached
all-MiniLM-L6-v2 embeddings: ``--sae train`` (default) ``SAETM(sae="train", seed=0)``, the
corpus-trained SAE coming from saetm's SAE cache when ``bench_topics.py`` or an earlier run
trained it; ``--sae default`` ``SAETM(sae="default")``, the SAE shipped with saetm (no
training, results in ``ablation-shipped.md``/``.json`` unless ``--out`` says otherwise).
The SAE, θ and the embeddings are then kept, and every variant changes only stage 2 (EM:
π, IDF) and/or stage 3 (how atoms are embedded for clustering, which atoms are clustered,
how topic words are ranked): stage 2 is re-run only when its settings differ, stage 3
through ``SAETM.retopic`` or, for the script-only levers (SCRIPT_LEVERS), a copy
of ``saetm.topics.stage.cluster`` with those changes.

Every variant is scored with ``bench_topics.evaluate`` — the very call that scores saetm
and the peers in ``bench/results/topics.md`` (NPMI and C_V against the corpus, TD over the
top 25, NMI/ARI of the argmax topic against the labels) — so the rows compare directly
with that table. ``seconds`` = the variant's own stage-2 (when re-run) and stage-3 time.
Results are stored per (corpus, T, variant) in the JSON next to ``--out`` as they finish;
a rerun skips finished rows unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench_topics import CorpusData, evaluate, machine_info, package_versions  # noqa: E402

N_WORDS = 25
OLD_DEFAULT = {"atom_space": "words"}

# name -> (settings for SAETM, ranking override or None, description)
#   ranking override: ("relevance-marginal", λ) ranks by relevance against the atoms'
#   marginal word distribution Σ_k θ̄_k B_k (= SAETM(word_ranking="relevance") with λ);
#   ("lift-p0" | "relevance-p0", λ) against the EM background p0 (saetm's earlier behaviour);
#   ("cap", m): β ranking, each word listed only in the m topics holding most of its β;
#   ("topic-em", π): β ranking of β re-fitted by stage 2's EM on the merged θ (doc_topics_)
#   with background weight π: each topic's words estimated as one atom, not as the θ̄-weighted
#   mean of its atoms' B.
VARIANTS = {
    "words (paper; old default)": ({"atom_space": "words"}, None,
                                   "atom = sparsified B_k (τ=0.9) · GloVe; β ranking"),
    "words, τ=0.5": ({"atom_space": "words", "tau": 0.5}, None, "fewer words per atom embedding"),
    "decoder": ({"atom_space": "decoder"}, None, "atom = SAE decoder column"),
    "documents": ({"atom_space": "documents"}, None, "atom = θ-weighted mean document embedding"),
    "coactivation": ({"atom_space": "coactivation"}, None, "atom = rank-64 SVD row of θ"),
    "documents+coactivation (new default)": ({"atom_space": "documents+coactivation"}, None,
                                             "both views side by side"),
    "new default, π=0.1": ({"background_weight": 0.1}, None, "smaller background weight"),
    "new default, π=0.6": ({"background_weight": 0.6}, None, "larger background weight"),
    "new default, IDF": ({"idf": True}, None, "IDF-weighted counts in EM"),
    "new default, rank lift": ({}, ("lift-p0", None), "β / max(p0, 1/V), p0 = EM background"),
    "new default, rank relevance (p0, λ=0.6)": ({}, ("relevance-p0", 0.6),
                                                "LDAvis relevance vs the EM background p0"),
    "new default, rank relevance (marginal, λ=0.8)": ({}, ("relevance-marginal", 0.8),
                                                      "relevance vs Σθ̄B, λ=0.8"),
    "new default, rank relevance (marginal, λ=0.6)": ({}, ("relevance-marginal", 0.6),
                                                      "relevance vs Σθ̄B, λ=0.6"),
    "new default, each word in ≤2 topics": ({}, ("cap", 2), "β ranking, word kept in its 2 best topics"),
    "new default, each word in 1 topic": ({}, ("cap", 1), "β ranking, word kept in its best topic only"),
    # Script-only levers (SCRIPT_LEVERS), added for the shipped SAE.
    "new default, documents weight 0.25": ({"mix": 0.25}, None, "documents view weighted 0.25, co-activation 0.75"),
    "new default, documents weight 0.75": ({"mix": 0.75}, None, "documents view weighted 0.75, co-activation 0.25"),
    "new default, co-activation rank 128": ({"coact_dim": 128}, None, "rank-128 SVD of θ instead of 64"),
    "new default, co-activation rank 256": ({"coact_dim": 256}, None, "rank-256 SVD of θ instead of 64"),
    "new default, atoms in ≥10 docs, rest dropped": ({"min_docs": 10}, None,
                                                     "atoms active in < 10 documents join no topic"),
    "new default, atoms in ≥30 docs, rest dropped": ({"min_docs": 30}, None,
                                                     "atoms active in < 30 documents join no topic"),
    "new default, atoms in ≥30 docs, rest nearest": ({"min_docs": 30, "orphans": "nearest"}, None,
                                                     "atoms active in < 30 documents join the nearest topic"),
    "new default, atoms in ≥100 docs, rest nearest": ({"min_docs": 100, "orphans": "nearest"}, None,
                                                      "atoms active in < 100 documents join the nearest topic"),
    "new default, topic β by EM (π=0.3)": ({}, ("topic-em", 0.3),
                                          "β re-estimated by the stage-2 EM with the T merged atoms as features"),
    "new default, topic β by EM (π=0.6)": ({}, ("topic-em", 0.6),
                                          "β re-estimated by the stage-2 EM with the T merged atoms as features"),
    # The steps of the "coherent" ranking (saetm.topics.wordrank; the default since saetm 0.2).
    "new default, rank relevance (marginal, λ=0.4)": ({}, ("relevance-marginal", 0.4),
                                                      "coherent step 1: relevance vs Σθ̄B, λ=0.4"),
    "new default, relevance λ=0.4, each word in ≤2 topics": ({}, ("relevance-cap", 0.4),
                                                             "coherent steps 1+2: ... each word kept in its 2 "
                                                             "most relevant topics"),
    "coherent ranking (default since 0.2)": ({"word_ranking": "coherent"}, None,
                                             "steps 1+2, then the top 60 ordered greedily by mean NPMI (document "
                                             "co-occurrence in the fitted corpus) with the words already listed"),
    # Does the co-occurrence order only fit the corpus it is scored on? Split the documents in two
    # halves (seeded); NPMI/C_V are scored on half B only, the ranking sees half A only.
    # The NMI gap to GMM: is it the topics (the atom partition) or the document weights (Σ θ)?
    "coherent, atoms follow document clusters": ({"word_ranking": "coherent", "doc_clusters": True}, None,
                                                 "k-means (T) of the L2-normalised document embeddings; each atom "
                                                 "joins the cluster holding most of its θ mass"),
    "coherent, document weights × centroid similarity (default since 0.3)": (
        {"word_ranking": "coherent", "doc_weights": "centroid", "centroid_rounds": 1}, None,
        "same topics; a document's Σθ per topic × exp(cos(document, topic centroid) / 0.05), renormalised; "
        "centroid = the θ-weighted mean of its documents' embeddings (SAETM(doc_weights='centroid'))"),
    "coherent, document weights × atom-space similarity": (
        {"word_ranking": "coherent", "atom_space_weights": True}, None,
        "as the row above, but documents and centroids placed in the atom space (θ-weighted mean of the atoms' "
        "stored embeddings), temperature 0.02: needs only what the model keeps"),
    "β ranking, scored on held-out half": ({}, ("heldout", "beta"),
                                          "NPMI/C_V against half B of the documents (control for the next row)"),
    "coherent ranking from half A, scored on half B": ({}, ("heldout", "coherent"),
                                                       "co-occurrence order computed on half A only; "
                                                       "NPMI/C_V against half B"),
    # EM stops earlier since 0.3: what does it cost? (each row with the row above's weights)
    "coherent, EM tolerance 1e-4": (
        {"word_ranking": "coherent", "em_tol": 1e-4, "doc_weights": "centroid", "centroid_rounds": 1}, None,
        "stage 2 stops when the NLL per token changes by < 1e-4 (relative) in one iteration, not 1e-5"),
    "coherent, EM tolerance 3e-4": ({"word_ranking": "coherent", "em_tol": 3e-4, "doc_weights": "centroid",
                                     "centroid_rounds": 1}, None,
                                    "as the row above, < 3e-4"),
    "coherent, EM tolerance 1e-3 (default since 0.3)": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "centroid_rounds": 1}, None,
        "as the row above, < 1e-3: saetm 0.3's defaults"),
    # Since 0.4 the mixture's centroids (and topic weights ρ) are fitted by EM (θ_topic stays the prior).
    "coherent, centroids refined in 5 rounds": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "centroid_rounds": 5,
         "mixture_priors": False}, None,
        "as the row above, then 4 times: centroids = weighted mean of the documents under the current weights, "
        "weights = Σθ × exp(cos / 0.05) again"),
    "coherent, centroids refined in 10 rounds": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "centroid_rounds": 10,
         "mixture_priors": False}, None,
        "as the row above, 10 rounds"),
    "coherent, centroids refined in 20 rounds": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "centroid_rounds": 20,
         "mixture_priors": False}, None,
        "as the row above, 20 rounds"),
    "coherent, centroids and topic weights by EM, 10 rounds (default since 0.4)": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid"}, None,
        "10 rounds as above, each also re-estimating every topic's weight ρ in the mixture (W ∝ Σθ · ρ · "
        "exp(cos / 0.05)): saetm 0.4's defaults"),
    # Since 0.5 a word already listed by an earlier (larger) topic must beat the unlisted candidates'
    # mean NPMI by the penalty to be listed again (saetm.topics.wordrank, step 3).
    "coherent, repeated words penalised 0.1": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.1}, None,
        "as the row above; in the co-occurrence order a word among the first 25 of an earlier topic has 0.1 "
        "subtracted from its mean NPMI with the words listed"),
    "coherent, repeated words penalised 0.2 (default since 0.5)": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2}, None,
        "as the row above, 0.2: saetm 0.5's defaults"),
    "coherent, repeated words penalised 0.4": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.4}, None,
        "as the row above, 0.4"),
    # Since 0.6 each document's prior in the mixture is (1 − s)·θ share + s/T (saetm.topics.docweights).
    "0.5 defaults, document prior smoothed 0.25": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.25}, None,
        "as the 0.2 row; in the mixture's EM each document's prior is 0.75 × its atoms' θ share + 0.25 spread "
        "evenly over all topics (the weights still cover only the topics of its atoms)"),
    "0.5 defaults, document prior smoothed 0.5 (default since 0.6)": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5}, None,
        "as the row above, s = 0.5: saetm 0.6's defaults"),
    "0.5 defaults, document prior smoothed 0.75": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.75}, None,
        "as the row above, s = 0.75"),
    # Since 0.6 a topic's first word is the one of its 5 best candidates whose co-occurrence list
    # leads with the most coherent 10 words (saetm.topics.wordrank, step 3); before, the best one.
    "0.6 defaults, first word the best of 5 anchors (default since 0.6)": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 5}, None,
        "as the smoothed 0.5 row; each topic's list is built from each of its 5 best candidates as the first "
        "word and the one whose first 10 words have the highest mean NPMI (less their repeat penalty) kept"),
    "0.6 defaults, first word the best of 10 anchors": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 10}, None, "as the row above, 10 candidates tried"),
    "0.5 defaults (one anchor), ranked on half A, scored on half B": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5}, ("heldout", "coherent"),
        "the smoothed 0.5 row, its words ranked with half A's co-occurrences, NPMI/C_V scored on half B only"),
    "0.6 defaults (5 anchors), ranked on half A, scored on half B": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 5}, ("heldout", "coherent"), "as the row above, with 5 anchors"),
    # Since 0.7 atoms weigh θ̄^p, p = 0.5, when clustered into topics (saetm.topics.merge.cluster_weights);
    # before, θ̄ itself (p = 1, the paper's weighted k-means).
    "0.6 defaults, atoms clustered with weights θ̄^0.75": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 5, "prevalence_power": 0.75}, None,
        "as the 5-anchor row; in the atom tree and the k-means that group atoms into topics each atom weighs "
        "θ̄^0.75 instead of θ̄ (β, the words, still θ̄-weighted)"),
    "0.6 defaults, atoms clustered with weights θ̄^0.5 (default since 0.7)": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 5, "prevalence_power": 0.5}, None,
        "as the row above, p = 0.5: saetm 0.7's defaults"),
    "0.6 defaults, atoms clustered with weights θ̄^0.25": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 5, "prevalence_power": 0.25}, None, "as the row above, p = 0.25"),
    "0.7 defaults, ranked on half A, scored on half B": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_smoothing": 0.5, "anchors": 5, "prevalence_power": 0.5}, ("heldout", "coherent"),
        "saetm 0.7's defaults, words ranked with half A's co-occurrences, NPMI/C_V scored on half B only"),
    # The partition itself, with everything else at 0.5's defaults (measured, not adopted).
    "0.5 defaults, atoms follow document clusters": (
        {"word_ranking": "coherent", "em_tol": 1e-3, "doc_weights": "centroid", "word_diversity": 0.2,
         "doc_clusters": True}, None,
        "as the 0.2 row, but the topics are k-means (T) clusters of the L2-normalised document embeddings, each "
        "atom joining the cluster that holds most of its θ mass (clusters no atom joins are dropped)"),
}
STAGE2 = ("background_weight", "idf", "em_tol")
SCRIPT_LEVERS = ("mix", "coact_dim", "min_docs", "orphans", "doc_clusters", "atom_space_weights",
                 "centroid_rounds", "mixture_priors", "anchors")  # not SAETM parameters
# The rows were measured against these (saetm 0.1/0.2 settings); each row names what it changes.
DEFAULTS = {"background_weight": 0.3, "idf": False, "atom_space": "documents+coactivation", "tau": 0.9,
            "word_ranking": "beta", "em_tol": 1e-5, "doc_weights": "theta",
            "word_diversity": 0.0,  # rows before saetm 0.5 list each topic's words on its own
            "doc_smoothing": 0.0,  # and before 0.6 the mixture's prior is the θ share alone
            "prevalence_power": 1.0}  # and before 0.7 atoms are clustered with weights θ̄


# ---------------------------------------------------------------- fitting

class Base:
    """One saetm fit per corpus; variants re-run stage 2 and/or 3 on its θ."""

    def __init__(self, data: CorpusData, seed: int, sae: str = "train"):
        import torch

        from saetm.model import SAETM
        from saetm.settings import new_keys
        from saetm.words.vocab import build_vocabulary

        torch.set_num_threads(1)
        self.data = data
        self.X = np.load(data.embeddings_path, allow_pickle=False)
        # The corpus-trained base keeps the settings its rows were measured with.
        first = OLD_DEFAULT if sae == "train" else {}
        # doc_weights="centroid" at the fit only keeps the embeddings; each row sets its own
        self.model = SAETM(n_topics=20, sae=sae, seed=seed, verbose=False).set_params(
            **new_keys({**DEFAULTS, **first, "doc_weights": "centroid"}))
        t = time.perf_counter()
        self.model.fit(data.texts, self.X)
        self.fit_seconds = time.perf_counter() - t
        self.sae_info = dict(self.model.fit_report_.sae)
        _, self.counts = build_vocabulary(data.texts, min_df=self.model.min_df, max_df=self.model.max_df,
                                          max_features=self.model.max_features, stop_words=self.model.stop_words)
        self.stage2 = {k: getattr(self.model, k) for k in STAGE2}
        self.rows = np.arange(self.X.shape[0])
        self.views = {}  # (view, rank) -> atom embeddings, reused across rows

    def _view(self, name: str, dim: int = 64) -> np.ndarray:
        from saetm.topics import atomspace

        k = (name, dim)  # both views depend on θ and X only, not on stage 2
        if k not in self.views:
            m = self.model
            self.views[k] = (atomspace.document_embeddings(m.theta_, self.X) if name == "documents"
                             else atomspace.coactivation_embeddings(m.theta_, dim=dim, seed=m.seed))
        return self.views[k]

    def apply(self, settings: dict, n_topics: int) -> float:
        """Set a variant's settings and recompute what they touch; returns seconds."""
        from saetm.components import resolved
        from saetm.topics import stage as topics_stage
        from saetm.words import stage as words_stage
        from saetm.settings import new_keys
        from saetm.topics import wordrank

        m = self.model
        extra = {k: settings[k] for k in SCRIPT_LEVERS if k in settings}
        # first-word candidates of the coherent order: 1 (the best) before saetm 0.6
        wordrank.N_ANCHORS = int(extra.get("anchors", 1))
        m._word_lists = {}
        want = {**DEFAULTS, **{k: v for k, v in settings.items() if k not in SCRIPT_LEVERS}}
        t = time.perf_counter()
        m.set_params(**new_keys(want))
        if any(self.stage2[k] != want[k] for k in STAGE2):
            fw = words_stage.feature_words(m.theta_, self.counts, resolved(m, "words"))
            m.feature_words_, m.background_, m.feature_prob_ = fw.feature_words, fw.background, fw.feature_prob
            self.stage2 = {k: want[k] for k in STAGE2}
        if "mix" in extra or "coact_dim" in extra:
            # documents view weighted w, co-activation (rank coact_dim) 1 − w; w = 0.5, rank 64: the default
            w = float(extra.get("mix", 0.5))
            m.atom_embeddings_ = np.hstack([np.sqrt(w) * self._view("documents"),
                                            np.sqrt(1.0 - w) * self._view("coactivation", extra.get("coact_dim", 64))
                                            ]).astype(np.float32)
        else:
            m.atom_embeddings_ = topics_stage.atom_embeddings(
                m.feature_words_, resolved(m, "clustering"), vocab=m.vocab_, encoder=m.encoder_, sae=m.sae_,
                seed=m.seed, theta=m.theta_, X=self.X, rows=self.rows)
        if "min_docs" in extra:
            m._set_topics(cluster_common_atoms(m, n_topics, extra["min_docs"], extra.get("orphans", "none")))
        elif extra.get("doc_clusters"):
            m._set_topics(atoms_by_document_clusters(m, self.X, n_topics))
        else:
            m.atom_tree_ = topics_stage.atom_tree(m.atom_embeddings_, m.feature_prob_, m.clustering.prevalence_power)
            m.retopic(n_topics)
        if "centroid_rounds" in extra or "mixture_priors" in extra:
            m.doc_topics_, m.topic_centroids_, m.topic_priors_, m.word_centroids_ = topics_stage.document_weights(
                m.theta_, m.doc_embeddings_, m.atom_topic_, m.n_topics, resolved(m, "clustering"),
                rounds=extra.get("centroid_rounds"), fit_priors=extra.get("mixture_priors", True),
                words=m._atoms().doc_words, word_weight=m.doc_word_weight_, seed=m.seed)
        if extra.get("atom_space_weights"):
            from saetm.topics import docweights

            E = np.asarray(m.theta_ @ m.atom_embeddings_)
            m.doc_topics_ = docweights.sharpen(m.doc_topics_, E, docweights.topic_centroids(m.doc_topics_, E), 0.02)
        return time.perf_counter() - t


def atoms_by_document_clusters(m, X: np.ndarray, n_topics: int):
    """Topics = atoms grouped by the k-means cluster of documents holding most of their θ mass."""
    import scipy.sparse as sp
    from sklearn.cluster import KMeans

    from saetm.topics.stage import topics_from_labels
    from saetm.topics.atomspace import unit_rows

    z = KMeans(n_topics, n_init=1, random_state=m.seed).fit_predict(unit_rows(X))
    Z = sp.csr_matrix((np.ones(len(z)), (np.arange(len(z)), z)), shape=(len(z), n_topics))
    mass = np.asarray((m.theta_.T @ Z).todense())
    labels = np.where(np.asarray(m.feature_prob_) > 0, mass.argmax(axis=1), -1)
    kept = np.unique(labels[labels >= 0])  # clusters no atom chose are dropped
    renumber = np.full(n_topics, -1)
    renumber[kept] = np.arange(len(kept))
    labels = np.where(labels >= 0, renumber[np.maximum(labels, 0)], -1)
    return topics_from_labels(m._atoms(), labels, len(kept), m.clustering)


def cluster_common_atoms(m, n_topics: int, min_docs: int, orphans: str):
    """``saetm.topics.stage.cluster``, but atoms active in fewer than ``min_docs`` documents of this
    corpus are left out of the tree and k-means; ``orphans="none"``: they join no topic
    (their θ mass and words are dropped), ``"nearest"``: each joins the topic whose
    θ̄-weighted centroid is nearest (cosine) after clustering."""
    from saetm.topics.stage import topics_from_labels
    from saetm.topics import merge
    from saetm.topics.hierarchy import build_atom_tree, cut

    E, p = m.atom_embeddings_, np.asarray(m.feature_prob_, dtype=np.float64)
    n_docs = np.bincount(m.theta_.indices, minlength=p.shape[0])
    w = np.where(n_docs >= min_docs, p, 0.0)
    labels = merge.cluster_atoms(E, w, n_topics, seed=m.seed, init=cut(build_atom_tree(E, w), n_topics))
    if orphans == "nearest":
        kept = labels >= 0
        centers = np.zeros((n_topics, E.shape[1]))
        np.add.at(centers, labels[kept], E[kept] * w[kept, None])
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
        lost = np.flatnonzero((p > 0) & ~kept)
        labels[lost] = np.argmax(E[lost] @ centers.T, axis=1)
    return topics_from_labels(m._atoms(), labels, n_topics, m.clustering)


def halves(n_docs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of the documents into halves A and B (sorted row indices)."""
    perm = np.random.default_rng(seed).permutation(n_docs)
    return np.sort(perm[: n_docs // 2]), np.sort(perm[n_docs // 2:])


class HalfB:
    """``CorpusData`` as ``evaluate`` reads it, with only half B's tokens as the NPMI/C_V reference."""

    def __init__(self, data, rows: np.ndarray):
        self.tokens = [data.tokens[i] for i in rows]
        self.labels = data.labels


def topic_words(model, override, counts=None, seed: int = 0) -> list[list[str]]:
    from saetm.topics.merge import top_words

    beta = model.topics_.topic_words
    if override is None:
        return [[w for w, _ in model.get_topic(k, n_words=N_WORDS)] for k in range(model.n_topics)]
    kind, arg = override
    if kind in ("lift-p0", "relevance-p0"):  # saetm's lift/relevance before word_reference()
        words, _ = top_words(beta, model.vocab_, n=N_WORDS, ranking=kind.split("-")[0], background=model.background_,
                             lam=arg if arg is not None else 0.6)
        return words
    if kind == "relevance-marginal":
        marginal = np.asarray(model.feature_words_.T @ model.feature_prob_.astype(np.float64)).ravel()
        words, _ = top_words(beta, model.vocab_, n=N_WORDS, ranking="relevance", background=marginal / marginal.sum(),
                             lam=arg)
        return words
    if kind == "relevance-cap":  # coherent steps 1+2, without the co-occurrence order
        from saetm.topics import wordrank

        score = wordrank.keep_best_topics(wordrank.relevance(beta, model.word_reference(), arg))
        words, _ = top_words(np.exp(score), model.vocab_, n=N_WORDS, ranking="beta")
        return words
    if kind == "heldout":
        from saetm.topics.wordrank import doc_word_incidence

        a, _ = halves(counts.shape[0], seed)
        doc_words = doc_word_incidence(counts[a]) if arg == "coherent" else None
        words, _ = top_words(beta, model.vocab_, n=N_WORDS, ranking=arg, background=model.word_reference(),
                             doc_words=doc_words, repeat_penalty=model.word_diversity)
        return words
    if kind == "topic-em":
        from saetm.words.em import fit_feature_words, normalize_theta

        fw = fit_feature_words(normalize_theta(model.doc_topics_), counts, background_weight=arg,
                               max_iter=model.em_max_iter, tol=model.em_tol)
        words, _ = top_words(fw.feature_words.toarray(), model.vocab_, n=N_WORDS, ranking="beta")
        return words
    if kind == "cap":
        from saetm.topics.wordrank import keep_best_topics

        capped = np.maximum(keep_best_topics(beta, max_topics=arg, min_words=0), 0.0)  # dropped: −inf → 0
        words, _ = top_words(capped, model.vocab_, n=N_WORDS, ranking="beta")
        return words
    raise ValueError(kind)


# ---------------------------------------------------------------- table

def key(corpus: str, n_topics: int, variant: str) -> str:
    return f"{corpus}|T{n_topics}|{variant}"


def markdown(db: dict, corpora: list[str], topics: list[int]) -> str:
    meta = db.get("meta", {})
    sae_words = ("the SAE shipped with saetm, `SAETM(sae=\"default\")`: BatchTopK, 6,144 atoms, k=32, trained on "
                 "generic texts that exclude the benchmark corpora" if meta.get("sae") == "default" else
                 "corpus-trained BatchTopK SAE, 16 × 384 atoms, k=32")
    lines = ["# saetm ablation (`bench/ablation.py`)", "",
             f"Command (last run): `{meta.get('command', '')}`  ",
             f"Updated: {meta.get('updated', '')}  ",
             f"Machine: {meta.get('machine', '')}  ",
             f"Seed: {meta.get('seed', 0)}; one saetm fit per corpus ({sae_words}), "
             "then only stage 2 and/or 3 change per row. Measures: the same `bench_topics.evaluate` call "
             "as `topics.md`. `s`: the row's own stage-2 (when re-run) + stage-3 seconds. Rows rank topic words "
             "by β unless their variant says otherwise (saetm's default until 0.1; since 0.2 the default is the "
             "`coherent` ranking, measured step by step in the last rows).", "",
             "| corpus | T | variant | NPMI | C_V | TD | NMI | ARI | s |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in corpora:
        for T in topics:
            for v in VARIANTS:
                r = db.get("runs", {}).get(key(c, T, v))
                if not r:
                    continue
                m = r["metrics"]
                lines.append(f"| {c} | {T} | {v} | {m['npmi']:.3f} | {m['cv']:.3f} | {m['topic_diversity']:.3f} | "
                             f"{m['nmi']:.3f} | {m['ari']:.3f} | {r['seconds']:.1f} |")
    lines += ["", "Variants:", ""]
    shown = {r["variant"] for r in db.get("runs", {}).values()}
    for v, (settings, override, desc) in VARIANTS.items():
        if v not in shown:
            continue
        lines.append(f"- **{v}**: {desc}; settings {json.dumps({**DEFAULTS, **settings}, ensure_ascii=False)}"
                     + (f", ranking override {override}" if override else ""))
    bases = meta.get("bases", {})
    if bases:
        lines += ["", "Base fits:", ""]
        for c, b in bases.items():
            lines.append(f"- {c}: {b['n_docs']} documents, SAE {b['sae']}, fit {b['fit_seconds']:.1f} s")
    return "\n".join(lines) + "\n"


def parse_variants(text: str) -> tuple[list[str], list[str]]:
    """Split ``--variants`` at commas, rejoining the pieces of names that contain commas."""
    found, unknown, piece = [], [], ""
    for part in text.split(","):
        piece = f"{piece},{part}" if piece else part.strip()
        if piece in VARIANTS:
            found.append(piece)
            piece = ""
    if piece:
        unknown.append(piece)
    return found, unknown


def save_json(path: Path, db: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(db, indent=1, ensure_ascii=False))
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", default="reuters-r8,fortunes")
    ap.add_argument("--topics", default="20,50")
    ap.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    ap.add_argument("--sae", choices=("train", "default"), default="train",
                    help="train: a corpus-trained SAE (ablation.md); default: the SAE shipped with saetm "
                         "(ablation-shipped.md)")
    ap.add_argument("--out", default=None, help="default: bench/results/ablation.md, or ablation-shipped.md "
                                                "with --sae default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args(argv)
    corpora = args.corpora.split(",")
    topics = [int(t) for t in args.topics.split(",")]
    variants, unknown = (parse_variants(args.variants) if args.variants else (list(VARIANTS), []))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    out = Path(args.out or HERE / "results" / ("ablation.md" if args.sae == "train" else "ablation-shipped.md"))
    jpath = out.with_suffix(".json")
    db = json.loads(jpath.read_text()) if jpath.exists() else {"meta": {}, "runs": {}}
    if not args.table_only:
        mi = machine_info()
        db["meta"].update(command="python bench/ablation.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
                          machine=f"{mi['cpu_count']} CPUs ({mi['cpu_model']}), {mi['memory_gib']} GiB RAM, "
                                  f"Python {mi['python']}; shared with other jobs, run under nice",
                          packages=package_versions(), seed=args.seed, sae=args.sae)
        work = Path(os.environ.get("SAETM_CACHE", Path.home() / ".cache" / "saetm")) / "ablation"
        for c in corpora:
            todo = [(T, v) for T in topics for v in variants if args.force or key(c, T, v) not in db["runs"]]
            if not todo:
                continue
            print(f"[{c}] loading and fitting the base model", flush=True)
            data = CorpusData(c, None, 0, work)
            base = Base(data, args.seed, args.sae)
            db["meta"].setdefault("bases", {})[c] = {
                "n_docs": len(data.texts), "fit_seconds": base.fit_seconds,
                "sae": ("shipped" if args.sae == "default" else
                        "cached" if base.sae_info.get("cached") else "trained now"),
                "sae_info": base.sae_info}
            # Group by stage-2 settings so EM re-runs only when they change.
            todo.sort(key=lambda tv: tuple(str({**DEFAULTS, **VARIANTS[tv[1]][0]}[k]) for k in STAGE2))
            for T, v in todo:
                settings, override, _ = VARIANTS[v]
                secs = base.apply(settings, T)
                t = time.perf_counter()
                words = topic_words(base.model, override, base.counts, args.seed)
                secs += time.perf_counter() - t
                scored_on = HalfB(data, halves(len(data.texts), args.seed)[1]) if override and override[0] == "heldout" \
                    else data
                metrics = evaluate(scored_on, words, base.model.doc_topics_)
                db["runs"][key(c, T, v)] = {"corpus": c, "n_topics": T, "variant": v, "seconds": secs,
                                            "metrics": metrics, "topic_words": words,
                                            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                print(f"  T={T} {v}: NPMI {metrics['npmi']:.3f} TD {metrics['topic_diversity']:.3f} "
                      f"NMI {metrics['nmi']:.3f} ({secs:.1f} s)", flush=True)
                db["meta"]["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                save_json(jpath, db)
    all_corpora = list(dict.fromkeys(corpora + [r["corpus"] for r in db["runs"].values()]))
    all_topics = sorted(set(topics) | {r["n_topics"] for r in db["runs"].values()})
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(markdown(db, all_corpora, all_topics))
    tmp.replace(out)
    print(f"wrote {out} and {jpath}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
