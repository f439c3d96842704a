"""What the hidden tests of a chapter ask for, read from the pristine notebook by the grader.

Every hidden test is a call ``checks.compare_with_reference(exercise, fn, seed=..., **sizes)``,
possibly in a loop. :func:`hidden_plan` runs each grade cell's ``### BEGIN HIDDEN TESTS`` block
(the course's own code, never a student's) with a recorder in place of ``checks`` and symbols in
place of the student's functions, so the trusted check (:mod:`.trusted`) knows, per grade cell,
which function to call on which seeded input without trusting anything a kernel printed.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import Any

# Exercises whose answer must carry a gradient back to float inputs (training differentiates it):
# the producer hands them inputs that require grad, the grader checks the answer still does.
NEEDS_GRAD = ("per_token_loss",)
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_HIDDEN = re.compile(re.escape(HIDDEN_BEGIN) + r"\n(.*?)" + re.escape(HIDDEN_END), re.S)
_SETUP = re.compile(r"_(runtime_)?setup$")


@dataclass(frozen=True)
class HiddenCall:
    """One hidden test: call the notebook's ``function`` on ``make_case(seed, **sizes)`` of ``exercise``."""
    exercise: str
    function: str
    seed: int
    sizes: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"exercise": self.exercise, "function": self.function, "seed": self.seed, "sizes": self.sizes}

    @classmethod
    def from_json(cls, d: dict) -> "HiddenCall":
        return cls(str(d["exercise"]), str(d["function"]), int(d["seed"]), dict(d["sizes"]))


class _Symbol:
    """Stands for a name of the notebook (a student's function) while the hidden block runs."""

    def __init__(self, name: str):
        self.name = name


class _Names(dict):
    def __missing__(self, key: str) -> Any:
        if hasattr(builtins, key):
            return getattr(builtins, key)
        return _Symbol(key)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[HiddenCall] = []

    def compare_with_reference(self, exercise: str, fn: Any, seed: int, **sizes: Any) -> None:
        if not isinstance(fn, _Symbol):
            raise ValueError(f"hidden test of {exercise!r}: the function must be a notebook name")
        self.calls.append(HiddenCall(exercise, fn.name, int(seed), sizes))


_PLAIN_CALLS = {"range", "zip", "enumerate", "dict", "list", "tuple", "len", "min", "max"}


def _only_replayable(block: str) -> None:
    """A hidden block the trusted check cannot replay in full is refused: the kernel never runs
    the hidden tests, so anything but ``checks.compare_with_reference`` calls (an ``assert``, a
    call of another check) would silently test nothing."""
    import ast

    for node in ast.walk(ast.parse(block)):
        if isinstance(node, (ast.Assert, ast.Raise, ast.Try, ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Lambda)):
            raise ValueError(f"a hidden test block holds {type(node).__name__.lower()} code the trusted check "
                             "cannot replay; use checks.compare_with_reference(...) calls only")
        if isinstance(node, ast.Call):
            f = node.func
            ok = (isinstance(f, ast.Attribute) and f.attr == "compare_with_reference"
                  and isinstance(f.value, ast.Name) and f.value.id == "checks") or \
                 (isinstance(f, ast.Name) and f.id in _PLAIN_CALLS)
            if not ok:
                raise ValueError(f"a hidden test block calls {ast.unparse(f)}(...), which the trusted check cannot "
                                 "replay; use checks.compare_with_reference(...) calls only")


def hidden_calls(source: str) -> list[HiddenCall]:
    """The hidden tests of one grade cell's source, in order (empty when it has none)."""
    calls: list[HiddenCall] = []
    for block in _HIDDEN.findall(source):
        _only_replayable(block)
        rec = _Recorder()
        exec(compile(block, "<hidden tests>", "exec"), {"__builtins__": builtins}, _Names(checks=rec))  # noqa: S102
        calls += rec.calls
    return calls


