"""Hand-edited fields of a saved model never end in a traceback.

Every field of ``model.json`` and every column of ``documents.parquet`` is set to values
of the wrong type; then ``saetm topics``, ``evaluate``, ``retopic`` and ``report`` either
work or refuse with one line. Fields that loading relies on refuse ("…re-run `saetm
fit`"); the fit report, which is only shown, is dropped with a warning.
"""

import json

import pandas as pd
import pytest

from saetm.errors import SaetmError
from saetm.model import SAETM
from saetm.settings import TABLE

from _reliability import assert_one_line_error, run_main

# the fields of a model.json written by `saetm fit` (section, key); "" is the top level
TOP = ["format", "format_version", "saetm_version", "saved_at", "params", "encoder", "encoder_is_callable",
       "embedding_name", "sae_source", "n_documents", "vocabulary_size", "custom_labels", "fit_report"]
PARAMS = ["n_topics", "min_df", "max_df", "max_features", "stop_words", "extra_stop_words", "lemmatize",
          "merge_inflections", "words", "clustering", "sae", "seed", "cache", "verbose"]
# the components' fields (section "params.words" etc.), as the settings table lists them
COMPONENT_FIELDS = [(f"params.{row.component}", row.field) for row in TABLE if row.component]
FIT_REPORT = ["seconds", "sae", "words", "n_documents", "n_skipped"]
FIELDS = ([("", k) for k in TOP] + [("params", k) for k in PARAMS] + COMPONENT_FIELDS
          + [("fit_report", k) for k in FIT_REPORT])
WRONG = {"list": [1, 2], "null": None, "text": "x", "number": 1.5, "true": True, "object": {"a": 1}}


def _section(info, section):
    for part in section.split(".") if section else []:
        info = info[part]
    return info


def _edit_json(directory, section, key, value):
    info = json.loads((directory / "model.json").read_text())
    _section(info, section)[key] = value
    (directory / "model.json").write_text(json.dumps(info))


def _commands(d, tiny_files, tmp_path, report: bool):
    yield ["topics", d]
    yield ["evaluate", d, "--reference", tiny_files / "docs.jsonl", "--no-write"]
    yield ["retopic", d, "--topics", "3"]
    if report:
        yield ["report", d, "--out", tmp_path / "report.html"]


def _never_a_traceback(d, tiny_files, tmp_path, report=True):
    """Runs the commands; returns the error message when the model refuses to load."""
    for argv in _commands(d, tiny_files, tmp_path, report):
        rc, _, err = run_main([*argv, "-q"])
        if rc != 0:
            message = assert_one_line_error(rc, err)
            if argv[0] == "topics":  # the model does not load: the others refuse the same way
                return message
    return None


@pytest.mark.parametrize("section, key", FIELDS, ids=[f"{s or 'model'}.{k}" for s, k in FIELDS])
@pytest.mark.parametrize("kind", ["list", "null", "text", "object"])
def test_model_json_field_of_the_wrong_type(section, key, kind, model_copy, tiny_files, tmp_path):
    value = WRONG[kind]
    info = json.loads((model_copy / "model.json").read_text())
    if kind == "text" and isinstance(_section(info, section).get(key), str):
        value = WRONG["number"]
    _edit_json(model_copy, section, key, value)
    # the report only adds readers of the fit report and of params: run it where those change
    message = _never_a_traceback(model_copy, tiny_files, tmp_path, report=kind == "list" or section == "fit_report"
                                 or key == "fit_report")
    if message is not None and key not in ("format", "format_version"):
        assert "saetm fit" in message or "refit" in message, message


def test_fit_report_is_informational_dropped_with_a_warning(model_copy, caplog):
    _edit_json(model_copy, "fit_report", "seconds", {"embed": "slow"})
    model = SAETM.load(model_copy)
    assert "seconds" not in model.fit_info_ and "sae" in model.fit_info_ and "(seconds)" in caplog.text
    _edit_json(model_copy, "", "fit_report", [1, 2])
    model = SAETM.load(model_copy)
    assert model.fit_info_ is None and "ignoring the fit report" in caplog.text


@pytest.mark.parametrize("section, key, value, needle", [
    ("", "format_version", True, "model format True"),
    ("", "encoder", [1, 2], "encoder is list"),
    ("params.words", "idf", "yes", "words__idf must be True or False"),
    ("params", "words", "beta", "params.words is str"),
    ("params", "stop_words", 7, "params.stop_words is int"),
])
def test_fields_loading_relies_on_refuse(section, key, value, needle, model_copy):
    _edit_json(model_copy, section, key, value)
    with pytest.raises(SaetmError, match=needle):
        SAETM.load(model_copy)


def test_model_json_without_params_refuses(model_copy, tiny_files, tmp_path):
    info = json.loads((model_copy / "model.json").read_text())
    del info["params"]
    (model_copy / "model.json").write_text(json.dumps(info))
    assert "re-run `saetm fit`" in _never_a_traceback(model_copy, tiny_files, tmp_path)


def _column(kind, n):
    return {"null": [None] + ["x"] * (n - 1), "int": list(range(n)), "float": [float("nan")] + [1.5] * (n - 1),
            "list": [[1, 2]] * n, "bool": [True] * n, "all null": pd.Series([None] * n, dtype="string"),
            "bytes": [b"\xff\x00"] * n}[kind]


@pytest.mark.parametrize("column", ["text", "id", "label", "date", "image"])
@pytest.mark.parametrize("kind", ["null", "int", "float", "list", "bool", "all null", "bytes", "dropped"])
def test_documents_column_of_the_wrong_type(column, kind, model_copy, tiny_files, tmp_path):
    path = model_copy / "documents.parquet"
    df = pd.read_parquet(path)
    if kind == "dropped":
        df = df.drop(columns=[column], errors="ignore")
    else:
        df[column] = _column(kind, len(df))
    df.to_parquet(path, index=False)
    message = _never_a_traceback(model_copy, tiny_files, tmp_path, report=column in ("text", "date") or kind == "list")
    if column == "text" and kind != "dropped":
        assert message is not None and "documents.parquet" in message and "re-run `saetm fit`" in message, message
