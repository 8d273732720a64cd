"""Advice in error messages can be followed: every flag it names exists, with the Python
parameter next to it, and following it gets a fit through.

A one-document corpus and 100 identical documents are the corpora that used to end in
"lower min_df or raise max_df" when `saetm fit` had no --max-df.
"""

import ast
import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

import saetm
from saetm.cli import build_parser
from saetm.components import SAETraining
from saetm.model import SAETM

from _reliability import assert_one_line_error, run_main

FLAG = re.compile(r"--[a-z][a-z0-9-]*(?![a-z0-9_-])")
OTHER_TOOLS = {"--nproc_per_node", "--no-deps"}  # torchrun's and pip's, in advice to run them
FLAG_AND_PARAM = re.compile(r"(--[a-z][a-z0-9-]*) \(([a-z_]+)(?:=[^)]*)?\)")


def _flags(command: str | None = None) -> set[str]:
    """The flags of `saetm COMMAND --help` (all commands when None)."""
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    return {opt for name, sub in subs.items() if command in (None, name)
            for action in sub._actions for opt in action.option_strings if opt.startswith("--")}


def _messages():
    """Every string that goes into a SaetmError or a logged warning in saetm's source, with where it is."""
    for path in sorted(Path(saetm.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in ("SaetmError", "warning", "ArgumentTypeError"):
                continue
            text = " ".join(c.value for arg in node.args for c in ast.walk(arg)
                            if isinstance(c, ast.Constant) and isinstance(c.value, str))
            yield f"{path.name}:{node.lineno}", text


def test_every_flag_in_an_error_message_exists():
    from saetm.io.images import read_image_collection
    from saetm.io.readers import read_documents

    flags, params = _flags(), set(SAETM(sae=SAETraining()).get_params(deep=True))  # words__ranking too
    for reader in (read_documents, read_image_collection):  # the readers' parameters, e.g. text_field
        params |= set(inspect.signature(reader).parameters)
    checked = 0
    for where, text in _messages():
        for flag in FLAG.findall(text):
            assert flag in flags | OTHER_TOOLS, f"{where} names {flag}, which no command has: {text}"
            checked += 1
        for flag, param in FLAG_AND_PARAM.findall(text):
            assert param in params, f"{where}: ({param}) is no parameter of SAETM or the readers"
    assert checked > 20


def test_advice_names_the_python_parameter_too():
    """Where a flag maps to an SAETM parameter the advice names both, e.g. "lower --min-df (min_df)"."""
    for where, text in _messages():
        for word in ("lower", "raise"):
            for flag in re.findall(rf"{word} (--[a-z-]+)(?![a-z-]| \()", text):
                pytest.fail(f"{where}: '{word} {flag}' without the Python parameter: {text}")
            for param in re.findall(rf"{word} ([a-z]+_[a-z_]+)(?![a-z_]| \(--)", text):
                pytest.fail(f"{where}: '{word} {param}' without the command-line flag: {text}")


def test_max_df_is_passed_through(tiny_files, tmp_path):
    rc, _, err = run_main(["fit", tiny_files / "docs.jsonl", "--out", tmp_path / "m", "--embeddings",
                           tiny_files / "emb.npy", "--n-atoms", "256", "--k", "8", "--sae-steps", "50",
                           "--min-df", "3", "--topics", "4", "--max-df", "0.9", "-q"])
    assert rc == 0, err
    assert SAETM.load(tmp_path / "m").max_df == 0.9


@pytest.mark.parametrize("value", ["0", "1.5", "nan", "x"])
def test_max_df_out_of_range_is_refused(value, tmp_path):
    rc, _, err = run_main(["fit", tmp_path / "docs.jsonl", "--out", tmp_path / "m", "--max-df", value])
    assert_one_line_error(rc, err, "--max-df")


@pytest.mark.parametrize("corpus", ["one document", "100 identical documents"])
def test_following_the_advice_gets_a_fit_through(corpus, ng_corpus, ng_embeddings, tmp_path):
    """Each refusal names flags `saetm fit --help` lists; taking them (the bound it names, or the
    widest value) until the fit succeeds shows the advice can be followed."""
    rows = [0] if corpus == "one document" else [3] * 100
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": ng_corpus.texts[i]}) + "\n" for i in rows))
    np.save(tmp_path / "emb.npy", ng_embeddings[rows])
    fit_flags = _flags("fit")
    widest = {"--min-df": "1", "--max-df": "1", "--atom-space": "documents"}
    flags, advice = [], []
    for _ in range(5):
        rc, _, err = run_main(["fit", tmp_path / "docs.jsonl", "--out", tmp_path / "m", "--embeddings",
                               tmp_path / "emb.npy", "--overwrite", "-q", *flags])
        if rc == 0:
            break
        message = assert_one_line_error(rc, err)
        named = [f for f in FLAG.findall(message) if f not in ("--overwrite",)]
        assert named and set(named) <= fit_flags, message
        new = [f for f in named if f not in flags]
        assert new, f"the advice repeats itself: {message}"
        for flag in new:
            bound = re.search(r"at most (\d+)", message)
            flags += [flag, bound.group(1) if flag == "--topics" and bound else widest[flag]]
        advice.append(message)
    assert rc == 0, advice
    assert advice and "--min-df (min_df)" in advice[0] and "--max-df (max_df)" in advice[0]
