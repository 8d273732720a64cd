"""The static encoder: word-piece vectors distilled from all-MiniLM-L6-v2, averaged.

``SAETM(encoder="static")`` / ``saetm fit --encoder static``. A document's embedding is
the unit-length sum of the vectors of its word pieces (at most the first 512), each
weighted by the piece's inverse document frequency in the fitted collection,
``idf = ln((1 + n) / (1 + df)) + 1`` (``n`` documents, ``df`` of them holding the piece):
pieces that every document shares (quoting, greetings, function words) weigh little,
pieces that set documents apart weigh most. The IDF table is the encoder's only state:
:meth:`StaticEncoder.fit` computes it from the texts (one tokenizer pass), a fitted
model saves it and ``transform`` weighs new documents with the fitted collection's
table, so a fitted document transformed again gets its fitted embedding. The
vectors were distilled once, offline, with model2vec from the bundled
all-MiniLM-L6-v2 (every word piece through the transformer, PCA to 256 dimensions,
SIF weighting) and ship inside the package (``saetm/assets/static-minilm/``, written by
``scripts/distill_static.py``), so encoding needs no transformer, no model2vec and no
download: one tokenizer pass and a sparse × dense product, thousands of documents per
second on a CPU. The shipped SAE ``assets/sae-static/`` was trained on exactly these
vectors.

With all weights 1 (``idf=np.ones(n_pieces)``, what models saved before the IDF
table load with) the encoding reproduces ``model2vec.StaticModel.encode`` of the
distilled model (same character cut before tokenizing, same truncation, unknown word
pieces dropped), but averages in float32 and returns float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from saetm.errors import SaetmError

STATIC_ENCODER = "static-all-MiniLM-L6-v2"
STATIC_ALIASES = ("static", STATIC_ENCODER)
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "static-minilm"
VECTORS_FILE = "vectors.safetensors"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "static.json"


def static_dir() -> Path | None:
    """The shipped static encoder's folder, or None in a build without it."""
    return ASSET_DIR if all((ASSET_DIR / f).exists() for f in (VECTORS_FILE, TOKENIZER_FILE, INFO_FILE)) else None


