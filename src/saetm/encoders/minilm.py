"""The bundled all-MiniLM-L6-v2 run directly: its tokenizer and its BERT network in plain torch.

sentence-transformers runs this model as three modules (``modules.json``): a Transformer
(the tokenizer, texts stripped and cut to ``max_seq_length`` = 256 tokens; transformers'
``BertModel``), mean pooling over the tokens the attention mask keeps, and L2
normalisation. :class:`MiniLM` does the same operations on the same files: the
``tokenizers`` library on ``tokenizer.json``, the encoder's layers (embeddings, 6 × self-attention
and feed-forward with post-layer-norm, exact GELU) written with ``torch.nn.functional``
from ``model.safetensors``, texts batched by decreasing length as sentence-transformers
batches them. Importing sentence-transformers and transformers takes seconds, which
``saetm transform`` of a few documents should not spend; the embeddings agree with
sentence-transformers' to float rounding (``tests/test_minilm.py``: cosine ≥ 0.9999 on real
texts), so the embedding cache, keyed by the encoder's name, stays valid.

Only a folder holding exactly that pipeline is run this way (:func:`is_minilm_folder`);
any other model goes through sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

#: up to this many texts are encoded on one thread: handing such small matrices to more
#: threads costs more than it saves (6x the CPU time for 5 short texts on a busy machine)
ONE_THREAD_TEXTS = 64
#: what this module implements, checked in the folder before it is used
_MODULES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize"]


def _json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_minilm_folder(path: str | Path) -> bool:
    """Whether ``path`` holds a sentence-transformers BERT model with mean pooling and
    normalisation, in the files :class:`MiniLM` reads."""
    path = Path(path)
    try:
        modules = [m["type"] for m in _json(path / "modules.json")]
        config = _json(path / "config.json")
        pooling = _json(path / "1_Pooling" / "config.json")
        _json(path / "sentence_bert_config.json")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") is True and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    return (modules == _MODULES and mean_only and config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu" and config.get("position_embedding_type", "absolute") == "absolute"
            and (path / "tokenizer.json").is_file() and (path / "model.safetensors").is_file())


class MiniLM:
    """The sentence encoder in ``path`` (see :func:`is_minilm_folder`), with the two methods of
    ``SentenceTransformer`` that :class:`saetm.encoders.text.TextEncoder` calls."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        config = _json(path / "config.json")
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_length = int(_json(path / "sentence_bert_config.json").get("max_seq_length") or 512)
        self.max_length = min(self.max_length, int(config.get("max_position_embeddings", 512)))
        self.device = torch.device(device)
        self.weights = {k: v.to(self.device) for k, v in load_file(str(path / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length, strategy="longest_first")
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")

    def get_sentence_embedding_dimension(self) -> int:
        return self.hidden

    def encode(self, texts: Sequence[str], batch_size: int = 32, show_progress_bar: bool = False,
               convert_to_numpy: bool = True) -> np.ndarray:
        """``(n, hidden)`` float32 unit rows; batches of ``batch_size`` texts, longest first."""
        import torch

        threads = torch.get_num_threads()
        if len(texts) <= ONE_THREAD_TEXTS:
            torch.set_num_threads(1)
        try:
            return self._encode(texts, batch_size, show_progress_bar)
        finally:
            torch.set_num_threads(threads)

    def _encode(self, texts: Sequence[str], batch_size: int, show_progress_bar: bool) -> np.ndarray:
        import torch

        texts = [str(t).strip() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Batches")
        with torch.inference_mode():
            for lo in starts:
                pick = order[lo:lo + batch_size]
                batch = self.tokenizer.encode_batch([texts[i] for i in pick])
                ids = torch.tensor([e.ids for e in batch], dtype=torch.long, device=self.device)
                mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.long, device=self.device)
                out[pick] = self._forward(ids, mask).cpu().numpy()
        return out

    def _forward(self, ids, mask):
        """BertModel's last hidden state, mean-pooled over the kept tokens and L2-normalised."""
        import torch
        import torch.nn.functional as F

        W, H, eps = self.weights, self.hidden, self.eps
        b, n = ids.shape
        head = H // self.heads

        def norm(x, name):
            return F.layer_norm(x, (H,), W[name + ".weight"], W[name + ".bias"], eps)

        def linear(x, name):
            return F.linear(x, W[name + ".weight"], W[name + ".bias"])

        h = F.embedding(ids, W["embeddings.word_embeddings.weight"]) + W["embeddings.token_type_embeddings.weight"][0]
        h = norm(h + W["embeddings.position_embeddings.weight"][:n], "embeddings.LayerNorm")
        keep = None if bool(mask.all()) else mask[:, None, None, :].bool()  # padding is never attended to
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(h, p + "attention.self." + x).view(b, n, self.heads, head).transpose(1, 2)
                       for x in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=head ** -0.5)
            h = norm(linear(a.transpose(1, 2).reshape(b, n, H), p + "attention.output.dense") + h,
                     p + "attention.output.LayerNorm")
            f = F.gelu(linear(h, p + "intermediate.dense"))
            h = norm(linear(f, p + "output.dense") + h, p + "output.LayerNorm")
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = torch.sum(h * m, 1) / torch.clamp(m.sum(1), min=1e-9)
        return F.normalize(pooled, p=2, dim=1)
