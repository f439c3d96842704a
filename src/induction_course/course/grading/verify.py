"""The grader's side of the trusted check: judge what the producer recorded, in a process that
never runs student code.

For every hidden test of the plan (:mod:`.hidden_plan`) the grader builds the same seeded input
itself, computes the reference, and checks the student's recorded answer (:mod:`.plain`) against
the exercise's whole contract:

- the comparison of the chapter's check module (values, shapes, known mistakes);
- the kind of answer (a tensor where the reference is a tensor, of the same dtype family; a
  number where it is a number, never a tensor; a tuple or list of the same length);
- the same input gives the same answer (seeds honoured, no hidden global state);
- purity: the inputs come back unchanged, except where the exercise is to change them;
- the exercise's own extra properties (recorded by the producer);
- no use of the exercise's own reference, at run time (recorded) or in the source (:mod:`.reference_use`).

A grade cell earns its points only when every one of its hidden tests passes here.
"""

from __future__ import annotations

import ast
import importlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from induction_course.course.grading.hidden_plan import NEEDS_GRAD, HiddenCall, plan_calls
from induction_course.course.checks.contract import MUTATES, answer_kind_problem, changed_inputs, snapshot
from induction_course.course.grading.plain import Unknown, from_plain
from induction_course.course.grading.producer import as_python

# Static names that only tampering with the grader needs (the profile hook, frames, the kernel's
# input transformers, the interpreter's module table).
# Names (as a name, an attribute or an imported name) and modules (imported) that only tampering
# with the grader needs: the profile hook, frames, code objects, the kernel's input transformers,
# an exit that skips the tests, the grader's own modules. Ordinary names (a student's ``verify``) never match.
TAMPERING_NAMES = ("setprofile", "settrace", "getprofile", "gettrace", "_getframe", "f_back", "f_globals", "f_locals",
                   "__code__", "input_transformers_cleanup", "input_transformers_post", "ast_transformers", "_exit")
TAMPERING_MODULES = ("ctypes", "induction_course.course.grading")


@dataclass
class Verdict:
    """One grade cell: passed, and the first reason why not (one line each)."""
    passed: bool = True
    reasons: list[str] = field(default_factory=list)
    reference_use: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.passed = False
        if reason not in self.reasons:
            self.reasons.append(reason)


