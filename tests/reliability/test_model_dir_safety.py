"""A model directory that someone else prepared (issue #19): saetm never writes through a
link, never replaces files it did not write without --overwrite (and never its own
input), and never leaves outputs that describe other topics.
"""

import json
import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from saetm.errors import SaetmError
from saetm.model import SAETM

from _reliability import TINY_FLAGS, assert_one_line_error, fit_argv, leftovers, run_main, same_model

VICTIM = "precious data\n"


@pytest.fixture
def victim(tmp_path):
    """A file outside the model directory that saetm must never touch."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text(VICTIM)
    return path


def _no_fit(monkeypatch):
    """Refusals must come before the (long) fit: fail the test if one starts."""
    monkeypatch.setattr(SAETM, "fit", lambda *a, **k: pytest.fail("fitted although the output was refused"))


def _snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- 3. the lock file
@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "hard link", "fifo", "folder"])
def test_a_lock_that_is_not_a_plain_file_is_refused(kind, model_copy, victim):
    lock = model_copy / ".saetm.lock"
    if kind == "symlink":
        lock.symlink_to(victim)
    elif kind == "dangling symlink":
        lock.symlink_to(victim.parent / "created-by-saetm")
    elif kind == "hard link":
        os.link(victim, lock)
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    before = _snapshot(model_copy)
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])
    assert_one_line_error(rc, err, ".saetm.lock", "not a lock file", "remove it")
    assert victim.read_text() == VICTIM and not (victim.parent / "created-by-saetm").exists()
    assert _snapshot(model_copy) == before and SAETM.load(model_copy).n_topics == 4


# ---------------------------------------------------------------- 4. files saetm did not write
def _parquet_input(tiny_files, path):
    """The tiny corpus as a 6-column Parquet file with full-length texts."""
    rows = [json.loads(line) for line in (tiny_files / "docs.jsonl").read_text().splitlines()]
    df = pd.DataFrame(rows)
    df["source"], df["n"], df["extra"] = "ng", np.arange(len(df)), "x"
    df.to_parquet(path, index=False)
    return path


def _fit_parquet(tiny_files, data, out, *extra):
    return ["fit", data, "--out", out, "--embeddings", tiny_files / "emb.npy", "--id-field", "id",
            "--label-field", "group", *TINY_FLAGS, *extra]


@pytest.mark.parametrize("overwrite", [False, True])
def test_fit_never_replaces_its_own_input(overwrite, model_copy, tiny_files, monkeypatch):
    """`saetm fit documents.parquet --out .` inside a copy of a model folder."""
    data = _parquet_input(tiny_files, model_copy / "documents.parquet")
    before = data.read_bytes()
    _no_fit(monkeypatch)
    rc, _, err = run_main(_fit_parquet(tiny_files, data, model_copy, *(["--overwrite"] if overwrite else [])))
    assert_one_line_error(rc, err, "would replace the input file", "documents.parquet", "choose another --out")
    assert data.read_bytes() == before and pd.read_parquet(data).shape[1] == 6


def test_fit_never_replaces_its_input_in_a_fresh_folder(tiny_files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    data = _parquet_input(tiny_files, out / "documents.parquet")
    before = data.read_bytes()
    _no_fit(monkeypatch)
    rc, _, err = run_main(_fit_parquet(tiny_files, data, out, "--overwrite"))
    assert_one_line_error(rc, err, "would replace the input file")
    assert data.read_bytes() == before


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return SAETM.load(tiny_model_dir)


@pytest.mark.parametrize("name", ["topics.json", "vocab.json", "report.html", "sae/sae.json"])
def test_user_files_are_not_replaced_without_overwrite(name, tiny_files, tmp_path, monkeypatch, loaded):
    out = tmp_path / "out"
    (out / name).parent.mkdir(parents=True)
    (out / name).write_text("the user's own file")
    with monkeypatch.context() as m:
        _no_fit(m)
        rc, _, err = run_main(fit_argv(tiny_files, out))
    assert_one_line_error(rc, err, name, "which saetm would replace", "--overwrite")
    with pytest.raises(SaetmError, match="overwrite=True"):  # the library refuses the same way
        loaded.save(out)
    assert (out / name).read_text() == "the user's own file" and not leftovers(out)
    loaded.save(out, overwrite=True)  # asked for: replaced (report.html: removed, it was not of this model)
    assert (out / name).exists() is (name != "report.html") and same_model(SAETM.load(out), loaded)


# ---------------------------------------------------------------- 5. links inside a model directory
def _link_elsewhere(model_copy, tmp_path, name):
    """Move ``name`` out of the model directory and leave a symbolic link to it."""
    target = tmp_path / "elsewhere" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(model_copy / name, target)
    (model_copy / name).symlink_to(target)
    return target


@pytest.mark.parametrize("name", ["sae", "vocab.json", "state.safetensors", "topics.json", "sae/sae.safetensors"])
def test_links_in_a_model_directory_are_refused(name, model_copy, tmp_path, tiny_files, loaded, monkeypatch):
    target = _link_elsewhere(model_copy, tmp_path, name)
    outside = _snapshot(target.parent)
    with monkeypatch.context() as m:
        _no_fit(m)
        rc, _, err = run_main(fit_argv(tiny_files, model_copy, "--overwrite"))
    assert_one_line_error(rc, err, "symbolic link", name)
    for write in (lambda: loaded.save(model_copy, overwrite=True), lambda: SAETM.load(model_copy)):
        with pytest.raises(SaetmError, match="is a symbolic link") as info:
            write()
        assert "\n" not in str(info.value)
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])
    assert_one_line_error(rc, err, "symbolic link")
    assert _snapshot(target.parent) == outside and not leftovers(model_copy)


@pytest.mark.parametrize("name", [".saetm-staging-4242", "report.html", "evaluation.json"])
def test_links_where_saetm_cleans_up_are_refused(name, model_copy, victim, loaded):
    (model_copy / name).symlink_to(victim.parent if name.startswith(".") else victim)
    with pytest.raises(SaetmError, match="symbolic link"):
        loaded.save(model_copy, overwrite=True)
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])
    assert_one_line_error(rc, err, "symbolic link", name)
    assert victim.read_text() == VICTIM and os.listdir(victim.parent) == ["victim.txt"]
    assert SAETM.load(model_copy).n_topics == 4


# ---------------------------------------------------------------- 6. outputs of the previous topics
def test_evaluation_and_report_of_old_topics_are_removed(model_copy, tiny_files, loaded, caplog):
    rc, _, err = run_main(["evaluate", model_copy, "--reference", tiny_files / "docs.jsonl", "-q"])
    assert rc == 0, err
    rc, _, err = run_main(["report", model_copy, "-q"])
    assert rc == 0, err
    assert (model_copy / "evaluation.json").is_file() and (model_copy / "report.html").is_file()
    with caplog.at_level(logging.INFO, logger="saetm"):
        rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])
    assert rc == 0, err
    assert not (model_copy / "evaluation.json").exists() and not (model_copy / "report.html").exists()
    assert "removed evaluation.json and report.html" in caplog.text and "previous topics" in caplog.text
    (model_copy / "report.html").write_text("<html>old</html>")
    loaded.save(model_copy, overwrite=True)  # what `fit --overwrite` does
    assert not (model_copy / "report.html").exists() and same_model(SAETM.load(model_copy), loaded)

