"""What makes the common commands fast must not change what they give: stored document
weights, the SAE built on first use, ``saetm topics`` from the sealed topics.json, and
commands that answer without importing torch."""

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
import pytest
from safetensors.numpy import load_file, save_file

from saetm.cli import main
from saetm.model import SAETM
from saetm.model_files import topics_json
from saetm.topics.stage import document_weights
from saetm.topic_table import print_table, saved_topics

SRC = Path(__file__).resolve().parent.parent / "src"
WEIGHT_ARRAYS = ("doc_topics.data", "doc_topics.indices", "doc_topics.indptr", "doc_topics.shape", "centroids",
                 "word_centroids", "priors")


@pytest.fixture(scope="module")
def saved(fitted_model, tmp_path_factory):
    """The fitted model retopicked to 6 topics, with custom labels, saved. Read-only."""
    m = copy.deepcopy(fitted_model).retopic(6)
    m.set_topic_labels({0: "the first"})
    out = tmp_path_factory.mktemp("fast") / "model"
    m.save(out)
    return m, out


@pytest.fixture
def model_dir(saved, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(saved[1], d)  # copy2 keeps sizes and times: the seal still holds
    return d


def cli_stdout(argv) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(a) for a in argv]) == 0
    return out.getvalue()


def loaded_table(directory, n_words: int) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_table(SAETM.load(directory).get_topic_info(n_words=n_words).to_dict("records"))
    return out.getvalue()


def test_stored_weights_equal_recomputed_ones(saved):
    fitted, directory = saved
    assert {"centroids", "priors", "doc_topics.data"} <= set(load_file(directory / "topics.safetensors"))
    m = SAETM.load(directory)
    assert (m.doc_topics_ != fitted.doc_topics_).nnz == 0  # exactly what the fit computed
    np.testing.assert_array_equal(m.topic_centroids_, fitted.topic_centroids_)
    np.testing.assert_array_equal(m.topic_priors_, fitted.topic_priors_)
    assert m.doc_word_weight_ == fitted.doc_word_weight_ > 0
    np.testing.assert_array_equal(m.word_centroids_, fitted.word_centroids_)
    W, C, rho, nu = document_weights(m.theta_, m.doc_embeddings_, m.atom_topic_, m.n_topics, m.clustering,
                                     smoothing=m.doc_smoothing_, words=m._atoms().doc_words,
                                     word_weight=m.doc_word_weight_)
    np.testing.assert_allclose(m.word_centroids_, nu, atol=1e-7)
    np.testing.assert_allclose(m.doc_topics_.toarray(), W.toarray(), atol=1e-7)
    np.testing.assert_allclose(m.topic_centroids_, C, atol=1e-7)
    np.testing.assert_allclose(m.topic_priors_, rho, rtol=1e-6)


def test_models_saved_without_the_weights_recompute_them(saved, model_dir):
    fitted, _ = saved
    arrays = dict(load_file(model_dir / "topics.safetensors"))
    for name in WEIGHT_ARRAYS:
        del arrays[name]
    save_file(arrays, model_dir / "topics.safetensors")
    m = SAETM.load(model_dir)
    np.testing.assert_allclose(m.doc_topics_.toarray(), fitted.doc_topics_.toarray(), atol=1e-7)
    np.testing.assert_allclose(m.topic_centroids_, fitted.topic_centroids_, atol=1e-7)
    assert saved_topics(model_dir, 10) is None  # topics.safetensors changed: the seal is broken
    assert cli_stdout(["topics", model_dir]) == loaded_table(model_dir, 10)


def test_damaged_stored_weights_are_refused(model_dir):
    from saetm.errors import SaetmError

    arrays = dict(load_file(model_dir / "topics.safetensors"))
    arrays["centroids"] = np.ascontiguousarray(arrays["centroids"][:-1])
    save_file(arrays, model_dir / "topics.safetensors")
    with pytest.raises(SaetmError, match="document weights that do not match"):
        SAETM.load(model_dir)


