"""A model directory that someone else prepared (issue #19): saetm never writes through a
link, never replaces files it did not write without --overwrite (and never its own
input), never leaves outputs that describe other topics, and never loads files of two
different fits as one model.
"""

import json
import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

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


# ---------------------------------------------------------------- 9. files of two fits
@pytest.fixture(scope="module")
def other_fit(tiny_files, tmp_path_factory):
    """A second fit of the same corpus (another seed), as the attacker used."""
    out = tmp_path_factory.mktemp("other-fit") / "model"
    rc, _, err = run_main(fit_argv(tiny_files, out, "--seed", "1"))
    assert rc == 0, err
    return out


SWAPS = {
    "the issue's three": ["state.safetensors", "topics.safetensors", "vocab.json"],
    "state": ["state.safetensors"], "topics": ["topics.safetensors"], "sae weights": ["sae/sae.safetensors"],
    "sae": ["sae/sae.json", "sae/sae.safetensors"], "documents": ["documents.parquet"],
    "all but model.json": ["vocab.json", "state.safetensors", "topics.safetensors", "sae/sae.json",
                           "sae/sae.safetensors", "documents.parquet"],
}


@pytest.mark.parametrize("swap", list(SWAPS))
def test_files_of_another_fit_are_refused(swap, model_copy, other_fit):
    for name in SWAPS[swap]:
        shutil.copyfile(other_fit / name, model_copy / name)
    with pytest.raises(SaetmError) as info:
        SAETM.load(model_copy)
    message = str(info.value)
    assert "\n" not in message and "from another fit" in message and "re-run `saetm fit`" in message
    rc, _, err = run_main(["topics", model_copy])
    assert_one_line_error(rc, err, "inconsistent")


def test_an_edited_vocabulary_is_refused(model_copy):
    words = json.loads((model_copy / "vocab.json").read_text())
    words[0], words[1] = words[1], words[0]  # same words, other columns: topics would name the wrong words
    (model_copy / "vocab.json").write_text(json.dumps(words))
    with pytest.raises(SaetmError, match="vocab.json is from another fit"):
        SAETM.load(model_copy)


def test_every_file_carries_the_fit_id_and_retopic_keeps_it(model_copy):
    fit_id = json.loads((model_copy / "model.json").read_text())["fit_id"]
    assert isinstance(fit_id, str) and len(fit_id) == 32 and _ids(model_copy) == {fit_id}
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])
    assert rc == 0, err
    assert json.loads((model_copy / "model.json").read_text())["fit_id"] == fit_id and _ids(model_copy) == {fit_id}
    assert SAETM.load(model_copy).n_topics == 3


def _ids(d):
    import pyarrow.parquet as pq

    ids = set()
    for name in ("state.safetensors", "topics.safetensors", "sae/sae.safetensors"):
        with safe_open(str(d / name), framework="numpy") as f:
            ids.add(f.metadata()["saetm_fit_id"])
    ids.add(json.loads((d / "sae" / "sae.json").read_text())["fit_id"])
    ids.add(pq.read_schema(d / "documents.parquet").metadata[b"saetm_fit_id"].decode())
    return ids


def test_models_saved_before_fit_ids_still_load(model_copy, loaded):
    """Strip every fit id, as saetm wrote the files before it recorded them."""
    info = json.loads((model_copy / "model.json").read_text())
    del info["fit_id"], info["vocab_sha256"]
    (model_copy / "model.json").write_text(json.dumps(info))
    for name in ("state.safetensors", "topics.safetensors", "sae/sae.safetensors"):
        save_file(dict(load_file(model_copy / name)), model_copy / name)
    sae = json.loads((model_copy / "sae" / "sae.json").read_text())
    del sae["fit_id"]
    (model_copy / "sae" / "sae.json").write_text(json.dumps(sae))
    pd.read_parquet(model_copy / "documents.parquet").to_parquet(model_copy / "documents.parquet", index=False)
    assert same_model(SAETM.load(model_copy), loaded)
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])  # and retopic keeps working on them
    assert rc == 0, err
    assert SAETM.load(model_copy).n_topics == 3 and "fit_id" not in json.loads((model_copy / "model.json").read_text())
