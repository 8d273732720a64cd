"""Settings that cannot work are refused before any data is read, encoded or trained on,
and a setting too large for this machine's memory ends in one line, not a traceback.

The SAE a fit will use is known before the data: the shipped one and a ``--sae`` folder
declare their atoms in ``sae.json``, and a trained one has ``n_atoms`` or 16 × the
embedding dimension (384 for the default encoder, or the given embeddings' columns).
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from saetm.checks import physical_memory, sae_training_bytes
from saetm.errors import SaetmError
from saetm.model import SAETM

from _reliability import ENV, assert_one_line_error, fit_argv, run_main

UNREADABLE = "unreadable.jsonl"  # an input that fails when read: the settings are refused before that


def _unreadable(tmp_path):
    path = tmp_path / UNREADABLE
    path.write_text('{"text": "not closed\n')
    return path


def _fit(tmp_path, *flags):
    return run_main(["fit", _unreadable(tmp_path), "--out", tmp_path / "out", "-q", *flags])


@pytest.mark.parametrize("flags, needles", [
    (["--topics", "100000"], ["n_topics=100000", "6,144 atoms of the shipped SAE", "--topics", "at most 6144"]),
    (["--sae", "default", "--topics", "6145"], ["6,144 atoms", "--topics"]),
    (["--sae", "train", "--topics", "7000"], ["6,144 atoms of a trained SAE", "--topics"]),
    (["--sae", "train", "--k", "6144"], ["k=6144", "--k (sae__k)", "--n-atoms (sae__n_atoms)"]),
    (["--n-atoms", "1000000000"], ["1,000,000,000 atoms", "TB of memory", "--n-atoms (sae__n_atoms)"]),
])
def test_settings_refused_before_the_input_is_read(flags, needles, tmp_path):
    rc, _, err = _fit(tmp_path, *flags)
    assert_one_line_error(rc, err, *needles)
    assert UNREADABLE not in err and not (tmp_path / "out").exists()


def test_missing_sae_folder_refused_before_reading(tmp_path):
    rc, _, err = _fit(tmp_path, "--sae", tmp_path / "no-such-sae")
    assert_one_line_error(rc, err, "--sae", "no-such-sae", "nor an existing SAE folder")
    assert UNREADABLE not in err


def test_topics_beyond_a_sae_folder_refused_before_reading(tiny_model_dir, tmp_path):
    """A folder from `saetm train-sae` (here: the tiny model's, 256 atoms) declares its size in sae.json."""
    rc, _, err = _fit(tmp_path, "--sae", tiny_model_dir / "sae", "--topics", "300")
    assert_one_line_error(rc, err, "256 atoms", "--topics", "at most 256")


def test_sae_folder_of_another_width_refused_before_encoding(tiny_model_dir, tmp_path):
    sae_json = tmp_path / "sae"
    shutil.copytree(tiny_model_dir / "sae", sae_json)
    info = json.loads((sae_json / "sae.json").read_text())
    info["config"]["d_in"] = 768
    (sae_json / "sae.json").write_text(json.dumps(info))
    rc, _, err = _fit(tmp_path, "--sae", sae_json)
    assert_one_line_error(rc, err, "all-MiniLM-L6-v2 embeddings have 384 columns", "SAE expects 768")


def test_embedding_width_read_from_the_npy_header(tiny_files, tmp_path):
    """--sae train with --embeddings: 16 × their 384 columns = 6,144 atoms, known from the header."""
    rc, _, err = run_main(["fit", _unreadable(tmp_path), "--out", tmp_path / "out", "--embeddings",
                           tiny_files / "emb.npy", "--sae", "train", "--topics", "6200", "-q"])
    assert_one_line_error(rc, err, "6,144 atoms of a trained SAE")


def test_python_fit_refuses_before_encoding(ng_corpus):
    calls = []

    def encoder(texts):  # a callable encoder that records being used
        calls.append(len(texts))
        raise AssertionError("encoded although the settings could not work")

    with pytest.raises(SaetmError, match=r"n_topics=7000 .* 6,144 atoms of the shipped SAE"):
        SAETM(n_topics=7000, encoder=encoder, sae="default", verbose=False).fit(ng_corpus.texts[:20])
    with pytest.raises(SaetmError, match="6,144 atoms of a trained SAE"):  # 16 × the given 384 columns
        SAETM(n_topics=7000, sae="train", verbose=False).fit(ng_corpus.texts[:20], np.ones((20, 384), "float32"))
    assert calls == []


def test_embeddings_of_unknown_width_are_not_taken_for_the_default_encoders(ng_corpus, ng_embeddings):
    """Given as a list, 768-d: 16 × 768 atoms can make 7,000 topics, so nothing is refused up front
    (the fit then stops later, at the number of atoms this corpus really uses)."""
    wide = np.hstack([ng_embeddings[:30], ng_embeddings[:30]]).tolist()
    model = SAETM(n_topics=7000, sae={"k": 8, "steps": 5}, min_df=1, cache=False, verbose=False)
    with pytest.raises(SaetmError, match="atoms this corpus uses"):
        model.fit(ng_corpus.texts[:30], wide)


def test_python_fit_refuses_an_sae_too_large_for_memory(ng_corpus, ng_embeddings):
    """With a callable encoder the width is known only after encoding: checked before training."""
    model = SAETM(n_topics=4, sae={"n_atoms": 10**9}, encoder=lambda texts: ng_embeddings[:len(texts)], verbose=False)
    with pytest.raises(SaetmError, match=r"needs at least .* of memory to train.*--n-atoms \(sae__n_atoms\)"):
        model.fit(ng_corpus.texts[:50])


# A real allocation failure, made safe: the child process may use only 1 GiB more address
# space than it holds after its imports, so torch's allocation of the SAE fails at once.
_LIMITED = r"""
import resource, sys, torch, saetm.cli, saetm.model, saetm.sae.stage, saetm.sae.train
vm = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, vm + 2**30))
sys.exit(saetm.cli.main(sys.argv[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_torch_allocation_failure_is_one_line(tiny_files, tmp_path):
    n_atoms = 1_000_000  # 1.5 GB per weight matrix: more than the limit, less than the machine
    total = physical_memory()
    if total is None or sae_training_bytes(n_atoms, 384, 120) > total:
        pytest.skip("this machine is too small: the up-front memory check refuses first")
    argv = fit_argv(tiny_files, tmp_path / "out")
    argv[argv.index("--n-atoms") + 1] = str(n_atoms)
    proc = subprocess.run([sys.executable, "-c", _LIMITED, *map(str, argv)], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert_one_line_error(proc.returncode, proc.stderr, "out of memory", "--n-atoms")
    assert not (tmp_path / "out").exists()
