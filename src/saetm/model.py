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
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.lazy_sae import LazySAE
from saetm.params import SAETMParams
from saetm.views import TopicViews
from saetm.word_lists import MAX_LABEL_CHARS, WordLists  # noqa: F401 (model_files imports it from here)

log = logging.getLogger("saetm")


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


class SAETM(TopicViews, WordLists, LazySAE, SAETMParams):
    """Topic model read off a sparse autoencoder's atoms (SAE-TM).

    Settings (constructor, ``get_params``/``set_params``): :class:`saetm.params.SAETMParams`,
    whose ranges and defaults are the table in :mod:`saetm.settings`. Learned state ends
    in ``_``. Word lists and topic labels: :class:`saetm.word_lists.WordLists`; analyses,
    plots and the report: :class:`saetm.views.TopicViews`.
    """

    # ------------------------------------------------------------------ fitting
    def fit(self, documents: Sequence[str], embeddings: np.ndarray | None = None, *,
            dates: Sequence | None = None, labels: Sequence | None = None,
            ids: Sequence | None = None, images: Sequence | None = None,
            embedding_name: str | None = None, embedding_rows: Sequence[int] | None = None,
            holdout: float | None = None) -> "SAETM":
        """Fit all three stages on ``documents`` (``embeddings``: optional precomputed
        ``(n_docs, dim)`` array aligned with the documents; ``embedding_name``: what made
        them, e.g. ``"image:efficientnet-lite0"``, recorded with the SAE and the model).

        embedding_rows: with ``embeddings``, the document each embedding row belongs to
        (default: one row per document, in order). A document without an embedding (an
        image that could not be read) keeps its row and gets no topic, as an empty text does.

        dates / labels / ids: kept per document for the analyses and the report.
        images: for an image collection, each document's image (a path; inline bytes are
        not kept), so :meth:`get_representative_images` and the report can show them.

        holdout: a share (0–1) of the documents, chosen with ``seed``, to leave out of the
        fit; :meth:`evaluate` then scores the topics' words on them too (``npmi_heldout``,
        ``cv_heldout``). The model (``doc_topics_``, ``documents_``) covers the fitted
        documents only; ``heldout_["rows"]`` are the held-out positions in ``documents``,
        and without ``ids`` every fitted document keeps its position as id.

        Settings the SAE it will use cannot meet (more topics than atoms, an SAE too large
        for this machine's memory) are refused before anything is encoded."""
        from saetm.checks import check_before_data, width
        from saetm.components import resolved
        from saetm.encoders import embed
        from saetm.io import inputs
        from saetm.sae import stage as sae_stage
        from saetm.topics import stage as topics_stage, wordrank
        from saetm.words import stage as words_stage

        self._check_params()
        docs = inputs.check_documents(documents)
        meta = inputs.check_metadata(len(docs), dates=dates, labels=labels, ids=ids, images=images)
        self.heldout_ = self._heldout_texts = None
        if holdout is not None:  # fit on the rest (saetm.evaluation.holdout)
            from saetm.evaluation.holdout import hold_out

            docs, meta, embeddings, embedding_rows, self.heldout_, self._heldout_texts = hold_out(
                holdout, self.seed, docs, meta, embeddings, embedding_rows)
        meta["image"] = _image_paths(meta["image"])
        meta["text"] = docs  # kept (saved truncated) for representative documents and reports
        report = FitReport(n_documents=len(docs))
        self.input_ = None  # set by `saetm fit` (the file read), kept in model.json for `saetm evaluate`
        t = time.perf_counter()

        encoder = embed.make_encoder(self.encoder)
        # before encoding: a setting the SAE cannot meet should not cost an encoding run
        check_before_data(self, embedding_name or encoder.name, width(embeddings), given=embeddings is not None)
        self.encoder_, self.embedding_name_ = encoder, embedding_name or encoder.name
        X, rows = embed.embed(self.encoder_, docs, embeddings, cache=self.cache, progress=self.verbose,
                              rows=embedding_rows, fit=True)
        clustering = resolved(self, "clustering")
        self.doc_embeddings_ = topics_stage.document_embeddings(X, rows, len(docs), clustering.doc_weights)
        report.seconds["embed"] = time.perf_counter() - t

        # The vocabulary is cheap and can fail on user settings (min_df): build it first.
        t = time.perf_counter()
        self.vocab_, counts = words_stage.vocabulary(docs, **self._vocabulary_settings())
        t_vocab = time.perf_counter() - t
        # the words are counted: a large corpus keeps only what documents.parquet saves
        meta["text"], report.texts_cut = inputs.kept_texts(docs)
        del docs, documents

        t = time.perf_counter()
        self.sae_, report.sae = sae_stage.get_sae(self.sae, X, training=resolved(self, "sae"),
                                                  embedding_name=self.embedding_name_, cache=self.cache,
                                                  seed=self.seed, progress=self.verbose)
        theta = sae_stage.theta_of(self.sae_, X, rows, report.n_documents)
        report.seconds["sae"] = time.perf_counter() - t

        t = time.perf_counter() - t_vocab
        fw = words_stage.feature_words(theta, counts, resolved(self, "words"))
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
        self.atom_embeddings_ = topics_stage.atom_embeddings(
            self.feature_words_, clustering, vocab=self.vocab_, encoder=self.encoder_, sae=self.sae_, seed=self.seed,
            theta=self.theta_, X=X, rows=rows)
        self.atom_tree_ = topics_stage.atom_tree(self.atom_embeddings_, self.feature_prob_, clustering.prevalence_power)
        self.documents_ = meta
        self._set_topics(topics_stage.cluster(self._atoms(), self.n_topics, clustering, seed=self.seed))
        topics_stage.warn_if_many_topics(self.n_topics, report.n_documents, self.feature_prob_)
        report.seconds["topics"] = time.perf_counter() - t
        self.fit_report_ = report
        return self

    def fit_transform(self, documents, embeddings=None, **kwargs) -> sp.csr_matrix:
        """Fit, then return the document–topic weights ``(n_docs, T)`` CSR."""
        return self.fit(documents, embeddings, **kwargs).doc_topics_

    def retopic(self, n_topics: int) -> "SAETM":
        """Change the number of topics: re-runs stage 3 only (no SAE or EM refit). A new
        ``prevalence_power`` (``set_params``) rebuilds the atom tree first."""
        from saetm.components import resolved
        from saetm.topics import stage as topics_stage

        self._check_fitted()
        clustering = resolved(self, "clustering")
        self.n_topics = topics_stage.check_n_topics(n_topics, self.feature_prob_)
        if topics_stage.check_prevalence_power(clustering.prevalence_power) != self.atom_tree_.power:
            self.atom_tree_ = topics_stage.atom_tree(self.atom_embeddings_, self.feature_prob_,
                                                     clustering.prevalence_power)
        self._set_topics(topics_stage.cluster(self._atoms(), self.n_topics, clustering, seed=self.seed))
        topics_stage.warn_if_many_topics(self.n_topics, self.theta_.shape[0], self.feature_prob_)
        self.custom_labels_ = None  # labels named the old topics
        return self

    def _set_topics(self, result) -> None:
        self._word_lists = {}  # (n_words, ranking) -> top words of these topics
        self.atom_topic_ = result.atom_topic
        self.topics_ = result.topics
        self.doc_topics_ = result.doc_topics
        self.topic_centroids_ = result.centroids
        self.topic_priors_ = result.priors
        self.word_centroids_ = result.word_centroids  # (T, V) ν of the word view, or None
        self.doc_word_weight_ = result.word_weight  # b the weights were fitted with (0: without words)
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
        document's embedding (and, given ``documents``, its words), exactly as the fitted
        documents' ``doc_topics_``; with
        ``"theta"`` they hold the θ mass of each topic's atoms (``normalize`` is kept for
        compatibility: the rows already sum to 1 or 0)."""
        from saetm.encoders import embed
        from saetm.io.inputs import check_documents
        from saetm.sae.stage import theta_of
        from saetm.topics.stage import topic_weights

        self._check_fitted()
        if documents is None and embeddings is None:
            raise SaetmError("transform needs documents or embeddings")
        docs = check_documents(documents) if documents is not None else None
        X, rows = embed.embed(self.encoder_, docs, embeddings, cache=self.cache, progress=self.verbose,
                              expected_dim=self.sae_.config.d_in)
        theta = theta_of(self.sae_, X, rows, len(docs) if docs is not None else X.shape[0])
        centroids = getattr(self, "topic_centroids_", None)
        words = None if centroids is None or docs is None else self._word_directions(docs)
        return topic_weights(theta, X, rows, atom_topic=self.atom_topic_, n_topics=self.n_topics,
                             centroids=centroids, priors=getattr(self, "topic_priors_", None),
                             smoothing=None if centroids is None else self.doc_smoothing_, normalize=normalize,
                             words=words, word_centroids=self.word_centroids_, word_weight=self.doc_word_weight_)

    def _word_directions(self, docs):
        """ŵ of new documents (:mod:`saetm.topics.docwords`), None when the weights use no words."""
        from saetm.topics import docwords
        from saetm.words.vocab import tokenizer

        if self.word_centroids_ is None:
            return None
        # Stop words are never vocabulary words, so keeping the vocabulary's words of the tokens
        # drops them; merged inflections map every form to its shown word, which needs the list.
        tokens = (self._reference_tokens(docs) if self.merge_inflections
                  else list(map(tokenizer(self.lemmatize), docs)))
        return docwords.new_directions(tokens, self.vocab_, docwords.idf_of(self.doc_words_))

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
        A model fitted with ``holdout`` (or ``saetm fit --holdout``, whose input must be
        unchanged) also gets ``npmi_heldout`` and ``cv_heldout``: the same measures on the
        documents it was not fitted on.
        """
        from saetm.evaluation.scorecard import TD_TOP, scorecard
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
            reference = self._reference_tokens(texts)
        elif isinstance(reference, (list, tuple)) and reference and all(isinstance(t, str) for t in reference):
            reference, source = self._reference_tokens(reference), f"{len(reference)} given documents"
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
        from saetm.evaluation.holdout import add_heldout

        add_heldout(self, record, words, top_n)  # fitted with a holdout: NPMI / C_V on those documents too
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

    # ---------------------------------------------------------------- stage settings
    def _vocabulary_settings(self) -> dict:
        """The settings of the vocabulary (:func:`saetm.words.stage.vocabulary`)."""
        return dict(min_df=self.min_df, max_df=self.max_df, max_features=self.max_features,
                    stop_words=self.stop_words, extra_stop_words=self.extra_stop_words, lemmatize=self.lemmatize,
                    merge_inflections=self.merge_inflections)

    def _reference_tokens(self, texts) -> list[list[str]]:
        """The tokens of ``texts`` this model's stage 2 counts, for NPMI / C_V."""
        from saetm.words.stage import reference_tokens

        return reference_tokens(texts, stop_words=self.stop_words, extra_stop_words=self.extra_stop_words,
                                lemmatize=self.lemmatize, merged_vocab=self.vocab_ if self.merge_inflections else None)

    # ---------------------------------------------------------------- checks
    def _check_fitted(self) -> None:
        if not hasattr(self, "topics_"):
            raise SaetmError("this SAETM is not fitted yet; call fit(documents) or SAETM.load(directory)")

    def _check_params(self) -> None:
        from saetm.settings import check_params

        check_params(self)
