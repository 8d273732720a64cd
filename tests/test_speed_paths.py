"""What keeps `saetm retopic` and `saetm transform` quick gives what the slower paths gave:
the PAVA port, the linkage check, mapped state files, loading without the documents, and
commands that import neither scikit-learn nor pandas."""

import contextlib
import copy
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import is_valid_linkage
from sklearn.isotonic import isotonic_regression

from saetm.cli import main
from saetm.errors import SaetmError
from saetm.fast_load import mapped_tensors
from saetm.io.persist import read_tensors
from saetm.model import SAETM
from saetm.model_files import load_model
from saetm.topic_table import model_rows, print_table
from saetm.topics.hierarchy import valid_linkage
from saetm.topics.wordrank import _non_increasing_fit
from saetm.words.vocab import check_stop_words

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture(scope="module")
def saved(fitted_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("speed") / "model"
    fitted_model.save(out)
    return out


@pytest.fixture
def model_dir(saved, tmp_path):
    return Path(shutil.copytree(saved, tmp_path / "model"))


def test_listed_scores_are_scikit_learns_isotonic_fit(fitted_model):
    words, weights = fitted_model._top_words(25)
    rng = np.random.default_rng(0)
    cases = [np.asarray(w, np.float64) for w in weights]  # the fitted topics' β in listed order
    cases += [rng.random(int(n)) for n in rng.integers(2, 40, 300)]
    cases += [rng.integers(0, 3, int(n)).astype(float) for n in rng.integers(2, 20, 300)]  # ties
    for y in cases:
        assert np.array_equal(_non_increasing_fit(y), isotonic_regression(y, increasing=False))


def test_the_linkage_check_is_scipys(fitted_model):
    Z = np.asarray(fitted_model.atom_tree_.linkage, np.float64)
    assert valid_linkage(Z) and is_valid_linkage(Z)
    rng = np.random.default_rng(1)
    for trial in range(400):
        bad = Z.copy()
        row, col = int(rng.integers(len(Z))), int(rng.integers(4))
        bad[row, col] = [-1.0, 2.0 * len(Z) + 5, Z[int(rng.integers(len(Z))), col], 0.0][trial % 4]
        assert valid_linkage(bad) == is_valid_linkage(bad)
    assert not valid_linkage(Z.astype(np.float32)) and not valid_linkage(Z[:, :3])


def test_mapped_state_is_the_file_and_stays_private(model_dir):
    path = model_dir / "state.safetensors"
    before = path.read_bytes()
    mapped, read = mapped_tensors(path), read_tensors(path)
    assert mapped.keys() == read.keys()
    for key in read:
        assert mapped[key].dtype == read[key].dtype and np.array_equal(mapped[key], read[key])
    mapped["feature_words.data"][:10] = -1.0  # copy-on-write: this process's pages only
    assert path.read_bytes() == before
    (model_dir / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(SaetmError, match="not a readable safetensors file"):
        mapped_tensors(model_dir / "broken.safetensors")


def test_loading_without_the_documents_checks_them_and_changes_nothing_else(model_dir):
    full, light = SAETM.load(model_dir), load_model(SAETM, model_dir, documents=False)
    assert light.documents_ is None and full.documents_["text"]
    assert light.get_topics() == full.get_topics()
    assert (light.doc_topics_ != full.doc_topics_).nnz == 0
    pd.DataFrame({"id": ["a"]}).to_parquet(model_dir / "documents.parquet")  # another fit's, without an id
    with pytest.raises(SaetmError, match="1 rows"):
        load_model(SAETM, model_dir, documents=False)


def test_saetm_retopic_is_the_in_process_retopic(model_dir, fitted_model):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["retopic", str(model_dir), "--topics", "5", "-q"]) == 0
    expected = copy.deepcopy(fitted_model).retopic(5)
    loaded = SAETM.load(model_dir)
    assert np.array_equal(loaded.atom_topic_, expected.atom_topic_)
    assert np.array_equal(loaded.topics_.topic_words, expected.topics_.topic_words)
    assert loaded.get_topics() == expected.get_topics()
    assert np.abs((loaded.doc_topics_ - expected.doc_topics_).toarray()).max() < 1e-6
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        print_table(expected.get_topic_info(n_words=10).to_dict("records"))
    assert out.getvalue() == table.getvalue()
    rows = model_rows(expected, 10)
    assert [r["top_words"] for r in rows] == list(expected.get_topic_info(n_words=10)["top_words"])


def _imports(argv, cwd) -> dict:
    code = ("import json, sys\nfrom saetm.cli import main\nrc = main(sys.argv[1:])\n"
            "print(json.dumps({'rc': rc, **{m: m in sys.modules for m in "
            "('sklearn', 'pandas', 'scipy.cluster', 'sentence_transformers', 'transformers')}}))")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_retopic_and_transform_import_only_what_they_use(model_dir, ng_corpus, tmp_path):
    assert _imports(["retopic", model_dir, "--topics", "4", "-q"], tmp_path) == {
        "rc": 0, "sklearn": False, "pandas": False, "scipy.cluster": False, "sentence_transformers": False,
        "transformers": False}
    with open(tmp_path / "new.jsonl", "w") as f:
        for i, text in enumerate(ng_corpus.texts[:3]):
            f.write(json.dumps({"id": str(i), "text": text}) + "\n")
    got = _imports(["transform", model_dir, "new.jsonl", "--out", "w.csv", "-q"], tmp_path)
    got.pop("pandas")  # the input reader and the table use it
    assert got == {"rc": 0, "sklearn": False, "scipy.cluster": False, "sentence_transformers": False,
                   "transformers": False}, got


def test_retopic_reads_the_documents_when_the_seal_does_not_vouch_for_them(model_dir, capsys):
    df = pd.read_parquet(model_dir / "documents.parquet")
    df["text"] = list(range(len(df)))  # not texts: a damaged file, which also breaks the seal
    df.to_parquet(model_dir / "documents.parquet", index=False)
    assert main(["retopic", str(model_dir), "--topics", "4", "-q"]) != 0
    assert "documents.parquet" in capsys.readouterr().err


def test_stop_word_settings_are_checked_without_building_the_list():
    check_stop_words("english", ["foo"])
    check_stop_words(None, None)
    check_stop_words(["a", "b"], ("c",))
    with pytest.raises(SaetmError, match="not supported"):
        check_stop_words("french")
    with pytest.raises(SaetmError, match="not one string"):
        check_stop_words("english", "foo")
