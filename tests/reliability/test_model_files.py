"""Untrusted and broken model directories, and output directories that cannot be written.

A model directory that is missing files, truncated, from another saetm version, mixed
from two fits or edited by hand refuses to load with one line saying so; nothing in it
is ever unpickled. Writing a model either completes or changes nothing: a full disk or
a permission error leaves no partial files and the previous model intact.
"""

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import saetm.io.persist as persist
import saetm.model_files as model_files
from saetm._version import FORMAT_VERSION
from saetm.errors import SaetmError
from saetm.model import SAETM

from _old_formats import FORMAT1, as_format1
from _reliability import assert_one_line_error, fit_argv, leftovers, run_main, run_saetm, same_model


def _json(name, change):
    def edit(d):
        info = json.loads((d / name).read_text())
        change(info)
        (d / name).write_text(json.dumps(info))
    return edit


def _arrays(name, change):
    def edit(d):
        arrays = dict(load_file(d / name))
        change(arrays)
        save_file(arrays, d / name)
    return edit


def _truncate(name, keep=0.5):
    def edit(d):
        raw = (d / name).read_bytes()
        (d / name).write_bytes(raw[: int(len(raw) * keep)])
    return edit


def _set(key, value):
    return lambda t: t.__setitem__(key, value)


def _poke(key, index, value):
    return lambda t: t[key].__setitem__(index, value)


REQUIRED = ["model.json", "vocab.json", "state.safetensors", "topics.safetensors", "sae/sae.json",
            "sae/sae.safetensors"]
