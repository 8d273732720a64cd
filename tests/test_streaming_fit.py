"""What keeps a fit's memory flat in the number of documents, on real data: memory-mapped
embeddings read a block at a time, large corpora keeping their texts cut short."""

import numpy as np
import pytest

from saetm import SaetmError
from saetm.encoders import embed
from saetm.io import inputs
from saetm._memory import release_pages
from saetm.io.documents import TEXT_CHARS
from saetm.model import SAETM


def test_memory_mapped_embeddings_give_the_same_fit(ng_corpus, ng_embeddings, tmp_path, monkeypatch):
    path = tmp_path / "emb.npy"
    np.save(path, np.asarray(ng_embeddings, dtype=np.float32))
    monkeypatch.setattr(embed, "BLOCK_ROWS", 64)  # many blocks
    mapped = SAETM(n_topics=8, seed=0, verbose=False, cache=False).fit(ng_corpus.texts, np.load(path, mmap_mode="r"))
    whole = SAETM(n_topics=8, seed=0, verbose=False, cache=False).fit(ng_corpus.texts, np.asarray(ng_embeddings))
    assert mapped.get_topics(10) == whole.get_topics(10)
    assert (mapped.doc_topics_ != whole.doc_topics_).nnz == 0
    assert np.array_equal(mapped.atom_embeddings_, whole.atom_embeddings_)
    assert np.array_equal(mapped.doc_embeddings_, whole.doc_embeddings_)


def test_a_bad_row_in_a_late_block_is_named(ng_embeddings, tmp_path, monkeypatch):
    X = np.array(ng_embeddings, dtype=np.float32)
    X[300, 5] = np.nan
    np.save(tmp_path / "e.npy", X)
    monkeypatch.setattr(embed, "BLOCK_ROWS", 64)
    with pytest.raises(SaetmError, match="NaN or inf in 1 rows \\(first: row 300\\)"):
        embed.validate_embeddings(np.load(tmp_path / "e.npy", mmap_mode="r"), n_rows=None, dim=None)


def test_released_pages_read_back(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(100000, dtype=np.float32).reshape(1000, 100))
    X = np.load(tmp_path / "a.npy", mmap_mode="r")
    first = float(X[10:20].sum())
    release_pages(X[5:])  # a view of the map
    release_pages(np.ones(3))  # not a map: nothing to do
    assert float(X[10:20].sum()) == first


def test_a_large_corpus_keeps_its_texts_cut(ng_corpus, ng_embeddings, monkeypatch):
    monkeypatch.setattr(inputs, "KEEP_TEXT_CHARS", 1000)
    model = SAETM(n_topics=8, seed=0, verbose=False, cache=False).fit(list(ng_corpus.texts), np.asarray(ng_embeddings))
    texts = model.documents_["text"]
    assert model.fit_report_.texts_cut and max(map(len, texts)) == TEXT_CHARS
    assert [t[:TEXT_CHARS] for t in ng_corpus.texts] == texts
    with pytest.raises(SaetmError, match="cut to"):  # as for a loaded model: NPMI needs the full texts
        model.evaluate(word_vectors=None)
