"""Topics over time: periods from dates, per-period coverage, topics ranked by change.

Definitions (the same as for the whole corpus, restricted to one period):

* **coverage** of topic ``c`` in a period = share of the period's documents in which
  the topic is active (``doc_topics[d, c] > 0``);
* **prevalence** = mean topic weight ``doc_topics[d, c]`` over the period's documents;
* **share** = mean over the period's documents of ``doc_topics[d, c] / Σ_c' doc_topics[d, c']``,
  the topic's share of the documents' weight (equal to prevalence when rows sum to 1;
  a document without weight counts as 0); ``share_se`` is its standard error;
* **n_main** = the period's documents whose main topic (largest weight, lowest index on
  ties; none for a document without weight) is ``c``.

A document holds many topics with a little weight, so coverage is high for most topics
and separates them poorly; share and n_main do.

A period inside the observed range that holds no document keeps its row, with
``n_docs = 0`` and coverage/prevalence ``NaN`` ("not observed", which is not the same as
"topic absent"); plots show such periods as gaps and the ranking skips them.
"""

from __future__ import annotations

import datetime as _dt
import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from saetm.errors import SaetmError

logger = logging.getLogger("saetm")

FREQS = ("D", "W", "M", "Q", "Y", "decade")
# Auto frequency: the finest one that keeps the number of periods readable (<= ~60).
_AUTO_SPANS_DAYS = (("D", 60), ("W", 420), ("M", 5 * 366), ("Q", 15 * 366), ("Y", 60 * 366))
_MAX_INT_PERIODS = 100  # integer "dates" (years) get one period each up to this span
MAX_PERIODS = 1000  # any frequency: more periods than this cannot be read on a chart and cost memory per topic
# Numbers above these are not years but Unix timestamps (1e8 s is March 1973), finest unit first.
_EPOCH_UNITS = (("ns", 1e17), ("us", 1e14), ("ms", 1e11), ("s", 1e8))
_UNIT_NAMES = {"ns": "nanoseconds", "us": "microseconds", "ms": "milliseconds", "s": "seconds"}


def assign_periods(dates, freq: str | int | None = None) -> pd.Categorical:
    """Map per-document ``dates`` to ordered period labels.

    dates: one entry per document: datetimes / ``datetime.date`` / ISO strings, numbers
        (e.g. years as ints), or any ordered labels (strings that are not dates are
        sorted; an ordered ``pd.Categorical`` keeps its own order). Missing entries
        (None, NaN, NaT, "") become missing periods; those documents are left out of
        per-period tables.
    freq: ``None`` picks one from the span (up to 60 days→"D", ~14 months→"W", 5
        years→"M", 15→"Q", 60→"Y", longer→"decade"; numbers that are not years
        over more than ``MAX_PERIODS`` decades → 10 bins); ``"D"``, ``"W"``
        (weeks starting Monday), ``"M"``, ``"Q"``, ``"Y"``, ``"decade"``; or an int
        ``n`` for ``n`` equal-width bins over the range. A frequency that gives more
        than ``MAX_PERIODS`` periods is refused.

    Numbers all above 10^8 are Unix timestamps, not years: seconds (above 10^8),
    milliseconds (10^11), microseconds (10^14) or nanoseconds (10^17), decided by the
    smallest value; the reading taken is logged.

    Returns an ordered ``pd.Categorical`` (one entry per document) whose categories are
    *every* period from the first to the last, including periods with no document.
    """
    values = _as_series(dates)
    if isinstance(dates, pd.Categorical) or isinstance(values.dtype, pd.CategoricalDtype):
        if freq is not None:
            raise SaetmError("freq applies to dates or numbers; the given periods are already categories")
        cat = pd.Categorical(values)
        return cat if cat.ordered else cat.as_ordered()
    missing = values.isna() | values.astype(str).str.strip().isin(["", "NaT", "nan", "None"])
    present = values[~missing]
    if present.empty:
        raise SaetmError("no document has a date; pass dates (or periods) for at least one document")
    kind = _kind(present)
    if kind == "number":
        numbers = pd.to_numeric(present).astype(float)
        stamps = _epoch_timestamps(numbers)
        if stamps is not None:
            kind, present = "datetime", stamps
    if kind == "number":
        out = _numeric_periods(numbers, freq)
    elif kind == "datetime":
        out = _datetime_periods(_to_datetime(present), freq)
    else:  # plain labels
        if freq is not None:
            raise SaetmError(
                f"dates such as {present.iloc[0]!r} are not dates or numbers, so freq={freq!r} cannot apply; "
                "pass real dates, or freq=None to use the labels as they are"
            )
        labels = present.astype(str)
        out = pd.Categorical(labels, categories=sorted(labels.unique()), ordered=True)
    codes = np.full(len(values), -1, dtype=np.int64)
    codes[np.flatnonzero(~missing.to_numpy())] = out.codes
    if missing.any():
        logger.warning("%d of %d documents have no date; they are left out of per-period tables", int(missing.sum()), len(values))
    return pd.Categorical.from_codes(codes, categories=out.categories, ordered=True)


