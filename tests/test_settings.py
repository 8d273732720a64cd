"""The settings table and what comes from it: the constructor, validation, the CLI flags,
the components' scikit-learn contract, and the one migration step for older model files."""

import argparse
import inspect
import json

import pytest
from sklearn.base import clone

from saetm._version import FORMAT_VERSION
from saetm.components import Clustering, SAETraining, Words
from saetm.errors import SaetmError, SettingNameError
from saetm.model import SAETM
from saetm.settings import BY_KEY, LEGACY, TABLE, TOP_LEVEL, settings_markdown

from _old_formats import FORMAT1, flat_params


def _fit_parser():
    from saetm.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["fit"]


def test_at_most_15_top_level_settings_and_the_table_is_the_constructor():
    top = [p for p in inspect.signature(SAETM.__init__).parameters if p not in ("self", "old")]
    assert len(top) <= 15 and set(top) == set(TOP_LEVEL)
    params = SAETM(sae=SAETraining()).get_params(deep=True)
    for row in TABLE:  # every row is a parameter, with the table's default
        assert row.key in params, row.key
        assert params[row.key] == row.default or row.key == "sae", row.key
    assert SAETM().sae == "auto"
    for name, cls in (("sae", SAETraining), ("words", Words), ("clustering", Clustering)):
        fields = inspect.signature(cls.__init__).parameters
        assert {f"{name}__{f}" for f in fields if f != "self"} == {r.key for r in TABLE if r.component == name}


def test_the_table_choices_are_the_stages_choices():
    from saetm.topics.atomspace import ATOM_SPACES
    from saetm.topics.docweights import DOC_WEIGHTS
    from saetm.topics.merge import RANKINGS

    assert set(BY_KEY["clustering__atom_space"].choices) == set(ATOM_SPACES)
    assert set(BY_KEY["clustering__doc_weights"].choices) == set(DOC_WEIGHTS)
    assert set(BY_KEY["words__ranking"].choices) == set(RANKINGS)


def test_cli_flags_and_help_come_from_the_table():
    fit = _fit_parser()
    actions = {a.option_strings[0]: a for a in fit._actions if a.option_strings}
    for row in TABLE:
        if row.flag is None:
            continue
        action = actions.pop(row.flag)  # every row's flag exists
        assert action.help.startswith(row.cli_help or row.help), row.flag
        if row.default is not None and row.kind != "bool":
            assert f"default {row.default}" in action.help or row.name in ("encoder", "stop_words"), row.flag
        if row.kind == "choice":
            assert tuple(action.choices) == row.choices
    # the flags left are inputs and outputs, not settings
    assert set(actions) == {"-h", "--debug", "-q", "--words", "--out", "--text-field", "--id-field", "--date-field",
                            "--label-field", "--embeddings", "--image-field", "--image-encoder", "--overwrite"}
    assert "--word-ranking" in settings_markdown() and "`words__ranking`" in settings_markdown()


def test_cli_flags_map_to_the_model(tmp_path):
    from saetm.cli import _model_from_args, build_parser

    (tmp_path / "docs.txt").write_text("a\n")
    argv = ["fit", str(tmp_path / "docs.txt"), "--out", str(tmp_path / "m")]
    default = _model_from_args(build_parser().parse_args(argv))
    assert default.get_params(deep=False).keys() == SAETM().get_params(deep=False).keys()
    assert {k: v for k, v in default.get_params(deep=True).items() if not hasattr(v, "get_params")} == {
        k: v for k, v in SAETM().get_params(deep=True).items() if not hasattr(v, "get_params")}
    m = _model_from_args(build_parser().parse_args([
        *argv, "--topics", "7", "--k", "16", "--word-ranking", "beta", "--word-diversity", "0", "--doc-smoothing",
        "0.1", "--prevalence-power", "1", "--atom-space", "words", "--idf", "--no-cache", "--max-df", "0.9", "-q"]))
    p = m.get_params(deep=True)
    assert (p["n_topics"], p["sae__k"], p["sae__n_atoms"], p["words__ranking"], p["words__diversity"]) == (
        7, 16, None, "beta", 0.0)
    assert (p["clustering__doc_smoothing"], p["clustering__prevalence_power"], p["clustering__atom_space"]) == (
        0.1, 1.0, "words")
    assert p["words__idf"] is True and p["cache"] is False and p["verbose"] is False and p["max_df"] == 0.9
    assert isinstance(m.sae, SAETraining)  # a training flag with --sae auto trains one
    assert _model_from_args(build_parser().parse_args([*argv, "--sae", "default", "--k", "16"])).sae == "default"