BROKEN = {
    **{f"missing {f}": (lambda d, f=f: (d / f).unlink(), ["complete" if f == "model.json" else "missing"])
       for f in REQUIRED},
    **{f"truncated {f}": (_truncate(f), ["corrupt"]) for f in REQUIRED + ["documents.parquet"]},
    "empty state": (_truncate("state.safetensors", 0), ["corrupt"]),
    "newer version": (_json("model.json", lambda i: i.update(format_version=99, saetm_version="9.0")),
                      ["saetm 9.0", "format 99", "upgrade saetm"]),
    "older version": (_json("model.json", lambda i: i.update(format_version=0, saetm_version="0.0.1")),
                      ["saetm 0.0.1", "refit"]),
    "newer sae version": (_json("sae/sae.json", lambda i: i.update(format_version=99)), ["upgrade saetm"]),
    "not a model file": (lambda d: (d / "model.json").write_text("[1, 2]"), ["not a saetm model"]),
    "absurdly nested json": (lambda d: (d / "sae" / "sae.json").write_text("[" * 100_000 + "]" * 100_000),
                             ["not valid JSON"]),
    "not utf-8 json": (lambda d: (d / "vocab.json").write_bytes(b"[\"caf\xe9\"]"), ["not valid JSON"]),
    "params not a dict": (_json("model.json", lambda i: i.update(params=[1])), ["settings"]),
    "invalid setting": (_json("model.json", lambda i: i["params"]["words"].update(ranking="evil")), ["words__ranking"]),
    "vocabulary not words": (lambda d: (d / "vocab.json").write_text('{"a": 1}'), ["not a list of words"]),
    "vocabulary one short": (_json("vocab.json", lambda v: v.pop()), ["inconsistent"]),
    "pickle as safetensors": (lambda d: (d / "state.safetensors").write_bytes(pickle.dumps({"x": 1})), ["corrupt"]),
    "index out of range": (_arrays("state.safetensors", _poke("theta.indices", 0, 10**6)), ["indices must be <"]),
    "negative index": (_arrays("state.safetensors", _poke("feature_words.indices", 0, -1)), ["indices must be >= 0"]),
    "bad indptr": (_arrays("state.safetensors", _poke("theta.indptr", 2, 10**6)), ["indptr"]),
    "bad shape": (_arrays("state.safetensors", _set("theta.shape", np.array([3, 4, 5]))), ["shape"]),
    "nan in background": (_arrays("state.safetensors", _poke("background", 0, np.nan)), ["background"]),
    "nan in B": (_arrays("state.safetensors", _poke("feature_words.data", 0, np.inf)), ["finite"]),
    "short feature_prob": (_arrays("state.safetensors", lambda t: t.__setitem__("feature_prob", t["feature_prob"][:9])),
                           ["atom counts"]),
    "doc_words not 0/1": (_arrays("state.safetensors", _poke("doc_words.data", 0, 2.0)), ["incidence"]),
    "doc_words one word more": (_arrays("state.safetensors", lambda t: t.__setitem__(
        "doc_words.shape", t["doc_words.shape"] + np.array([0, 1]))), ["incidence"]),
    "broken tree": (_arrays("state.safetensors", _poke("tree.linkage", (0, 0), 1e6)), ["atom tree"]),
    "tree of other atoms": (_arrays("state.safetensors", lambda t: t.__setitem__("tree.atoms", t["tree.atoms"][:5])),
                            ["atom tree"]),
    "atom in no topic": (_arrays("topics.safetensors", _poke("atom_topic", slice(None), -1)), ["atom-to-topic"]),
    "topic id too large": (_arrays("topics.safetensors", _poke("atom_topic", 0, 99)), ["atom-to-topic"]),
    "float atom_topic": (_arrays("topics.safetensors",
                                 lambda t: t.__setitem__("atom_topic", t["atom_topic"].astype(np.float32))),
                         ["atom counts"]),
    "short prevalence": (_arrays("topics.safetensors", lambda t: t.__setitem__("prevalence", t["prevalence"][:1])),
                         ["topic tables"]),
    "negative topic word weight": (_arrays("topics.safetensors", _poke("topic_words", (0, 0), -0.5)), ["topic word"]),
    "1-d topic words": (_arrays("topics.safetensors", lambda t: t.__setitem__("topic_words", t["topic_words"][0])),
                        ["topic word"]),
    "sae claims terabytes": (_json("sae/sae.json", lambda i: i["config"].update(d_in=10**5, n_atoms=10**7)),
                             ["W_dec has shape", "do not belong together"]),
    "sae of another arch": (_json("sae/sae.json", lambda i: i["config"].update(arch="topk")), ["unexpected"]),
    "sae k out of range": (_json("sae/sae.json", lambda i: i["config"].update(k=10**6)), ["sae.json", "k="]),
    "sae nan weights": (_arrays("sae/sae.safetensors", _poke("W_dec", (0, 0), np.nan)), ["NaN"]),
    "sae from another fit": (_arrays("sae/sae.safetensors", lambda t: t.update(W_dec=t["W_dec"][:, :128],
                                     W_enc=t["W_enc"][:128], b_enc=t["b_enc"][:128])), ["W_dec has shape"]),
    "documents of another fit": (lambda d: __import__("pandas").DataFrame({"id": ["a"]}).to_parquet(
        d / "documents.parquet"), ["1 rows", "inconsistent"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_model_directory_refuses_to_load(case, model_copy):
    damage, needles = BROKEN[case]
    damage(model_copy)
    with pytest.raises(SaetmError) as info:
        SAETM.load(model_copy)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle.lower() in message.lower(), message


@pytest.mark.parametrize("case", ["truncated state.safetensors", "newer version", "index out of range",
                                  "sae claims terabytes"])
def test_broken_model_directory_through_the_cli(case, model_copy, tmp_path, tiny_files):
    BROKEN[case][0](model_copy)
    for argv in (["topics", model_copy], ["retopic", model_copy, "--topics", "3"],
                 ["transform", model_copy, tiny_files / "docs.jsonl", "--out", tmp_path / "w.npz"]):
        rc, _, err = run_main(argv)
        assert_one_line_error(rc, err, *BROKEN[case][1])
    assert not (tmp_path / "w.npz").exists()


def test_version_message_in_a_real_process(model_copy, tmp_path):
    BROKEN["newer version"][0](model_copy)
    proc = run_saetm(["topics", model_copy], cwd=tmp_path)
    message = assert_one_line_error(proc.returncode, proc.stderr, "saetm 9.0", "upgrade saetm")
    assert proc.stderr.strip() == message


@pytest.mark.parametrize("name", ["topics.json", "doc_topics.npz"])
def test_stale_or_missing_exports_load_with_a_warning(name, model_copy, caplog):
    """topics.json and doc_topics.npz are for other tools: the model loads, and says how to rewrite them."""
    _truncate(name)(model_copy)
    m = SAETM.load(model_copy)
    assert m.n_topics == 4 and f"saetm retopic {model_copy} --topics 4" in caplog.text
    assert run_main(["retopic", model_copy, "--topics", "4", "-q"])[0] == 0  # the advice works
    caplog.clear()
    SAETM.load(model_copy)
    assert "retopic" not in caplog.text


def test_mismatched_labels_are_dropped_not_trusted(model_copy, caplog):
    _json("model.json", lambda i: i.update(custom_labels=["only one"]))(model_copy)
    m = SAETM.load(model_copy)
    assert "ignoring the saved topic labels" in caplog.text
    assert len(m.topic_labels()) == 4 and m.get_topic_info().shape[0] == 4


class _Unpickled(Exception):
    pass


def test_nothing_is_ever_unpickled(model_copy, monkeypatch, tiny_files):
    """Load, inspect, transform and retopic with every unpickler booby-trapped."""
    def trap(*args, **kwargs):
        raise _Unpickled(f"unpickling attempted: {args[:1]} {kwargs}")

    real_np_load = np.load

    def np_load(*args, **kwargs):
        if kwargs.get("allow_pickle"):
            trap(*args, **kwargs)
        return real_np_load(*args, **kwargs)

    def torch_load(*args, **kwargs):
        if not kwargs.get("weights_only"):
            trap(*args, **kwargs)
        return real_torch_load(*args, **kwargs)

    real_torch_load = torch.load
    for target in (pickle, "_pickle"):
        module = __import__(target) if isinstance(target, str) else target
        monkeypatch.setattr(module, "load", trap)
        monkeypatch.setattr(module, "loads", trap)
    monkeypatch.setattr(pickle, "Unpickler", trap)
    monkeypatch.setattr(np, "load", np_load)
    monkeypatch.setattr(torch, "load", torch_load)
    (model_copy / "model.pkl").write_bytes(b"not read")  # stray files are never opened
    m = SAETM.load(model_copy)
    m.get_topic_info()
    m.transform(embeddings=real_np_load(tiny_files / "emb.npy")[:5])
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3", "-q"])
    assert rc == 0, err
    assert SAETM.load(model_copy).n_topics == 3


def test_a_pickle_bomb_is_never_executed(model_copy, tiny_model_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("state.safetensors", "sae/sae.safetensors", "topics.safetensors", "documents.parquet"):
        (model_copy / name).write_bytes(pickle.dumps(Bomb()))
        with pytest.raises(SaetmError, match="corrupt"):
            SAETM.load(model_copy)
        assert not marker.exists()
        shutil.copy(tiny_model_dir / name, model_copy / name)


# ------------------------------------------------------------------ writing
@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return SAETM.load(tiny_model_dir)


def _snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def _fail_on_call(n, error):
    """A ``_publish`` that raises ``error`` on its n-th call (the n-th file being renamed into place)."""
    real, calls = persist._publish, [0]

    def publish(tmp, path):
        calls[0] += 1
        if calls[0] == n:
            raise error
        return real(tmp, path)

    return publish


ENOSPC = OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("n", range(1, 10))
def test_disk_full_while_saving_leaves_nothing(n, loaded, tmp_path, monkeypatch):
    monkeypatch.setattr(persist, "_publish", _fail_on_call(n, ENOSPC))
    with pytest.raises(SaetmError, match="disk is full; free some space") as info:
        loaded.save(tmp_path / "new")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "new").exists()  # not even an empty folder


@pytest.mark.parametrize("n", [1, 4, 9])
def test_disk_full_while_overwriting_keeps_the_old_model(n, loaded, model_copy, monkeypatch):
    before = _snapshot(model_copy)
    monkeypatch.setattr(persist, "_publish", _fail_on_call(n, ENOSPC))
    with pytest.raises(SaetmError, match="disk is full"):
        loaded.save(model_copy, overwrite=True)
    assert _snapshot(model_copy) == before and not leftovers(model_copy)


def test_disk_full_in_a_library_writer(loaded, tmp_path, monkeypatch):
    """ENOSPC raised inside safetensors itself, as a real full disk would."""
    def full(*args, **kwargs):
        raise ENOSPC

    monkeypatch.setattr(persist, "save_file", full)
    with pytest.raises(SaetmError, match="disk is full"):
        loaded.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_disk_full_during_retopic_keeps_the_model(model_copy, monkeypatch):
    before = _snapshot(model_copy)
    monkeypatch.setattr(persist, "_publish", _fail_on_call(2, ENOSPC))
    rc, _, err = run_main(["retopic", model_copy, "--topics", "3"])
    assert_one_line_error(rc, err, "disk is full", "free some space")
    assert _snapshot(model_copy) == before and not leftovers(model_copy)
    assert SAETM.load(model_copy).n_topics == 4


def test_not_writable_fails_before_any_work(tiny_files, tmp_path, monkeypatch):
    """Permission denied on the output folder: refused at once, before reading or fitting."""
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "out")):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(model_files.os, "open", deny)
    monkeypatch.setattr(SAETM, "fit", lambda *a, **k: pytest.fail("fitted although --out is not writable"))
    rc, _, err = run_main(fit_argv(tiny_files, tmp_path / "out"))
    assert_one_line_error(rc, err, "permission denied", "choose a writable --out")
    assert not (tmp_path / "out").exists()


def test_not_writable_while_saving(loaded, tmp_path, monkeypatch):
    def deny(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", deny)
    with pytest.raises(SaetmError, match="permission denied; choose a writable --out"):
        loaded.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_out_under_a_regular_file(tiny_files, tmp_path):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "model"):
        rc, _, err = run_main(fit_argv(tiny_files, out))
        assert_one_line_error(rc, err, "choose another --out")
    assert (tmp_path / "file").read_text() == "x"


def test_refuses_to_replace_another_model_unless_overwrite(tiny_files, model_copy, loaded):
    before = _snapshot(model_copy)
    rc, _, err = run_main(fit_argv(tiny_files, model_copy))
    assert_one_line_error(rc, err, "already holds a saetm model", "--overwrite")
    with pytest.raises(SaetmError, match="overwrite=True"):
        loaded.save(model_copy)
    assert _snapshot(model_copy) == before
    loaded.save(model_copy, overwrite=True)
    assert same_model(SAETM.load(model_copy), loaded)


def test_leftovers_of_a_killed_writer_are_ignored_then_cleaned(model_copy, loaded):
    """After SIGKILL: a temp file, a staging folder and a lock file of a dead process."""
    (model_copy / ".state.safetensors.x1y2.tmp").write_bytes(b"half a file")
    (model_copy / "sae" / ".sae.json.abc.tmp").write_text("{")
    (model_copy / ".saetm-staging-999999").mkdir()
    (model_copy / ".saetm-staging-999999" / "vocab.json").write_text("[")
    (model_copy / ".saetm.lock").write_text("999999")
    assert same_model(SAETM.load(model_copy), loaded)
    loaded.save(model_copy, overwrite=True)  # the stale lock does not block; leftovers are removed
    assert leftovers(model_copy) == [] and same_model(SAETM.load(model_copy), loaded)


_HOLD = """
import sys, time
from pathlib import Path
from saetm.model_files import directory_lock
with directory_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_live_writer_blocks_others_clearly(model_copy, loaded, tiny_files):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(model_copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _snapshot(model_copy)
        with pytest.raises(SaetmError, match=f"another saetm process \\(pid {holder.pid}\\) is writing"):
            loaded.save(model_copy, overwrite=True)
        for argv in (["retopic", model_copy, "--topics", "3"], fit_argv(tiny_files, model_copy, "--overwrite")):
            rc, _, err = run_main(argv)
            assert_one_line_error(rc, err, "another saetm process", "wait for it")
        assert _snapshot(model_copy) == before
    finally:
        holder.kill()
        holder.wait()
    loaded.save(model_copy, overwrite=True)  # the kernel released the dead holder's lock
    assert not leftovers(model_copy)


@pytest.mark.parametrize("name", ["w.npz", "w.csv", "w.parquet"])
def test_disk_full_while_writing_transform_output(name, model_copy, tiny_files, tmp_path, monkeypatch):
    monkeypatch.setattr(persist, "_publish", _fail_on_call(1, ENOSPC))
    rc, _, err = run_main(["transform", model_copy, tiny_files / "docs.jsonl", "--embeddings", tiny_files / "emb.npy",
                           "--out", tmp_path / "out" / name, "-q"])
    assert_one_line_error(rc, err, "No space left on device", "free disk space")
    assert list((tmp_path / "out").iterdir()) == []  # no output, no temp file


def test_disk_full_during_saetm_fit(tiny_files, tmp_path, monkeypatch):
    monkeypatch.setattr(persist, "_publish", _fail_on_call(5, ENOSPC))
    rc, out, err = run_main(fit_argv(tiny_files, tmp_path / "model"))
    assert_one_line_error(rc, err, "disk is full", "free some space or choose another --out")
    assert out == "" and not (tmp_path / "model").exists()


CORRUPTIBLE = ["model.json", "vocab.json", "state.safetensors", "topics.safetensors", "sae/sae.json",
               "sae/sae.safetensors", "documents.parquet"]


@settings(max_examples=int(30 * float(os.environ.get("SAETM_FUZZ_SCALE", "1"))), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(CORRUPTIBLE), st.floats(0, 1), st.integers(1, 255), st.booleans())
def test_random_damage_never_crashes(tiny_model_dir, tmp_path, tiny_files, name, where, flip, cut):
    """Flip a byte or cut a file anywhere: loading and using the model either works or
    raises SaetmError — never another exception, never a crash of the interpreter."""
    d = tmp_path / "damaged"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(tiny_model_dir, d)
    raw = bytearray((d / name).read_bytes())
    at = min(int(where * len(raw)), len(raw) - 1)
    if cut:
        raw = raw[:at]
    else:
        raw[at] ^= flip
    (d / name).write_bytes(bytes(raw))
    try:
        m = SAETM.load(d)
        m.get_topic_info()
        m.transform(embeddings=np.load(tiny_files / "emb.npy")[:3])
        m.retopic(2)
    except SaetmError as e:
        assert "\n" not in str(e)


def test_a_model_saved_before_the_vocabulary_settings_loads_as_fitted(model_copy, loaded):
    """Models saved without extra_stop_words / lemmatize / merge_inflections were fitted without them."""
    _json("model.json", lambda i: [i["params"].pop(k) for k in ("extra_stop_words", "lemmatize",
                                                                 "merge_inflections")])(model_copy)
    old = SAETM.load(model_copy)
    assert (old.extra_stop_words, old.lemmatize, old.merge_inflections) == (None, False, False)
    assert old.get_topics() == loaded.get_topics()
    _json("model.json", lambda i: i["params"].update(merge_inflections="yes"))(model_copy)
    with pytest.raises(SaetmError, match="invalid setting.*merge_inflections"):
        SAETM.load(model_copy)


def test_a_directory_of_format_1_loads_through_the_migration(model_copy, loaded, tmp_path):
    """A model directory saved by saetm 0.8.0 (format 1: flat settings) loads as it was fitted;
    retopic rewrites it in the current format."""
    from saetm.cli import main

    d, current = model_copy, loaded
    info = as_format1(d)
    assert set(info["params"]) == set(json.loads(FORMAT1.read_text())["params"])
    old = SAETM.load(d)
    assert old.get_params(deep=True)["sae__k"] == 8 and old.word_ranking == "coherent"
    assert old.get_topics() == current.get_topics()
    np.testing.assert_array_equal(old.doc_topics_.toarray(), current.doc_topics_.toarray())
    assert main(["retopic", str(d), "--topics", "3", "-q"]) == 0
    upgraded = json.loads((d / "model.json").read_text())
    assert upgraded["format_version"] == FORMAT_VERSION and upgraded["params"]["n_topics"] == 3
    assert SAETM.load(d).n_topics == 3
