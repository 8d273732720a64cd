"""The user's model: SAE-TM as a scikit-learn style estimator.

``SAETM`` composes the three stages and holds their results; the mathematics
lives in ``saetm.sae`` (atoms), ``saetm.words`` (word distributions) and
``saetm.topics`` (topics). Data flows one way:

    documents → embeddings → activations → θ → B, p0 → atom embeddings → topics

Changing the number of topics (:meth:`SAETM.retopic`) re-runs stage 3 only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.lazy_sae import LazySAE
from saetm.views import TopicViews

log = logging.getLogger("saetm")
MAX_LABEL_CHARS = 200  # custom topic labels: a name, not a document


@dataclass
class FitReport:
    """What happened during ``fit``: seconds per stage and each stage's diagnostics."""

    seconds: dict = field(default_factory=dict)
    sae: dict = field(default_factory=dict)
    words: dict = field(default_factory=dict)
    n_documents: int = 0
    n_skipped: int = 0
    texts_cut: bool = False  # the model kept the texts cut short (a large corpus), as a loaded one does


def _image_paths(images: list | None) -> list | None:
    """Absolute paths of the images (``None`` for inline data); ``None`` when none has a path."""
    from saetm.io.images import image_location

    if images is None:
        return None
    paths = [image_location(x) for x in images]
    return paths if any(p is not None for p in paths) else None


