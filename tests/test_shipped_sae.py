"""The pretrained SAE shipped inside the package (issue 3): what it is, that it reads
embeddings of a corpus it never saw (20 Newsgroups is left out of its training
collection), and when ``sae="auto"`` picks it."""

from pathlib import Path

import numpy as np
import pytest

from saetm.encoders.text import DEFAULT_ENCODER
from saetm.io.persist import read_json
from saetm.sae.stage import shipped_sae_dir
from saetm.sae.persist import load_sae
from saetm.sae.train import evaluate_sae


@pytest.fixture(scope="module")
def shipped() -> Path:
    root = shipped_sae_dir()
    assert root is not None, "src/saetm/assets/sae-minilm is missing: the package must ship its SAE"
    return root


def test_shipped_sae_is_small_half_precision_and_self_describing(shipped):
    assert (shipped / "sae.safetensors").stat().st_size <= 25 * 2**20
    info = read_json(shipped / "sae.json")
    assert info["dtype"] == "float16" and info["config"]["encoder_name"] == DEFAULT_ENCODER
    collection = info["meta"]["shipped"]["collection"]
    # built without the benchmark corpora
    assert collection and not {"20newsgroups", "reuters-r8", "reuters-r52", "fortunes"} & set(collection)
    assert info["meta"]["metrics"]["fve"] > 0.5


def test_shipped_sae_reads_an_unseen_corpus(shipped, ng_embeddings):
    sae = load_sae(shipped)
    m = evaluate_sae(sae, ng_embeddings)
    # 20 Newsgroups is not in its training collection, and it still explains most of the variance,
    # with the sparsity it was trained for and few atoms that never fire
    assert m["fve"] > 0.6, m
    assert 10 < m["l0"] < 80, m


def test_auto_takes_the_shipped_sae_only_when_it_fits(ng_corpus, ng_embeddings, small_params, caplog):
    import logging

    from saetm.model import SAETM

    docs, X = ng_corpus.texts[:150], ng_embeddings[:150]
    with caplog.at_level(logging.INFO, logger="saetm"):
        auto = SAETM(n_topics=4, min_df=3, verbose=False).fit(docs, X)
    assert auto.fit_report_.sae["source"] == "default"
    assert "shipped with saetm" in caplog.text  # the user is told which SAE read the corpus
    trained = SAETM(n_topics=4, **small_params).fit(docs, X)  # an explicit size asks for training
    assert trained.fit_report_.sae["source"] == "train"
    assert np.array_equal(auto.sae_.W_dec.detach().numpy(), load_sae(shipped_sae_dir()).W_dec.detach().numpy())


@pytest.mark.parametrize("sae, encoder, takes_it", [
    ("auto", DEFAULT_ENCODER, True),
    ("auto", "my-encoder", False),  # not the encoder it was trained for
    ({"n_atoms": 768}, DEFAULT_ENCODER, False),  # SAETraining settings: train one
    ({"k": 16}, DEFAULT_ENCODER, False),
    ({"arch": "topk"}, DEFAULT_ENCODER, False),
    ({"steps": 100}, DEFAULT_ENCODER, False),
    ("train", DEFAULT_ENCODER, False),
])
def test_auto_choice(sae, encoder, takes_it, shipped):
    from saetm.checks import planned_sae
    from saetm.model import SAETM

    m = SAETM(sae=sae)
    what, n_atoms, _ = planned_sae(m, encoder, 384)
    assert what.startswith("a trained") != takes_it
    if takes_it:
        assert n_atoms == read_json(shipped / "sae.json")["config"]["n_atoms"]
