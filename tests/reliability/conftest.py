"""Fixtures of the reliability suite: a tiny real corpus and one tiny fitted model.

Everything is small on purpose (120 documents of 20 Newsgroups, 256 atoms, 50 SAE
steps): these tests are about what happens around the mathematics, not its quality.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from _reliability import N_DOCS, fit_argv


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory, ng_corpus, ng_embeddings):
    """docs.jsonl (id, text, group) and emb.npy for the first N_DOCS documents."""
    d = tmp_path_factory.mktemp("tiny")
    with open(d / "docs.jsonl", "w", encoding="utf-8") as f:
        for i in range(N_DOCS):
            f.write(json.dumps({"id": f"d{i}", "text": ng_corpus.texts[i], "group": ng_corpus.labels[i]}) + "\n")
    np.save(d / "emb.npy", ng_embeddings[:N_DOCS])
    return d


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_files, tmp_path_factory):
    """A model written by `saetm fit` (in-process). Read-only: copy it before changing it."""
    from saetm.cli import main

    out = tmp_path_factory.mktemp("tiny-model") / "model"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(fit_argv(tiny_files, out)) == 0
    return out


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    """A private copy of the tiny model directory."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
