"""Property tests: the readers either return exactly what was written or raise SaetmError."""

import csv
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from saetm.errors import SaetmError
from saetm.io.readers import read_documents, read_embeddings

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# any Unicode text that UTF-8 can encode (no lone surrogates), plus the blanks users really have
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(["", " ", "\t\n", "\u3000", "NA", "nan", "null", "None", 'say "hi", ok']),
)
cells = st.one_of(texts, st.none(), st.integers(-(10**6), 10**6), st.just(float("nan")))


def expected_text(value):
    """What read_documents promises for one cell: a string, or None when it is skipped."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def check_documents(path: Path, values: list) -> None:
    expected = [expected_text(v) for v in values]
    kept = [i for i, t in enumerate(expected) if t is not None]
    try:
        corpus = read_documents(path)
    except SaetmError as e:
        assert "\n" not in str(e)
        assert not kept, f"rejected a file with {len(kept)} real documents: {e}"
        return
    assert corpus.texts == [expected[i] for i in kept]
    assert corpus.extra["row_index"] == kept
    assert corpus.extra["skipped_rows"] == [i for i, t in enumerate(expected) if t is None]
    assert corpus.ids == [str(i) for i in kept]


@FUZZ
@given(st.lists(cells, max_size=12))
def test_csv_tables(values):
    frame = pd.DataFrame({"n": range(len(values)), "text": pd.Series(values, dtype=object)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.csv"
        # quote every cell: pandas' writer leaves a lone "\r" unquoted, which no reader can undo
        frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL, encoding="utf-8")
        check_documents(path, values)


@FUZZ
@given(st.lists(cells, max_size=12))
def test_jsonl_tables(values):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.jsonl"
        lines = [json.dumps({"text": v, "n": i}, ensure_ascii=False) for i, v in enumerate(values)]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        check_documents(path, values)


@FUZZ
@given(st.lists(st.one_of(texts, st.none()), max_size=12))
def test_parquet_tables(values):
    # Parquet columns have one type, so numbers are not mixed in here
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.parquet"
        pd.DataFrame({"text": pd.Series(values, dtype=object), "n": range(len(values))}).to_parquet(path)
        check_documents(path, values)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"]))
def test_random_bytes_never_crash(raw, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"docs{suffix}"
        path.write_bytes(raw)
        try:
            corpus = read_documents(path)
        except SaetmError as e:
            assert "\n" not in str(e)
            return
        assert corpus.texts and all(isinstance(t, str) and t.strip() for t in corpus.texts)
        assert len(corpus.ids) == len(corpus.texts) == len(corpus.extra["row_index"])


structured = st.one_of(
    st.lists(st.dictionaries(st.sampled_from(["text", "body", "id", "x"]), cells | st.booleans(), max_size=3), max_size=5),
    st.lists(cells, max_size=5),
    cells,
)


@FUZZ
@given(structured, st.sampled_from([".jsonl", ".json"]))
def test_random_json_never_crashes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"docs{suffix}"
        if suffix == ".jsonl" and isinstance(data, list):
            path.write_text("".join(json.dumps(d) + "\n" for d in data), encoding="utf-8")
        else:
            path.write_text(json.dumps(data), encoding="utf-8")
        try:
            corpus = read_documents(path)
        except SaetmError:
            return
        assert all(isinstance(t, str) and t.strip() for t in corpus.texts)


@FUZZ
@given(st.lists(st.tuples(texts, st.one_of(texts, st.none(), st.integers(0, 3000), st.floats(allow_nan=True))), min_size=1, max_size=8))
def test_random_metadata_columns(rows):
    frame = pd.DataFrame({"text": [t for t, _ in rows], "when": pd.Series([w for _, w in rows], dtype=object)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.jsonl"
        path.write_text(frame.to_json(orient="records", lines=True), encoding="utf-8")
        try:
            corpus = read_documents(path, date_field="when", label_field="when")
        except SaetmError:
            return
        assert len(corpus.dates) == len(corpus.labels) == len(corpus.texts)
        assert corpus.extra["date_kind"] in ("datetime", "number", "label")
        assert all(label is None or isinstance(label, str) for label in corpus.labels)


dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.uint8, np.bool_, np.complex64])
arrays = hnp.arrays(
    dtypes,
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements={"allow_nan": True, "allow_infinity": True},
)


@FUZZ
@given(arrays, st.sampled_from([None, 3]), st.sampled_from([None, 4]), st.booleans(), st.integers(0, 400))
def test_random_embeddings(arr, n_rows, dim, mmap, cut):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.npy"
        np.save(path, arr)
        raw = path.read_bytes()
        truncated = cut < len(raw) and cut % 2 == 1  # truncate half of the files somewhere
        if truncated:
            path.write_bytes(raw[:cut])
        try:
            out = read_embeddings(path, n_rows=n_rows, dim=dim, mmap=mmap)
        except SaetmError as e:
            assert "\n" not in str(e)
            return
        assert not truncated
        assert out.dtype == np.float32 and out.ndim == 2 and out.size > 0
        assert n_rows is None or out.shape[0] == n_rows
        assert dim is None or out.shape[1] == dim
        assert np.isfinite(out).all()
        assert np.array_equal(out, arr.astype(np.float32))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".npy", ".npz"]))
def test_random_bytes_as_embeddings(raw, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"e{suffix}"
        path.write_bytes(b"\x93NUMPY" + raw if suffix == ".npy" and raw[:1] == b"\x01" else raw)
        with pytest.raises(SaetmError):
            read_embeddings(path)
