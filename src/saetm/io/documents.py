"""``documents.parquet`` of a model directory: the fitted documents' text (cut to
``TEXT_CHARS``) and id / date / label / image path, tagged with the fit id."""

from __future__ import annotations

from pathlib import Path

from saetm.errors import SaetmError
from saetm.io.directory import FIT_ID
from saetm.io.persist import atomic_write

TEXT_CHARS = 1000  # saved per document: enough for representative documents and reports


#: rows per row group of documents.parquet: the texts are converted and written a block at a time
BLOCK_ROWS = 65536


def write_documents(path: Path, meta: dict, fit_id: str, block_rows: int = BLOCK_ROWS) -> None:
    """Write the columns of ``meta`` (texts cut to ``TEXT_CHARS``) as a Parquet file tagged with
    ``fit_id``: the other columns converted whole, the texts ``block_rows`` at a time (one row
    group each), so that memory never holds more than one block of them in Arrow's copy."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {k: v for k, v in (meta or {}).items() if v is not None}
    if not cols:
        path.unlink(missing_ok=True)
        return
    texts = cols.get("text")
    df = pd.DataFrame({k: (pd.Series(v) if k == "date" else pd.Series(v, dtype="string"))
                       for k, v in cols.items() if k != "text"})
    if "date" in df and df["date"].dtype == object:
        df["date"] = df["date"].astype("string")  # mixed or label-like periods are kept as text
    n = len(texts) if texts is not None else len(df)
    with atomic_write(path, "wb") as f:
        writer = None
        for lo in range(0, n, block_rows):
            block = (df.iloc[lo:lo + block_rows].reset_index(drop=True) if len(df.columns)
                     else pd.DataFrame(index=pd.RangeIndex(min(block_rows, n - lo))))
            if texts is not None:
                block.insert(list(cols).index("text"), "text",
                             pd.Series([t[:TEXT_CHARS] for t in texts[lo:lo + block_rows]], dtype="string"))
            table = pa.Table.from_pandas(block, preserve_index=False)
            if writer is None:
                schema = table.schema.with_metadata({**(table.schema.metadata or {}), FIT_ID.encode(): fit_id.encode()})
                writer = pq.ParquetWriter(f, schema)
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
        writer.close()


def read_documents(path: Path, n_docs: int) -> dict:
    meta = {"id": None, "date": None, "label": None, "text": None, "image": None}
    if not path.exists():
        return meta
    import pandas as pd

    try:
        df = pd.read_parquet(path)
        columns = {str(col): df[col].tolist() for col in df.columns}  # decoding may fail only here
    except Exception as e:  # pyarrow raises its own types for corrupt files
        raise SaetmError(f"{path} is unreadable ({type(e).__name__}); the model directory is corrupt, re-run `saetm fit`") from None
    if len(df) != n_docs:
        raise SaetmError(f"{path} has {len(df)} rows but the model has {n_docs} documents; the directory is inconsistent")
    from saetm.model_fields import check_document_columns

    check_document_columns(columns, path)
    meta.update(columns)
    if meta["image"] is not None:  # missing paths come back as NA/NaN
        meta["image"] = [v if isinstance(v, str) and v else None for v in meta["image"]]
    return meta