def same_answer(a: Any, b: Any) -> bool:
    """Two answers to the same input (rebuilt by :func:`.plain.from_plain`) agree, to float rounding."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            torch.allclose(a.detach().double().nan_to_num(), b.detach().double().nan_to_num(), atol=1e-6, rtol=1e-6))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same_answer(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_answer(a[k], b[k]) for k in a)
    if isinstance(a, torch.nn.Module) and isinstance(b, torch.nn.Module):
        return same_answer(a.state_dict(), b.state_dict())
    if hasattr(a, "AB") and hasattr(b, "AB"):  # FactoredMatrix
        return same_answer(a.AB, b.AB)
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return type(a) is type(b) and (isinstance(a, Unknown) or a == b)


def case_after(case: dict, after: dict) -> tuple[dict, list[str]]:
    """The grader's case with the inputs as the student's call left them; and the inputs it
    changed (bit for bit: an in-place renormalisation changes the last digits only)."""
    before, out = snapshot(case), dict(case)
    rebuilt = {k: from_plain(v) for k, v in (after or {}).items() if k in case}
    changed = changed_inputs(before, rebuilt, exercise="")
    for k, got in rebuilt.items():
        if k not in changed:
            continue
        if isinstance(case[k], torch.nn.Module) and isinstance(got, torch.nn.Module):
            with torch.no_grad():
                case[k].load_state_dict(got.state_dict())
        elif isinstance(got, torch.Tensor):
            out[k] = got
    return out, changed


def _first_line(err: BaseException | str) -> str:
    text = str(err).strip()
    return " ".join(text.splitlines()[:2])[:400]


def check_call(checks: Any, call: HiddenCall, record: dict | None, verdict: Verdict, number: int = 1) -> None:
    """Hidden test ``number`` of a cell, judged here; failures go into ``verdict`` (which names
    the test by its number, never its seed or sizes: the feedback shows it)."""
    from induction_course.course.checks.core import CheckFailed

    where = f"{call.function} (hidden test {number})"
    if record is None or "missing" in record:
        missing = None if record is None else record["missing"]
        verdict.fail(f"{where}: no answer reached the grader (the run stopped first)" if record is None else
                     f"{call.function} is not defined" if missing is None else
                     f"{call.function} is a {missing}, not a function")
        return
    for name in record.get("reference_use") or []:
        verdict.reference_use.append(name) if name not in verdict.reference_use else None
        verdict.fail(f"{call.function} calls the package's reference for this exercise ({name}): 0 points")
    if record.get("tampered"):
        verdict.fail(f"{call.function} switched off the grader's monitor: 0 points")
    if record.get("error"):
        verdict.fail(f"{where} raised {_first_line(record['error'])}")
        return
    ex = checks.exercises[call.exercise]
    case = ex.make_case(seed=call.seed, **call.sizes)
    with checks.grad_mode():
        expected = ex.reference(case)
    actual = from_plain(record.get("output"))
    problem = answer_kind_problem(call.exercise, actual, expected)
    if problem:
        verdict.fail(f"{where}: {problem}")
        return
    case, changed = case_after(case, record.get("after", {}))
    bad = [k for k in changed if k not in MUTATES.get(call.exercise, set())]
    if bad:
        verdict.fail(f"{where}: changed its input{'s' if len(bad) > 1 else ''} {', '.join(bad)} in place "
                     "(a function must leave its inputs as they were)")
    try:
        with checks.grad_mode():
            ex.compare(call.exercise, actual, expected, case)
    except CheckFailed as err:
        verdict.fail(f"{where}: {_first_line(err)}")
        return
    except Exception as err:  # noqa: BLE001 - an answer the comparison cannot read is a wrong answer
        verdict.fail(f"{where}: the answer could not be compared ({type(err).__name__}: {_first_line(err)})")
        return
    if call.exercise in NEEDS_GRAD and isinstance(actual, torch.Tensor) and not actual.requires_grad:
        verdict.fail(f"{where}: the result carries no gradient back to the inputs (computed under "
                     "torch.no_grad() or detached?): training could not learn from it")
    if not same_answer(actual, from_plain(record.get("again"))):
        verdict.fail(f"{where}: the same input gave a different answer the second time (use the seed or "
                     "generator you are given, not global random state)")
    if record.get("properties"):
        verdict.fail(f"{where}: {_first_line(record['properties'])}")


def static_findings(sources: list[str], plan: dict, checks: Any) -> tuple[dict[str, list[str]], list[str]]:
    """(grade_id -> reference uses seen in the source, tampering names seen in the student's code)."""
    from induction_course.course.grading.reference_use import forbidden_names, resolve_codes, static_uses

    setup = plan["setup"]
    trees, student = [], []
    for i, src in enumerate([*setup, *sources]):
        try:  # IPython syntax (a magic) as the kernel and the producer see it: a magic hides nothing
            tree = ast.parse(as_python(src))
        except SyntaxError:
            continue
        trees.append(tree)
        if i >= len(setup):
            student.append(tree)
    tampering = _tampering(student)
    names = {x: forbidden_names(resolve_codes(keys, checks)) for x, keys in plan["forbidden"].items()}
    uses: dict[str, list[str]] = {}
    for gid, calls in plan["calls"].items():
        uses[gid] = []
        for call in calls:
            found = static_uses(trees, call["function"], names.get(call["exercise"], set()), plan["checks"])
            uses[gid] += [f for f in found if f not in uses[gid]]
    return uses, tampering


def _tampering(trees: list[ast.Module]) -> list[str]:
    """The tampering names and modules (:data:`TAMPERING_NAMES`, :data:`TAMPERING_MODULES`) the code uses."""
    found: list[str] = []
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Name):
            hits = [node.id] if node.id in TAMPERING_NAMES else []
        elif isinstance(node, ast.Attribute):
            hits = [node.attr] if node.attr in TAMPERING_NAMES else []
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None)
            imported = [a.name for a in node.names]
            modules = [*imported, *([module] if module else []), *(f"{module}.{n}" for n in imported if module)]
            hits = [n for n in imported if n in TAMPERING_NAMES]
            hits += [m for m in modules if any(m == t or m.startswith(t + ".") for t in TAMPERING_MODULES)]
        else:
            continue
        found += [h for h in hits if h not in found]
    return found


def verify(plan: dict, produced: dict | None, sources: list[str]) -> dict[str, Verdict]:
    """grade_id -> verdict, for every grade cell of the plan (:func:`.hidden_plan.trusted_plan`)."""
    checks = importlib.import_module(plan["checks"]).CHECKS
    uses, tampering = static_findings(sources, plan, checks)
    results = (produced or {}).get("results", {})
    verdicts: dict[str, Verdict] = {}
    for gid, calls in plan_calls(plan).items():
        v = verdicts[gid] = Verdict()
        for name in uses.get(gid, []):
            v.reference_use.append(name) if name not in v.reference_use else None
            v.fail(f"{calls[0].function} uses {name}, the package's reference for this exercise: 0 points")
        if tampering:
            v.fail(f"the notebook tampers with the grader ({', '.join(tampering)}): 0 points")
        recs = results.get(gid, [])
        for i, call in enumerate(calls):
            check_call(checks, call, recs[i] if i < len(recs) else None, v, i + 1)
    return verdicts
