"""``saetm transform`` of a sealed model takes its table's labels from ``topics.json``."""

import json

import numpy as np
import pandas as pd

from saetm.cli import main
from saetm.model import SAETM
from saetm.topic_table import seal_holds


def test_sealed_labels_are_the_models_own(fitted_model, ng_corpus, ng_embeddings, tmp_path):
    model = SAETM.load(_saved(fitted_model, tmp_path / "m"))
    model.set_topic_labels({1: "the second"})
    model.save(tmp_path / "m", overwrite=True)
    assert seal_holds(tmp_path / "m")
    n = 12
    with open(tmp_path / "docs.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in ng_corpus.texts[:n])
    np.save(tmp_path / "emb.npy", ng_embeddings[:n])
    rc = main(["transform", str(tmp_path / "m"), str(tmp_path / "docs.jsonl"), "--embeddings",
               str(tmp_path / "emb.npy"), "--out", str(tmp_path / "w.csv"), "-q"])
    assert rc == 0
    got = pd.read_csv(tmp_path / "w.csv")
    loaded = SAETM.load(tmp_path / "m")
    labels = loaded.topic_labels()
    assert labels[1] == "the second" and labels[0] != "the second"
    for j in ("", "_2", "_3"):
        expected = [labels[t] if t >= 0 else "(no topic)" for t in got["topic" + j]]
        assert got["label" + j].tolist() == expected
    assert (got["topic"] == 1).any() or (got["topic_2"] == 1).any()  # the custom label is used


def _saved(model, directory):
    model.save(directory)
    return directory
