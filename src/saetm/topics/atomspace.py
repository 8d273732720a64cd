"""Where atoms live when they are clustered into topics (stage 3's input).

SPEC §4 embeds an atom through its words: e_k = sparsified B_k · word vectors
(:func:`saetm.topics.merge.atom_embeddings`, ``atom_space="words"``). The atoms
themselves give other, T-independent views:

- ``"documents"``: the θ-weighted mean of the (L2-normalised) embeddings of the
  documents the atom is active in, c_k = Σ_d θ_dk x_d — the atom's place in the
  document-embedding space the SAE was trained on, as the data uses it;
- ``"decoder"``: the atom's decoder column d_k (the same space, but the direction
  the SAE adds, not where its documents sit);
- ``"coactivation"``: atoms that fire in the same documents are close — the right
  singular vectors of θ (n_docs × n_atoms) scaled by their singular values;
- ``"documents+coactivation"``: both, each L2-normalised, side by side.

Clustering in document space groups atoms the way documents group, which is what a
label-based measure (NMI) rewards; co-activation groups atoms whose documents share
words, which document co-occurrence coherence (NPMI) rewards. ``bench/ablation.py``
measures all of them. Every function returns (n_atoms, dim) float32 with
L2-normalised rows (all-zero rows, i.e. unused atoms, stay zero).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

ATOM_SPACES = ("words", "documents", "decoder", "coactivation", "documents+coactivation")


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (all-zero rows stay zero), float32."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def document_embeddings(theta, embeddings: np.ndarray, block: int = 1 << 14) -> np.ndarray:
    """c_k = Σ_d θ_dk x_d / ‖·‖ over L2-normalised document embeddings.

    ``theta``: (n_docs, n_atoms) CSR; ``embeddings``: (n_docs, d), row d the embedding of
    document d (the rows of θ; may be a memory-mapped file, read ``block`` rows at a time).
    Returns (n_atoms, d) float32.
    """
    from scipy.sparse import _sparsetools

    from saetm._memory import release_pages

    theta = sp.csr_matrix(theta, dtype=np.float32)
    X = embeddings if hasattr(embeddings, "ndim") else np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != theta.shape[0]:
        raise SaetmError(f"embeddings have shape {X.shape} but theta has {theta.shape[0]} documents; "
                         "pass one embedding per row of theta")
    n_atoms, dim = theta.shape[1], X.shape[1]
    out = np.zeros((n_atoms, dim), dtype=np.float32)
    for lo in range(0, X.shape[0], block):  # θᵀ x̂ a block of documents at a time, summed as one product
        hi = min(lo + block, X.shape[0])
        a, b = theta.indptr[lo], theta.indptr[hi]
        x = unit_rows(X[lo:hi])
        release_pages(X)
        _sparsetools.csc_matvecs(n_atoms, hi - lo, dim, theta.indptr[lo:hi + 1] - a, theta.indices[a:b],
                                 theta.data[a:b], x.ravel(), out.ravel())
    return unit_rows(out)


def decoder_embeddings(decoder: np.ndarray) -> np.ndarray:
    """The SAE's decoder columns as rows: ``decoder`` (d, n_atoms) → (n_atoms, d)."""
    W = np.asarray(decoder, dtype=np.float32)
    if W.ndim != 2:
        raise SaetmError(f"decoder must be a (d, n_atoms) matrix, got shape {W.shape}")
    return unit_rows(W.T)


def coactivation_embeddings(theta, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Atoms by the documents they fire in: V_r S_r of the rank-``dim`` SVD θ ≈ U S Vᵀ.

    Two atoms get close rows when they are active, with similar weights, in the same
    documents. ``theta``: (n_docs, n_atoms) CSR. Returns (n_atoms, min(dim, ...)) float32.
    Deterministic for a given ``seed``: scikit-learn's ``randomized_svd`` (signs fixed by
    its ``svd_flip``), computed in bounded memory by :mod:`saetm.topics.coactivation`.
    """
    theta = sp.csr_matrix(theta)
    n_docs, n_atoms = theta.shape
    rank = int(min(dim, n_docs, n_atoms) - 1)
    if rank < 1:
        raise SaetmError(f"co-activation needs at least 2 documents and 2 atoms, got theta of shape {theta.shape}; "
                         "fit more documents, or use --atom-space documents (atom_space='documents')")
    from saetm.topics.coactivation import top_right_singular

    S, Vt = top_right_singular(theta, rank, seed)
    return unit_rows((Vt.T * S).astype(np.float32))


def combine(*parts: np.ndarray) -> np.ndarray:
    """Side-by-side concatenation of L2-normalised views (equal weight), normalised again."""
    return unit_rows(np.hstack([unit_rows(p) for p in parts]))
