"""Stage 0: the documents' embeddings, checked (text → embeddings).

Functions of plain values: the encoder, the documents or given embeddings; they return
``(X, rows)`` where ``X[i]`` belongs to document ``rows[i]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError


def make_encoder(spec):
    """The encoder for ``spec``: an encoder object as given, ``"static"`` (or its saved name) for
    :class:`saetm.encoders.static.StaticEncoder`, anything else for a TextEncoder."""
    from saetm.encoders.static import STATIC_ALIASES, StaticEncoder
    from saetm.encoders.text import TextEncoder

    if isinstance(spec, (TextEncoder, StaticEncoder)):
        return spec
    return StaticEncoder() if isinstance(spec, str) and spec in STATIC_ALIASES else TextEncoder(spec)


def embed(encoder, docs, embeddings, *, cache: bool, progress: bool, expected_dim: int | None = None,
          rows=None, fit: bool = False):
    """Embeddings for the documents: ``(X, rows)`` where ``X[i]`` belongs to document ``rows[i]``.

    ``fit``: the documents being fitted; an encoder with a ``fit_encode`` method (the static
    encoder's IDF table) is fitted on them, in one pass with their encoding (with given
    embeddings, only when it is not fitted yet, for ``transform``). Otherwise (and in
    ``transform``) the encoder encodes as it was fitted.

    Given embeddings cover every row (an image with an empty caption still has an
    embedding), or the documents ``rows`` when given (an image that could not be read
    has none). Otherwise empty documents are not encoded. A document without an
    embedding gets no atoms, hence no topic, and keeps its row so outputs stay aligned
    with the input."""
    from saetm.encoders.text import encode_cached

    if fit and embeddings is not None and docs is not None and getattr(encoder, "idf", 0) is None:
        encoder.fit([d for d in docs if d.strip()])  # so that transform weighs new texts like these
    if embeddings is not None:
        X = np.asarray(embeddings)
        n = len(docs) if docs is not None else (X.shape[0] if X.ndim else 0)
        if rows is None:
            return validate_embeddings(X, n_rows=n, dim=expected_dim), np.arange(X.shape[0])
        rows = _embedding_rows(rows, n)
        return validate_embeddings(X, n_rows=len(rows), dim=expected_dim), rows
    if rows is not None:
        raise SaetmError("embedding_rows says which documents the given embeddings belong to; pass embeddings too")
    rows = np.flatnonzero([bool(d.strip()) for d in docs])
    texts = list(docs.take(rows)) if getattr(docs, "lazy", False) else [docs[i] for i in rows]
    if fit and hasattr(encoder, "fit_encode"):  # every process of a torchrun group fits the same table
        X = encoder.fit_encode(texts)
    elif distributed():  # torchrun: every process encodes its share of the chunks
        from saetm.encoders.distributed import encode_sharded

        X = encode_sharded(encoder, texts, cache=cache, show_progress=progress)
    else:
        X = encode_cached(encoder, texts, cache=cache, show_progress=progress)
    return validate_embeddings(X, n_rows=len(rows), dim=expected_dim), rows


def distributed() -> bool:
    """Inside a torch.distributed process group of several processes (torchrun)."""
    import sys

    if "torch.distributed" not in sys.modules:  # never imports torch for a single process
        return False
    from saetm.sae.distributed import process_info

    return process_info().enabled


def _embedding_rows(rows, n_docs: int) -> np.ndarray:
    r = np.asarray(rows)
    if r.ndim != 1 or (r.size and r.dtype.kind not in "iu"):
        raise SaetmError("embedding_rows must be a list of document numbers (whole numbers), one per embedding")
    r = r.astype(np.int64)
    if r.size and (r.min() < 0 or r.max() >= n_docs):
        raise SaetmError(f"embedding_rows must be document numbers from 0 to {n_docs - 1}; got {int(r.min())}..{int(r.max())}")
    if np.unique(r).size != r.size:
        raise SaetmError("embedding_rows repeats a document; give each document at most one embedding")
    return r


def expand_rows(m: sp.csr_matrix, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """Place the rows of ``m`` at positions ``rows`` of an ``n_rows``-row matrix (others empty)."""
    if len(rows) == n_rows:
        return sp.csr_matrix(m)
    pick = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))), shape=(n_rows, len(rows)))
    return sp.csr_matrix(pick @ m)


def validate_embeddings(X: np.ndarray, *, n_rows: int | None, dim: int | None) -> np.ndarray:
    """``X`` as contiguous float32 (no copy when it already is), or a one-line SaetmError for a
    wrong type, shape, width or a NaN/inf."""
    if X.dtype.kind not in "fiu":
        raise SaetmError(f"embeddings must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise SaetmError(f"embeddings must be a 2-D array (documents × dimensions), got shape {X.shape}")
    if n_rows is not None and X.shape[0] != n_rows:
        raise SaetmError(f"embeddings have {X.shape[0]} rows but there are {n_rows} documents")
    if dim is not None and X.shape[1] != dim:
        raise SaetmError(f"embeddings have {X.shape[1]} columns but the SAE expects {dim}; "
                         "use embeddings from the encoder the SAE was trained for")
    X = np.ascontiguousarray(X, dtype=np.float32)  # no copy of a float32 array (or memory-mapped file)
    bad = [lo + np.flatnonzero(~np.isfinite(X[lo:lo + BLOCK_ROWS]).all(axis=1)) for lo in row_blocks(X)]
    bad = np.concatenate(bad) if bad else np.zeros(0, np.int64)
    if bad.size:
        raise SaetmError(f"embeddings contain NaN or inf in {bad.size} rows (first: row {bad[0]}); fix or drop those rows")
    return X


#: rows of the embeddings read at a time by the passes over them (a memory-mapped file is
#: never held whole: its pages are dropped after each block)
BLOCK_ROWS = 1 << 14


def row_blocks(X):
    """Start rows of the blocks of ``BLOCK_ROWS`` rows of X; releases a memory map's pages
    after each block has been used."""
    from saetm._memory import release_pages

    for lo in range(0, X.shape[0], BLOCK_ROWS):
        yield lo
        release_pages(X)
