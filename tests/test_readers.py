"""read_documents / read_embeddings on a real slice of 20 Newsgroups, and every bad input."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from saetm.errors import SaetmError
from saetm.io.datasets import load_20newsgroups
from saetm.io.readers import read_documents, read_embeddings


@pytest.fixture(scope="module")
def ng():
    return load_20newsgroups(n=50, seed=0)


@pytest.fixture(scope="module")
def ng_frame(ng):
    return pd.DataFrame(
        {
            "id": ng.ids,
            "text": ng.texts,
            "label": ng.labels,
            "date": [d.isoformat() for d in pd.date_range("2020-01-01", periods=len(ng), freq="D")],
        }
    )


def write(df: pd.DataFrame, path) -> None:
    """Write a table the way a user's tools would."""
    suffix = path.suffix
    if suffix in (".jsonl", ".ndjson"):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in df.to_dict("records")), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(df.to_dict("records"), ensure_ascii=False), encoding="utf-8")
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".parquet":
        df.to_parquet(path)
    else:
        raise AssertionError(suffix)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"])
def test_table_formats_round_trip(ng, ng_frame, tmp_path, suffix):
    path = tmp_path / f"ng{suffix}"
    write(ng_frame, path)
    corpus = read_documents(path, id_field="id", label_field="label", date_field="date")
    assert corpus.texts == ng.texts
    assert corpus.labels == ng.labels
    assert corpus.ids == ng.ids
    assert corpus.dates == list(pd.date_range("2020-01-01", periods=len(ng), freq="D"))
    assert corpus.extra["date_kind"] == "datetime"
    assert corpus.extra["row_index"] == list(range(len(ng)))
    assert corpus.extra["skipped_rows"] == []
    assert corpus.extra["text_field"] == "text"
    assert corpus.name == "ng"


def test_txt_one_document_per_line(ng, tmp_path):
    path = tmp_path / "ng.txt"
    path.write_text("\r\n".join(ng.texts) + "\r\n", encoding="utf-8")  # Windows line ends too
    corpus = read_documents(path)
    assert corpus.texts == ng.texts
    assert corpus.ids == [str(i) for i in range(len(ng))]
    assert corpus.labels is None and corpus.dates is None


def test_folder_of_txt_files(ng, tmp_path):
    for i, text in enumerate(ng.texts[:12]):
        (tmp_path / f"doc{i:02d}.txt").write_text(text + "\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a document")
    (tmp_path / ".hidden.txt").write_text("not a document")
    (tmp_path / "doc99.txt").write_text("   \n")  # empty files are skipped like empty rows
    corpus = read_documents(tmp_path)
    assert [t.rstrip("\n") for t in corpus.texts] == ng.texts[:12]
    assert corpus.ids == [f"doc{i:02d}.txt" for i in range(12)]
    assert corpus.extra["skipped_rows"] == [12]


def test_bom_and_multiline_csv_cells(tmp_path):
    path = tmp_path / "docs.csv"
    df = pd.DataFrame({"text": ['a "quoted", multi-line\ndocument', "café ünïcode ✓"]})
    path.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode("utf-8"))
    assert read_documents(path).texts == df["text"].tolist()


