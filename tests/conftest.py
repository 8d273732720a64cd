"""Shared fixtures: a real slice of 20 Newsgroups and its real MiniLM embeddings."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def ng_corpus():
    from saetm.io.datasets import load_20newsgroups

    return load_20newsgroups(n=400, seed=0)


@pytest.fixture(scope="session")
def text_encoder():
    from saetm.encoders.text import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="session")
def ng_embeddings(ng_corpus, text_encoder):
    from saetm.encoders.text import encode_cached

    emb = encode_cached(text_encoder, ng_corpus.texts, show_progress=False)
    assert emb.shape == (len(ng_corpus), 384)
    return np.asarray(emb, dtype=np.float32)
