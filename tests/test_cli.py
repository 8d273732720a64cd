"""The command-line contract: files written, exit codes, one-line errors."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from saetm.cli import main

SMALL_FLAGS = ["--n-atoms", "768", "--k", "16", "--sae-steps", "300", "--min-df", "3", "-q"]


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory, ng_corpus, ng_embeddings):
    d = tmp_path_factory.mktemp("cli")
    with open(d / "docs.jsonl", "w") as f:
        for i, (t, lab) in enumerate(zip(ng_corpus.texts, ng_corpus.labels)):
            f.write(json.dumps({"id": f"d{i}", "body": t, "group": lab, "year": 1990 + i % 5}) + "\n")
    np.save(d / "emb.npy", ng_embeddings)
    return d


@pytest.fixture(scope="module")
def fitted_dir(corpus_files):
    out = corpus_files / "model"
    rc = main(["fit", str(corpus_files / "docs.jsonl"), "--out", str(out), "--text-field", "body",
               "--id-field", "id", "--label-field", "group", "--date-field", "year",
               "--embeddings", str(corpus_files / "emb.npy"), "--topics", "6", *SMALL_FLAGS])
    assert rc == 0
    return out


def test_fit_writes_the_contract(fitted_dir, ng_corpus):
    topics = json.loads((fitted_dir / "topics.json").read_text())["topics"]
    assert len(topics) == 6
    for t in topics:
        assert set(t) >= {"id", "words", "scores", "weights", "prevalence", "coverage", "n_atoms"}
        assert len(t["words"]) == 25 and len(t["weights"]) == 25 and len(t["scores"]) == 25
        assert all(a >= b > 0 for a, b in zip(t["scores"], t["scores"][1:]))  # follow the listed order
    W = sp.load_npz(fitted_dir / "doc_topics.npz")
    assert W.shape == (len(ng_corpus), 6)
    assert (fitted_dir / "model.json").exists() and (fitted_dir / "sae").is_dir()
    assert not list(fitted_dir.glob("*.tmp")) and not (fitted_dir / ".saetm.lock").exists()


def test_retopic_and_topics(fitted_dir, capsys):
    assert main(["retopic", str(fitted_dir), "--topics", "4", "-q"]) == 0
    topics = json.loads((fitted_dir / "topics.json").read_text())["topics"]
    assert len(topics) == 4
    assert sp.load_npz(fitted_dir / "doc_topics.npz").shape[1] == 4
    capsys.readouterr()
    assert main(["topics", str(fitted_dir), "--words", "5"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 + 4 and out[1].split()[0] == "0"
    assert main(["topics", str(fitted_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_topics"] == 4


def test_retopic_changes_the_word_diversity_alone(fitted_dir, tmp_path, capsys, caplog):
    import shutil

    from saetm.model import SAETM

    d = tmp_path / "model"
    shutil.copytree(fitted_dir, d)
    before = SAETM.load(d)
    assert main(["retopic", str(d), "--word-diversity", "0", "-q"]) == 0
    after = SAETM.load(d)
    assert after.word_diversity == 0.0 and after.n_topics == before.n_topics
    assert sp.load_npz(d / "doc_topics.npz").shape[1] == before.n_topics
    written = [t["words"] for t in json.loads((d / "topics.json").read_text())["topics"]]
    assert written == [[w for w, _ in after.get_topic(t, n_words=25)] for t in range(after.n_topics)]
    before.set_params(words__diversity=0.0)
    assert written == [[w for w, _ in before.get_topic(t, n_words=25)] for t in range(before.n_topics)]
    files = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["retopic", str(d), "--word-diversity", "-1", "-q"]) == 2
    assert "words__diversity" in capsys.readouterr().err
    assert main(["retopic", str(d), "-q"]) == 2
    assert "--topics" in capsys.readouterr().err
    assert main(["retopic", str(tmp_path / "nowhere"), "--word-diversity", "nan", "-q"]) == 2
    assert "words__diversity" in capsys.readouterr().err  # checked before the model is looked for
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == files  # nothing rewritten
    # a model ranking words by β is not changed by the penalty, and says so
    info = json.loads((d / "model.json").read_text())
    info["params"]["words"]["ranking"] = "beta"
    (d / "model.json").write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING, logger="saetm"):
        assert main(["retopic", str(d), "--word-diversity", "0.3"]) == 0
    assert "changes only the coherent ranking" in caplog.text


def test_transform_writes_tables_and_npz(fitted_dir, corpus_files):
    for name in ("w.npz", "w.csv", "w.jsonl", "w.parquet"):
        out = corpus_files / name
        rc = main(["transform", str(fitted_dir), str(corpus_files / "docs.jsonl"), "--text-field", "body",
                   "--id-field", "id", "--embeddings", str(corpus_files / "emb.npy"), "--out", str(out), "-q"])
        assert rc == 0 and out.exists()
    W = sp.load_npz(corpus_files / "w.npz")
    assert np.allclose(W.toarray(), sp.load_npz(fitted_dir / "doc_topics.npz").toarray(), atol=1e-6)

    # the tables give each document's three heaviest topics, heaviest first
    import pandas as pd

    dense = W.toarray()
    expected = [sorted(np.flatnonzero(row), key=lambda t: (-row[t], t))[:3] for row in dense]
    expected = [e + [-1] * (3 - len(e)) for e in expected]
    assert any(e[2] >= 0 for e in expected)  # some documents do have a third topic
    for table in (pd.read_csv(corpus_files / "w.csv"), pd.read_json(corpus_files / "w.jsonl", lines=True),
                  pd.read_parquet(corpus_files / "w.parquet")):
        assert list(table.columns) == ["id", "topic", "weight", "label", "topic_2", "weight_2", "label_2",
                                       "topic_3", "weight_3", "label_3"]
        assert table[["topic", "topic_2", "topic_3"]].values.tolist() == expected
        got = table[["weight", "weight_2", "weight_3"]].to_numpy()
        assert np.allclose(got, [[row[t] if t >= 0 else 0 for t in e] for row, e in zip(dense, expected)], atol=1e-6)
        assert table["id"].tolist()[:2] == ["d0", "d1"]
    rc = main(["transform", str(fitted_dir), str(corpus_files / "docs.jsonl"), "--text-field", "body",
               "--embeddings", str(corpus_files / "emb.npy"), "--out", str(corpus_files / "w1.tsv"), "--top", "1",
               "-q"])
    assert rc == 0
    assert list(pd.read_csv(corpus_files / "w1.tsv", sep="\t").columns) == ["id", "topic", "weight", "label"]


def test_transform_in_blocks_gives_the_weights_of_one_call(fitted_dir, corpus_files, ng_corpus, ng_embeddings):
    """The CLI transforms a block of rows at a time: the stacked blocks equal one call, with
    given embeddings (read from the memory-mapped file) and from texts with empty ones."""
    from saetm.cli.transform import transform_blocks
    from saetm.io.readers import read_embeddings
    from saetm.model import SAETM

    model = SAETM.load(fitted_dir)
    X = read_embeddings(corpus_files / "emb.npy", n_rows=len(ng_embeddings), mmap=True)
    whole = model.transform(list(ng_corpus.texts), np.asarray(X))
    blocks = transform_blocks(model, list(ng_corpus.texts), X, block_rows=37)
    assert blocks.shape == whole.shape and ((blocks != 0) != (whole != 0)).nnz == 0  # float sums of other sizes
    np.testing.assert_allclose(blocks.toarray(), whole.toarray(), atol=1e-5)

    texts = ng_corpus.texts[:9] + ["", "   "] + ng_corpus.texts[9:12]
    whole = model.transform(texts).toarray()
    blocks = transform_blocks(model, texts, block_rows=5).toarray()
    assert blocks.shape == (14, model.n_topics) and not blocks[9:11].any() and blocks[11:].any()
    np.testing.assert_allclose(blocks, whole, atol=1e-5)


@pytest.mark.parametrize("flag, value, message", [
    ("--doc-smoothing", "2", "doc_smoothing must be in [0.0, 1.0], got 2.0"),
    ("--prevalence-power", "-1", "prevalence_power must be in [0.0, 1.0], got -1.0"),
])
def test_fit_refuses_a_bad_setting_and_writes_nothing(flag, value, message, corpus_files, tmp_path, capsys):
    out = tmp_path / "m"
    rc = main(["fit", str(corpus_files / "docs.jsonl"), "--out", str(out), "--text-field", "body",
               "--embeddings", str(corpus_files / "emb.npy"), flag, value, "-q"])
    assert rc == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_refuses_to_overwrite_a_model(fitted_dir, corpus_files, capsys):
    rc = main(["fit", str(corpus_files / "docs.jsonl"), "--out", str(fitted_dir), "--text-field", "body", "-q"])
    assert rc == 2
    assert "--overwrite" in capsys.readouterr().err


def test_output_piped_into_a_reader_that_stops_is_not_an_error(fitted_dir):
    # `saetm topics m | head`: the reader leaves before the output (> 64 kB, a pipe's buffer) is written
    proc = subprocess.run(f"{sys.executable} -m saetm topics {fitted_dir} --words 2000 --json | head -c 10",
                          shell=True, capture_output=True, text=True, executable="/bin/bash")
    assert len(proc.stdout) == 10 and "error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv, message", [
    (["fit", "no-such-file.jsonl", "--out", "x"], "no-such-file.jsonl"),
    (["topics", "no-such-dir"], "not a directory"),
    (["retopic", "no-such-dir", "--topics", "0"], "at least 1"),
])
def test_errors_are_one_line_with_exit_code_2(argv, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "saetm", *argv], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert message in err[-1] and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_fit_takes_the_atom_space_and_doc_weights(corpus_files, tmp_path):
    """--atom-space, --doc-weights, --doc-smoothing, --prevalence-power and --word-diversity reach the model (the SAE is the cached one
    of `fitted_dir`: same flags)."""
    from saetm.model import SAETM

    out = tmp_path / "words"
    rc = main(["fit", str(corpus_files / "docs.jsonl"), "--out", str(out), "--text-field", "body",
               "--embeddings", str(corpus_files / "emb.npy"), "--topics", "6", "--atom-space", "words",
               "--doc-weights", "theta", "--word-diversity", "0", "--doc-smoothing", "0.25",
               "--prevalence-power", "1", *SMALL_FLAGS])
    assert rc == 0
    model = SAETM.load(out)
    assert model.atom_space == "words" and model.n_topics == 6 and model.word_diversity == 0.0
    assert model.doc_smoothing == 0.25
    assert model.prevalence_power == model.atom_tree_.power == 1.0
    assert model.doc_weights == "theta" and model.doc_embeddings_ is None


def test_evaluate_rereads_the_fitted_input_while_it_is_unchanged(corpus_files, tmp_path, capsys, caplog):
    """The saved texts are cut to 1,000 characters; `evaluate` without --reference reads the
    file `fit` recorded, and refuses with a one-line reason once it has changed or moved."""
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes((corpus_files / "docs.jsonl").read_bytes())
    assert any(len(json.loads(line)["body"]) > 1000 for line in docs.read_text().splitlines())
    model = tmp_path / "model"
    assert main(["fit", str(docs), "--out", str(model), "--text-field", "body", "--embeddings",
                 str(corpus_files / "emb.npy"), "--topics", "6", *SMALL_FLAGS]) == 0
    recorded = json.loads((model / "model.json").read_text())["input"]
    assert recorded["path"] == str(docs.resolve()) and recorded["text_field"] == "body"
    assert len(recorded["sha256"]) == 64

    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="saetm"):
        assert main(["evaluate", str(model), "--json", "--no-write"]) == 0
    assert f"{docs.resolve()}, the input the model was fitted on" in caplog.text
    by_itself = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(model), "--reference", str(docs), "--json", "--no-write", "-q"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert by_itself["measures"] == given["measures"]
    assert by_itself["reference"] == f"the 400 documents of {docs.resolve()}, the input the model was fitted on"

    with open(docs, "a") as f:
        f.write(json.dumps({"id": "new", "body": "one more document"}) + "\n")
    assert main(["evaluate", str(model), "--no-write", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has changed since `saetm fit`" in err[0] and "--reference" in err[0]
    docs.rename(tmp_path / "moved.jsonl")
    assert main(["evaluate", str(model), "--no-write", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is no longer there" in err[0] and "--reference" in err[0]
    assert not (model / "evaluation.json").exists()


def test_the_hash_of_a_txt_folder_covers_names_and_contents(tmp_path):
    from saetm.io.provenance import content_sha256

    (tmp_path / "a.txt").write_text("first document")
    (tmp_path / "b.txt").write_text("second document")
    (tmp_path / ".hidden.txt").write_text("not read by saetm")
    before = content_sha256(tmp_path)
    (tmp_path / ".hidden.txt").write_text("still not read")
    assert content_sha256(tmp_path) == before
    (tmp_path / "b.txt").rename(tmp_path / "c.txt")
    renamed = content_sha256(tmp_path)
    assert renamed != before
    (tmp_path / "a.txt").write_text("first document, edited")
    assert content_sha256(tmp_path) not in (before, renamed)


def test_every_argument_of_every_command_has_help():
    import argparse

    from saetm.cli import build_parser

    def undocumented(parser, name):
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    yield from undocumented(sub, f"saetm {command}")

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"fit", "retopic", "topics", "transform", "train-sae", "demo", "report", "evaluate"} <= set(commands)
    assert list(undocumented(parser, "saetm")) == []


def test_fit_vocabulary_flags(corpus_files, tmp_path, capsys):
    from saetm.cli import _model_from_args, build_parser

    (tmp_path / "stop.txt").write_text("# boilerplate of this corpus\nWrites\narticle  subject\n\n", encoding="utf-8")
    argv = ["fit", str(corpus_files / "docs.jsonl"), "--out", str(tmp_path / "m")]
    m = _model_from_args(build_parser().parse_args(argv))
    assert (m.stop_words, m.extra_stop_words, m.lemmatize, m.merge_inflections) == ("english", None, False, False)
    m = _model_from_args(build_parser().parse_args([*argv, "--stop-words", str(tmp_path / "stop.txt"),
                                                    "--lemmatize", "--merge-inflections"]))
    assert m.extra_stop_words == ["writes", "article", "subject"] and m.stop_words == "english"
    assert m.lemmatize is True and m.merge_inflections is True
    m = _model_from_args(build_parser().parse_args([*argv, "--no-english-stop-words"]))
    assert m.stop_words is None and m.extra_stop_words is None
    (tmp_path / "empty.txt").write_text("# nothing\n")
    for bad, message in (("missing.txt", "does not exist"), ("empty.txt", "holds no words")):
        assert main([*argv, "--stop-words", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("saetm: error: --stop-words") and message in err and "\n" not in err
    assert not (tmp_path / "m").exists()
