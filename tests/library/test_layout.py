"""The house rules of the package, checked on its source: a newcomer can rely on them.

- the library (``src/induction_course/*.py``) never imports the course (``induction_course.course``);
- no module reaches into another's private names (``from m import _x`` or ``m._x``);
- modules stay readable (about 500 lines at most) and grading steps short (60 lines a function).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "induction_course"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 520
MAX_GRADING_FUNCTION_LINES = 60


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _imported_modules(tree: ast.AST) -> dict[str, str]:
    """alias -> module for ``import induction_course.x as y`` and ``from induction_course import x``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("induction_course"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("induction_course"):
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def test_the_package_has_both_halves():
    assert (PACKAGE / "model.py").is_file() and (PACKAGE / "course" / "checks" / "core.py").is_file()
    assert len(MODULES) > 20


@pytest.mark.parametrize("path", [p for p in MODULES if "course" not in p.relative_to(PACKAGE).parts], ids=_rel)
def test_the_library_never_imports_the_course(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        bad = [n for n in names if n.startswith("induction_course.course")]
        assert not bad, f"{_rel(path)}:{node.lineno} imports {bad[0]}: the course may import the library, not the reverse"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_uses_another_modules_private_names(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("induction_course"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{_rel(path)}:{node.lineno} imports private {private} from {node.module}"
    modules = _imported_modules(tree)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in modules):
            pytest.fail(f"{_rel(path)}:{node.lineno} uses {node.value.id}.{node.attr}, private to {modules[node.value.id]}")


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_modules_stay_readable(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{_rel(path)} has {n} lines; split it by idea (house limit ~500)"


@pytest.mark.parametrize("path", sorted((PACKAGE / "course" / "grading").glob("*.py")), ids=_rel)
def test_grading_steps_are_short(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            assert n <= MAX_GRADING_FUNCTION_LINES, f"{_rel(path)}:{node.lineno} {node.name}() has {n} lines"
