"""Model directories of older formats, made from a current one (for the migration tests).

``as_format1`` rewrites ``model.json`` as saetm ≤ 0.8 wrote it (format 1: flat settings);
``tests/reliability/data/model-format1.json`` is a file that saetm 0.8.0 wrote, the
reference for its layout.
"""

import json
from pathlib import Path

from saetm.settings import TABLE

FORMAT1 = Path(__file__).parent / "reliability" / "data" / "model-format1.json"


def flat_params(params: dict) -> dict:
    """Format-2 ``params`` (components as objects) as format 1's flat settings, in its order."""
    out = {}
    for row in TABLE:
        if row.name in ("encoder", "sae"):
            continue
        if row.component is not None and row.legacy is None:  # added after format 1
            continue
        if row.component is None:
            out[row.name] = params[row.name]
        else:
            section = params.get(row.component, {})
            out[row.legacy] = section.get(row.field, row.default)
    return out


def as_format1(directory: Path, drop: tuple = ()) -> dict:
    """Rewrite ``directory/model.json`` in format 1, without the flat settings ``drop`` (as files
    of the versions before them); returns the new contents."""
    info = json.loads((directory / "model.json").read_text())
    params = flat_params(info["params"])
    for key in drop:
        del params[key]
    info = {**info, "format_version": 1, "saetm_version": "0.8.0", "params": params}
    (directory / "model.json").write_text(json.dumps(info, indent=2))
    return info
