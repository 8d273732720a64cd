"""The one step that upgrades an older model directory's contents to the current format.

``load`` reads ``model.json`` and the two arrays files, passes them through :func:`upgrade`,
and from then on reads the current format (``FORMAT_VERSION``) only. Every difference of an
older format is handled here:

format 1 (saetm ≤ 0.8)
    ``params`` flat (``word_ranking``, ``doc_smoothing``, ``n_atoms``, ...): grouped into the
    components ``words``, ``clustering`` and, for a model whose SAE was trained on its corpus,
    ``sae`` (see :data:`saetm.settings.LEGACY`). Files of saetm < 0.6 lack ``doc_smoothing``
    (their document weights were fitted without smoothing: 0) and of < 0.7
    ``prevalence_power`` and the array ``tree.power`` (atoms clustered by θ̄ itself: 1).
    Files of saetm < 0.7 lack ``doc_smoothing`` in ``topics.safetensors``: their weights were
    fitted with the setting. Files without the saved document weights (``centroids``; saetm < 0.8)
    get ``doc_rounds`` = 10, the rounds of the mixture's EM they were fitted with, so that load
    recomputes the same weights.

Bump ``saetm._version.FORMAT_VERSION`` when the format changes, and add the step from the
previous version here (with a test that a directory of that version loads).
"""

from __future__ import annotations

import numpy as np

from saetm._version import FORMAT_VERSION
from saetm.settings import LEGACY, fields

OLDEST = 1  # the oldest format upgrade() reads
LEGACY_ROUNDS = 10  # rounds of the document weights' EM of saetm 0.4–0.10


def upgrade(info: dict) -> dict:
    """``info`` (``model.json``) as the current format. ``info`` must be a saetm model file of
    a version from :data:`OLDEST` to ``FORMAT_VERSION`` (``load`` checks that first)."""
    if info["format_version"] == 1:
        info = _params_1_to_2(info)
    return info


def upgrade_arrays(version: int, info: dict, state: dict, topics: dict) -> None:
    """Complete, in place, the arrays of ``state.safetensors`` and ``topics.safetensors`` of a
    directory saved in format ``version``; ``info``: its ``model.json`` already upgraded."""
    if version == 1:
        if "tree.power" not in state:
            state["tree.power"] = np.asarray([1.0])  # saetm < 0.7: clustered by θ̄ itself
        if "doc_smoothing" not in topics:  # saetm < 0.7: fitted with the setting itself
            topics["doc_smoothing"] = np.asarray([float(info["params"]["clustering"]["doc_smoothing"])])
        if "centroids" not in topics and "doc_rounds" not in topics:  # weights not saved: fitted with 10 rounds
            topics["doc_rounds"] = np.asarray([float(LEGACY_ROUNDS)])


def _params_1_to_2(info: dict) -> dict:
    params = info["params"]
    if not isinstance(params, dict):
        return {**info, "format_version": 2}  # load refuses it with the usual message
    # saetm < 0.6 fitted document weights without smoothing; < 0.7 clustered atoms by θ̄ itself
    params = {"doc_smoothing": 0.0, "prevalence_power": 1.0, **params}
    new = {k: v for k, v in params.items() if k not in LEGACY}
    for component in ("words", "clustering"):
        new[component] = {row.field: params[row.legacy] for row in fields(component) if row.legacy in params}
    trained = {row.field: params[row.legacy] for row in fields("sae") if row.legacy in params}
    if info.get("sae_source") == "train" and trained:  # the settings that SAE was trained with
        new["sae"] = trained
    return {**info, "params": new, "format_version": 2}


assert FORMAT_VERSION == 2, "add the step from the previous format to upgrade()"
