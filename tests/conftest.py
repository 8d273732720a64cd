"""Shared fixtures: a real slice of 20 Newsgroups and its real MiniLM embeddings."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Test matrices are small: one thread avoids oversubscription on shared CI cores.
torch.set_num_threads(1)


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


# Small but real settings: a corpus-trained SAE on 400 real embeddings, fast enough for CI.
SMALL = dict(sae={"n_atoms": 768, "k": 16, "steps": 300}, min_df=3, seed=0, verbose=False)


@pytest.fixture(scope="session")
def small_params():
    return dict(SMALL)


@pytest.fixture(scope="session")
def fitted_model(ng_corpus, ng_embeddings):
    from saetm.model import SAETM

    return SAETM(n_topics=8, **SMALL).fit(ng_corpus.texts, ng_embeddings, labels=ng_corpus.labels,
                                          ids=ng_corpus.ids)