class SAETM(TopicViews, LazySAE):
    """Topic model read off a sparse autoencoder's atoms (SAE-TM).

    Parameters are stored verbatim (scikit-learn contract); learned state ends in ``_``.

    n_topics: number of topics T (change later with :meth:`retopic`, no refit).
    encoder: ``"default"`` (bundled all-MiniLM-L6-v2), ``"static"`` (word-piece vectors
        distilled from it, :mod:`saetm.encoders.static`), a sentence-transformers name or
        local folder, or any callable ``list[str] -> (n, d) array``.
    sae: ``"auto"`` (the SAE shipped with saetm for the encoder, default or static, when
        ``n_atoms``/``k``/``arch``/``sae_steps`` ask for nothing else, else ``"train"``),
        ``"default"`` (the shipped SAE), ``"train"`` (train one on this corpus), a folder
        written by ``saetm train-sae``, or a fitted ``saetm.sae.models.SparseAutoencoder``.
    n_atoms, k, arch, sae_steps: settings for ``sae="train"`` (``n_atoms=None`` → 16 × dim).
    min_df, max_df, max_features, stop_words: the vocabulary (stage 2); ``stop_words``:
        ``"english"`` (saetm's list), None, or a list of words that replaces it.
    extra_stop_words: words removed in addition to ``stop_words`` (e.g. a corpus's boilerplate).
    lemmatize: replace every word by its lemma (simplemma, English) before counting;
        topics then list lemmas ("use", not "using").
    merge_inflections: after the vocabulary is built, count the words that are regular
        inflections of one lemma (gun, guns; coin, coins, coined) as one word, shown as its most
        frequent form, so that they stop filling several of a topic's word slots (see
        ``saetm.words.vocab.merge_inflected_words``).
    background_weight: π, the fixed weight of the background word distribution.
    idf: weight word counts by normalised IDF in stage 2.
    atom_space: how atoms are represented when they are clustered into topics:
        ``"documents+coactivation"`` (default: the θ-weighted mean embedding of each atom's
        documents next to the atom's co-activation profile), ``"documents"``,
        ``"coactivation"``, ``"decoder"`` (the SAE's decoder directions) or ``"words"``
        (SPEC §4 / the paper: sparsified word distribution · word vectors; the
        previous default). See ``saetm.topics.atomspace`` and ``bench/results/ablation.md``.
    tau: mass kept when sparsifying atom word distributions (``atom_space="words"``).
    word_vectors: ``"glove"`` (GloVe 6B 50-d) or ``"encoder"`` (the encoder on single words)
        to embed atoms for ``atom_space="words"``.
    prevalence_power: p in [0, 1]: when atoms are clustered into topics each weighs θ̄^p, its
        mean activation to the power p (default 0.5; 1: θ̄, the paper's weighted k-means, where
        a few atoms firing in most documents take whole topics; 0: every used atom the same).
        β still weighs atoms by θ̄. Takes effect at the next fit or ``retopic`` (which then
        rebuilds the atom tree, seconds). See ``saetm.topics.merge``.
    word_ranking: how each topic's words are chosen and ordered: ``"coherent"`` (default:
        words the topic's atoms emit more than the atoms on average, each word in at most
        two topics, ordered so the leading words co-occur in the fitted documents and
        repeat fewer of the words of larger topics; see
        ``saetm.topics.wordrank``), ``"beta"`` (β alone, the paper), ``"lift"`` or
        ``"relevance"`` (λ = 0.6). All but beta compare β with the atoms' marginal word
        distribution (:meth:`word_reference`).
    word_diversity: for ``"coherent"``, the mean NPMI a word loses in a topic's order for
        each larger topic already listing it among its first 25 words (default 0.2; 0:
        every topic listed on its own; above 2, the most NPMI can
        differ by: a larger topic's word only once no other candidate is left). Changing
        it re-ranks words without refitting (``set_params``; ``saetm retopic --word-diversity``).
    doc_weights: how document–topic weights are formed: ``"centroid"`` (default: each
        topic's share of the document's atom activations θ, reweighted toward the topics
        whose centroid is nearest to the document's embedding, centroids and topic
        weights fitted by EM; the model keeps the embeddings as float16 for it, see
        ``saetm.topics.docweights``) or ``"theta"``
        (the share of θ alone, the paper; keeps no embeddings).
    doc_smoothing: for ``"centroid"``, the share of each document's prior in that mixture
        spread evenly over all topics, the rest being its atoms' θ share (default 0.5; 0: θ
        alone; 1: a uniform prior, the atoms only start the mixture, which then drifts away
        from them). A document's weights still cover only the topics its atoms belong to.
        Takes effect at the next fit or ``retopic``.
    em_max_iter, em_tol: EM stops after this many iterations or when the NLL per token
        changes by less than ``em_tol`` (relative) in one iteration.
    seed: every random choice (SAE init and batches, k-means) derives from it.
    """

    def __init__(
        self,
        n_topics: int = 20,
        *,
        encoder: str | Callable = "default",
        sae="auto",
        n_atoms: int | None = None,
        k: int = 32,
        arch: str = "batchtopk",
        sae_steps: int | None = None,
        min_df: int = 5,
        max_df: float = 0.5,
        max_features: int = 10000,
        stop_words: str | Sequence[str] | None = "english",
        extra_stop_words: Sequence[str] | None = None,
        lemmatize: bool = False,
        merge_inflections: bool = False,
        background_weight: float = 0.3,
        idf: bool = False,
        em_max_iter: int = 200,
        em_tol: float = 1e-3,
        atom_space: str = "documents+coactivation",
        tau: float = 0.9,
        word_vectors: str = "glove",
        prevalence_power: float = 0.5,
        word_ranking: str = "coherent",
        word_diversity: float = 0.2,
        doc_weights: str = "centroid",
        doc_smoothing: float = 0.5,
        seed: int = 0,
        cache: bool = True,
        verbose: bool = True,
    ):
        self.n_topics = n_topics
        self.encoder = encoder
        self.sae = sae
        self.n_atoms = n_atoms
        self.k = k
        self.arch = arch
        self.sae_steps = sae_steps
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.stop_words = stop_words
        self.extra_stop_words = extra_stop_words
        self.lemmatize = lemmatize
        self.merge_inflections = merge_inflections
        self.background_weight = background_weight
        self.idf = idf
        self.em_max_iter = em_max_iter
        self.em_tol = em_tol
        self.atom_space = atom_space
        self.tau = tau
        self.word_vectors = word_vectors
        self.prevalence_power = prevalence_power
        self.word_ranking = word_ranking
        self.word_diversity = word_diversity
        self.doc_weights = doc_weights
        self.doc_smoothing = doc_smoothing
        self.seed = seed
        self.cache = cache
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def fit(self, documents: Sequence[str], embeddings: np.ndarray | None = None, *,
            dates: Sequence | None = None, labels: Sequence | None = None,
            ids: Sequence | None = None, images: Sequence | None = None,
            embedding_name: str | None = None, embedding_rows: Sequence[int] | None = None) -> "SAETM":
        """Fit all three stages on ``documents`` (``embeddings``: optional precomputed
        ``(n_docs, dim)`` array aligned with the documents; ``embedding_name``: what made
        them, e.g. ``"image:efficientnet-lite0"``, recorded with the SAE and the model).

        embedding_rows: with ``embeddings``, the document each embedding row belongs to
        (default: one row per document, in order). A document without an embedding (an
        image that could not be read) keeps its row and gets no topic, as an empty text does.

        dates / labels / ids: kept per document for the analyses and the report.
        images: for an image collection, each document's image (a path; inline bytes are
        not kept), so :meth:`get_representative_images` and the report can show them.

        Settings the SAE it will use cannot meet (more topics than atoms, an SAE too large
        for this machine's memory) are refused before anything is encoded."""
        from saetm import pipeline
        from saetm.checks import check_before_data, width
        from saetm.topics import wordrank

        self._check_params()
        docs = pipeline.check_documents(documents)
        meta = pipeline.check_metadata(len(docs), dates=dates, labels=labels, ids=ids, images=images)
        meta["image"] = _image_paths(meta["image"])
        meta["text"] = docs  # kept (saved truncated) for representative documents and reports
        report = FitReport(n_documents=len(docs))
        self.input_ = None  # set by `saetm fit` (the file read), kept in model.json for `saetm evaluate`
        t = time.perf_counter()

        encoder = pipeline.make_encoder(self.encoder)
        # before encoding: a setting the SAE cannot meet should not cost an encoding run
        check_before_data(self, embedding_name or encoder.name, width(embeddings), given=embeddings is not None)
        self.encoder_, self.embedding_name_ = encoder, embedding_name or encoder.name
        X, rows = pipeline.embed(self.encoder_, docs, embeddings, cache=self.cache, progress=self.verbose,
                                 rows=embedding_rows)
        self.doc_embeddings_ = pipeline.document_embeddings(self, X, rows, len(docs))
        report.seconds["embed"] = time.perf_counter() - t

        # The vocabulary is cheap and can fail on user settings (min_df): build it first.
        t = time.perf_counter()
        self.vocab_, counts = pipeline.vocabulary(self, docs)
        t_vocab = time.perf_counter() - t
        # the words are counted: a large corpus keeps only what documents.parquet saves
        meta["text"], report.texts_cut = pipeline.kept_texts(docs)
        del docs, documents

        t = time.perf_counter()
        self.sae_, report.sae = pipeline.get_sae(self, X)
        theta = pipeline.theta_of(self.sae_, X, rows, report.n_documents)
        report.seconds["sae"] = time.perf_counter() - t

        t = time.perf_counter() - t_vocab
        fw = pipeline.feature_words(self, theta, counts)
        # after EM, whose peak it would otherwise add to (and pin heap memory below)
        self.doc_words_ = wordrank.doc_word_incidence(counts, seed=self.seed)
        del counts
        self.theta_ = fw.theta
        self.feature_words_ = fw.feature_words
        self.background_ = fw.background
        self.feature_prob_ = fw.feature_prob
        report.words = fw.info
        report.seconds["words"] = time.perf_counter() - t

        t = time.perf_counter()
        self.atom_embeddings_ = pipeline.atom_embeddings(self, self.feature_words_, theta=self.theta_, X=X, rows=rows)
        self.atom_tree_ = pipeline.atom_tree(self)
        self.documents_ = meta
        self._set_topics(pipeline.cluster(self, self.n_topics))
        pipeline.warn_if_many_topics(self.n_topics, report.n_documents, self.feature_prob_)
        report.seconds["topics"] = time.perf_counter() - t
        self.fit_report_ = report
        return self

    def fit_transform(self, documents, embeddings=None, **kwargs) -> sp.csr_matrix:
        """Fit, then return the document–topic weights ``(n_docs, T)`` CSR."""
        return self.fit(documents, embeddings, **kwargs).doc_topics_

    def retopic(self, n_topics: int) -> "SAETM":
        """Change the number of topics: re-runs stage 3 only (no SAE or EM refit). A new
        ``prevalence_power`` (``set_params``) rebuilds the atom tree first."""
        from saetm import pipeline

        self._check_fitted()
        self.n_topics = pipeline.check_n_topics(n_topics, self.feature_prob_)
        if pipeline.check_prevalence_power(self.prevalence_power) != self.atom_tree_.power:
            self.atom_tree_ = pipeline.atom_tree(self)
        self._set_topics(pipeline.cluster(self, self.n_topics))
        pipeline.warn_if_many_topics(self.n_topics, self.theta_.shape[0], self.feature_prob_)
        self.custom_labels_ = None  # labels named the old topics
        return self

    def _set_topics(self, result) -> None:
        self._word_lists = {}  # (n_words, ranking) -> top words of these topics
        self.atom_topic_ = result.atom_topic
        self.topics_ = result.topics
        self.doc_topics_ = result.doc_topics
        self.topic_centroids_ = result.centroids
        self.topic_priors_ = result.priors
        # the smoothing those centroids and ρ were fitted with: transform() and save() use it
        self.doc_smoothing_ = result.smoothing
        self.coverage_ = result.coverage
        self.n_topics = int(result.topics.topic_words.shape[0])

    # ---------------------------------------------------------------- inference
    def transform(self, documents: Sequence[str] | None = None, embeddings: np.ndarray | None = None, *,
                  normalize: bool = False) -> sp.csr_matrix:
        """Topic weights of new documents: ``(n_docs, T)`` CSR.

        Rows sum to 1 (0 for a document that activates no atom). With
        ``doc_weights="centroid"`` they are weighted toward the topics nearest to each
        document's embedding, exactly as the fitted documents' ``doc_topics_``; with
        ``"theta"`` they hold the θ mass of each topic's atoms (``normalize`` is kept for
        compatibility: the rows already sum to 1 or 0)."""
        from saetm import pipeline

        self._check_fitted()
        if documents is None and embeddings is None:
            raise SaetmError("transform needs documents or embeddings")
        docs = pipeline.check_documents(documents) if documents is not None else None
        X, rows = pipeline.embed(self.encoder_, docs, embeddings, cache=self.cache, progress=self.verbose,
                                 expected_dim=self.sae_.config.d_in)
        theta = pipeline.theta_of(self.sae_, X, rows, len(docs) if docs is not None else X.shape[0])
        return pipeline.topic_weights(self, theta, X, rows, normalize=normalize)

    # ------------------------------------------------------------ inspection
    def get_topic(self, topic: int, n_words: int = 25, *, with_beta: bool = False) -> list[tuple]:
        """Top words of ``topic`` in ``word_ranking`` order (best first), each with a score
        that never increases down the list: ``[(word, score)]``, or ``[(word, score, β)]``
        with ``with_beta``.

        β, the topic's word distribution, need not decrease down the list (the default
        ``"coherent"`` ranking orders words by co-occurrence). The score is β made
        non-increasing: where a word is listed ahead of words with a higher β, they all get
        their mean β (the closest non-increasing fit; see
        :func:`saetm.topics.wordrank.listed_scores`), computed over the first
        ``max(n_words, 25)`` words, so a shorter list gives the same scores. It equals β with
        ``word_ranking="beta"``, and the scores of the listed words sum to their β."""
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

    def set_topic_labels(self, labels: Sequence[str] | dict | None) -> "SAETM":
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

    def describe_weights(self, doc_topics: sp.spmatrix, top: int = 1) -> pd.DataFrame:
        """Main topic (−1 when none is active), its weight and label for each row of ``doc_topics``.

        ``top`` > 1 adds the next topics by weight as ``topic_2, weight_2, label_2``, ...
        (−1, 0.0 and "(no topic)" where a document has fewer active topics); ties go to
        the lower topic number."""
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
        labels = self.topic_labels()
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
        """``word_diversity`` checked here too: ``set_params`` does not validate."""
        from saetm.pipeline import check_word_diversity

        return check_word_diversity(self.word_diversity)

    def rank_words(self, topic_words: np.ndarray, n_words: int):
        """Top ``n_words`` of each row of ``topic_words`` (T, V) by this model's
        ``word_ranking``: (words: T lists, weights: T arrays of β)."""
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

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, reference=None, labels=None, top_n: int = 10, judge=None, *, word_vectors="glove",
                 seed: int = 0, details: bool = False) -> dict:
        """Score the current topics (SPEC §7): TD, WMD diversity, NPMI, C_V, embedding
        coherence; NMI/ARI with labels; LLM coherence and intruder accuracy with a judge.

        ``reference``: the corpus for NPMI / C_V — None uses the fitted documents (a
        loaded model whose saved texts were cut to 1,000 characters re-reads the input
        ``saetm fit`` recorded when its content is unchanged, and otherwise refuses: give
        the corpus), or give texts, token lists or ``(counts CSR, vocab)``. ``labels``: one
        per fitted document (default: those given to ``fit``). ``judge``: a callable ``prompt -> answer`` such as
        :class:`saetm.evaluation.judge.OpenAIJudge`. ``word_vectors``: ``"glove"``, None
        (skip) or an object with ``vectors_for``. Returns ``{measure: value}``; with
        ``details=True`` the record ``saetm evaluate`` writes (per-topic values, notes).
        """
        from saetm.evaluation.scorecard import TD_TOP, scorecard
        from saetm.pipeline import reference_tokens
        from saetm.model_files import TEXT_CHARS

        self._check_fitted()
        if reference is None:
            texts = [t for t in (self.documents_ or {}).get("text") or [] if isinstance(t, str) and t.strip()]
            if not texts:
                raise SaetmError("this model keeps no document texts to use as the reference corpus for NPMI / C_V; "
                                 "give one (Python: reference=texts; CLI: --reference INPUT)")
            # A loaded model keeps texts cut to TEXT_CHARS (a fitted one, with fit_report_, the full
            # texts); cutting loses most co-occurrences (20 Newsgroups: NPMI 0.13 -> -0.13), so refuse.
            loaded = not hasattr(self, "fit_report_") or getattr(self.fit_report_, "texts_cut", False)
            source = f"the {len(texts)} fitted documents"
            if cut := loaded and sum(len(t) >= TEXT_CHARS for t in texts):
                why = (f"the model keeps {cut} of its {len(texts)} documents cut to {TEXT_CHARS} characters, "
                       "which would distort NPMI / C_V")
                if getattr(self, "input_", None) is None:
                    raise SaetmError(f"{why}; give the full corpus (Python: reference=texts; "
                                     "CLI: --reference INPUT, e.g. the file you fitted)")
                from saetm.io.provenance import read_fitted_texts

                texts = [t for t in read_fitted_texts(self.input_, why) if t.strip()]
                source = f"the {len(texts)} documents of {self.input_['path']}, the input the model was fitted on"
            reference = reference_tokens(self, texts)
        elif isinstance(reference, (list, tuple)) and reference and all(isinstance(t, str) for t in reference):
            reference, source = reference_tokens(self, reference), f"{len(reference)} given documents"
        else:
            source = "given"
        if labels is None:
            labels = (self.documents_ or {}).get("label")
        if isinstance(word_vectors, str):
            if word_vectors != "glove":
                raise SaetmError(f"word_vectors={word_vectors!r}: use 'glove', None or an object with vectors_for")
            from saetm.topics.wordvectors import GloveVectors

            word_vectors = GloveVectors()
        words, _ = self._top_words(max(TD_TOP, int(top_n) if isinstance(top_n, (int, np.integer)) else 0))
        record = scorecard(words, reference=reference, doc_topics=None if labels is None else self.doc_topics_,
                           labels=labels, word_vectors=word_vectors, judge=judge, top_n=top_n, seed=seed)
        if not details:
            return record["measures"]
        return {"n_topics": int(self.n_topics), "top_n": int(top_n), "reference": source, **record,
                "topics": [w[:top_n] for w in words]}

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Save to ``directory`` (safetensors + JSON, written atomically, no pickle).

        Refuses to replace another model unless ``overwrite=True``."""
        from saetm.model_files import save_model

        self._check_fitted()
        return save_model(self, Path(directory), overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | Path) -> "SAETM":
        """Load a model saved by :meth:`save` or ``saetm fit``."""
        from saetm.model_files import load_model

        return load_model(cls, Path(directory))

    # ---------------------------------------------------------------- checks
    def _check_fitted(self) -> None:
        if not hasattr(self, "topics_"):
            raise SaetmError("this SAETM is not fitted yet; call fit(documents) or SAETM.load(directory)")

    def _check_params(self) -> None:
        from saetm.pipeline import check_params

        check_params(self)

    def get_params(self, deep: bool = True) -> dict:
        import inspect

        return {p: getattr(self, p) for p in inspect.signature(type(self).__init__).parameters if p != "self"}

    def set_params(self, **params) -> "SAETM":
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise SaetmError(f"unknown parameter {key!r}; valid: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        state = f"fitted, {self.n_topics} topics" if hasattr(self, "topics_") else "not fitted"
        return f"SAETM(n_topics={self.n_topics}, encoder={getattr(self, 'encoder_', None) and self.encoder_.name or self.encoder!r}, {state})"
