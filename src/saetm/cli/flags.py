"""The ``saetm fit`` flags of the model's settings, generated from :mod:`saetm.settings`.

Each row of the table with a ``flag`` becomes one option whose help is the row's help
and default; a flag not given leaves the setting to ``SAETM``'s default, so the table is
the one place a default lives. :func:`model_settings` turns the parsed flags back into
``SAETM`` keyword arguments.
"""

from __future__ import annotations

import argparse

from saetm.checks import fraction
from saetm.cli._common import _positive_int
from saetm.settings import TABLE, Setting

# flags that switch a setting off (the rest of the boolean flags switch one on)
INVERSE = {"cache": "no_cache", "stop_words": "no_english_stop_words"}


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Add every setting's ``saetm fit`` flag to ``parser``, in table order."""
    for row in TABLE:
        if row.flag:
            parser.add_argument(row.flag, **_argument(row))


def _argument(row: Setting) -> dict:
    help_text = row.cli_help or row.help
    if row.cli_help is None and row.default is not None and row.kind != "bool":
        help_text += f" (default {row.default})"
    kw = {"help": help_text, "default": None}
    if row.name in INVERSE:
        return {**kw, "action": "store_true", "default": False, "dest": INVERSE[row.name]}
    if row.name == "extra_stop_words":
        return {**kw, "action": "append", "metavar": row.metavar}
    if row.kind == "bool":
        return {**kw, "action": "store_true", "default": False}
    if row.kind == "choice":
        kw["choices"] = list(row.choices)
    elif row.kind == "int":
        kw["type"] = _positive_int if row.low is not None and row.low >= 1 else int
    elif row.kind == "float":
        kw["type"] = fraction if (row.low, row.high, row.low_open) == (0.0, 1.0, True) else float
    if row.metavar:
        kw["metavar"] = row.metavar
    return kw


def given_settings(args) -> dict:
    """``{setting name: value}`` of the setting flags given on the command line (the stop-word
    files are read here)."""
    from saetm.cli.vocabulary import vocabulary_settings

    out = {}
    for row in TABLE:
        if not row.flag or row.name in ("stop_words", "extra_stop_words"):
            continue
        if row.name in INVERSE:
            if getattr(args, INVERSE[row.name], False):
                out[row.name] = not row.default
            continue
        value = getattr(args, row.flag.lstrip("-").replace("-", "_"), None)
        if value is not None and value is not False:
            out[row.name] = value
    return {**out, **vocabulary_settings(args)}


def model_settings(given: dict, image_defaults: dict | None = None) -> dict:
    """``SAETM`` keyword arguments from ``{setting name: value}``: top-level values, component
    fields grouped into their component. SAE training fields make ``sae`` an ``SAETraining``
    when it is auto or train; ``image_defaults`` (fields of ``SAETraining``) fill the ones not
    given and make auto train."""
    from saetm.components import CLASSES

    kwargs, parts = {}, {}
    for name, value in given.items():
        component, _, field = name.rpartition(".")
        if component:
            parts.setdefault(component, {})[field] = value
        else:
            kwargs[name] = value
    training = parts.pop("sae", {})
    choice = kwargs.get("sae", "auto")
    if image_defaults is not None:
        training = {**image_defaults, **training}
    if choice in ("auto", "train") and (training or choice == "train"):
        kwargs["sae"] = CLASSES["sae"](**training)
    for component, values in parts.items():
        kwargs[component] = CLASSES[component](**values)
    return kwargs