class StaticEncoder:
    """Static word-piece embeddings, IDF-weighted and summed per document (see the module docstring).

    ``path``: a folder with ``vectors.safetensors`` (key ``vectors``, ``(n_pieces, dim)``),
    ``tokenizer.json`` and ``static.json``; the shipped one by default. ``batch_size``:
    texts per tokenizer call and product (bounds the memory, not the result). ``idf``: the
    ``(n_pieces,)`` weights of a fitted encoder (None: not fitted; the first :meth:`encode`
    then fits them on its own texts). Same interface as
    :class:`saetm.encoders.text.TextEncoder` (``name``, ``dim``, ``encode``).
    """

    model = "static"  # model_files stores whether ``model`` is a callable: it is not
    cacheable = False  # the embeddings depend on the IDF table; encoding is faster than reading a cache
    #: b of the document weights' word view (saetm.topics.docwords): these embeddings, sums of word
    #: pieces, separate documents less well than a sentence encoder's, so the words count more
    doc_word_weight = 3.0

    def __init__(self, path: str | Path | None = None, *, batch_size: int = 2048, name: str = STATIC_ENCODER,
                 idf: np.ndarray | None = None):
        self.path = Path(path) if path is not None else None
        self.batch_size = batch_size
        self.name = name
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float32)
        self._vectors: np.ndarray | None = None
        self._tokenizer = None

    def _load(self):
        if self._vectors is not None:
            return self._tokenizer, self._vectors
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        from saetm.io.persist import read_json

        root = self.path if self.path is not None else static_dir()
        if root is None:
            raise SaetmError("this saetm build ships no static encoder (saetm/assets/static-minilm is missing); "
                             "use the default encoder or reinstall saetm")
        try:
            info = read_json(root / INFO_FILE)
            vectors = load_file(str(root / VECTORS_FILE))["vectors"]
            tokenizer = Tokenizer.from_file(str(root / TOKENIZER_FILE))
        except Exception as e:  # safetensors and tokenizers raise their own exception types
            raise SaetmError(f"cannot read the static encoder in {root} ({type(e).__name__}); reinstall saetm") from None
        if vectors.ndim != 2 or vectors.shape[0] != tokenizer.get_vocab_size():
            raise SaetmError(f"the static encoder in {root} is inconsistent: {vectors.shape} vectors for "
                             f"{tokenizer.get_vocab_size()} word pieces; reinstall saetm")
        self.max_length = int(info["max_length"])
        # model2vec cuts every text to max_length × the median word-piece length in characters before
        # tokenizing, so a 100 kB post costs no more than a 2 kB one; the same cut keeps the vectors its own
        self.max_chars = self.max_length * int(info["median_token_length"])
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length)
        self._unk = tokenizer.token_to_id(info.get("unk_token", "[UNK]"))
        # float32 for the sums: averaging hundreds of float16 vectors in float16 loses digits
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._tokenizer = tokenizer
        self._check_idf(self.idf)
        return tokenizer, self._vectors

    def _check_idf(self, idf) -> None:
        if idf is not None and (idf.shape != (self._vectors.shape[0],) or not np.isfinite(idf).all()
                                or (idf < 0).any()):
            raise SaetmError(f"the static encoder's IDF table has shape {idf.shape} (or values that are not finite "
                             f"and ≥ 0) but the encoder has {self._vectors.shape[0]} word pieces; the model files are "
                             "corrupt or from another encoder, re-run `saetm fit`")

    @property
    def dim(self) -> int:
        return int(self._load()[1].shape[1])

    @property
    def n_pieces(self) -> int:
        """Word pieces in the tokenizer's vocabulary: the length of an IDF table."""
        return int(self._load()[1].shape[0])

    def fit(self, texts: Sequence[str]) -> "StaticEncoder":
        """Set the IDF table from ``texts`` (one tokenizer pass); returns the encoder."""
        self.fit_encode(texts)
        return self

    def fit_encode(self, texts: Sequence[str]) -> np.ndarray:
        """Set the IDF table from ``texts`` and return their embeddings (:meth:`encode`), with
        one tokenizer pass: the word-piece counts of each batch are kept until the table is known."""
        texts = list(texts)
        _, vectors = self._load()
        counts = [self._counts(texts[lo: lo + self.batch_size]) for lo in range(0, len(texts), self.batch_size)]
        df = np.zeros(vectors.shape[0], dtype=np.int64)
        for c in counts:
            df += np.bincount(c.indices, minlength=vectors.shape[0])  # indices are unique per row after sum_duplicates
        self.idf = idf_weights(df, len(texts))
        return self._pool(counts, len(texts))

    def encode(self, texts: Sequence[str], *, show_progress: bool = True) -> np.ndarray:
        """Embed ``texts``: float32 ``(n_texts, dim)``, unit rows (all-zero for a text without a
        known word piece), weighted by the fitted IDF table; an encoder not fitted yet first fits
        it on ``texts`` (:meth:`fit_encode`). ``show_progress`` is accepted for the TextEncoder
        interface; encoding is too fast to need a bar."""
        texts = list(texts)
        if self.idf is None:
            return self.fit_encode(texts)
        self._load()
        return self._pool((self._counts(texts[lo: lo + self.batch_size])
                           for lo in range(0, len(texts), self.batch_size)), len(texts))

    def _counts(self, texts: list[str]) -> sp.csr_matrix:
        """Texts × word pieces: how often each known piece occurs in each (cut, truncated) text."""
        tokenizer, vectors = self._load()
        encodings = tokenizer.encode_batch_fast([t[: self.max_chars] for t in texts], add_special_tokens=False)
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        if self._unk is not None:
            ids = [i[i != self._unk] for i in ids]
        indptr = np.concatenate([[0], np.cumsum([len(i) for i in ids], dtype=np.int64)])
        flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        counts = sp.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(ids), vectors.shape[0]))
        counts.sum_duplicates()
        return counts

    def _pool(self, counts, n_texts: int) -> np.ndarray:
        """Unit-length IDF-weighted sums of the word-piece vectors, batch by batch."""
        vectors = self._vectors
        self._check_idf(self.idf)
        weighted = vectors * self.idf[:, None]
        out = np.zeros((n_texts, vectors.shape[1]), dtype=np.float32)
        lo = 0
        for c in counts:
            # a document × word-piece count matrix times the weighted vectors: the sums without a per-token copy
            sums = np.asarray(c @ weighted, dtype=np.float32)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            out[lo: lo + c.shape[0]] = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
            lo += c.shape[0]
        return out


def idf_weights(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Smoothed inverse document frequency, ``ln((1 + n) / (1 + df)) + 1``, float32: 1 for a piece in
    every document, ``ln(1 + n) + 1`` for one in none (a piece first seen in ``transform``)."""
    return (np.log((1.0 + n_docs) / (1.0 + np.asarray(df, dtype=np.float64))) + 1.0).astype(np.float32)