def test_the_sae_is_built_on_first_use(saved, ng_embeddings):
    fitted, directory = saved
    m = SAETM.load(directory)
    assert "_sae" not in m.__dict__ and m.__dict__["_saved_sae"].config == fitted.sae_.config
    np.testing.assert_allclose(m.transform(embeddings=ng_embeddings[:20]).toarray(),
                               fitted.transform(embeddings=ng_embeddings[:20]).toarray(), atol=1e-6)
    assert "_sae" in m.__dict__ and "_saved_sae" not in m.__dict__
    for name, value in fitted.sae_.state_dict().items():
        np.testing.assert_array_equal(m.sae_.state_dict()[name].numpy(), value.numpy())
    with pytest.raises(AttributeError):
        SAETM().sae_


def test_state_shapes_match_the_network():
    from saetm.sae.config import state_shapes
    from saetm.sae.models import ARCHITECTURES, SAEConfig, build_sae

    for arch in ARCHITECTURES:
        config = SAEConfig(d_in=8, n_atoms=32, k=4, arch=arch)
        assert {k: tuple(v.shape) for k, v in build_sae(config).state_dict().items()} == state_shapes(config)


@pytest.mark.parametrize("n_words", [1, 4, 10, 25])
def test_topics_from_the_sealed_table_are_the_loaded_models(model_dir, n_words):
    assert saved_topics(model_dir, n_words) is not None  # the fast path serves
    assert cli_stdout(["topics", model_dir, "--words", n_words]) == loaded_table(model_dir, n_words)
    fast = json.loads(cli_stdout(["topics", model_dir, "--json", "--words", n_words]))
    assert fast == json.loads(json.dumps(topics_json(SAETM.load(model_dir), n_words)))
    assert fast["topics"][0]["label"] == "the first"
    m = SAETM.load(model_dir)  # the lists served from one ranking of 25 words equal a ranking of n_words
    assert m._top_words(n_words)[0] == m.rank_words(m.topics_.topic_words, n_words)[0]


def test_topics_fall_back_to_the_model_whenever_the_table_may_differ(model_dir):
    # more words than topics.json holds
    assert saved_topics(model_dir, 30) is None
    assert cli_stdout(["topics", model_dir, "--words", 30]) == loaded_table(model_dir, 30)
    # retopic re-seals
    cli_stdout(["retopic", model_dir, "--topics", 4, "-q"])
    assert saved_topics(model_dir, 10) is not None
    assert cli_stdout(["topics", model_dir]) == loaded_table(model_dir, 10)
    # a file that loading reads changes (same size, new time), or model.json is edited
    st = os.stat(model_dir / "state.safetensors")
    os.utime(model_dir / "state.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert saved_topics(model_dir, 10) is None
    cli_stdout(["retopic", model_dir, "--word-diversity", "0.5", "-q"])
    assert saved_topics(model_dir, 10) is not None
    info = json.loads((model_dir / "model.json").read_text())
    info["params"]["words"]["diversity"] = 0.0
    (model_dir / "model.json").write_text(json.dumps(info))
    assert saved_topics(model_dir, 10) is None
    assert cli_stdout(["topics", model_dir]) == loaded_table(model_dir, 10)
    # another word ranking: its shorter lists need not be prefixes of topics.json's
    info["params"]["words"]["ranking"] = "beta"
    (model_dir / "model.json").write_text(json.dumps(info))
    assert saved_topics(model_dir, 10) is None


def _imports_of(argv, cwd) -> tuple[int, dict]:
    code = ("import json, sys\nfrom saetm.cli import main\n"
            "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules,"
            " 'st': 'sentence_transformers' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result.pop("rc"), result


def test_light_commands_import_neither_torch_nor_sentence_transformers(model_dir, tmp_path):
    cases = [
        (["--help"], 0),
        (["topics", model_dir], 0),
        (["transform", model_dir, "missing.jsonl", "--out", "x.csv"], 2),
        (["fit", "missing.jsonl", "--out", tmp_path / "out"], 2),
        (["fit", "missing.jsonl", "--out", tmp_path / "out", "--topics", "0"], 2),  # an argument error
        (["retopic", model_dir], 2),  # nothing to change
        (["retopic", model_dir, "--topics", "3", "-q"], 0),
        (["topics", model_dir, "--words", "30"], 0),  # loads the model
    ]
    for argv, rc in cases:
        assert _imports_of(argv, tmp_path) == (rc, {"torch": False, "st": False}), argv
    assert not (tmp_path / "out").exists()
