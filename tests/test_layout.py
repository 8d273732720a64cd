"""The layout keeps the stages below the estimator: no stage module imports it, and no source file is long."""

import ast
from pathlib import Path

import pytest

import saetm

SRC = Path(saetm.__file__).parent
STAGES = ("io", "encoders", "sae", "words", "topics", "analysis", "evaluation")
# the estimator and what reads or writes its state: stage modules take plain values instead
ESTIMATOR = {"saetm.model", "saetm.views", "saetm.params", "saetm.model_load", "saetm.model_files",
             "saetm.fast_load", "saetm.lazy_sae", "saetm.word_lists", "saetm.pipeline", "saetm.cli"}
MAX_LINES = 400


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every module ``path`` (of ``package``, by default read off its place under saetm) imports,
    at any depth (function-level imports count), as absolute names."""
    package = package or ".".join(("saetm", *path.relative_to(SRC).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # from saetm import model
    return names


def _is_estimator(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in ESTIMATOR)


def _stage_files():
    return sorted(p for stage in STAGES for p in (SRC / stage).rglob("*.py"))


def test_the_import_parser_sees_every_form(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import saetm.model as m\nfrom saetm import views\ndef f():\n    from ..pipeline import x\n"
                     "from . import merge\n", encoding="utf-8")
    names = imported_modules(probe, "saetm.topics")
    assert {"saetm.model", "saetm.views", "saetm.pipeline", "saetm.topics.merge"} <= names
    assert sum(map(_is_estimator, names)) >= 3


@pytest.mark.parametrize("path", _stage_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_stage_module_imports_the_estimator(path):
    bad = sorted(n for n in imported_modules(path) if _is_estimator(n))
    assert not bad, f"{path.relative_to(SRC)} imports {bad}: pass it plain values or a settings component instead"


def test_the_stage_glue_is_gone_from_the_top_level():
    assert not (SRC / "pipeline.py").exists()
    assert [s for s in STAGES if not (SRC / s / "__init__.py").exists()] == []


def test_no_source_file_exceeds_the_line_limit():
    long = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"files over {MAX_LINES} lines: {long}"
