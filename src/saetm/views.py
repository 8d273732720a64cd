"""Looking at a fitted model: analyses, plots and the report, as methods of ``SAETM``.

:class:`TopicViews` is a mixin: it holds presentation, never mathematics. Every
method reads the model's *current* topics (``doc_topics_``, ``atom_topic_``,
``topics_``), so after :meth:`SAETM.retopic` each analysis reflects the new number
of topics at once; nothing here refits the SAE, the word distributions or the
atom tree. The computations live in :mod:`saetm.analysis` (tables),
:mod:`saetm.topics.hierarchy` (trees) and :mod:`saetm.report` (figures, HTML).

Dates and classes default to those kept with the fitted documents
(``fit(..., dates=..., labels=...)`` or ``saetm fit --date-field/--label-field``);
any method also takes them explicitly, one entry per fitted document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

if TYPE_CHECKING:
    import pandas as pd

_URL = re.compile(r"https?://\S+")
_WORD = re.compile(r"\w+")


class TopicViews:
    """Analyses, plots and the HTML report of a fitted topic model (BERTopic-like names).

    Expects the fitted state of :class:`saetm.model.SAETM`: ``doc_topics_`` (n_docs, T)
    CSR, ``theta_`` (n_docs, n_atoms) CSR, ``atom_topic_`` (n_atoms,), ``topics_``,
    ``feature_prob_`` (n_atoms,), ``atom_embeddings_`` (n_atoms, d), ``atom_tree_``,
    ``documents_`` and ``topic_labels()``.
    """

    def _atoms(self):
        """What stage 3 reads of this model (:class:`saetm.topics.stage.AtomState`)."""
        from saetm.topics import docwords
        from saetm.topics.stage import AtomState

        images = (getattr(self, "documents_", None) or {}).get("image") is not None
        default = docwords.default_weight(getattr(self, "encoder_", None), getattr(self, "embedding_name_", None),
                                          images=images)
        return AtomState(self.feature_words_, self.feature_prob_, self.theta_, self.atom_embeddings_,
                         self.atom_tree_, getattr(self, "doc_embeddings_", None),
                         docwords.fitted_directions(getattr(self, "doc_words_", None), self.theta_.shape[0], self.seed),
                         default, self.seed)

    # ------------------------------------------------------------ metadata
    def _fitted_column(self, values, key: str, what: str, how: str) -> list:
        self._check_fitted()
        if values is None:
            values = (getattr(self, "documents_", None) or {}).get(key)
            if values is None:
                raise SaetmError(f"the fitted documents have no {what}; pass {how}")
        values = list(values)
        n = self.doc_topics_.shape[0]
        if len(values) != n:
            raise SaetmError(f"got {len(values)} {what} for {n} fitted documents; pass one per document")
        return values

    def _dates(self, dates) -> list:
        return self._fitted_column(dates, "date", "dates",
                                   "dates=[one per document] (or fit with dates=..., saetm fit --date-field)")

    def _classes(self, classes) -> list:
        return self._fitted_column(classes, "label", "classes",
                                   "classes=[one per document] (or fit with labels=..., saetm fit --label-field)")

    def _with_labels(self, table: pd.DataFrame) -> pd.DataFrame:
        labels = np.asarray(self.topic_labels(), dtype=object)
        out = table.copy()
        out.insert(out.columns.get_loc("topic") + 1, "label", labels[out["topic"].to_numpy(dtype=np.int64)])
        return out

    # ------------------------------------------------------------ over time
    def topics_over_time(self, dates: Sequence | None = None, freq: str | int | None = None) -> pd.DataFrame:
        """Per-period coverage, prevalence, share and main-topic counts of every topic, one row
        per (period, topic).

        dates: one date (or period label, or year) per fitted document; default: the
        fitted documents' dates. freq: ``None`` (auto), ``"D"``, ``"W"``, ``"M"``,
        ``"Q"``, ``"Y"``, ``"decade"`` or an int (equal-width bins). Periods inside the
        range without documents keep their rows (``n_docs = 0``, NaN measures).
        Columns: period, topic, label, coverage, prevalence, n_docs, n_active, share,
        share_se, n_main (see :mod:`saetm.analysis.time`).
        """
        from saetm.analysis import time

        periods = time.assign_periods(self._dates(dates), freq)
        return self._with_labels(time.topics_over_time(self.doc_topics_, periods))

    def rank_changing_topics(self, dates: Sequence | None = None, freq: str | int | None = None,
                             measure: str = "coverage") -> pd.DataFrame:
        """Topics ranked by how much ``measure`` ("coverage", "prevalence" or "share") changes
        across periods (variance, most first), with a Mann–Kendall trend test, a chi-square
        test of equal coverage and one of equal main-topic counts; see
        :func:`saetm.analysis.time.rank_changing_topics`."""
        from saetm.analysis import time

        if measure not in ("coverage", "prevalence", "share"):
            raise SaetmError(f"measure must be 'coverage', 'prevalence' or 'share', got {measure!r}")
        return self._with_labels(time.rank_changing_topics(self.topics_over_time(dates, freq), measure=measure))

    # ------------------------------------------------------------ per class
    def topics_per_class(self, classes: Sequence | None = None) -> pd.DataFrame:
        """Per-class coverage, prevalence, share and main-topic counts of every topic, one row
        per (class, topic).

        classes: one label per fitted document (a class, an author, or the corpus each
        document came from when several corpora share one model); default: the labels
        given at fit. Columns: class, topic, label, coverage, prevalence, n_docs, n_active,
        share, share_se, n_main.
        """
        from saetm.analysis.groups import topics_per_group

        table = topics_per_group(self.doc_topics_, self._classes(classes)).rename(columns={"group": "class"})
        return self._with_labels(table)

    def rank_differing_topics(self, classes: Sequence | None = None, prior_docs: float = 10.0) -> pd.DataFrame:
        """Topics ranked by how much they differ between classes (chi-square, then variance),
        with the class where each is most over-represented by prior-smoothed log-odds;
        see :func:`saetm.analysis.groups.rank_differing_topics`."""
        from saetm.analysis.groups import rank_differing_topics

        table = rank_differing_topics(self.doc_topics_, self._classes(classes), prior_docs=prior_docs)
        return self._with_labels(table.rename(columns={"group": "class"}))

    def class_log_odds(self, classes: Sequence | None = None, prior_docs: float = 10.0) -> pd.DataFrame:
        """Each class against the rest, every topic: log-odds of the topic being active with an
        informative Dirichlet prior of ``prior_docs`` pseudo-documents, and its z-score
        (Monroe et al. 2008); sorted by class, then z. See
        :func:`saetm.analysis.groups.group_log_odds`."""
        from saetm.analysis.groups import group_log_odds

        table = group_log_odds(self.doc_topics_, self._classes(classes), prior_docs=prior_docs)
        return self._with_labels(table.rename(columns={"group": "class"}))

    # ------------------------------------------------------------ hierarchy
    def topic_embeddings(self) -> np.ndarray:
        """θ̄-weighted centroids of each topic's atom embeddings: (T, d) float32."""
        from saetm.topics.hierarchy import topic_embeddings

        self._check_fitted()
        return topic_embeddings(self.atom_embeddings_, self.feature_prob_, self.atom_topic_, self.n_topics)

    def topic_linkage(self) -> np.ndarray:
        """Weighted Ward tree over the current topics: scipy linkage (T − 1, 4)."""
        from saetm.topics.hierarchy import topic_tree

        return topic_tree(self.topic_embeddings(), self.topics_.prevalence)

    def hierarchy(self, n_topics: int | None = None, *, max_depth: int | None = None, ascii: bool = False) -> str:
        """The topics as a text tree, one topic label per line.

        n_topics: draw the tree over the topics the model would have with this many
        (stage 3 only, the model is left unchanged); default: the current topics.
        max_depth: collapse deeper subtrees to the list of their topics.
        """
        from saetm.topics.hierarchy import format_tree, topic_embeddings, topic_tree

        self._check_fitted()
        if n_topics is None or int(n_topics) == self.n_topics:
            labels, emb, prev = self.topic_labels(), self.topic_embeddings(), self.topics_.prevalence
        else:
            from saetm.components import resolved
            from saetm.topics.stage import cluster

            result = cluster(self._atoms(), n_topics, resolved(self, "clustering"), seed=self.seed)
            T = result.topics.n_topics
            words, _ = self.rank_words(result.topics.topic_words, 4)
            labels = [f"{t}: {', '.join(w)}" for t, w in enumerate(words)]
            emb = topic_embeddings(self.atom_embeddings_, self.feature_prob_, result.atom_topic, T)
            prev = result.topics.prevalence
        if len(labels) == 1:
            return labels[0]
        return format_tree(topic_tree(emb, prev), labels, max_depth=max_depth, ascii=ascii)

    def cut_hierarchy(self, n_topics: int) -> np.ndarray:
        """Cut the atom tree into ``n_topics`` nested clusters: ``atom_topic`` (n_atoms,), −1 for
        unused atoms. Cuts at different T nest exactly (unlike :meth:`retopic`, which refines
        the cut with k-means); the model is left unchanged."""
        from saetm.topics.stage import check_n_topics
        from saetm.topics.hierarchy import cut

        self._check_fitted()
        return cut(self.atom_tree_, check_n_topics(n_topics, self.feature_prob_))

    def atom_hierarchy(self, levels: Sequence[int]) -> pd.DataFrame:
        """Which cluster each used atom falls in at every granularity in ``levels``.

        One row per used atom: ``atom``, ``topic`` (its current topic), ``weight`` (θ̄),
        then a column ``T=<n>`` per level with the atom's cluster in the tree cut at n.
        """
        self._check_fitted()
        used = np.flatnonzero(self.feature_prob_ > 0)
        import pandas as pd

        out = pd.DataFrame({"atom": used, "topic": self.atom_topic_[used], "weight": self.feature_prob_[used]})
        for n in levels:
            out[f"T={int(n)}"] = self.cut_hierarchy(int(n))[used]
        return out

    # ------------------------------------------------------------ documents
    def get_representative_docs(self, topic: int | None = None, n: int = 5):
        """The ``n`` fitted documents most about ``topic`` (text, best first).

        Ranked by the document's weight in the topic, ties (e.g. documents entirely in
        the topic) broken by how much of its θ sits on the topic's most prevalent atoms;
        texts that differ only in case, punctuation or links are listed once.
        ``topic=None`` gives ``{topic: [texts]}`` for every topic.
        """
        self._check_fitted()
        texts = (getattr(self, "documents_", None) or {}).get("text")
        if texts is None:
            raise SaetmError("this model kept no document texts (saved by an older saetm); refit to get representative documents")

        def key(i):  # texts that differ only in case, punctuation or links count once
            return " ".join(_WORD.findall(_URL.sub("", str(texts[i]).lower())))

        topics = range(self.n_topics) if topic is None else [self._topic_index(topic)]
        best = {t: [texts[i] for i in rows] for t, rows in self._top_documents(topics, n, key).items()}
        return best if topic is None else best[topics[0]]

    def get_representative_images(self, topic: int | None = None, n: int = 6):
        """Paths of the ``n`` fitted images most about ``topic`` (best first), ranked like
        :meth:`get_representative_docs`; each image once, documents without a path (inline
        image data) left out. ``topic=None`` gives ``{topic: [paths]}`` for every topic.
        The paths are those given at fit; they are not checked to still exist."""
        self._check_fitted()
        paths = (getattr(self, "documents_", None) or {}).get("image")
        if paths is None:
            raise SaetmError("this model kept no image paths: it was fitted on text, on images without paths, "
                             "or saved by an older saetm; fit with images=[paths] (saetm fit --image-field)")
        topics = range(self.n_topics) if topic is None else [self._topic_index(topic)]
        top = self._top_documents(topics, n, paths.__getitem__)
        best = {t: [paths[i] for i in rows] for t, rows in top.items()}
        return best if topic is None else best[topics[0]]

    def _top_documents(self, topics, n: int, key) -> dict[int, list[int]]:
        """Row indices of each topic's ``n`` best documents (one sparse product for all topics).

        key: document row → str; documents with an empty key are skipped and each key is
        picked once (near-duplicate texts, the same image)."""
        a, n_docs = np.asarray(self.atom_topic_), self.doc_topics_.shape[0]
        used = np.flatnonzero(a >= 0)
        prevalence = np.maximum(np.asarray(self.topics_.prevalence, dtype=np.float64), 1e-12)
        core = sp.csr_matrix((self.feature_prob_[used] / prevalence[a[used]], (used, a[used])),
                             shape=(len(a), self.n_topics))  # θ̄_k / prevalence_c: the topic's centre
        centrality = sp.csc_matrix(self.theta_ @ core)
        weight = sp.csc_matrix(self.doc_topics_)
        out = {}
        for t in topics:
            rows = weight.indices[weight.indptr[t]:weight.indptr[t + 1]]
            w = weight.data[weight.indptr[t]:weight.indptr[t + 1]]
            c = np.zeros(n_docs)
            c[centrality.indices[centrality.indptr[t]:centrality.indptr[t + 1]]] = \
                centrality.data[centrality.indptr[t]:centrality.indptr[t + 1]]
            picked, seen = [], set()
            for i in rows[np.lexsort((rows, -c[rows], -np.round(w, 6)))]:
                k = key(i)
                if k and k not in seen:
                    seen.add(k)
                    picked.append(int(i))
                    if len(picked) == n:
                        break
            out[int(t)] = picked
        return out

    def _topic_index(self, topic) -> int:
        if isinstance(topic, bool) or not isinstance(topic, (int, np.integer)) or not 0 <= topic < self.n_topics:
            raise SaetmError(f"topic {topic!r} does not exist; topics are numbered 0..{self.n_topics - 1}")
        return int(topic)

    def find_topics(self, query: str, n: int = 5, *, embedding: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Topics of a free-text ``query``: ``[(topic, weight), ...]``, best first, at most ``n``.

        The query goes through the model's encoder and SAE like any document; weight is
        the share of its θ on the topic's atoms (weights sum to 1 over all topics). A
        query that activates no atom gets ``[]``. ``embedding``: the query's embedding
        (d,), for models whose encoder is not available.
        """
        self._check_fitted()
        if not isinstance(query, str) or (embedding is None and not query.strip()):
            raise SaetmError("find_topics needs a non-empty query string")
        if embedding is not None:
            W = self.transform(embeddings=np.asarray(embedding, dtype=np.float32).reshape(1, -1), normalize=True)
        else:
            W = self.transform([query], normalize=True)
        w = W.toarray().ravel()
        order = np.lexsort((np.arange(len(w)), -w))
        return [(int(t), float(w[t])) for t in order[: max(int(n), 0)] if w[t] > 0]

    # ------------------------------------------------------------ plots
    def visualize_barchart(self, topics: Sequence[int] | None = None, n_words: int = 8, max_topics: int = 12):
        """Top words per topic as bars of their scores (:meth:`get_topic`; plotly Figure);
        ``topics`` picks which (default: the first)."""
        from saetm.report.plots import topic_words_bars

        self._check_fitted()
        words, weights = self._top_words(n_words)[0], self._word_scores(n_words)
        labels = self.topic_labels()
        pick = range(self.n_topics) if topics is None else [self._topic_index(t) for t in topics]
        fig = topic_words_bars([words[t] for t in pick], [weights[t] for t in pick], [labels[t] for t in pick],
                               top_n=n_words, max_topics=max_topics)
        fig.update_xaxes(title_text="word score")
        meta = dict(fig.layout.meta)
        meta["caption"] = meta["caption"].replace("the weight given with the word", "the word's score: β made "
                                                  "non-increasing down the list (get_topic)")
        return fig.update_layout(meta=meta)

    def visualize_topics(self, method: str = "pca"):
        """2-D map of the topic embeddings, bubble area = prevalence. ``method``: "pca" (fast) or
        "mds" (seeded metric MDS on cosine distances; spreads crowded maps, used by the report)."""
        from saetm.report.plots import topic_map

        return topic_map(self.topic_embeddings(), self.topics_.prevalence, self.topic_labels(), seed=self.seed,
                         method=method)

    def visualize_topics_over_time(self, dates: Sequence | None = None, freq: str | int | None = None, top: int = 8,
                                   measure: str = "share", topics: Sequence[int] | None = None):
        """One panel per topic of its ``measure`` per period (share: with a 95% interval), under
        the documents per period, for the ``top`` topics whose main-topic counts change most
        (or ``topics``); see :func:`saetm.report.trends.topics_over_time_lines`."""
        from saetm.report.plots import topics_over_time_lines

        table = self.topics_over_time(dates, freq)
        topics = None if topics is None else [self._topic_index(t) for t in topics]
        return topics_over_time_lines(table, self.topic_labels(), top=top, measure=measure, topics=topics)

    def visualize_topics_per_class(self, classes: Sequence | None = None, top: int = 10, measure: str = "share",
                                   topics: Sequence[int] | None = None):
        """Per-class bars (share: with 95% intervals; a heatmap beyond 8 classes), each class
        named with its number of documents, for the ``top`` topics whose main-topic counts
        differ most between classes (:func:`saetm.analysis.time.pick_significant`), or for ``topics``."""
        from saetm.report.plots import group_comparison_bars

        classes = self._classes(classes)
        if topics is not None:
            topics = [self._topic_index(t) for t in topics]
        table = self.topics_per_class(classes).rename(columns={"class": "group"})
        fig = group_comparison_bars(table, self.topic_labels(), top=top, measure=measure, topics=topics)
        fig.update_layout(title_text=fig.layout.title.text.replace("by group", "by class"),
                          legend_title_text="class (documents)")
        fig.update_xaxes(title_text="class (documents)", selector=dict(title_text="group (documents)"))
        if isinstance(fig.layout.meta, dict):
            caption = fig.layout.meta["caption"]
            for group, cls in (("groups", "classes"), ("group", "class")):
                caption = caption.replace(group, cls)
            fig.update_layout(meta={**fig.layout.meta, "caption": caption})
        return fig

    def visualize_hierarchy(self):
        """Dendrogram of the weighted Ward tree over the current topics (needs T ≥ 2)."""
        from saetm.report.plots import topic_dendrogram

        self._check_fitted()
        if self.n_topics < 2:
            raise SaetmError("a hierarchy needs at least 2 topics; retopic to more first")
        return topic_dendrogram(self.topic_linkage(), self.topic_labels())

    def visualize_heatmap(self, max_docs: int = 200, max_topics: int = 30):
        """Topic weights of a seeded sample of at most ``max_docs`` fitted documents."""
        from saetm.report.plots import doc_topic_heatmap

        self._check_fitted()
        return doc_topic_heatmap(self.doc_topics_, self.topic_labels(), max_docs=max_docs, seed=self.seed,
                                 max_topics=max_topics)

    # ------------------------------------------------------------ report
    def report(self, path: str | Path, *, dates: Sequence | None = None, classes: Sequence | None = None,
               freq: str | int | None = None, title: str | None = None) -> Path:
        """Write one self-contained HTML report (works offline) and return its path.

        The page holds the topic table (each topic's share of the documents' weight and the
        documents whose main topic it is), every topic's top words, the charts that apply
        (over time when dates are given or kept with the model, per class when classes are;
        both of share, with 95% intervals and document counts), thumbnails of each
        topic's top images (models fitted with image paths; unreadable files are skipped
        and counted), the run's settings, and notes on anything capped for size. See :func:`saetm.report.build.build_report`.
        """
        from saetm.report.build import build_report

        self._check_fitted()
        return build_report(self, path, dates=dates, classes=classes, freq=freq, title=title)