def test_csv_cells_are_read_verbatim(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("text,label\nNA,007\nnan,null\n", encoding="utf-8")
    corpus = read_documents(path, label_field="label")
    assert corpus.texts == ["NA", "nan"]
    assert corpus.labels == ["007", "null"]


# --- auto-detection ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["text", "content", "Body", "document", "ABSTRACT"])
def test_detects_conventional_text_column(ng, tmp_path, name):
    path = tmp_path / "docs.parquet"
    pd.DataFrame({"title": ng.labels[:5], name: ng.texts[:5]}).to_parquet(path)
    corpus = read_documents(path)
    assert corpus.extra["text_field"] == name
    assert corpus.texts == ng.texts[:5]


def test_detects_the_only_string_column(ng, tmp_path):
    path = tmp_path / "docs.csv"
    pd.DataFrame({"n": range(5), "score": np.linspace(0, 1, 5), "post": ng.texts[:5]}).to_csv(path, index=False)
    corpus = read_documents(path)
    assert corpus.extra["text_field"] == "post"
    assert corpus.texts == ng.texts[:5]


def test_ambiguous_text_column_lists_columns(ng, tmp_path):
    path = tmp_path / "docs.jsonl"
    write(pd.DataFrame({"post": ng.texts[:5], "group": ng.labels[:5]}), path)
    with pytest.raises(SaetmError, match=r"--text-field.*'post', 'group'"):
        read_documents(path)


def test_no_text_column(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text('[{"a": 1, "b": 2.5}]')
    with pytest.raises(SaetmError, match="no text column.*--text-field"):
        read_documents(path)


def test_explicit_text_field_overrides_detection(ng, tmp_path):
    path = tmp_path / "docs.jsonl"
    write(pd.DataFrame({"text": ng.labels[:5], "post": ng.texts[:5]}), path)
    assert read_documents(path, text_field="post").texts == ng.texts[:5]


# --- skipped documents and alignment -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_empty_documents_are_skipped_and_rows_stay_aligned(ng, tmp_path, suffix, caplog):
    values = list(ng.texts[:10])
    blanks = {1: None, 4: "", 5: "   \n\t", 8: float("nan")}
    for i, v in blanks.items():
        values[i] = v
    path = tmp_path / f"docs{suffix}"
    write(pd.DataFrame({"text": values, "label": ng.labels[:10]}), path)
    with caplog.at_level(logging.WARNING, logger="saetm"):
        corpus = read_documents(path, label_field="label")
    kept = [i for i in range(10) if i not in blanks]
    assert corpus.extra["skipped_rows"] == sorted(blanks)
    assert corpus.extra["row_index"] == kept
    assert corpus.texts == [ng.texts[i] for i in kept]
    assert corpus.labels == [ng.labels[i] for i in kept]
    assert corpus.ids == [str(i) for i in kept]
    assert "skipped 4 empty documents of 10" in caplog.text


def test_all_empty_is_an_error(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("text,n\n,1\n   ,2\n", encoding="utf-8")
    with pytest.raises(SaetmError, match="all 2 documents in field 'text'.*are empty"):
        read_documents(path)


def test_header_only_is_an_error(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(SaetmError, match="contains no documents"):
        read_documents(path)


# --- mixed types, ids, dates, images -------------------------------------------------------


def test_numbers_in_text_column_become_strings(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "words"}\n{"text": 42}\n{"text": 2.5}\n{"text": 3.0}\n', encoding="utf-8")
    assert read_documents(path).texts == ["words", "42", "2.5", "3"]


@pytest.mark.parametrize("bad, kind", [('{"a": 1}', "dict"), ("[1, 2]", "list"), ("true", "bool")])
def test_non_text_value_names_the_row(tmp_path, bad, kind):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "fine"}\n\n{"text": %s}\n' % bad, encoding="utf-8")
    with pytest.raises(SaetmError, match=rf"row 1 \(line 3\) of field 'text'.* holds a {kind} "):
        read_documents(path)


def test_duplicate_ids_are_an_error(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("id,text\na,one\nb,two\na,three\n", encoding="utf-8")
    with pytest.raises(SaetmError, match="id 'a' appears in row 0 and row 2"):
        read_documents(path, id_field="id")


def test_missing_id_is_an_error(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("id,text\na,one\n,two\n", encoding="utf-8")
    with pytest.raises(SaetmError, match="row 1 of .* has no 'id'"):
        read_documents(path, id_field="id")


def test_numeric_ids_and_labels_become_strings(tmp_path):
    path = tmp_path / "docs.parquet"
    pd.DataFrame({"id": [10, 11, 12], "text": ["a", "b", "c"], "label": [1.0, None, 3.0]}).to_parquet(path)
    corpus = read_documents(path, id_field="id", label_field="label")
    assert corpus.ids == ["10", "11", "12"]
    assert corpus.labels == ["1", None, "3"]


def test_years_are_kept_as_numbers(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("text,year\na,1999\nb,\nc,2001\n", encoding="utf-8")
    corpus = read_documents(path, date_field="year")
    assert corpus.dates == [1999, None, 2001]
    assert corpus.extra["date_kind"] == "number"


def test_unparseable_dates_are_kept_as_labels(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a", "era": "early"}\n{"text": "b", "era": "late"}\n{"text": "c"}\n', encoding="utf-8")
    corpus = read_documents(path, date_field="era")
    assert corpus.dates == ["early", "late", None]
    assert corpus.extra["date_kind"] == "label"


def test_parquet_timestamps_stay_timestamps(tmp_path):
    path = tmp_path / "docs.parquet"
    when = pd.to_datetime(["2016-11-08 10:00", "2016-11-09 12:30"])
    pd.DataFrame({"text": ["a", "b"], "when": when}).to_parquet(path)
    corpus = read_documents(path, date_field="when")
    assert corpus.dates == list(when)


def test_image_paths_resolve_next_to_the_file(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a", "img": "images/a.png"}\n{"text": "b", "img": "/abs/b.png"}\n{"text": "c"}\n')
    corpus = read_documents(path, image_field="img")
    assert corpus.extra["images"] == [str(tmp_path / "images" / "a.png"), "/abs/b.png", None]


# --- bad files -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(SaetmError, match="does not exist"):
        read_documents(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".txt"])
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"docs{suffix}"
    path.write_bytes(b"")
    with pytest.raises(SaetmError, match="is empty"):
        read_documents(path)


def test_not_utf8_names_the_byte_offset(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes("first line\ncaf".encode() + b"\xe9\n")
    with pytest.raises(SaetmError, match=r"not UTF-8 .*byte 0xe9 at byte offset 14, line 2.*iconv"):
        read_documents(path)


def test_unsupported_extension_lists_supported(tmp_path):
    path = tmp_path / "docs.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(SaetmError, match=r"unsupported extension '\.xlsx'.*\.jsonl, .*\.parquet, \.txt"):
        read_documents(path)


def test_malformed_jsonl_line_number(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n{"text": "thr\n', encoding="utf-8")
    with pytest.raises(SaetmError, match="line 3 is not valid JSON"):
        read_documents(path)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "one"}\n["two"]\n', encoding="utf-8")
    with pytest.raises(SaetmError, match="line 2 is a JSON array, not an object"):
        read_documents(path)


def test_json_must_be_a_list(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text('{"text": "one"}', encoding="utf-8")
    with pytest.raises(SaetmError, match="JSON list of objects"):
        read_documents(path)


def test_json_list_of_strings(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text('["one", "", "three"]', encoding="utf-8")
    corpus = read_documents(path)
    assert corpus.texts == ["one", "three"] and corpus.extra["skipped_rows"] == [1]


@pytest.mark.parametrize("field", ["text_field", "id_field", "date_field", "label_field", "image_field"])
def test_unknown_field_lists_available(ng_frame, tmp_path, field):
    path = tmp_path / "docs.csv"
    ng_frame.head(3).to_csv(path, index=False)
    flag = field.replace("_", "-")
    with pytest.raises(SaetmError, match=rf"no field 'nope' \(for --{flag}\); available fields: 'id', 'text', 'label', 'date'"):
        read_documents(path, **{field: "nope"})


def test_csv_with_extra_cells(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("text,label\na,b,c\n", encoding="utf-8")
    with pytest.raises(SaetmError, match="not a readable CSV file"):
        read_documents(path)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "docs.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(SaetmError, match="not a readable Parquet file"):
        read_documents(path)


def test_folder_without_txt(tmp_path):
    (tmp_path / "a.md").write_text("x")
    with pytest.raises(SaetmError, match=r"contains no \.txt files"):
        read_documents(tmp_path)


# --- embeddings ----------------------------------------------------------------------------


@pytest.fixture
def emb():
    return np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)


def test_embeddings_round_trip(tmp_path, emb):
    np.save(tmp_path / "e.npy", emb)
    out = read_embeddings(tmp_path / "e.npy", n_rows=20, dim=8)
    assert out.dtype == np.float32 and np.array_equal(out, emb)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.uint8])
def test_embeddings_are_converted_to_float32(tmp_path, emb, dtype):
    np.save(tmp_path / "e.npy", (emb * 10).astype(dtype))
    out = read_embeddings(tmp_path / "e.npy")
    assert out.dtype == np.float32
    assert np.array_equal(out, (emb * 10).astype(dtype).astype(np.float32))


def test_embeddings_mmap_does_not_copy(tmp_path, emb):
    np.save(tmp_path / "e.npy", emb)
    out = read_embeddings(tmp_path / "e.npy", mmap=True)
    assert isinstance(out, np.memmap) and np.array_equal(out, emb)


def test_embeddings_npz(tmp_path, emb):
    np.savez(tmp_path / "one.npz", emb)
    assert np.array_equal(read_embeddings(tmp_path / "one.npz"), emb)
    np.savez(tmp_path / "named.npz", ids=np.arange(20), embeddings=emb)
    assert np.array_equal(read_embeddings(tmp_path / "named.npz"), emb)
    np.savez(tmp_path / "two.npz", a=emb, b=emb)
    with pytest.raises(SaetmError, match="holds 2 arrays"):
        read_embeddings(tmp_path / "two.npz")


def test_embeddings_missing_file(tmp_path):
    with pytest.raises(SaetmError, match="does not exist"):
        read_embeddings(tmp_path / "e.npy")


def test_embeddings_wrong_extension(tmp_path):
    (tmp_path / "e.pt").write_bytes(b"x")
    with pytest.raises(SaetmError, match=r"not a \.npy or \.npz file"):
        read_embeddings(tmp_path / "e.pt")


def test_embeddings_wrong_rows(tmp_path, emb):
    np.save(tmp_path / "e.npy", emb)
    with pytest.raises(SaetmError, match="embeddings have 20 rows but there are 21 documents"):
        read_embeddings(tmp_path / "e.npy", n_rows=21)


def test_embeddings_wrong_dim(tmp_path, emb):
    np.save(tmp_path / "e.npy", emb)
    with pytest.raises(SaetmError, match="embeddings have 8 columns but the SAE expects 384"):
        read_embeddings(tmp_path / "e.npy", dim=384)


@pytest.mark.parametrize("shape", [(8,), (2, 3, 4), ()])
def test_embeddings_not_2d(tmp_path, shape):
    np.save(tmp_path / "e.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(SaetmError, match="must be a 2-D array"):
        read_embeddings(tmp_path / "e.npy")


def test_embeddings_empty(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 8), dtype=np.float32))
    with pytest.raises(SaetmError, match="are empty"):
        read_embeddings(tmp_path / "e.npy")


def test_embeddings_nan_and_inf(tmp_path, emb):
    emb[7, 3] = np.nan
    emb[12, 0] = np.inf
    emb[12, 1] = np.nan
    np.save(tmp_path / "e.npy", emb)
    with pytest.raises(SaetmError, match=r"NaN or infinite values in 2 rows \(first: row 7\)"):
        read_embeddings(tmp_path / "e.npy")


def test_embeddings_too_large_for_float32(tmp_path):
    np.save(tmp_path / "e.npy", np.array([[1.0, 1e300]]))
    with pytest.raises(SaetmError, match="too large for float32"):
        read_embeddings(tmp_path / "e.npy")


def test_embeddings_object_array_is_refused(tmp_path):
    np.save(tmp_path / "e.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(SaetmError, match="allow_pickle=False"):
        read_embeddings(tmp_path / "e.npy")


@pytest.mark.parametrize("values", [np.array([["a", "b"]]), np.array([[True, False]]), np.array([[1j, 2j]])])
def test_embeddings_non_numeric(tmp_path, values):
    np.save(tmp_path / "e.npy", values)
    with pytest.raises(SaetmError, match="not numbers"):
        read_embeddings(tmp_path / "e.npy")


@pytest.mark.parametrize("mmap", [False, True])
def test_embeddings_truncated(tmp_path, emb, mmap):
    np.save(tmp_path / "e.npy", emb)
    raw = (tmp_path / "e.npy").read_bytes()
    (tmp_path / "e.npy").write_bytes(raw[:-100])
    with pytest.raises(SaetmError, match=r"truncated: its header says shape \(20, 8\) float32"):
        read_embeddings(tmp_path / "e.npy", mmap=mmap)


def test_embeddings_not_npy(tmp_path):
    (tmp_path / "e.npy").write_text("0.1,0.2\n0.3,0.4\n")
    with pytest.raises(SaetmError, match=r"not a valid \.npy file"):
        read_embeddings(tmp_path / "e.npy")
