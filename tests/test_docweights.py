"""Document–topic weights sharpened toward the nearest topic centroid (doc_weights="centroid")."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from saetm.errors import SaetmError
from saetm.evaluation.measures import label_agreement
from saetm.model import SAETM
from saetm.topics import merge
from saetm.topics.atomspace import unit_rows
from saetm.topics.docweights import (ITERATIONS, PRIOR_FLOOR, SMOOTHING, TEMPERATURE, UnitRows, document_prior,
                                     fit_mixture, sharpen, topic_centroids, update_priors)

from _old_formats import as_format1


def theta_weights(m):
    return merge.doc_topics(m.theta_, m.atom_topic_, m.n_topics)


def test_sharpen_is_the_von_mises_fisher_posterior():
    W = sp.csr_matrix(np.array([[0.5, 0.5, 0.0], [0.2, 0.0, 0.8], [0.0, 0.0, 0.0]]))
    E = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float16)
    C = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    out = sharpen(W, E, C).toarray()
    # document 0: cosines 1 and 0 with topics 0 and 1, equal priors
    p = np.exp(1 / TEMPERATURE)
    np.testing.assert_allclose(out[0], [p / (p + 1), 1 / (p + 1), 0.0], rtol=1e-6)
    # document 1: cosines 0 and 0.8 with topics 0 and 2, priors 0.2 and 0.8
    a, b = 0.2, 0.8 * np.exp(0.8 / TEMPERATURE)
    np.testing.assert_allclose(out[1], [a / (a + b), 0.0, b / (a + b)], rtol=1e-5)
    assert (out[2] == 0).all()  # no atoms, no embedding: no topic
    # smoothed by s = 0.5 over T = 3 topics, document 1's prior is 0.5·(0.2, 0.8) + 1/6 on its two topics
    smooth = sharpen(W, E, C, smoothing=0.5).toarray()
    a, b = 0.1 + 1 / 6, (0.4 + 1 / 6) * np.exp(0.8 / TEMPERATURE)
    np.testing.assert_allclose(smooth[1], [a / (a + b), 0.0, b / (a + b)], rtol=1e-5)
    assert (smooth[2] == 0).all() and (smooth != 0).tolist() == (out != 0).tolist()  # the support stays
    np.testing.assert_allclose(document_prior(W, 1.0).toarray()[1], [1 / 3, 0.0, 1 / 3])
    with pytest.raises(SaetmError, match="same documents and topics"):
        sharpen(W, E[:2], C)


def test_centroids_are_unit_weighted_means():
    W = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]]))
    E = np.array([[3.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
    C = topic_centroids(W, E)
    np.testing.assert_allclose(C[0], np.array([1.0, 0.5]) / np.hypot(1.0, 0.5), rtol=1e-6)
    np.testing.assert_allclose(C[1], [0.0, 1.0], atol=1e-7)


def mixture_log_likelihood(W, E, C, priors, smoothing=0.0, t=TEMPERATURE, words=None, nu=None, b=0.0):
    """Σ_d log Σ_c p(c | d) exp((cos(x_d, μ_c) + b·cos(ŵ_d, ν_c)) / t), p(c | d) ∝ p_dc ρ_c with
    p_d = (1 − s)·θ̂_d + s/T over all topics, over documents with topics: what the EM rounds climb."""
    P = np.asarray(sp.csr_matrix(W).toarray(), dtype=np.float64)
    has = P.sum(axis=1) > 0
    P = P[has] / P[has].sum(axis=1, keepdims=True)
    P = ((1 - smoothing) * P + smoothing / P.shape[1]) * priors[None, :]
    P /= P.sum(axis=1, keepdims=True)
    S = unit_rows(E.astype(np.float64))[has] @ C.astype(np.float64).T
    if nu is not None:
        S = S + b * np.asarray(sp.csr_matrix(words, dtype=np.float64)[has] @ nu.astype(np.float64).T)
    return float(np.log((P * np.exp((S - 1.0 - b) / t)).sum(axis=1)).sum())


def column_sums(W):
    return np.asarray(sp.csr_matrix(W).sum(axis=0)).ravel()


def test_prior_update_by_hand():
    prior = sp.csr_matrix(np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]))
    # both documents' weight went to topic 0: ρ_0 = 2 / (0.5 + 0.5), ρ_1 = 0 → floored; topic 2 unused keeps 1
    W = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(update_priors(prior, column_sums(W), np.ones(3)), [2.0, PRIOR_FLOOR, 1.0])
    # smoothed by s, every document's prior holds s/3 of each topic: Z_d = 1 (ρ = 1), so
    # ρ_c ∝ mass_c / ((1 − s)·Σ_d θ̂_dc + 2·s/3); s = 0.5: [2 / (0.5 + 1/3), 1e-6, 1e-6] → mean 1, floored
    rho = update_priors(prior, column_sums(W), np.ones(3), smoothing=0.5)
    np.testing.assert_allclose(rho, [3.0, PRIOR_FLOOR, PRIOR_FLOOR])
    # a floored topic still keeps its place in a document that only has it
    E = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float16)
    out = sharpen(sp.csr_matrix(np.array([[0.0, 1.0], [0.3, 0.7]])), E, np.eye(2, dtype=np.float32),
                  priors=np.array([1.0, PRIOR_FLOOR]))
    assert out[0, 1] == 1.0 and out[1, 1] > 0
    with pytest.raises(SaetmError, match="topic priors"):
        sharpen(prior, np.zeros((3, 2)), np.zeros((3, 2)), priors=np.ones(2))


def test_mixture_rounds_are_em(fitted_model):
    m = fitted_model
    W0, E = theta_weights(m), m.doc_embeddings_
    C1, p1, _ = fit_mixture(W0, E, n_iter=1)
    np.testing.assert_array_equal(C1, topic_centroids(W0, E))
    np.testing.assert_array_equal(p1, np.ones(m.n_topics))
    W1 = sharpen(W0, E, C1)
    C2, p2, _ = fit_mixture(W0, E, n_iter=2)
    np.testing.assert_allclose(C2, topic_centroids(W1, E), atol=1e-7)
    row_share = sp.csr_matrix(sp.diags(1.0 / np.maximum(np.asarray(W0.sum(axis=1)).ravel(), 1e-300)) @ W0)
    np.testing.assert_allclose(p2, update_priors(row_share, column_sums(W1), np.ones(m.n_topics)), rtol=1e-6)
    assert np.ptp(p2) > 0.05  # the topic weights do move
    # EM never lowers the likelihood (μ and ρ), and ends higher than the first centroids', with or without smoothing
    for s in (0.0, SMOOTHING, 1.0):
        ll = [mixture_log_likelihood(W0, E, *fit_mixture(W0, E, n_iter=r, smoothing=s)[:2], smoothing=s)
              for r in range(1, ITERATIONS + 1)]
        assert all(b >= a - 1e-6 * abs(a) for a, b in zip(ll, ll[1:])), (s, ll)
        assert ll[-1] > ll[0]
    # with the documents' words as a second view: the same, for the likelihood of both views
    words, b = m._atoms().doc_words, m.doc_word_weight_
    assert b == 1.0 and words.shape == (W0.shape[0], len(m.vocab_))
    ll = []
    for r in range(1, ITERATIONS + 1):
        C, p, nu = fit_mixture(W0, E, n_iter=r, smoothing=SMOOTHING, words=words, word_weight=b)
        ll.append(mixture_log_likelihood(W0, E, C, p, smoothing=SMOOTHING, words=words, nu=nu, b=b))
    assert all(y >= x - 1e-6 * abs(x) for x, y in zip(ll, ll[1:])) and ll[-1] > ll[0], ll
    # the fitted model holds the default rounds' μ, ρ, ν and their weights
    assert m.doc_smoothing == m.doc_smoothing_ == SMOOTHING == 0.5
    C, p, nu = fit_mixture(W0, E, smoothing=SMOOTHING, words=words, word_weight=b)
    np.testing.assert_allclose(m.topic_centroids_, C, atol=1e-7)
    np.testing.assert_allclose(m.topic_priors_, p, rtol=1e-6)
    np.testing.assert_allclose(m.word_centroids_, nu, atol=1e-7)
    np.testing.assert_allclose(m.doc_topics_.toarray(), sharpen(W0, E, C, priors=p, smoothing=SMOOTHING, words=words,
                                                                word_centroids=nu, word_weight=b).toarray(), atol=1e-7)
    assert np.abs(p - fit_mixture(W0, E)[1]).max() > 0.05  # the smoothing changes ρ
    with pytest.raises(SaetmError, match="at least 1"):
        fit_mixture(W0, E, n_iter=0)


def test_a_large_collection_fits_the_mixture_on_a_seeded_sample(fitted_model):
    """Past ``max_docs`` documents the EM reads a seeded sample (μ and ρ as if fitted on those
    rows alone, from memory-mapped-like slices); at or under it, every document and no seed."""
    m = fitted_model
    W0, E = theta_weights(m), np.asarray(m.doc_embeddings_)
    n = W0.shape[0]
    rows = np.sort(np.random.default_rng(3).choice(n, size=n // 3, replace=False))
    C, p, _ = fit_mixture(W0, E, n_iter=4, max_docs=n // 3, seed=3)
    C_rows, p_rows, _ = fit_mixture(W0[rows], E[rows], n_iter=4, max_docs=None)
    np.testing.assert_array_equal(C, C_rows)
    np.testing.assert_array_equal(p, p_rows)
    C_units, _, _ = fit_mixture(W0, UnitRows(E, keep=True), n_iter=4, max_docs=n // 3, seed=3)
    np.testing.assert_array_equal(C_units, C)
    # with the documents' words: the sample takes their rows too (wordrank.sample_rows, the same draw)
    words = m._atoms().doc_words
    sampled = fit_mixture(W0, E, n_iter=4, max_docs=n // 3, seed=3, words=words, word_weight=1.0)
    on_rows = fit_mixture(W0[rows], E[rows], n_iter=4, max_docs=None, words=words[rows], word_weight=1.0)
    for a, b in zip(sampled, on_rows):
        np.testing.assert_array_equal(a, b)
    assert np.abs(C - fit_mixture(W0, E, n_iter=4, max_docs=n // 3, seed=4)[0]).max() > 1e-4  # the seed decides
    whole = fit_mixture(W0, E, n_iter=4, max_docs=None)
    for same in (fit_mixture(W0, E, n_iter=4, max_docs=n, seed=5), fit_mixture(W0, E, n_iter=4)):
        np.testing.assert_array_equal(same[0], whole[0])
        np.testing.assert_array_equal(same[1], whole[1])


def test_default_weights_keep_the_support_and_agree_more_with_the_labels(fitted_model, ng_corpus):
    """On real newsgroups: same topics per document as the θ share, rows summing to 1, and
    the main topic agrees more with the newsgroup (measured +0.04 NMI on this slice)."""
    m = fitted_model
    assert m.doc_weights == "centroid" and m.doc_embeddings_.dtype == np.float16
    W0, W = theta_weights(m), m.doc_topics_
    assert (W0 != 0).toarray().tolist() == (W != 0).toarray().tolist()
    sums = np.asarray(W.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-5)
    assert (W.argmax(axis=1) != W0.argmax(axis=1)).sum() > 0
    assert label_agreement(W, ng_corpus.labels)["nmi"] > label_agreement(W0, ng_corpus.labels)["nmi"] + 0.02


def test_embeddings_of_any_scale_are_kept_as_finite_directions(fitted_model, ng_embeddings):
    """float16 overflows at 65,504: raw features of large magnitude must not turn into inf."""
    from saetm.topics.stage import document_embeddings
    from saetm.topics.atomspace import unit_rows

    n = len(ng_embeddings)
    rows = np.arange(1, n)  # document 0 has no embedding (an empty text)
    E = document_embeddings(ng_embeddings[1:] * 1e6, rows, n, fitted_model.clustering.doc_weights)
    assert E.dtype == np.float16 and np.isfinite(E).all() and not E[0].any()
    np.testing.assert_allclose(E[1:].astype(np.float32), unit_rows(ng_embeddings[1:]), atol=1e-3)


def test_transform_of_the_fitted_documents_gives_their_weights(fitted_model, ng_corpus, ng_embeddings):
    import copy

    m = fitted_model
    texts = ng_corpus.texts
    np.testing.assert_allclose(m.transform(texts, ng_embeddings).toarray(), m.doc_topics_.toarray(), atol=1e-6)
    # a setting changed after the fit takes effect at the next fit/retopic; until then transform follows the fit
    m2 = copy.deepcopy(m).set_params(clustering__doc_weights="theta", clustering__doc_word_weight=0.0)
    np.testing.assert_allclose(m2.transform(texts, ng_embeddings).toarray(), m.doc_topics_.toarray(), atol=1e-6)
    # embeddings without texts: the words take no part (the embedding view alone, with the fitted μ and ρ)
    alone = sharpen(theta_weights(m), m.doc_embeddings_, m.topic_centroids_, priors=m.topic_priors_,
                    smoothing=m.doc_smoothing_)
    np.testing.assert_allclose(m.transform(embeddings=ng_embeddings).toarray(), alone.toarray(), atol=1e-6)
    assert np.abs(alone.toarray() - m.doc_topics_.toarray()).max() > 0.1


def test_theta_weights_keep_no_embeddings(ng_corpus, ng_embeddings, small_params, tmp_path):
    m = SAETM(n_topics=8, clustering={"doc_weights": "theta"}, **small_params).fit(ng_corpus.texts, ng_embeddings)
    assert m.doc_embeddings_ is None and m.topic_centroids_ is None and m.topic_priors_ is None
    assert (m.doc_topics_ != theta_weights(m)).nnz == 0
    m.save(tmp_path / "m")
    assert "doc_embeddings" not in load_file(tmp_path / "m" / "state.safetensors")
    assert (SAETM.load(tmp_path / "m").doc_topics_ != m.doc_topics_).nnz == 0


def test_retopic_and_save_keep_the_weighting_and_old_models_load(fitted_model, tmp_path, caplog):
    import copy

    m = copy.deepcopy(fitted_model).retopic(5)
    assert m.topic_centroids_.shape == (5, 384)
    assert (m.doc_topics_ != theta_weights(m)).nnz > 0
    m.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.doc_embeddings_, m.doc_embeddings_)
    np.testing.assert_allclose(loaded.doc_topics_.toarray(), m.doc_topics_.toarray(), atol=1e-7)

    # saetm 0.2 kept no embeddings: the model loads, says so, and uses the θ share
    state = dict(load_file(tmp_path / "m" / "state.safetensors"))
    del state["doc_embeddings"]
    save_file(state, tmp_path / "m" / "state.safetensors")
    with caplog.at_level(logging.INFO, logger="saetm"):
        old = SAETM.load(tmp_path / "m")
    assert "without document embeddings" in caplog.text
    assert old.topic_centroids_ is None and old.topic_priors_ is None and (old.doc_topics_ != theta_weights(old)).nnz == 0


@pytest.mark.parametrize("damage", ["shape", "nan"])
def test_damaged_embeddings_are_refused(fitted_model, tmp_path, damage):
    fitted_model.save(tmp_path / "m")
    state = dict(load_file(tmp_path / "m" / "state.safetensors"))
    E = state["doc_embeddings"]
    if damage == "shape":
        state["doc_embeddings"] = np.ascontiguousarray(E[:-1])
    else:
        E = E.copy()
        E[3, 7] = np.nan
        state["doc_embeddings"] = E
    save_file(state, tmp_path / "m" / "state.safetensors")
    with pytest.raises(SaetmError, match="document embeddings do not match"):
        SAETM.load(tmp_path / "m")


def test_unknown_setting_is_refused(ng_corpus, ng_embeddings):
    with pytest.raises(SaetmError, match="doc_weights must be one of centroid, theta"):
        SAETM(clustering={"doc_weights": "mean"}, verbose=False).fit(ng_corpus.texts[:50], ng_embeddings[:50])


def test_doc_smoothing_is_a_setting_saved_with_the_model(fitted_model, ng_corpus, ng_embeddings, tmp_path):
    import copy

    m = copy.deepcopy(fitted_model)
    smoothed = m.doc_topics_.copy()
    W0, E = theta_weights(m), m.doc_embeddings_
    m.set_params(clustering__doc_smoothing=0.0, clustering__doc_word_weight=0.0)
    # until the next fit or retopic, weights of new documents follow the fitted mixture
    np.testing.assert_allclose(m.transform(ng_corpus.texts, ng_embeddings).toarray(), smoothed.toarray(), atol=1e-6)
    m.retopic(m.n_topics)  # s = 0 and no words: the mixture of saetm 0.4–0.5
    C, p, _ = fit_mixture(W0, E)
    np.testing.assert_allclose(m.doc_topics_.toarray(), sharpen(W0, E, C, priors=p).toarray(), atol=1e-7)
    assert abs(m.doc_topics_ - smoothed).max() > 0.01 and m.doc_smoothing_ == 0.0
    assert m.word_centroids_ is None and m.doc_word_weight_ == 0.0
    np.testing.assert_allclose(m.transform(embeddings=ng_embeddings).toarray(), m.doc_topics_.toarray(), atol=1e-6)

    m.set_params(clustering__doc_smoothing=0.25).save(tmp_path / "m")
    back = SAETM.load(tmp_path / "m")
    assert back.doc_smoothing == 0.25
    # the setting waits for the next retopic; the loaded weights are the ones fitted (s = 0) and saved
    assert back.doc_smoothing_ == 0.0
    np.testing.assert_allclose(back.doc_topics_.toarray(), m.doc_topics_.toarray(), atol=1e-7)
    assert abs(back.retopic(m.n_topics).doc_topics_ - m.doc_topics_).max() > 0.01 and back.doc_smoothing_ == 0.25
    # a model saved before saetm 0.6 has no doc_smoothing: it loads with the weights it had (s = 0)
    m.set_params(clustering__doc_smoothing=0.0).retopic(m.n_topics).save(tmp_path / "old")
    as_format1(tmp_path / "old", drop=("doc_smoothing",))
    old = SAETM.load(tmp_path / "old")
    assert old.doc_smoothing == 0.0
    np.testing.assert_allclose(old.doc_topics_.toarray(), m.doc_topics_.toarray(), atol=1e-7)

    for bad in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(SaetmError, match="doc_smoothing"):
            copy.deepcopy(fitted_model).set_params(clustering__doc_smoothing=bad).retopic(4)
        with pytest.raises(SaetmError, match="doc_smoothing"):
            SAETM(clustering={"doc_smoothing": bad}, verbose=False).fit(["a text"] * 3)
    topics = dict(load_file(tmp_path / "m" / "topics.safetensors"))
    topics["doc_smoothing"] = np.array([2.0])
    save_file(topics, tmp_path / "m" / "topics.safetensors")
    with pytest.raises(SaetmError, match="invalid doc_smoothing"):
        SAETM.load(tmp_path / "m")


def test_a_model_saved_without_its_weights_loads_with_the_rounds_it_was_fitted_with(fitted_model, tmp_path):
    """Format-1 files without saved weights (saetm < 0.8) were fitted with 10 rounds of EM: load
    recomputes those, not the current default's; the next retopic fits the default."""
    from saetm.migrate import LEGACY_ROUNDS

    m = fitted_model
    W0, E = theta_weights(m), m.doc_embeddings_
    assert ITERATIONS != LEGACY_ROUNDS == 10
    m.save(tmp_path / "old")
    as_format1(tmp_path / "old")
    path = tmp_path / "old" / "topics.safetensors"
    weights = ("centroids", "priors", "word_centroids", "doc_word_weight")
    topics = {k: v for k, v in load_file(path).items() if k not in weights and not k.startswith("doc_topics.")}
    save_file(topics, path)
    old = SAETM.load(tmp_path / "old")
    C, p, _ = fit_mixture(W0, E, n_iter=LEGACY_ROUNDS, smoothing=SMOOTHING)
    np.testing.assert_allclose(old.topic_priors_, p, rtol=1e-6)
    np.testing.assert_allclose(old.doc_topics_.toarray(), sharpen(W0, E, C, priors=p, smoothing=SMOOTHING).toarray(),
                               atol=1e-7)
    assert abs(old.doc_topics_ - m.doc_topics_).max() > 1e-3  # the default's rounds give other weights
    # a model saved with its weights reads them back; a retopic fits the current rounds
    np.testing.assert_array_equal(SAETM.load(m.save(tmp_path / "new")).doc_topics_.toarray(), m.doc_topics_.toarray())
    np.testing.assert_allclose(old.retopic(m.n_topics).doc_topics_.toarray(), m.doc_topics_.toarray(), atol=1e-6)
    topics["doc_rounds"] = np.array([2.5])
    save_file(topics, path)
    with pytest.raises(SaetmError, match="invalid doc_rounds"):
        SAETM.load(tmp_path / "old")
