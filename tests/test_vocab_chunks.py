"""build_vocabulary counts a chunk of documents at a time: the same vocabulary and counts as
scikit-learn's CountVectorizer over all documents at once."""

import numpy as np
import pytest
import scipy.sparse as sp

from saetm.words import vocab as vocab_module
from saetm.words.vocab import _stop_words, _vectorizer, build_vocabulary


@pytest.mark.parametrize("settings", [
    {},
    {"min_df": 2, "max_df": 0.3, "max_features": 500},  # max_features cuts among ties of total count
    {"min_df": 0.01, "max_df": 40, "max_features": None, "stop_words": None},
    {"lemmatize": True, "max_features": 2000},
])
def test_chunked_counts_equal_count_vectorizer(ng_corpus, monkeypatch, settings):
    texts = ng_corpus.texts
    monkeypatch.setattr(vocab_module, "CHUNK_DOCS", 37)  # many chunks, one of them short
    vocab, counts = build_vocabulary(texts, **settings)
    full = {"min_df": 5, "max_df": 0.5, "max_features": 10000, "stop_words": "english", "lemmatize": False, **settings}
    cv = _vectorizer(token_pattern=vocab_module.TOKEN_PATTERN, lemmatize=full["lemmatize"], min_df=full["min_df"],
                     max_df=full["max_df"], max_features=full["max_features"],
                     stop_words=_stop_words(full["stop_words"]))
    expected = sp.csr_matrix(cv.fit_transform(texts), dtype=np.float32)
    expected.sort_indices()
    assert vocab == cv.get_feature_names_out().tolist()
    assert counts.dtype == np.float32 and counts.has_sorted_indices and counts.shape == expected.shape
    assert (counts != expected).nnz == 0 and np.array_equal(counts.indices, expected.indices)


def test_chunked_counts_keep_the_errors(ng_corpus):
    with pytest.raises(Exception, match="asks for more documents than max_df"):
        build_vocabulary(ng_corpus.texts[:50], min_df=30, max_df=0.2)
    with pytest.raises(Exception, match="vocabulary is empty"):
        build_vocabulary(["the and of", "is it"], min_df=1)
