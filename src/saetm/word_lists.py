"""The word lists and labels of a fitted ``SAETM``: ranking, scores, custom labels, tables.

A mixin of :class:`saetm.model.SAETM`; the ranking itself is :mod:`saetm.topics.wordrank`
and :func:`saetm.topics.merge.top_words`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

if TYPE_CHECKING:  # imported where a table is built: `saetm retopic` and `transform` to .npz need no pandas
    import pandas as pd

MAX_LABEL_CHARS = 200  # custom topic labels: a name, not a document


class WordLists:
    """Topic words, their scores, labels and the per-topic and per-document tables."""

    # ------------------------------------------------------------ inspection
    def get_topic(self, topic: int, n_words: int = 25, *, with_beta: bool = False) -> list[tuple]:
        """Top words of ``topic`` in ``words.ranking`` order (best first), each with a score
        that never increases down the list: ``[(word, score)]``, or ``[(word, score, β)]``
        with ``with_beta``.

        β, the topic's word distribution, need not decrease down the list (the default
        ``"coherent"`` ranking orders words by co-occurrence). The score is β made
        non-increasing: where a word is listed ahead of words with a higher β, they all get
        their mean β (the closest non-increasing fit; see
        :func:`saetm.topics.wordrank.listed_scores`), computed over the first
        ``max(n_words, 25)`` words, so a shorter list gives the same scores. It equals β with
        ``words="beta"``, and the scores of the listed words sum to their β."""
        self._check_fitted()
        if not 0 <= int(topic) < self.n_topics:
            raise SaetmError(f"topic {topic} does not exist; topics are numbered 0..{self.n_topics - 1}")
        return self._word_list(int(topic), n_words, with_beta)

    def get_topics(self, n_words: int = 25, *, with_beta: bool = False) -> dict[int, list[tuple]]:
        """:meth:`get_topic` of every topic: ``{topic: [(word, score)]}`` (``with_beta``: triples)."""
        self._check_fitted()
        return {t: self._word_list(t, n_words, with_beta) for t in range(self.n_topics)}

    def _word_list(self, topic: int, n_words: int, with_beta: bool) -> list[tuple]:
        words, weights = self._top_words(n_words)
        scores = self._word_scores(n_words)[topic]
        if with_beta:
            return [(w, float(s), float(b)) for w, s, b in zip(words[topic], scores, weights[topic])]
        return [(w, float(s)) for w, s in zip(words[topic], scores)]

    def topic_labels(self, n_words: int = 4) -> list[str]:
        """Short labels: ``"3: space, nasa, orbit, launch"``, or user labels if set."""
        custom = getattr(self, "custom_labels_", None)
        if custom:
            return list(custom)
        words, _ = self._top_words(n_words)
        return [f"{t}: {', '.join(w)}" for t, w in enumerate(words)]

    def set_topic_labels(self, labels: Sequence[str] | dict | None) -> "WordLists":
        """Name topics (a list with one label per topic, or ``{topic: label}``); ``None`` resets.
        A label longer than ``MAX_LABEL_CHARS`` characters is refused."""
        self._check_fitted()
        if labels is None:
            self.custom_labels_ = None
            return self
        base = self.topic_labels() if not getattr(self, "custom_labels_", None) else list(self.custom_labels_)
        if isinstance(labels, dict):
            for t, name in labels.items():
                if not 0 <= int(t) < self.n_topics:
                    raise SaetmError(f"topic {t} does not exist; topics are numbered 0..{self.n_topics - 1}")
                base[int(t)] = str(name)
        else:
            labels = [str(x) for x in labels]
            if len(labels) != self.n_topics:
                raise SaetmError(f"got {len(labels)} labels for {self.n_topics} topics; give one per topic")
            base = labels
        for t, name in enumerate(base):
            if len(name) > MAX_LABEL_CHARS:  # every table, plot and page of the report repeats labels
                raise SaetmError(f"the label of topic {t} has {len(name):,} characters; "
                                 f"give labels of at most {MAX_LABEL_CHARS}")
        self.custom_labels_ = base
        return self

    def get_topic_info(self, n_words: int = 10) -> pd.DataFrame:
        """One row per topic: topic, label, prevalence, coverage, n_docs, n_atoms, top words."""
        import pandas as pd

        self._check_fitted()
        words, _ = self._top_words(n_words)
        active = np.asarray((self.doc_topics_ > 0).sum(axis=0)).ravel()
        return pd.DataFrame({
            "topic": np.arange(self.n_topics),
            "label": self.topic_labels(),
            "prevalence": self.topics_.prevalence,
            "coverage": self.coverage_,
            "n_docs": active.astype(int),
            "n_atoms": self.topics_.n_atoms,
            "top_words": [", ".join(w) for w in words],
        })

    def get_document_info(self, documents: Sequence[str] | None = None, embeddings=None) -> pd.DataFrame:
        """Per document: its main topic, that topic's weight and label, and its metadata.

        Without arguments describes the fitted documents; with documents (or embeddings)
        describes new ones (via :meth:`transform`)."""
        self._check_fitted()
        if documents is None and embeddings is None:
            out = self.describe_weights(self.doc_topics_)
            names = {"text": "document", "id": "id", "date": "date", "label": "doc_label", "image": "image"}
            for col, name in names.items():
                values = (self.documents_ or {}).get(col)
                if values is not None:
                    out[name] = list(values)
            return out
        out = self.describe_weights(self.transform(documents, embeddings))
        if documents is not None:
            out.insert(0, "document", list(documents))
        return out

    def describe_weights(self, doc_topics: sp.spmatrix, top: int = 1, *,
                         labels: Sequence[str] | None = None) -> pd.DataFrame:
        """Main topic (−1 when none is active), its weight and label for each row of ``doc_topics``.

        ``top`` > 1 adds the next topics by weight as ``topic_2, weight_2, label_2``, ...
        (−1, 0.0 and "(no topic)" where a document has fewer active topics); ties go to
        the lower topic number. ``labels``: one per topic, when already at hand (default
        :meth:`topic_labels`)."""
        import pandas as pd

        W = sp.csr_matrix(doc_topics, copy=True)
        W.sort_indices()
        W.data[~(W.data > 0)] = 0  # NaN or negative weights are no topic
        W.eliminate_zeros()
        n, top = W.shape[0], max(1, min(int(top), W.shape[1]))
        rows = np.repeat(np.arange(n), np.diff(W.indptr))
        # by row, then weight descending; the stable sort keeps ties in topic order
        order = np.lexsort((-W.data, rows))
        rank = np.arange(len(order)) - W.indptr[rows[order]]
        keep = order[rank < top]
        topics = np.full((n, top), -1, dtype=np.int64)
        weights = np.zeros((n, top), dtype=W.dtype)
        topics[rows[keep], rank[rank < top]] = W.indices[keep]
        weights[rows[keep], rank[rank < top]] = W.data[keep]
        labels = self.topic_labels() if labels is None else list(labels)
        columns = {}
        for j in range(top):
            suffix = "" if j == 0 else f"_{j + 1}"
            columns[f"topic{suffix}"] = topics[:, j]
            columns[f"weight{suffix}"] = weights[:, j]
            columns[f"label{suffix}"] = [labels[t] if t >= 0 else "(no topic)" for t in topics[:, j]]
        return pd.DataFrame(columns)

    def _top_words(self, n_words: int):
        from saetm.topics.wordrank import MIN_WORDS

        n = int(n_words)
        # coherent lists of up to MIN_WORDS words are prefixes of that length's (wordrank.coherent_order):
        # one ranking serves the labels, the table and topics.json
        full = max(n, MIN_WORDS) if self.word_ranking == "coherent" and n >= 1 else n
        key = (full, self.word_ranking, self._repeat_penalty())
        cache = self.__dict__.setdefault("_word_lists", {})
        if key not in cache:
            cache[key] = self.rank_words(self.topics_.topic_words, full)
        words, weights = cache[key]
        return (words, weights) if full == n else ([w[:n] for w in words], [x[:n] for x in weights])

    def _word_scores(self, n_words: int) -> list[np.ndarray]:
        """Per topic, the scores of its first ``n_words`` listed words (see :meth:`get_topic`)."""
        from saetm.topics.wordrank import MIN_WORDS, listed_scores

        n = max(int(n_words), MIN_WORDS)  # word lists are prefixes of longer ones; scores too
        key = ("scores", n, self.word_ranking, self._repeat_penalty())
        cache = self.__dict__.setdefault("_word_lists", {})
        if key not in cache:
            cache[key] = listed_scores(self._top_words(n)[1])
        return [s[: int(n_words)] for s in cache[key]]

    def _repeat_penalty(self) -> float:
        """``words.diversity`` checked here too: ``set_params`` does not validate."""
        from saetm.words.stage import check_word_diversity

        return check_word_diversity(self.word_diversity)

    def rank_words(self, topic_words: np.ndarray, n_words: int):
        """Top ``n_words`` of each row of ``topic_words`` (T, V) by this model's
        ``words.ranking``: (words: T lists, weights: T arrays of β)."""
        from saetm.topics.merge import top_words

        return top_words(topic_words, self.vocab_, n=n_words, ranking=self.word_ranking,
                         background=self.word_reference(), doc_words=getattr(self, "doc_words_", None),
                         repeat_penalty=self._repeat_penalty())

    def word_reference(self) -> np.ndarray:
        """The word distribution that ``lift`` and ``relevance`` rankings compare against:
        the atoms' marginal Σ_k θ̄_k B_k / Σ_k θ̄_k, ``(V,)`` float64 (T-independent).

        Not the EM background p0: with the atoms explaining most words, EM drives p0 to
        ~0 for nearly every word (98% of R8's vocabulary), so a ratio against p0 ranks
        by noise (see ``bench/results/ablation.md``)."""
        self._check_fitted()
        m = np.asarray(self.feature_words_.T @ np.asarray(self.feature_prob_, dtype=np.float64)).ravel()
        return m / m.sum() if m.sum() > 0 else np.asarray(self.background_, dtype=np.float64)

