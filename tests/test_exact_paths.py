"""The faster paths of stage 3 give the very bits of the plain computations they replace."""

import numpy as np

from saetm.topics import docweights, merge
from saetm.topics.atomspace import unit_rows


def _theta_weights(m):
    return merge.doc_topics(m.theta_, m.atom_topic_, m.n_topics)


def test_unit_rows_in_blocks_are_unit_rows(fitted_model):
    E = np.array(fitted_model.doc_embeddings_)
    E[3] = 0  # a document without an embedding stays all-zero
    plain = unit_rows(E)
    for keep in (False, True):
        units = docweights.UnitRows(E, keep=keep, block=7)
        got = np.vstack([units(lo, lo + 50) for lo in range(0, E.shape[0], 50)])
        assert got.dtype == np.float32 and np.array_equal(got, plain)
    assert np.array_equal(docweights.unit_block(E), plain)
    assert (E[3] == 0).all()  # the caller's array is left alone


def test_mixture_is_the_same_with_and_without_kept_blocks(fitted_model, monkeypatch):
    W, E = _theta_weights(fitted_model), fitted_model.doc_embeddings_
    words = fitted_model._atoms().doc_words
    kept = docweights.fit_mixture(W, E, smoothing=0.5, words=words, word_weight=1.0)
    monkeypatch.setattr(docweights, "CACHE_BYTES", 0)  # every round makes its blocks again
    made = docweights.fit_mixture(W, E, smoothing=0.5, words=words, word_weight=1.0)
    small = docweights._Blocks(docweights.document_prior(W), docweights.UnitRows(E), 0.5, block_entries=64)
    assert small.block < E.shape[0] and small._priors is None
    for a, b in zip(kept, made):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_one_unit_rows_serves_the_mixture_and_the_weights(fitted_model):
    W, E = _theta_weights(fitted_model), fitted_model.doc_embeddings_
    units = docweights.UnitRows(E, keep=True)
    plain = docweights.fit_mixture(W, E, smoothing=0.5)
    shared = docweights.fit_mixture(W, units, smoothing=0.5)
    assert plain[2] is None and shared[2] is None  # no words
    assert all(np.array_equal(a, b) for a, b in zip(plain[:2], shared[:2]))
    a = docweights.sharpen(W, E, plain[0], priors=plain[1], smoothing=0.5)
    b = docweights.sharpen(W, units, plain[0], priors=plain[1], smoothing=0.5)
    assert (a != b).nnz == 0 and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)
