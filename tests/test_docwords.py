"""The documents' own words as a second view in their topic weights (saetm.topics.docwords)."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from saetm.errors import SaetmError
from saetm.evaluation.measures import label_agreement
from saetm.model import SAETM
from saetm.topics import docwords
from saetm.topics.wordrank import doc_word_incidence, sample_rows


def test_word_directions_by_hand():
    incidence = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=np.float32))
    idf = docwords.idf_of(incidence)
    # 4 documents; the words are in 2, 3 and 1 of them
    np.testing.assert_allclose(idf, np.log(5 / np.array([3, 4, 2])) + 1)
    w = docwords.directions(incidence, idf).toarray()
    np.testing.assert_allclose(w[0], np.array([idf[0], idf[1], 0]) / np.hypot(idf[0], idf[1]), rtol=1e-6)
    np.testing.assert_allclose(w[1], [0, 1, 0])
    assert not w[2].any()  # no vocabulary word: no word view
    np.testing.assert_allclose(np.linalg.norm(w[[0, 1, 3]], axis=1), 1, rtol=1e-6)
    # counts count once: the words a document holds, not how often
    twice = sp.csr_matrix(np.array([[3, 1, 0]], dtype=np.float32))
    np.testing.assert_allclose(docwords.directions(twice, idf).toarray()[0], w[0], rtol=1e-6)


def test_a_sample_of_document_words_is_placed_at_its_rows():
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.random((50, 8)) < 0.3, dtype=np.float32)
    kept = doc_word_incidence(counts, max_docs=20, seed=7)
    placed = docwords.fitted_directions(kept, 50, seed=7)
    rows = sample_rows(50, 20, 7)
    assert placed.shape == (50, 8)
    np.testing.assert_array_equal(placed[rows].toarray(), docwords.directions(kept, docwords.idf_of(kept)).toarray())
    others = np.setdiff1d(np.arange(50), rows)
    assert placed[others].nnz == 0
    assert docwords.fitted_directions(None, 50, seed=7) is None


def test_new_documents_get_the_words_the_fit_counted(fitted_model, ng_corpus):
    m = fitted_model
    fitted = m._atoms().doc_words
    again = docwords.new_directions(m._reference_tokens(ng_corpus.texts), m.vocab_, docwords.idf_of(m.doc_words_))
    assert again.shape == fitted.shape and (abs(again - fitted) > 1e-6).nnz == 0


def test_the_words_raise_agreement_with_the_newsgroups(fitted_model, ng_corpus):
    m = fitted_model
    assert m.doc_word_weight_ == docwords.ENCODER_WEIGHT == 1.0 and m.word_centroids_.shape == (m.n_topics,
                                                                                                len(m.vocab_))
    without = copy.deepcopy(m).set_params(clustering__doc_word_weight=0.0).retopic(m.n_topics)
    assert without.word_centroids_ is None and without.doc_word_weight_ == 0.0
    nmi = label_agreement(m.doc_topics_, ng_corpus.labels)["nmi"]
    assert nmi > label_agreement(without.doc_topics_, ng_corpus.labels)["nmi"] + 0.01
    # the same support: the words move weight among the topics a document's atoms gave it
    assert ((m.doc_topics_ != 0) != (without.doc_topics_ != 0)).nnz == 0


def test_the_word_weight_is_checked(fitted_model):
    for bad in (-1.0, float("nan"), "much"):
        with pytest.raises(SaetmError, match="doc_word_weight"):
            copy.deepcopy(fitted_model).set_params(clustering__doc_word_weight=bad).retopic(4)


def test_the_static_encoder_weighs_words_more_and_images_not_at_all():
    from saetm.encoders.static import StaticEncoder
    from saetm.encoders.text import TextEncoder

    assert docwords.default_weight(StaticEncoder()) == 3.0
    assert docwords.default_weight(TextEncoder(), "image:efficientnet-lite0") == 0.0
    assert docwords.default_weight(None) == docwords.default_weight(lambda texts: None) == 1.0


def test_saved_word_centroids_load_and_damaged_ones_are_refused(fitted_model, ng_corpus, ng_embeddings, tmp_path):
    m = copy.deepcopy(fitted_model).set_params(clustering__doc_word_weight=2.0).retopic(5)
    m.save(tmp_path / "m")
    back = SAETM.load(tmp_path / "m")
    assert back.doc_word_weight_ == 2.0
    np.testing.assert_array_equal(back.word_centroids_, m.word_centroids_)
    texts = ng_corpus.texts[:30]
    np.testing.assert_allclose(back.transform(texts, ng_embeddings[:30]).toarray(),
                               m.doc_topics_[:30].toarray(), atol=1e-5)
    arrays = dict(load_file(tmp_path / "m" / "topics.safetensors"))
    for name, value in [("word_centroids", arrays["word_centroids"][:, :-1]),
                        ("word_centroids", np.full_like(arrays["word_centroids"], np.nan)),
                        ("doc_word_weight", np.asarray([-1.0]))]:
        broken = dict(arrays, **{name: np.ascontiguousarray(value)})
        save_file(broken, tmp_path / "m" / "topics.safetensors")
        with pytest.raises(SaetmError, match="topics.safetensors"):
            SAETM.load(tmp_path / "m")


def test_models_saved_before_the_word_view_keep_their_weights(fitted_model, ng_corpus, ng_embeddings, tmp_path):
    # weights fitted without words, saved without doc_word_weight and word centroids (saetm < 0.12)
    m = copy.deepcopy(fitted_model).set_params(clustering__doc_word_weight=0.0).retopic(fitted_model.n_topics)
    m.save(tmp_path / "old")
    arrays = dict(load_file(tmp_path / "old" / "topics.safetensors"))
    assert "word_centroids" not in arrays and arrays.pop("doc_word_weight").tolist() == [0.0]
    save_file(arrays, tmp_path / "old" / "topics.safetensors")
    old = SAETM.load(tmp_path / "old")
    assert old.doc_word_weight_ == 0.0 and old.word_centroids_ is None
    np.testing.assert_array_equal(old.doc_topics_.toarray(), m.doc_topics_.toarray())
    # new documents are weighted as those were: by their embeddings alone, texts or not
    np.testing.assert_allclose(old.transform(ng_corpus.texts[:30], ng_embeddings[:30]).toarray(),
                               m.doc_topics_[:30].toarray(), atol=1e-5)


@pytest.mark.parametrize("setting", [{"merge_inflections": True}, {"lemmatize": True}])
def test_new_documents_are_cut_into_words_as_the_fitted_ones(setting, ng_corpus, ng_embeddings, small_params):
    texts, X = ng_corpus.texts[:300], ng_embeddings[:300]
    m = SAETM(n_topics=5, **small_params, **setting).fit(texts, X)
    assert m.word_centroids_ is not None
    W, fitted = m.transform(texts, X).toarray(), m.doc_topics_.toarray()
    if "lemmatize" in setting:
        np.testing.assert_allclose(W, fitted, atol=1e-6)
    else:  # a new text's rare inflections count as their shown word, which the fit's counts left out
        same = np.mean(W.argmax(axis=1) == fitted.argmax(axis=1))
        assert same >= 0.95