def _as_series(dates) -> pd.Series:
    if isinstance(dates, pd.Series):
        return dates.reset_index(drop=True)
    if isinstance(dates, (pd.Categorical, pd.Index, np.ndarray)):
        return pd.Series(dates)
    return pd.Series(list(dates), dtype=object)


def _kind(present: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(present.dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(present.dtype):
        return "number"
    if all(isinstance(v, (_dt.date, pd.Timestamp, np.datetime64)) for v in present):
        return "datetime"
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in present):
        return "number"
    parsed = pd.to_datetime(present.astype(str), errors="coerce", format="mixed", utc=True)
    bad = parsed.isna()
    if not bad.any():
        return "datetime"
    if bad.all():
        return "label"
    examples = ", ".join(repr(v) for v in present[bad].astype(str).unique()[:3])
    raise SaetmError(
        f"{int(bad.sum())} of {len(present)} dates could not be read as dates ({examples}); "
        "fix them, or leave them empty to drop those documents from per-period tables"
    )


def _epoch_timestamps(x: pd.Series) -> pd.Series | None:
    """Numbers read as Unix timestamps when too large to be years (see ``_EPOCH_UNITS``),
    else ``None``; the reading is logged, since numbers alone cannot say which it is."""
    v = x.to_numpy(dtype=float)
    if not np.all(np.isfinite(v)):
        return None  # _numeric_periods says what is wrong
    unit = next((u for u, bound in _EPOCH_UNITS if v.min() > bound), None)
    if unit is None:
        return None
    try:
        ts = pd.to_datetime(x, unit=unit)
    except (ValueError, OverflowError):  # beyond what pandas dates hold: stay numbers
        return None
    logger.info("dates are numbers from %.0f to %.0f, too large for years: read as Unix timestamps in %s "
                "(%s to %s)", v.min(), v.max(), _UNIT_NAMES[unit], f"{ts.min():%Y-%m-%d}", f"{ts.max():%Y-%m-%d}")
    return ts


def _check_periods(n: int, freq) -> None:
    if n > MAX_PERIODS:
        raise SaetmError(
            f"freq={freq!r} gives {n:,} periods over these dates, more than {MAX_PERIODS:,}; choose a coarser "
            "frequency (saetm report --freq, or freq= in Python): a longer period, or a number of bins such as 20"
        )


def _to_datetime(present: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(present.dtype):
        is_date = lambda v: isinstance(v, (_dt.date, pd.Timestamp, np.datetime64))  # noqa: E731
        present = present.map(lambda v: v if is_date(v) else str(v))
    # everything to naive UTC, so naive and zone-aware dates can be mixed
    return pd.to_datetime(present, utc=True, format="mixed").dt.tz_localize(None)


def _auto_freq(span_days: float) -> str:
    for freq, limit in _AUTO_SPANS_DAYS:
        if span_days <= limit:
            return freq
    return "decade"


def _datetime_periods(ts: pd.Series, freq) -> pd.Categorical:
    if freq is None:
        freq = _auto_freq((ts.max() - ts.min()).total_seconds() / 86400)
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        ns = ts.astype("datetime64[ns]").astype("int64").to_numpy(dtype=float)
        fine = (ns.max() - ns.min()) / max(int(freq), 1) < 86400e9
        fmt = "%Y-%m-%d %H:%M" if fine else "%Y-%m-%d"
        return _bins(ns, int(freq), lambda v: pd.Timestamp(int(v)).strftime(fmt))
    if freq == "decade":
        years = ts.dt.year.to_numpy()
        return _decades(years)
    pandas_freq = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q", "Y": "Y"}.get(freq)
    if pandas_freq is None:
        raise SaetmError(f"unknown period frequency {freq!r}; use one of {', '.join(FREQS)}, an int (bins), or None (auto)")
    periods = ts.dt.to_period(pandas_freq)
    _check_periods(periods.max().ordinal - periods.min().ordinal + 1, freq)
    rng = pd.period_range(periods.min(), periods.max(), freq=pandas_freq)
    fmt = (lambda p: f"week of {p.start_time:%Y-%m-%d}") if freq == "W" else str
    labels = [fmt(p) for p in rng]
    codes = pd.PeriodIndex(periods).asi8 - rng[0].ordinal
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)


def _numeric_periods(x: pd.Series, freq) -> pd.Categorical:
    v = x.to_numpy(dtype=float)
    if not np.all(np.isfinite(v)):
        raise SaetmError("numeric dates must be finite numbers (e.g. years)")
    integral = np.all(v == np.round(v))
    if freq is None:
        if integral and v.max() - v.min() + 1 <= _MAX_INT_PERIODS:
            freq = "Y"
        elif integral and v.max() // 10 - v.min() // 10 < MAX_PERIODS:
            freq = "decade"
        else:
            freq = 10
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        return _bins(v, int(freq), lambda b: f"{b:g}")
    if freq == "Y" and integral:
        _check_periods(int(v.max() - v.min()) + 1, freq)
        lo, hi = int(v.min()), int(v.max())
        return pd.Categorical.from_codes((v - lo).astype(np.int64), [str(y) for y in range(lo, hi + 1)], ordered=True)
    if freq == "decade" and integral:
        _check_periods(int(v.max() // 10 - v.min() // 10) + 1, freq)  # before int64 could overflow
        return _decades(v.astype(np.int64))
    raise SaetmError(
        f"freq={freq!r} needs real dates, but the dates are numbers; use freq='Y' or 'decade' for years, or an int for bins"
    )


def _decades(years: np.ndarray) -> pd.Categorical:
    dec = (np.asarray(years, dtype=np.int64) // 10) * 10
    lo, hi = int(dec.min()), int(dec.max())
    _check_periods((hi - lo) // 10 + 1, "decade")
    return pd.Categorical.from_codes((dec - lo) // 10, [f"{d}s" for d in range(lo, hi + 1, 10)], ordered=True)


def _bins(v: np.ndarray, n_bins: int, fmt) -> pd.Categorical:
    if n_bins < 1:
        raise SaetmError(f"the number of period bins must be at least 1, got {n_bins}")
    _check_periods(n_bins, n_bins)
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        return pd.Categorical.from_codes(np.zeros(len(v), dtype=np.int64), [fmt(lo)], ordered=True)
    edges = np.linspace(lo, hi, n_bins + 1)
    codes = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_bins - 1)
    labels = [f"{fmt(edges[i])} – {fmt(edges[i + 1])}" for i in range(n_bins)]
    if len(set(labels)) < n_bins:  # bins narrower than the label's precision
        labels = [f"bin {i + 1}: {label}" for i, label in enumerate(labels)]
    return pd.Categorical.from_codes(codes.astype(np.int64), labels, ordered=True)


def _as_periods(periods, n_docs: int) -> pd.Categorical:
    cat = assign_periods(periods)  # periods already made by it come back as they are
    if len(cat) != n_docs:
        raise SaetmError(f"got {len(cat)} periods for {n_docs} documents; pass one period (or date) per document")
    return cat


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


def topics_over_time(doc_topics, periods) -> pd.DataFrame:
    """Per-period topic coverage, prevalence, share and main-topic counts, in long format.

    doc_topics: (n_docs, T) CSR of topic weights; periods: one label per document, best
    the output of :func:`assign_periods` (dates are passed through it with auto freq).
    Returns columns ``period`` (ordered categorical), ``topic``, ``coverage``,
    ``prevalence``, ``n_docs``, ``n_active``, ``share``, ``share_se``, ``n_main`` (see the
    module's definitions); one row per (period, topic), every period of the range
    included (empty ones with NaN measures and ``n_docs = 0``).
    """
    X = sp.csr_matrix(doc_topics)
    cat = _as_periods(periods, X.shape[0])
    codes = np.asarray(cat.codes, dtype=np.int64)
    n_docs, n_active, weight = grouped_counts(X, codes, len(cat.categories))
    return coverage_table("period", cat.categories, n_docs, n_active, weight,
                          shares=grouped_shares(X, codes, len(cat.categories)))


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


def rank_changing_topics(table: pd.DataFrame, measure: str = "coverage") -> pd.DataFrame:
    """Rank topics by how much ``measure`` changes across periods.

    table: the output of :func:`topics_over_time`. Periods without documents are skipped.
    Per topic: ``variance`` (the paper's ranking, population variance across periods),
    ``mean``, ``first``/``last`` (first and last observed period), a Mann–Kendall trend
    test (Kendall's tau-b between the series and period order, ``trend_tau``,
    ``trend_p``; NaN with fewer than 3 periods), ``trend`` ("rising"/"falling"/"flat" at
    p < 0.05), and a chi-square test that coverage is the same in every period
    (``chi2``, ``chi2_p``; uses the counts, so small periods are not over-read). When the
    table has main-topic counts: ``n_main`` (documents with this main topic, all
    periods) and a chi-square test that the share of documents with this main topic is
    the same in every period (``main_chi2``, ``main_p``), which separates topics far
    better than coverage (see :func:`pick_significant`).
    Sorted by ``variance`` descending.
    """
    need = {"period", "topic", measure, "n_docs", "n_active"}
    if not need <= set(table.columns):
        raise SaetmError(f"the table lacks columns {sorted(need - set(table.columns))}; pass the output of topics_over_time")
    obs = table[table["n_docs"] > 0]
    if obs.empty:
        raise SaetmError("no period holds any document; nothing to rank")
    wide = obs.pivot_table(index="period", columns="topic", values=measure, observed=True, sort=True)
    order = np.arange(len(wide))
    rows = []
    chi2, chi2_p = chi2_homogeneity(
        obs.pivot_table(index="period", columns="topic", values="n_active", observed=True).to_numpy(dtype=float),
        obs.drop_duplicates("period").set_index("period")["n_docs"].reindex(wide.index).to_numpy(dtype=float),
    )
    for j, topic in enumerate(wide.columns):
        y = wide[topic].to_numpy(dtype=float)
        tau, p = (np.nan, np.nan)
        if len(y) >= 3 and np.ptp(y) > 0:
            tau, p = stats.kendalltau(order, y)
        elif len(y) >= 3:
            tau, p = 0.0, 1.0
        rows.append({
            "topic": int(topic), "variance": float(np.var(y)), "mean": float(np.mean(y)),
            "first": float(y[0]), "last": float(y[-1]), "trend_tau": float(tau), "trend_p": float(p),
            "chi2": float(chi2[j]), "chi2_p": float(chi2_p[j]), "n_periods": len(y),
        })
    out = pd.DataFrame(rows)
    out["trend"] = np.where(out["trend_p"] < 0.05, np.where(out["trend_tau"] > 0, "rising", "falling"), "flat")
    if "n_main" in table.columns:
        out = out.join(main_topic_tests(obs, "period"), on="topic")
    return out.sort_values(["variance", "topic"], ascending=[False, True], kind="stable").reset_index(drop=True)


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