def hidden_plan(pristine: Any) -> dict[str, list[HiddenCall]]:
    """grade_id -> its hidden calls, for every grade cell of the reference notebook that has any."""
    plan: dict[str, list[HiddenCall]] = {}
    for cell in pristine.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            calls = hidden_calls(cell.source)
            if calls:
                plan[meta["grade_id"]] = calls
    return plan


def setup_sources(pristine: Any) -> list[str]:
    """The chapter's locked set-up cells (imports, the shared model): run before the student's code."""
    return [c.source for c in pristine.cells
            if c.cell_type == "code" and _SETUP.search(str(c.metadata.get("nbgrader", {}).get("grade_id", "")))]


_CODE_SPAN = re.compile(r"`([^`]+)`|<code>(.*?)</code>", re.S)
_CALLED = re.compile(r"(?:\.|\b)([A-Za-z_]\w*)\s*\(|\.([A-Za-z_]\w*)")


def allowed_helpers(pristine: Any) -> set[str]:
    """Function names the chapter hands out: imported by name in its set-up cells, or shown as
    code in its text (``later_repeat_loss(...)``, ``M.icl_positions``). An answer may call them."""
    import ast

    names: set[str] = set()
    for src in setup_sources(pristine):
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom):
                names |= {a.asname or a.name for a in node.names}
    for cell in pristine.cells:
        if cell.cell_type == "markdown":
            for span in _CODE_SPAN.findall(cell.source):
                for m in _CALLED.finditer(" ".join(span)):
                    names.add(m.group(1) or m.group(2))
    return names


def trusted_plan(chapter: str, pristine: Any) -> dict:
    """What the producer needs, as JSON: the check module, the set-up cells, the calls, the helpers."""
    calls, allowed = hidden_plan(pristine), allowed_helpers(pristine)
    checks = checks_module(chapter)
    return {"checks": checks, "setup": setup_sources(pristine),
            "calls": {g: [c.to_json() for c in cs] for g, cs in calls.items()},
            "allowed": sorted(allowed), "grad": list(NEEDS_GRAD),
            "forbidden": _forbidden_keys(checks, calls, allowed)}


def preload_modules(chapter: str) -> list[str]:
    """What a kernel of ``chapter`` and its trusted check both import, slowly: the kernel
    launcher (or the class's zygote) imports them once for both."""
    import importlib

    checks = checks_module(chapter)
    return ["torch", "ipykernel.kernelapp", "matplotlib.pyplot", checks,
            *importlib.import_module(checks).CHECKS.heavy_imports]


def _forbidden_keys(checks_name: str, calls: dict[str, list[HiddenCall]], allowed: set[str]) -> dict[str, list]:
    """exercise -> the code its answer must not reach (:mod:`.reference_use`), as JSON; found once
    per class, here, by running each exercise's reference on its first hidden input."""
    import importlib

    from induction_course.course.grading.reference_use import chapter_forbidden, code_key

    checks = importlib.import_module(checks_name).CHECKS
    cases = {}
    for cs in calls.values():
        for c in cs:
            cases.setdefault(c.exercise, checks.exercises[c.exercise].make_case(seed=c.seed, **c.sizes))
    return {x: sorted(code_key(c) for c in codes) for x, codes in chapter_forbidden(checks, cases, allowed).items()}


def plan_calls(plan: dict) -> dict[str, list[HiddenCall]]:
    """grade_id -> its hidden calls, from a plan as JSON (:func:`trusted_plan`)."""
    return {g: [HiddenCall.from_json(c) for c in cs] for g, cs in plan["calls"].items()}


def checks_module(chapter: str) -> str:
    """The check module of a chapter id (``01_build_transformer`` -> ``...checks.ch01``)."""
    number = chapter.split("_", 1)[0]
    if not number.isdigit():
        raise ValueError(f"not a chapter id: {chapter!r}")
    return f"induction_course.course.checks.ch{int(number):02d}"
