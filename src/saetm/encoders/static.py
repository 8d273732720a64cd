"""The static encoder: word-piece vectors distilled from all-MiniLM-L6-v2, averaged.

``SAETM(encoder="static")`` / ``saetm fit --encoder static``. A document's embedding is
the unit-length mean of the vectors of its word pieces (at most the first 512). The
vectors were distilled once, offline, with model2vec from the bundled
all-MiniLM-L6-v2 (every word piece through the transformer, PCA to 256 dimensions,
SIF weighting) and ship inside the package (``saetm/assets/static-minilm/``, written by
``scripts/distill_static.py``), so encoding needs no transformer, no model2vec and no
download: one tokenizer pass and a sparse × dense product, thousands of documents per
second on a CPU. The shipped SAE ``assets/sae-static/`` was trained on exactly these
vectors.

The encoding reproduces ``model2vec.StaticModel.encode`` of the distilled model (same
character cut before tokenizing, same truncation, unknown word pieces dropped), but
averages in float32 and returns float32.
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
    """Static word-piece embeddings averaged per document (see the module docstring).

    ``path``: a folder with ``vectors.safetensors`` (key ``vectors``, ``(n_pieces, dim)``),
    ``tokenizer.json`` and ``static.json``; the shipped one by default. ``batch_size``:
    texts per tokenizer call and product (bounds the memory, not the result).
    Same interface as :class:`saetm.encoders.text.TextEncoder` (``name``, ``dim``, ``encode``).
    """

    model = "static"  # model_files stores whether ``model`` is a callable: it is not

    def __init__(self, path: str | Path | None = None, *, batch_size: int = 2048, name: str = STATIC_ENCODER):
        self.path = Path(path) if path is not None else None
        self.batch_size = batch_size
        self.name = name
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
        return tokenizer, self._vectors

    @property
    def dim(self) -> int:
        return int(self._load()[1].shape[1])

    def encode(self, texts: Sequence[str], *, show_progress: bool = True) -> np.ndarray:
        """Embed ``texts``: float32 ``(n_texts, dim)``, unit rows (all-zero for a text without a
        known word piece). ``show_progress`` is accepted for the TextEncoder interface; encoding
        is too fast to need a bar."""
        texts = list(texts)
        tokenizer, vectors = self._load()
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        for lo in range(0, len(texts), self.batch_size):
            batch = [t[: self.max_chars] for t in texts[lo: lo + self.batch_size]]
            out[lo: lo + len(batch)] = self._mean_vectors(tokenizer.encode_batch_fast(batch, add_special_tokens=False),
                                                          vectors)
        return out

    def _mean_vectors(self, encodings, vectors: np.ndarray) -> np.ndarray:
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        if self._unk is not None:
            ids = [i[i != self._unk] for i in ids]
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.concatenate(ids) if len(ids) else np.zeros(0, np.int64)
        # a document × word-piece count matrix times the vectors: the sums without a per-token copy
        counts = sp.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(ids), vectors.shape[0]))
        sums = np.asarray(counts @ vectors, dtype=np.float32)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        # the mean's direction is the sum's: dividing by the length first would change nothing
        return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
