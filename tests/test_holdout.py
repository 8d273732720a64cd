"""Held-out evaluation: `fit(holdout=)` / `saetm fit --holdout` and `evaluate` on the rest."""

import json

import numpy as np
import pytest

from saetm.cli import main
from saetm.errors import SaetmError
from saetm.evaluation.holdout import split_rows
from saetm.model import SAETM

FLAGS = ["--sae", "default", "--min-df", "3", "-q"]


@pytest.fixture(scope="module")
def held_model(ng_corpus, ng_embeddings):
    return SAETM(n_topics=6, sae="default", min_df=3, seed=0, verbose=False).fit(
        ng_corpus.texts, ng_embeddings, labels=ng_corpus.labels, holdout=0.25)


def test_the_split_is_seeded_disjoint_and_sized():
    fit, held = split_rows(400, 0.25, 0)
    assert len(held) == 100 and len(fit) == 300 and not set(fit) & set(held)
    assert (np.diff(held) > 0).all() and (np.diff(fit) > 0).all()
    assert np.array_equal(held, split_rows(400, 0.25, 0)[1])
    assert not np.array_equal(held, split_rows(400, 0.25, 1)[1])
    assert len(split_rows(3, 0.01, 0)[1]) == 1 and len(split_rows(3, 0.99, 0)[1]) == 2  # never empty either side


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, True, "0.2", float("nan")])
def test_a_bad_holdout_is_refused_in_one_line(ng_corpus, ng_embeddings, bad):
    with pytest.raises(SaetmError, match="holdout must be a share") as e:
        SAETM(n_topics=4, sae="default", verbose=False).fit(ng_corpus.texts[:50], ng_embeddings[:50], holdout=bad)
    assert "\n" not in str(e.value)


def test_fit_leaves_the_held_out_documents_out(held_model, ng_corpus):
    rows = held_model.heldout_["rows"]
    assert held_model.heldout_["fraction"] == 0.25 and held_model.heldout_["seed"] == 0 and len(rows) == 100
    kept = [i for i in range(len(ng_corpus)) if i not in set(rows)]
    assert held_model.doc_topics_.shape[0] == 300
    assert held_model.documents_["id"] == [str(i) for i in kept]  # no ids given: the input position
    assert held_model.documents_["label"] == [ng_corpus.labels[i] for i in kept]


def test_evaluate_scores_the_held_out_documents_next_to_the_fitted_ones(held_model, ng_corpus):
    from saetm.evaluation.coherence import cv_coherence, npmi_coherence
    
    record = held_model.evaluate(word_vectors=None, details=True)
    m = record["measures"]
    assert list(m)[:5] == ["topic_diversity", "npmi", "cv", "npmi_heldout", "cv_heldout"]
    held = held_model._reference_tokens([ng_corpus.texts[i] for i in held_model.heldout_["rows"]])
    words = record["topics"]
    assert m["npmi_heldout"] == pytest.approx(npmi_coherence(words, held)["mean"])
    assert m["cv_heldout"] == pytest.approx(cv_coherence(words, held, window=110)["mean"])
    assert m["npmi_heldout"] != pytest.approx(m["npmi"])
    assert record["heldout"] == "100 documents held out of the fit"
    assert len(record["per_topic"]["npmi_heldout"]) == 6


def test_a_model_fitted_on_everything_reports_no_held_out_measures(fitted_model):
    assert fitted_model.heldout_ is None
    assert "npmi_heldout" not in fitted_model.evaluate(word_vectors=None)


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, ng_corpus, ng_embeddings):
    d = tmp_path_factory.mktemp("holdout")
    with open(d / "docs.jsonl", "w") as f:
        for t, lab in zip(ng_corpus.texts, ng_corpus.labels):
            f.write(json.dumps({"body": t, "group": lab}) + "\n")
    np.save(d / "emb.npy", ng_embeddings)
    return d


def test_cli_fit_holdout_records_the_rows_and_evaluate_scores_them(cli_files, tmp_path, capsys):
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes((cli_files / "docs.jsonl").read_bytes())
    model = tmp_path / "model"
    assert main(["fit", str(docs), "--out", str(model), "--text-field", "body", "--label-field", "group",
                 "--embeddings", str(cli_files / "emb.npy"), "--topics", "6", "--holdout", "0.25", "--seed", "3",
                 *FLAGS]) == 0
    held = json.loads((model / "model.json").read_text())["input"]["holdout"]
    assert held == {"fraction": 0.25, "seed": 3, "rows": split_rows(400, 0.25, 3)[1].tolist()}
    assert json.loads((model / "model.json").read_text())["n_documents"] == 300
    assert SAETM.load(model).heldout_ == held
    capsys.readouterr()
    assert main(["evaluate", str(model), "--json", "--no-write", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"npmi", "cv", "npmi_heldout", "cv_heldout", "nmi"} <= set(out["measures"])
    assert out["heldout"] == "100 documents held out of the fit"
    # the fitted reference is the input less the held-out rows (the saved texts are cut short)
    assert out["reference"] == f"the 300 documents of {docs.resolve()}, the input the model was fitted on"

    with open(docs, "a") as f:  # a changed input: the held-out rows can no longer be trusted
        f.write(json.dumps({"body": "one more document"}) + "\n")
    assert main(["evaluate", str(model), "--reference", str(cli_files / "docs.jsonl"), "--no-write", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has changed since `saetm fit`" in err[0] and "held-out" in err[0]


def test_a_corrupt_held_out_record_refuses_to_load(cli_files, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["fit", str(cli_files / "docs.jsonl"), "--out", str(model), "--text-field", "body",
                 "--embeddings", str(cli_files / "emb.npy"), "--topics", "4", "--holdout", "0.5", *FLAGS]) == 0
    info = json.loads((model / "model.json").read_text())
    info["input"]["holdout"]["rows"] = info["input"]["holdout"]["rows"][::-1]
    (model / "model.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert main(["evaluate", str(model), "--no-write", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input.holdout is not a held-out record" in err[0]


def test_cli_refuses_a_bad_holdout_before_reading(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m"), "--holdout", "1.5", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holdout must be a share" in err[0]
