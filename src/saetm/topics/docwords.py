"""Stage 3, document weights: each document's own words as a second view beside its embedding.

A document's embedding places it among the topics; its words say the same thing another
way. :mod:`saetm.topics.docweights` adds the cosine between a document's word direction ŵ_d
and each topic's word centroid ν_c to its embedding cosine, with the weight b
(``SAETM(doc_word_weight)``):

    W[d, c] ∝ p_dc · ρ_c · exp((cos(x_d, μ_c) + b · cos(ŵ_d, ν_c)) / t).

ŵ_d is the document's word incidence (which vocabulary words it holds, not how often)
weighted by IDF, idf_w = log((1 + n) / (1 + df_w)) + 1 over the n documents the model keeps
words of (``doc_words_``: all fitted documents, or a seeded sample of
``wordrank.MAX_DOCS`` of them), scaled to length 1. ν_c, like μ_c, is fitted by the
mixture's EM. A document without vocabulary words (or without words kept, beyond the
sample) has ŵ = 0: its weights come from its embedding alone.

b defaults to the encoder's ``doc_word_weight`` attribute, else :data:`ENCODER_WEIGHT`: 1
for sentence encoders and given embeddings, 3 for the static encoder, whose embeddings are
themselves IDF-weighted sums of word pieces and separate documents less well on their
own, and 0 for images (embeddings named "image:…", as ``saetm fit`` names them, or a model
holding image paths): an image's words (captions, tags) only name the atoms. (``saetm
retopic`` does not read the documents: a model fitted in Python with ``images=`` but without
an ``embedding_name`` "image:…" gets 1 there.) What each value does to the agreement with
labels is measured in ``bench/README.md``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: b of encoders that do not say (sentence-transformers models, callables, given embeddings).
ENCODER_WEIGHT = 1.0


def default_weight(encoder, embedding_name: str | None = None, images: bool = False) -> float:
    """b when ``doc_word_weight`` is None: 0 for images (``images``, or ``embedding_name``
    starting with "image:"), else ``encoder``'s ``doc_word_weight`` attribute, else
    :data:`ENCODER_WEIGHT`."""
    if images or isinstance(embedding_name, str) and embedding_name.startswith("image:"):
        return 0.0
    return float(getattr(encoder, "doc_word_weight", ENCODER_WEIGHT))


def idf_of(doc_words: sp.spmatrix) -> np.ndarray:
    """``(V,)`` float64 IDF of the words over the rows of ``doc_words`` (incidence, any sparse)."""
    n = doc_words.shape[0]
    df = np.diff(sp.csc_matrix(doc_words).indptr).astype(np.float64)
    return np.log((1.0 + n) / (1.0 + df)) + 1.0


def directions(incidence: sp.spmatrix, idf: np.ndarray, block: int = 1 << 16) -> sp.csr_matrix:
    """ŵ: the rows of ``incidence`` (non-zero = the document holds the word) as IDF weights
    scaled to length 1, ``(n, V)`` float32 CSR (empty rows stay empty). One float32 copy of
    the structure is made; the row lengths come from it as an incidence of ones, and the rows
    are scaled ``block`` at a time (no second matrix, no temporary the size of all entries)."""
    m = sp.csr_matrix(incidence, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    m.sum_duplicates()
    m.data.fill(1.0)
    idf = np.asarray(idf, dtype=np.float64)
    lengths = np.sqrt(np.asarray(m @ idf ** 2).ravel())  # ‖ŵ_d‖² = Σ_{w ∈ d} idf_w²
    inverse = np.divide(1.0, lengths, out=np.zeros_like(lengths), where=lengths > 0)
    counts = np.diff(m.indptr)
    for lo in range(0, m.shape[0], block):
        a, b = m.indptr[lo], m.indptr[min(lo + block, m.shape[0])]
        m.data[a:b] = idf[m.indices[a:b]] * np.repeat(inverse[lo:lo + block], counts[lo:lo + block])
    return m


def fitted_directions(doc_words: sp.spmatrix | None, n_docs: int, seed: int) -> sp.csr_matrix | None:
    """ŵ of the fitted documents, ``(n_docs, V)``: from the model's ``doc_words_`` (all
    documents, or the seeded sample :func:`saetm.topics.wordrank.sample_rows` drew; the
    others get empty rows). None without ``doc_words_``."""
    from saetm.topics.wordrank import sample_rows

    if doc_words is None:
        return None
    w = directions(doc_words, idf_of(doc_words))
    if w.shape[0] == n_docs:
        return w
    rows = sample_rows(n_docs, w.shape[0], seed)
    counts = np.zeros(n_docs + 1, dtype=np.int64)
    counts[rows + 1] = np.diff(w.indptr)
    return sp.csr_matrix((w.data, w.indices, np.cumsum(counts)), shape=(n_docs, w.shape[1]))


def new_directions(tokens: list[list[str]], vocab, idf: np.ndarray) -> sp.csr_matrix:
    """ŵ of new documents given as their tokens (:func:`saetm.words.vocab.tokenizer`; other
    tokens than the vocabulary's are ignored): the vocabulary words each holds, weighted by the
    fitted documents' ``idf``."""
    index = {w: j for j, w in enumerate(vocab)}
    cols = [sorted({index[t] for t in doc if t in index}) for doc in tokens]
    indptr = np.cumsum([0] + [len(c) for c in cols])
    indices = np.fromiter((j for c in cols for j in c), dtype=np.int64, count=int(indptr[-1]))
    incidence = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(tokens), len(index)))
    return directions(incidence, idf)
