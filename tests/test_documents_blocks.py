"""documents.parquet written a block of rows at a time reads back as written whole."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest


@pytest.mark.parametrize("columns", [("id", "date", "label", "image", "text"), ("text",), ("id", "label")])
def test_documents_parquet_in_row_groups_reads_back_the_same(ng_corpus, tmp_path, columns):
    from saetm.io.documents import TEXT_CHARS, read_documents, write_documents

    n = 150
    meta = {"id": [f"d{i}" for i in range(n)],
            "date": [None if i % 7 == 0 else pd.Timestamp("2001-01-01") + pd.Timedelta(days=i) for i in range(n)],
            "label": [None if i % 5 == 0 else ng_corpus.labels[i] for i in range(n)],
            "image": [None] * n, "text": ng_corpus.texts[:n]}
    meta = {k: (v if k in columns else None) for k, v in meta.items()}
    whole, blocks = tmp_path / "whole.parquet", tmp_path / "blocks.parquet"
    write_documents(whole, meta, "fit-1", block_rows=10 ** 6)
    write_documents(blocks, meta, "fit-1", block_rows=16)
    assert pq.ParquetFile(blocks).num_row_groups == -(-n // 16) and pq.ParquetFile(whole).num_row_groups == 1
    assert pq.read_schema(blocks) == pq.read_schema(whole)
    assert pq.read_schema(blocks).metadata == pq.read_schema(whole).metadata
    a, b = read_documents(whole, n), read_documents(blocks, n)
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] is None) == (b[k] is None), k
        if a[k] is not None:
            assert pd.Series(a[k], dtype=object).equals(pd.Series(b[k], dtype=object)), k
    if "text" in columns:
        assert b["text"] == [t[:TEXT_CHARS] for t in ng_corpus.texts[:n]]
        assert max(map(len, b["text"])) == TEXT_CHARS
