"""``saetm fit`` on JSON Lines leaves the texts in the file (``saetm.io.lazy_texts``): the
texts, vocabulary, counts and kept texts are those of reading the file whole."""

import json

import numpy as np
import pytest

from saetm.errors import SaetmError


@pytest.fixture(scope="module")
def jsonl(ng_corpus, tmp_path_factory):
    """400 real 20 Newsgroups documents with the rows a reader must handle: blank lines,
    empty and missing texts, a number as text, non-ASCII text, a byte-order mark."""
    path = tmp_path_factory.mktemp("lazy") / "docs.jsonl"
    rows = [{"id": f"d{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(ng_corpus.texts, ng_corpus.labels))]
    rows[3]["text"] = "   "
    del rows[7]["text"]
    rows[11]["text"] = 1234.0
    rows[12]["text"] = "Zürich café — naïve " + rows[12]["text"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\ufeff")
        for i, r in enumerate(rows):
            f.write(json.dumps(r, ensure_ascii=i % 2 == 0) + "\n" + ("\n" if i == 20 else ""))
    return path


def _both(path, **kw):
    from saetm.cli._common import _aligned
    from saetm.io.readers import read_documents

    lazy, whole = read_documents(path, lazy_text=True, **kw), read_documents(path, **kw)
    assert getattr(lazy.texts, "lazy", False) and isinstance(whole.texts, list)
    return lazy, whole, _aligned(lazy), _aligned(whole)


def test_lazy_read_gives_the_texts_and_metadata_of_a_whole_read(jsonl):
    lazy, whole, (lt, lmeta), (wt, wmeta) = _both(jsonl)
    assert lazy.extra["skipped_rows"] == whole.extra["skipped_rows"] == [3, 7]
    assert lazy.extra["row_index"] == whole.extra["row_index"]
    assert list(lazy.texts) == whole.texts and lazy.ids == whole.ids and lazy.labels == whole.labels
    assert getattr(lt, "lazy", False) and list(lt) == wt and lmeta == wmeta
    assert lt[11] == "1234" and lt[3] == lt[7] == "" and lt[12].startswith("Zürich")
    assert lt[10:30] == wt[10:30] and lt[-1] == wt[-1]
    assert lt.total_chars == sum(map(len, wt))


def test_vocabulary_counted_from_the_file_in_chunks_equals_the_whole_list(jsonl, monkeypatch):
    from saetm.io import inputs, lazy_texts
    from saetm.words import stage, vocab

    monkeypatch.setattr(vocab, "CHUNK_DOCS", 37)          # chunks of the counter ...
    monkeypatch.setattr(lazy_texts, "BLOCK_ROWS", 16)     # ... and of the file's reads, across each other
    _, _, (lt, _), (wt, _) = _both(jsonl)
    settings = dict(min_df=3, max_df=0.5, max_features=2000, stop_words="english", extra_stop_words=None,
                    lemmatize=False, merge_inflections=False)
    v_lazy, c_lazy = stage.vocabulary(lt, **settings)
    v_whole, c_whole = stage.vocabulary(wt, **settings)
    assert v_lazy == v_whole and len(v_lazy) > 1000
    assert (c_lazy != c_whole).nnz == 0 and c_lazy.dtype == c_whole.dtype == np.float32
    assert np.array_equal(c_lazy.indptr, c_whole.indptr) and np.array_equal(c_lazy.indices, c_whole.indices)
    assert inputs.kept_texts(lt) == (wt, False)
    monkeypatch.setattr(inputs, "KEEP_TEXT_CHARS", 1000)  # a "large" corpus: each text cut
    cut, was_cut = inputs.kept_texts(lt)
    assert was_cut and isinstance(cut, lazy_texts.CutTexts)  # still in the file
    assert list(cut) == inputs.kept_texts(wt)[0] and max(map(len, cut)) == 1000
    assert cut[5:40] == inputs.kept_texts(wt)[0][5:40] and cut[12] == wt[12][:1000]


def test_holdout_and_errors_of_a_lazy_read(jsonl, tmp_path):
    from saetm.evaluation.holdout import hold_out
    from saetm.io.inputs import check_documents
    from saetm.io.readers import read_documents

    _, _, (lt, meta), (wt, _) = _both(jsonl)
    assert check_documents(lt) is lt
    docs, _, _, _, record, held = hold_out(0.2, 0, lt, meta, None, None)
    docs_w, _, _, _, record_w, held_w = hold_out(0.2, 0, wt, meta, None, None)
    assert getattr(docs, "lazy", False) and list(docs) == docs_w and held == held_w and record == record_w

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n\n{"text": ["a list"]}\n')
    with pytest.raises(SaetmError, match=r"row 1 \(line 3\) of field 'text'.* holds a list"):
        read_documents(bad, lazy_text=True)
    with pytest.raises(SaetmError, match="no field 'body'"):
        read_documents(bad, text_field="body", lazy_text=True)

    changed = tmp_path / "changed.jsonl"
    changed.write_text('{"text": "first text"}\n{"text": "second"}\n')
    texts = read_documents(changed, lazy_text=True).texts
    changed.write_text('{"text": "first text"}\n{"text": "edited"}\n')  # same size
    with pytest.raises(SaetmError, match="changed while it was being read"):
        list(texts)


def test_cli_fit_from_jsonl_saves_what_a_whole_read_saves(jsonl, ng_embeddings, tmp_path, monkeypatch):
    """`saetm fit` on the JSON Lines file (texts left in the file, kept cut: a "large"
    corpus) and on the same rows as a JSON list (read whole): the same topics and the
    same documents.parquet."""
    from saetm.cli import main
    from saetm.io import documents, inputs

    monkeypatch.setattr(inputs, "KEEP_TEXT_CHARS", 1000)
    monkeypatch.setattr(documents, "BLOCK_ROWS", 64)
    rows = [json.loads(line.lstrip("\ufeff")) for line in open(jsonl, encoding="utf-8") if line.strip()]
    as_list = tmp_path / "docs.json"
    as_list.write_text(json.dumps(rows), encoding="utf-8")
    emb = tmp_path / "emb.npy"
    np.save(emb, ng_embeddings)
    out = {}
    for name, src in (("lazy", jsonl), ("whole", as_list)):
        out[name] = tmp_path / name
        assert main(["fit", str(src), "--embeddings", str(emb), "--topics", "6", "--out", str(out[name]),
                     "--id-field", "id", "--label-field", "label", "-q"]) == 0
    assert json.loads((out["lazy"] / "topics.json").read_text()) == json.loads((out["whole"] / "topics.json").read_text())
    a = documents.read_documents(out["lazy"] / "documents.parquet", len(rows))
    b = documents.read_documents(out["whole"] / "documents.parquet", len(rows))
    assert a["text"] == b["text"] and a["id"] == b["id"] and a["label"] == b["label"]
    assert max(map(len, a["text"])) == documents.TEXT_CHARS and a["text"][3] == a["text"][7] == ""


def test_texts_left_in_the_file_are_encoded_as_the_list_is(jsonl):
    """Without given embeddings the non-empty texts are read from the file and encoded
    (the static encoder): the same embeddings and rows as from the list."""
    from saetm.encoders import embed

    _, _, (lt, _), (wt, _) = _both(jsonl)
    encoder = embed.make_encoder("static")
    X_lazy, rows_lazy = embed.embed(encoder, lt, None, cache=False, progress=False)
    X_whole, rows_whole = embed.embed(encoder, wt, None, cache=False, progress=False)
    assert np.array_equal(rows_lazy, rows_whole) and 3 not in rows_lazy and 7 not in rows_lazy
    assert np.array_equal(X_lazy, X_whole)
