"""Atom activations of embeddings under a fitted SAE (embeddings → atoms), chunk by chunk."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from saetm._memory import release_pages
from saetm.errors import SaetmError


def _check_embeddings(X, d_in: int) -> None:
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        raise SaetmError(f"embeddings must be a numpy array of shape (n, {d_in}), got {type(X).__name__}")
    if X.ndim != 2:
        raise SaetmError(f"embeddings must be a 2-d array (n, {d_in}), got shape {tuple(X.shape)}")
    if X.shape[1] != d_in:
        raise SaetmError(f"embeddings have {X.shape[1]} columns but the SAE expects {d_in}; "
                         "use embeddings from the encoder the SAE was trained for")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise SaetmError(f"embeddings must be numeric, got dtype {X.dtype}")


@torch.no_grad()
def encode_activations(sae, X: np.ndarray, batch_size: int = 1024) -> sp.csr_matrix:
    """Atom activations of raw embeddings X (n, d) under ``sae`` (a :class:`saetm.sae.models.SparseAutoencoder`)
    -> (n, n_atoms) float32 CSR.

    Applies the SAE's stored input normalisation; works chunk by chunk, so X may be a
    memory-mapped array larger than memory.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    _check_embeddings(X, sae.config.d_in)
    if batch_size < 1:
        raise SaetmError(f"batch_size must be >= 1, got {batch_size}")
    was_training = sae.training
    sae.eval()
    device = next(sae.parameters()).device
    data, indices, counts = [], [], []
    try:
        for start in range(0, X.shape[0], batch_size):
            chunk = np.array(X[start:start + batch_size], dtype=np.float32)  # a copy: X may be read-only
            release_pages(X)
            if not np.isfinite(chunk).all():
                row = start + int(np.nonzero(~np.isfinite(chunk).all(axis=1))[0][0])
                raise SaetmError(f"embeddings contain NaN or infinite values (first at row {row}); "
                                 "remove or re-encode those documents")
            a = sae.encode(sae.preprocess(torch.from_numpy(chunk).to(device)))
            rows, cols = torch.nonzero(a, as_tuple=True)
            # copied out of torch's buffers: small tensors kept alive between the batches'
            # large temporaries pin freed heap memory (about 30 kB per document)
            data.append(a[rows, cols].cpu().numpy().copy())
            indices.append(cols.to(torch.int32).cpu().numpy().copy())
            counts.append(torch.bincount(rows, minlength=a.shape[0]).cpu().numpy().copy())
            del a, rows, cols
    finally:
        sae.train(was_training)
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    cat = lambda parts, dt: np.concatenate(parts).astype(dt, copy=False) if parts else np.zeros(0, dt)  # noqa: E731
    values = cat(data, np.float32)
    data.clear()  # each list freed once joined: one copy of the activations at a time
    columns = cat(indices, np.int32)
    indices.clear()
    return sp.csr_matrix((values, columns, indptr), shape=(X.shape[0], sae.config.n_atoms))
