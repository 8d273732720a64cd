"""The user-facing estimator on a real slice of 20 Newsgroups."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import normalized_mutual_info_score

from saetm import SaetmError
from saetm.model import SAETM


def test_fit_produces_topics(fitted_model, ng_corpus):
    m = fitted_model
    assert m.n_topics == 8
    info = m.get_topic_info()
    assert list(info.columns) == ["topic", "label", "prevalence", "coverage", "n_docs", "n_atoms", "top_words"]
    assert len(info) == 8
    assert np.all(np.diff(info.prevalence) <= 1e-7), "topics are ordered by prevalence"
    assert info.n_atoms.sum() == (m.feature_prob_ > 0).sum(), "every used atom is in exactly one topic"
    assert ((info.coverage > 0) & (info.coverage <= 1)).all()
    W = m.doc_topics_
    assert sp.issparse(W) and W.shape == (len(ng_corpus), 8)
    sums = np.asarray(W.sum(axis=1)).ravel()
    assert np.allclose(sums[sums > 0], 1, atol=1e-4)
    words = m.get_topic(0)
    assert len(words) == 25 and all(isinstance(w, str) and wt > 0 for w, wt in words)
    m.set_params(words__ranking="beta")  # the paper's ranking lists words by β; the default reorders them (test_wordrank.py)
    try:
        by_beta = [wt for _, wt in m.get_topic(0)]
    finally:
        m.set_params(words__ranking="coherent")
    assert by_beta == sorted(by_beta, reverse=True)


def test_topics_follow_the_newsgroups(fitted_model, ng_corpus):
    # Random topic assignment gives NMI ≈ 0.03 on these 400 documents; SAE-TM topics are
    # about the newsgroups' themes, so their argmax must carry real label information.
    topic = fitted_model.get_document_info().topic.to_numpy()
    nmi = normalized_mutual_info_score(ng_corpus.labels, topic)
    rng = np.random.default_rng(0)
    chance = normalized_mutual_info_score(ng_corpus.labels, rng.permutation(topic))
    assert nmi > 0.2 and nmi > 3 * chance


def test_retopic_up_and_down_is_stage3_only(fitted_model):
    m = fitted_model  # ends back at T=8, which re-creates the fitted topics exactly (seeded k-means)
    before = m.get_topics()
    B_before = m.feature_words_.copy()
    theta_before = m.theta_.copy()
    n_used = int((m.feature_prob_ > 0).sum())
    for T in (3, 15, 8):
        m.retopic(T)
        assert m.n_topics == T and m.doc_topics_.shape[1] == T
        assert sorted(set(m.atom_topic_[m.feature_prob_ > 0])) == list(range(T))
        assert (m.atom_topic_[m.feature_prob_ == 0] == -1).all()
        assert m.topics_.n_atoms.sum() == n_used
    assert (m.feature_words_ != B_before).nnz == 0 and (m.theta_ != theta_before).nnz == 0
    assert m.get_topics() == before
    with pytest.raises(SaetmError, match="atoms this corpus uses"):
        m.retopic(n_used + 1)
    with pytest.raises(SaetmError, match="integer"):
        m.retopic(2.5)


def test_transform_matches_fit(fitted_model, ng_corpus, ng_embeddings):
    W = fitted_model.transform(ng_corpus.texts[:25], ng_embeddings[:25])
    assert np.allclose(W.toarray(), fitted_model.doc_topics_[:25].toarray(), atol=1e-6)
    # real encoder on raw text (embeddings come from the on-disk cache or the encoder)
    W_text = fitted_model.transform(ng_corpus.texts[:5])
    assert np.allclose(W_text.toarray(), fitted_model.doc_topics_[:5].toarray(), atol=1e-4)
    info = fitted_model.get_document_info(ng_corpus.texts[:5])
    assert list(info.columns[:2]) == ["document", "topic"] and len(info) == 5


def test_empty_documents_keep_their_rows(fitted_model, ng_corpus):
    W = fitted_model.transform([ng_corpus.texts[0], "   ", ng_corpus.texts[1]])
    assert W.shape == (3, fitted_model.n_topics)
    assert W[1].nnz == 0 and W[0].nnz > 0


def test_save_load_round_trip(fitted_model, tmp_path, ng_embeddings):
    fitted_model.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")
    assert loaded.get_topics() == fitted_model.get_topics()
    assert (loaded.doc_topics_ != fitted_model.doc_topics_).nnz == 0
    assert np.allclose(loaded.transform(embeddings=ng_embeddings[:10]).toarray(),
                       fitted_model.transform(embeddings=ng_embeddings[:10]).toarray())
    assert loaded.documents_["label"] == fitted_model.documents_["label"]
    with pytest.raises(SaetmError, match="already holds a saetm model"):
        fitted_model.save(tmp_path / "m")
    for f in (tmp_path / "m").iterdir():
        assert not f.name.endswith(".tmp")


def test_sparse_arrays_are_saved_with_their_own_index_type(fitted_model, tmp_path):
    # int32 indices are written as they are (no int64 copy while saving); files of older
    # versions hold int64 ones, and both load to the same matrices
    from safetensors.numpy import load_file, save_file

    fitted_model.save(tmp_path / "m")
    state = dict(load_file(tmp_path / "m" / "state.safetensors"))
    assert state["feature_words.indices"].dtype == fitted_model.feature_words_.indices.dtype == np.int32
    assert state["theta.indptr"].dtype == np.int32
    for name in [k for k in state if k.endswith((".indices", ".indptr"))]:
        state[name] = state[name].astype(np.int64)
    save_file(state, tmp_path / "m" / "state.safetensors", metadata=_metadata(tmp_path / "m" / "state.safetensors"))
    loaded = SAETM.load(tmp_path / "m")
    assert (loaded.feature_words_ != fitted_model.feature_words_).nnz == 0
    assert (loaded.theta_ != fitted_model.theta_).nnz == 0


def _metadata(path):
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return f.metadata()


def test_same_seed_same_topics(ng_corpus, ng_embeddings, small_params, fitted_model):
    # cache=False: train the SAE again rather than reuse the cached one
    again = SAETM(n_topics=8, **{**small_params, "cache": False}).fit(ng_corpus.texts, ng_embeddings)
    assert again.get_topics() == fitted_model.get_topics()
    assert np.array_equal(again.atom_topic_, fitted_model.atom_topic_)


def test_bad_parameters_and_inputs(ng_corpus, ng_embeddings, fitted_model):
    with pytest.raises(SaetmError, match="n_topics"):
        SAETM(n_topics=0).fit(ng_corpus.texts)
    with pytest.raises(SaetmError, match="k=32 must be smaller"):
        SAETM(sae={"n_atoms": 16}).fit(ng_corpus.texts)
    with pytest.raises(SaetmError, match="words__ranking must be one of"):
        SAETM(words="tfidf").fit(ng_corpus.texts)
    with pytest.raises(SaetmError, match="atom_space must be one of"):
        SAETM(clustering={"atom_space": "glove"}).fit(ng_corpus.texts)
    with pytest.raises(SaetmError, match="rows but there are"):
        SAETM().fit(ng_corpus.texts, ng_embeddings[:10])
    bad = ng_embeddings[:50].copy()
    bad[3, 0] = np.nan
    with pytest.raises(SaetmError, match="NaN"):
        SAETM().fit(ng_corpus.texts[:50], bad)
    with pytest.raises(SaetmError, match="single string"):
        SAETM().fit("one document")
    with pytest.raises(SaetmError, match="all documents are empty"):
        SAETM().fit(["", "  "])
    with pytest.raises(SaetmError, match="not fitted"):
        SAETM().get_topic_info()
    with pytest.raises(SaetmError, match="columns but the SAE expects 384"):
        fitted_model.transform(embeddings=np.zeros((2, 512), np.float32))


def test_params_follow_sklearn_contract():
    m = SAETM(n_topics=7, seed=3)
    assert m.get_params()["n_topics"] == 7 and m.get_params()["seed"] == 3
    m.set_params(n_topics=9)
    assert m.n_topics == 9
    with pytest.raises(SaetmError, match="unknown parameter"):
        m.set_params(topics=3)


def test_topic_labels(fitted_model):
    labels = fitted_model.topic_labels()
    assert len(labels) == fitted_model.n_topics and labels[0].startswith("0: ")
    fitted_model.set_topic_labels({0: "my topic"})
    assert fitted_model.topic_labels()[0] == "my topic"
    fitted_model.set_topic_labels(None)
    assert fitted_model.topic_labels()[0].startswith("0: ")


def test_trained_sae_is_cached_and_identical(ng_corpus, ng_embeddings, small_params, fitted_model, tmp_path,
                                             monkeypatch):
    monkeypatch.setenv("SAETM_CACHE", str(tmp_path))
    first = SAETM(n_topics=8, **small_params).fit(ng_corpus.texts, ng_embeddings)
    assert len(list((tmp_path / "sae").iterdir())) == 1
    second = SAETM(n_topics=8, **small_params).fit(ng_corpus.texts, ng_embeddings)
    assert second.fit_report_.sae.get("cached") is True
    assert second.get_topics() == first.get_topics() == fitted_model.get_topics()


@pytest.mark.parametrize("space", ["words", "documents", "decoder", "coactivation"])
def test_every_atom_space_fits_and_retopics(ng_corpus, ng_embeddings, small_params, fitted_model, space):
    """Each atom space is only stage 3: same SAE, θ and B as the default fit; topics follow
    the newsgroups; retopic reuses the stored atom embeddings."""
    m = SAETM(n_topics=8, clustering={"atom_space": space}, **small_params).fit(ng_corpus.texts, ng_embeddings)
    assert (m.feature_words_ != fitted_model.feature_words_).nnz == 0
    assert m.atom_embeddings_.shape[0] == m.feature_words_.shape[0]
    assert m.atom_embeddings_.shape[1] == {"words": 50, "documents": 384, "decoder": 384, "coactivation": 63}[space]
    topic = m.get_document_info().topic.to_numpy()
    assert normalized_mutual_info_score(ng_corpus.labels, topic) > 0.2
    emb = m.atom_embeddings_.copy()
    m.retopic(5)
    assert m.n_topics == 5 and np.array_equal(m.atom_embeddings_, emb)


def test_default_atom_space_is_documents_and_coactivation(fitted_model):
    assert fitted_model.atom_space == "documents+coactivation"
    assert fitted_model.atom_embeddings_.shape[1] == 384 + 63


def test_lift_and_relevance_rank_against_the_atoms_marginal(fitted_model):
    """p0 from EM is ~0 for most words, so lift/relevance compare β with Σ_k θ̄_k B_k instead."""
    from saetm.topics.merge import top_words

    m = fitted_model
    ref = m.word_reference()
    expected = np.asarray(m.feature_words_.T @ m.feature_prob_.astype(np.float64)).ravel()
    np.testing.assert_allclose(ref, expected / expected.sum(), rtol=1e-6)
    assert ref.shape == (len(m.vocab_),) and abs(ref.sum() - 1) < 1e-9
    assert (ref > 0).mean() > 0.9  # unlike p0, nearly every vocabulary word has mass
    saved = m.word_ranking
    try:
        for ranking in ("lift", "relevance"):
            m.set_params(words__ranking=ranking)
            got = m.get_topics(n_words=10)
            want, _ = top_words(m.topics_.topic_words, m.vocab_, n=10, ranking=ranking, background=ref)
            assert [[w for w, _ in got[t]] for t in range(m.n_topics)] == want
    finally:
        m.set_params(words__ranking=saved)


def test_too_many_topics_for_the_data_warns_once(fitted_model, ng_corpus, ng_embeddings, caplog):
    m = fitted_model
    caplog.set_level("WARNING", logger="saetm")
    try:
        m.retopic(100)  # 400 documents: 4 per topic
        many = [r for r in caplog.records if "topics is many" in r.getMessage()]
        assert len(many) == 1 and "400 documents" in many[0].getMessage() and "\n" not in many[0].getMessage()
        caplog.clear()
    finally:
        m.retopic(8)
    assert not [r for r in caplog.records if "topics is many" in r.getMessage()]  # 50 documents per topic
    # 50 documents (the shipped SAE): 20 topics warn at fit
    SAETM(n_topics=20, min_df=2, verbose=False).fit(ng_corpus.texts[:50], ng_embeddings[:50])
    assert any("20 topics is many for 50 documents" in r.getMessage() for r in caplog.records)


def test_vocabulary_settings_fit_save_and_load(ng_corpus, ng_embeddings, small_params, fitted_model, tmp_path):
    from saetm.words.stage import vocabulary
    from saetm.words.vocab import inflection_key

    lemmas, _ = vocabulary(ng_corpus.texts, **SAETM(lemmatize=True, min_df=3)._vocabulary_settings())
    assert "gun" in lemmas and "guns" not in lemmas and "using" not in lemmas  # wired to stage 2
    m = SAETM(n_topics=8, **small_params, extra_stop_words=["god"], merge_inflections=True)
    m.fit(ng_corpus.texts, ng_embeddings)
    key = inflection_key()
    assert "god" not in m.vocab_ and len({key(w) for w in m.vocab_}) == len(m.vocab_) < len(fitted_model.vocab_)
    listed = [w for t in range(m.n_topics) for w, _ in m.get_topic(t, 10)]
    assert "god" not in listed and "guns" not in listed  # "gun" carries both forms
    assert np.isfinite(m.evaluate(word_vectors=None)["npmi"])  # its reference counts "guns" as "gun" too
    m.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")
    assert loaded.extra_stop_words == ["god"] and loaded.merge_inflections is True and loaded.lemmatize is False
    assert loaded.vocab_ == m.vocab_ and loaded.get_topics() == m.get_topics()
    for bad, match in ((dict(lemmatize="yes"), "lemmatize"), (dict(extra_stop_words="god"), "list of words"),
                       (dict(stop_words="french"), "stop_words")):
        with pytest.raises(SaetmError, match=match):
            SAETM(**bad).fit(["a text"] * 3)
