"""Topics per group (class, author, dataset): coverage tables and topics ranked by difference.

Coverage and prevalence are defined as in :mod:`saetm.analysis.time`, restricted to
the documents of one group, as are ``share`` (the topic's mean share of the documents'
weight) and ``n_main`` (documents whose main topic it is). Differences are measured
four ways:

* ``coverage_var`` / ``prevalence_var``: variance across groups (the paper's ranking;
  blind to group size, so a group of three documents can dominate it);
* a chi-square test of "coverage is the same in every group" on the counts
  (groups × topic active / not active), which does account for group size;
* per group against the rest, a log-odds ratio with an informative Dirichlet prior
  (Monroe, Colaresi & Quinn 2008, "Fightin' Words") and its z-score, which shrinks
  small groups towards the corpus-wide coverage so they are not over-read;
* a chi-square test of "the share of documents with this main topic is the same in every
  group" on the main-topic counts, which separates topics better than coverage (a
  document holds many topics, but has one main topic).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from saetm.analysis.time import chi2_homogeneity, coverage_table, grouped_counts, grouped_shares, main_topic_tests
from saetm.errors import SaetmError

logger = logging.getLogger("saetm")


def _group_codes(groups, n_docs: int) -> pd.Categorical:
    if isinstance(groups, pd.Categorical):
        cat = groups
    elif isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        cat = pd.Categorical(groups)
    else:
        labels = [None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" else str(v)
                  for v in groups]
        cat = pd.Categorical(labels, categories=sorted({v for v in labels if v is not None}))
    if len(cat) != n_docs:
        raise SaetmError(f"got {len(cat)} group labels for {n_docs} documents; pass one label per document")
    if (cat.codes < 0).any():
        logger.warning("%d of %d documents have no group; they are left out", int((cat.codes < 0).sum()), n_docs)
    if len(cat.categories) == 0 or (cat.codes >= 0).sum() == 0:
        raise SaetmError("no document has a group label; pass one label per document")
    return cat


def topics_per_group(doc_topics, groups) -> pd.DataFrame:
    """Per-group topic coverage, prevalence, share and main-topic counts, in long format.

    doc_topics: (n_docs, T) CSR of topic weights; groups: one label per document
    (strings; ``None``/"" = left out; a ``pd.Categorical`` keeps its category order,
    otherwise groups are sorted). Returns columns ``group``, ``topic``, ``coverage``,
    ``prevalence``, ``n_docs``, ``n_active``, ``share``, ``share_se``, ``n_main`` (defined
    in :mod:`saetm.analysis.time`); one row per (group, topic).
    """
    X = sp.csr_matrix(doc_topics)
    cat = _group_codes(groups, X.shape[0])
    codes = np.asarray(cat.codes, dtype=np.int64)
    n_docs, n_active, weight = grouped_counts(X, codes, len(cat.categories))
    table = coverage_table("group", cat.categories, n_docs, n_active, weight,
                           shares=grouped_shares(X, codes, len(cat.categories)))
    return table[table["n_docs"] > 0].reset_index(drop=True)


def group_log_odds(doc_topics, groups, prior_docs: float = 10.0) -> pd.DataFrame:
    """Each group against the rest: log-odds of a topic being active, with a prior.

    For topic ``c`` and group ``g`` with ``a`` of ``n`` documents active (and ``a'`` of
    ``n'`` in the rest), the prior adds ``prior_docs`` pseudo-documents split by the
    corpus-wide coverage ``p`` (``α = prior_docs·p`` active, ``β = prior_docs·(1−p)``
    not): ``log_odds = log((a+α)/(n−a+β)) − log((a'+α)/(n'−a'+β))`` and
    ``z = log_odds / sqrt(1/(a+α) + 1/(n−a+β) + 1/(a'+α) + 1/(n'−a'+β))``. This is
    Monroe et al.'s (2008) informative-Dirichlet log-odds over the two outcomes
    {active, not active} with the exact variance of the 2×2 table; a group of a few
    documents gets a small |z| whatever its raw coverage.

    Returns columns ``group``, ``topic``, ``n_docs``, ``n_active``, ``coverage``,
    ``coverage_rest``, ``log_odds``, ``z``; sorted by group, then ``z`` descending.
    """
    if prior_docs <= 0:
        raise SaetmError(f"prior_docs must be > 0 (pseudo-documents of prior), got {prior_docs}")
    X = sp.csr_matrix(doc_topics)
    cat = _group_codes(groups, X.shape[0])
    n, a, _ = grouped_counts(X, np.asarray(cat.codes, dtype=np.int64), len(cat.categories))
    keep = n > 0
    names, n, a = np.asarray(cat.categories, dtype=object)[keep], n[keep], a[keep]
    if len(names) < 2:
        raise SaetmError(f"need documents from at least two groups to compare, got {len(names)}")
    n = n[:, None]
    a_rest, n_rest = a.sum(axis=0, keepdims=True) - a, n.sum() - n
    p = a.sum(axis=0, keepdims=True) / n.sum()
    alpha, beta = prior_docs * p, prior_docs * (1 - p)
    # floor the prior so a topic active in no (or every) document still has finite odds
    alpha, beta = np.maximum(alpha, 1e-3), np.maximum(beta, 1e-3)
    log_odds = np.log((a + alpha) / (n - a + beta)) - np.log((a_rest + alpha) / (n_rest - a_rest + beta))
    var = 1 / (a + alpha) + 1 / (n - a + beta) + 1 / (a_rest + alpha) + 1 / (n_rest - a_rest + beta)
    G, T = a.shape
    out = pd.DataFrame({
        "group": np.repeat(names, T),
        "topic": np.tile(np.arange(T), G),
        "n_docs": np.repeat(n.ravel().astype(np.int64), T),
        "n_active": a.ravel().astype(np.int64),
        "coverage": (a / n).ravel(),
        "coverage_rest": (a_rest / np.maximum(n_rest, 1)).ravel(),
        "log_odds": log_odds.ravel(),
        "z": (log_odds / np.sqrt(var)).ravel(),
    })
    out["group"] = pd.Categorical(out["group"], categories=list(names))
    return out.sort_values(["group", "z"], ascending=[True, False], kind="stable").reset_index(drop=True)


def rank_differing_topics(doc_topics, groups, prior_docs: float = 10.0) -> pd.DataFrame:
    """Rank topics by how much they differ between groups; one row per topic.

    Columns: ``topic``; ``coverage_var``, ``prevalence_var`` (variance across groups,
    the paper's measure); ``chi2``, ``dof``, ``p_value``, ``q_value`` (chi-square test of
    equal coverage on the groups × active/not-active counts, no continuity correction;
    ``q_value`` is Benjamini–Hochberg over topics; the approximation is rough for
    groups with very few documents); ``group``, ``coverage``, ``coverage_rest``,
    ``log_odds``, ``z`` for the group where the topic is most over-represented by the
    prior-smoothed log-odds z-score (see :func:`group_log_odds`, which gives every
    group); ``n_main``, ``main_chi2``, ``main_p`` (the chi-square test on the groups ×
    main topic / not counts; see :func:`saetm.analysis.time.pick_significant`).
    Sorted by ``chi2`` descending, then ``coverage_var``.
    """
    table = topics_per_group(doc_topics, groups)
    odds = group_log_odds(doc_topics, groups, prior_docs=prior_docs)
    n_groups = table["group"].nunique()
    wide = lambda col: table.pivot_table(index="group", columns="topic", values=col, observed=True)  # noqa: E731
    n_docs = table.drop_duplicates("group").set_index("group")["n_docs"]
    active = wide("n_active")
    chi2, p = chi2_homogeneity(active.to_numpy(dtype=float), n_docs.reindex(active.index).to_numpy(dtype=float))
    best = odds.sort_values(["topic", "z"], ascending=[True, False], kind="stable").drop_duplicates("topic")
    out = pd.DataFrame({
        "topic": active.columns.to_numpy(dtype=np.int64),
        "coverage_var": wide("coverage").var(axis=0, ddof=0).to_numpy(),
        "prevalence_var": wide("prevalence").var(axis=0, ddof=0).to_numpy(),
        "chi2": chi2,
        "dof": n_groups - 1,
        "p_value": p,
        "q_value": stats.false_discovery_control(np.clip(p, 0, 1)) if len(p) else p,
    })
    best = best.set_index("topic")[["group", "coverage", "coverage_rest", "log_odds", "z"]]
    out = out.join(best, on="topic")
    out = out.join(main_topic_tests(table, "group"), on="topic")
    return out.sort_values(["chi2", "coverage_var", "topic"], ascending=[False, False, True], kind="stable").reset_index(drop=True)
