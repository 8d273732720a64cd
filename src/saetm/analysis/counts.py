"""Counts behind the per-period and per-group tables, and the tests on them.

:func:`grouped_counts` and :func:`grouped_shares` sum a (n_docs, T) topic matrix over
groups of documents (periods, classes); :func:`coverage_table` turns the sums into the
long tables of :mod:`saetm.analysis.time` and :mod:`saetm.analysis.groups`, whose
module docstrings define the measures. :func:`chi2_homogeneity` and
:func:`main_topic_tests` test whether a topic is equally present in every group;
:func:`pick_significant` chooses the topics the report's charts draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from saetm.errors import SaetmError


def grouped_counts(doc_topics, codes: np.ndarray, n_groups: int):
    """Per-group document counts, active counts and weight sums.

    doc_topics: (n_docs, T) CSR; codes: (n_docs,) group index, -1 = left out.
    Returns ``n_docs (G,)``, ``n_active (G, T)``, ``weight (G, T)`` (float64).
    """
    X = sp.csr_matrix(doc_topics)
    if X.nnz and X.data.min() < 0:
        raise SaetmError("doc_topics has negative weights; topic weights must be >= 0")
    keep = np.flatnonzero(codes >= 0)
    # one-hot (G, n_docs) membership; a sparse product gives all per-group sums at once
    member = sp.csr_matrix((np.ones(len(keep)), (codes[keep], keep)), shape=(n_groups, X.shape[0]))
    active = X.copy()
    active.data = (active.data > 0).astype(np.float64)
    n_docs = np.asarray(member.sum(axis=1)).ravel()
    return n_docs, np.asarray((member @ active).todense()), np.asarray((member @ X.astype(np.float64)).todense())


def grouped_shares(doc_topics, codes: np.ndarray, n_groups: int):
    """Per-group sums of each document's weight shares, of their squares, and main-topic counts.

    doc_topics: (n_docs, T) CSR; codes: (n_docs,) group index, -1 = left out.
    Returns ``share_sum (G, T)``, ``share_sq (G, T)`` (float64) and ``n_main (G, T)`` (int64).
    """
    X = sp.csr_matrix(doc_topics, dtype=np.float64)
    X.sort_indices()  # so a tie for the main topic goes to the lowest index
    n, T = X.shape
    total = np.asarray(X.sum(axis=1)).ravel()
    S = sp.diags(np.divide(1.0, total, out=np.zeros(n), where=total > 0)) @ X
    has = np.flatnonzero(total > 0)
    # argmax of a sparse row ignores the implicit zeros; weights are >= 0, so the largest is stored
    main = np.asarray(X[has].argmax(axis=1)).ravel()
    keep = np.flatnonzero(codes >= 0)
    member = sp.csr_matrix((np.ones(len(keep)), (codes[keep], keep)), shape=(n_groups, n))
    mains = sp.csr_matrix((np.ones(len(has)), (has, main)), shape=(n, T))
    sq = S.multiply(S)
    dense = lambda M: np.asarray(M.todense())  # noqa: E731
    return dense(member @ S), dense(member @ sq), dense(member @ mains).round().astype(np.int64)


def coverage_table(key: str, categories, n_docs, n_active, weight, shares=None) -> pd.DataFrame:
    """Long (category, topic) table from :func:`grouped_counts` output; NaN where no docs.

    shares: :func:`grouped_shares` output, which adds ``share``, ``share_se`` (NaN below
    two documents) and ``n_main``."""
    G, T = n_active.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(n_docs > 0, n_docs, np.nan)[:, None]
        coverage, prevalence = n_active / denom, weight / denom
    out = pd.DataFrame({
        key: pd.Categorical(np.repeat(np.asarray(categories, dtype=object), T), categories=categories, ordered=True),
        "topic": np.tile(np.arange(T), G),
        "coverage": coverage.ravel(),
        "prevalence": prevalence.ravel(),
        "n_docs": np.repeat(n_docs.astype(np.int64), T),
        "n_active": n_active.ravel().astype(np.int64),
    })
    if shares is not None:
        share_sum, share_sq, n_main = shares
        n = n_docs.astype(np.float64)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = share_sum / denom
            var = np.maximum(share_sq - n * share ** 2, 0) / np.where(n > 1, n - 1, np.nan)  # sample variance
            out["share"] = share.ravel()
            out["share_se"] = np.sqrt(var / n).ravel()
        out["n_main"] = n_main.ravel()
    return out


def chi2_homogeneity(n_active: np.ndarray, n_docs: np.ndarray):
    """Per-topic chi-square test of "coverage is equal across groups".

    n_active: (G, T) documents where each topic is active; n_docs: (G,) documents per
    group. Each topic's table is groups × (active, not active), no continuity
    correction. A topic active in all or no documents gets chi2 = 0, p = 1.
    Returns ``chi2 (T,)``, ``p (T,)``.
    """
    n_docs = np.asarray(n_docs, dtype=float)[:, None]
    a = np.asarray(n_active, dtype=float)
    total = n_docs.sum()
    p = a.sum(axis=0, keepdims=True) / total
    exp_a, exp_n = n_docs * p, n_docs * (1 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(exp_a > 0, (a - exp_a) ** 2 / exp_a, 0.0) + np.where(exp_n > 0, ((n_docs - a) - exp_n) ** 2 / exp_n, 0.0)
    chi2 = terms.sum(axis=0)
    dof = max(len(n_docs) - 1, 1)
    return chi2, stats.chi2.sf(chi2, dof)


def main_topic_tests(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per topic of a long table with ``n_main`` (:func:`topics_over_time`,
    :func:`saetm.analysis.groups.topics_per_group`): ``n_main`` summed over the ``key``
    categories with documents, and the chi-square test of "the share of documents with
    this main topic is equal in every category" (``main_chi2``, ``main_p``); indexed by topic."""
    obs = table[table["n_docs"] > 0]
    main = obs.pivot_table(index=key, columns="topic", values="n_main", observed=True, sort=True)
    n_docs = obs.drop_duplicates(key).set_index(key)["n_docs"].reindex(main.index).to_numpy(dtype=float)
    chi2, p = chi2_homogeneity(main.to_numpy(dtype=float), n_docs)
    return pd.DataFrame({"n_main": main.sum(axis=0).to_numpy(dtype=np.int64), "main_chi2": chi2, "main_p": p},
                        index=pd.Index(main.columns.astype(np.int64), name="topic"))


MIN_MAIN = 10  # documents with a topic as their main one before pick_significant considers it


def pick_significant(ranking: pd.DataFrame, n: int, min_main: int = MIN_MAIN) -> list[int]:
    """The ``n`` topics whose main-topic counts differ most across periods or groups.

    ranking: :func:`rank_changing_topics` or :func:`saetm.analysis.groups.rank_differing_topics`
    output (with ``main_chi2``). Topics that are the main topic of fewer than ``min_main``
    documents are skipped (too few to tell; style topics such as months or greetings are
    rarely a document's main topic); the rest are ranked by ``main_chi2``, largest first (every
    topic's test has the same degrees of freedom, so this is also the p-value order).
    """
    ok = ranking[ranking["n_main"] >= min_main]
    ok = ok.sort_values(["main_chi2", "n_main", "topic"], ascending=[False, False, True], kind="stable")
    return ok["topic"].head(n).astype(int).tolist()