@pytest.mark.parametrize("old, new", [("word_ranking", "words__ranking"),
                                      ("doc_smoothing", "clustering__doc_smoothing"),
                                      ("n_atoms", "sae__n_atoms"), ("sae_steps", "sae__steps")])
def test_an_old_flat_keyword_names_its_new_spelling(old, new):
    for attempt in (lambda: SAETM(**{old: 1}), lambda: SAETM().set_params(**{old: 1})):
        with pytest.raises(SettingNameError, match=new) as info:
            attempt()
        assert "\n" not in str(info.value) and isinstance(info.value, TypeError)
    with pytest.raises(SettingNameError, match=new):
        setattr(SAETM(), old, 1)
    assert getattr(SAETM(), old) == LEGACY[old].default  # readable under the old name
    with pytest.raises(SettingNameError, match="unknown parameter 'nonsense'"):
        SAETM(nonsense=1)


def test_get_params_set_params_and_clone_round_trip():
    m = SAETM(n_topics=7, words="beta", clustering={"doc_smoothing": 0.1}, sae=SAETraining(k=16), seed=3)
    p = m.get_params(deep=True)
    assert (p["words__ranking"], p["clustering__doc_smoothing"], p["sae__k"]) == ("beta", 0.1, 16)
    c = clone(m)
    assert c is not m and c.words is not m.words
    assert repr(c) == repr(m)
    assert " ".join(repr(m).split()) == ("SAETM(clustering=Clustering(doc_smoothing=0.1), n_topics=7, "
                                         "sae=SAETraining(k=16), seed=3, words=Words(ranking='beta'))")
    flat = {k: v for k, v in c.get_params(deep=True).items() if not hasattr(v, "get_params")}
    assert flat == {k: v for k, v in p.items() if not hasattr(v, "get_params")}
    c.set_params(words__diversity=0.0, clustering__prevalence_power=1.0)
    assert (c.word_diversity, c.prevalence_power, m.word_diversity) == (0.0, 1.0, 0.2)  # m unchanged
    d = SAETM()
    d.set_params(sae__k=8)  # sae was "auto": now the settings of a trained one
    assert isinstance(d.sae, SAETraining) and d.sae.k == 8 and SAETM().sae == "auto"
    with pytest.raises(SaetmError, match="trains no SAE"):
        SAETM(sae="default").set_params(sae__k=8)
    assert SAETM().words is not SAETM().words  # each model its own components
    assert repr(SAETM()) == "SAETM()"
    with pytest.raises(SaetmError, match="Invalid parameter 'rank'"):
        SAETM().set_params(words__rank="beta")
    with pytest.raises(SaetmError, match="unknown field"):
        SAETM(words={"rank": "beta"})
    with pytest.raises(SaetmError, match="words must be a Words"):
        SAETM(words=3)


def test_format_version_is_bumped_and_old_files_are_refused_or_upgraded():
    from saetm.migrate import OLDEST, upgrade

    assert FORMAT_VERSION == 2 and OLDEST == 1
    old = json.loads(FORMAT1.read_text())  # model.json as saetm 0.8.0 wrote it
    new = upgrade(old)
    assert new["format_version"] == FORMAT_VERSION and old["format_version"] == 1
    assert new["params"]["words"] == {"ranking": "coherent", "diversity": 0.2, "background_weight": 0.3,
                                      "idf": False, "em_max_iter": 200, "em_tol": 0.001}
    assert new["params"]["clustering"]["doc_smoothing"] == 0.5
    assert new["params"]["sae"] == {"n_atoms": 256, "k": 8, "arch": "batchtopk", "steps": 50}  # it trained its SAE
    assert not set(LEGACY) & set(new["params"])
    assert flat_params(new["params"]) == old["params"]  # the test helper writes what saetm 0.8.0 wrote


def test_the_settings_doc_is_generated_from_the_table():
    from pathlib import Path

    doc = Path(__file__).parent.parent / "docs" / "SETTINGS.md"
    assert doc.read_text(encoding="utf-8") == settings_markdown(), \
        "docs/SETTINGS.md is stale: python -m saetm.settings > docs/SETTINGS.md"
