"""The student's side of the trusted check: call their functions on the grader's inputs, record.

    python -m induction_course.course.grading.producer PLAN.json NOTEBOOK.ipynb OUT.pt

Run in the student's kernel sandbox by the kernel launcher, in a process of its own once the
kernel has ended (``kernel_launcher.py --producer``; the command line above does the same): it runs the
chapter's set-up cells (from the grader's plan, not the notebook), then the student's solution
cells (each compiled as ``<student cell N>``), then, for every hidden test of the plan, builds the
seeded input, calls the student's function on it (twice, on two fresh copies: same input, same
answer) with the reference of the chapter's other exercises in place, and writes what came back
(:func:`.plain.to_plain`), the inputs as the call left them, any exception, and the package
functions the call reached that are the exercise's own reference (:mod:`.reference_use`).

It judges nothing: the grader compares, in its own process (:mod:`.verify`). Whatever the
student's code does here (patching torch, the checks, this module) changes only data the
grader checks against its own references.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import resource
import sys
from typing import Any

from induction_course.course.grading.reference_use import STUDENT_FILE  # the runtime monitor knows student frames by it



def solution_sources(nb: dict) -> list[str]:
    """The student's code: every code cell nbgrader marks as a solution (not the grade cells)."""
    out = []
    for cell in nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "code" and meta.get("solution") is True and not meta.get("grade"):
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return out


def as_python(src: str) -> str:
    """IPython syntax (magics, ``!``) turned into calls, as a kernel would see it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(src)
    except Exception:  # noqa: BLE001 - without IPython the cell runs as plain Python
        return src


def run_cells(setup: list[str], student: list[str]) -> tuple[dict, list[str]]:
    """The namespace after the set-up cells and the student's cells; errors by cell."""
    ns: dict[str, Any] = {"__name__": "__main__", "get_ipython": lambda: None}
    errors: list[str] = []
    for i, src in enumerate(setup):
        exec(compile(as_python(src), f"<setup cell {i}>", "exec"), ns)  # noqa: S102 - the course's own code
    for i, src in enumerate(student):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(as_python(src), f"{STUDENT_FILE} {i}>", "exec"), ns)  # noqa: S102
        except BaseException as err:  # noqa: BLE001 - SystemExit too: the rest still gets graded
            errors.append(f"solution cell {i + 1}: {type(err).__name__}: {err}"[:500])
    return ns, errors


def _case_state(case: dict) -> dict:
    """The tensors and models of a case (its state after a call: purity, and side effects such
    as an optimiser step that the comparison reads)."""
    import torch

    from induction_course.course.grading.plain import to_plain

    return {k: to_plain(v) for k, v in case.items() if isinstance(v, (torch.Tensor, torch.nn.Module))}


def call_once(checks: Any, call: dict, fn: Any, monitor: Any, grad: bool = False) -> dict:
    """One call of the student's function on a fresh seeded input; what came back, as data.
    With ``grad`` the float inputs require grad (does a gradient reach them?)."""
    import torch

    from induction_course.course.checks.core import CheckFailed, call_args
    from induction_course.course.grading.plain import to_plain

    ex = checks.exercises[call["exercise"]]
    case = ex.make_case(seed=call["seed"], **call["sizes"])
    if grad:
        case = {k: v.detach().clone().requires_grad_(True) if isinstance(v, torch.Tensor) and v.is_floating_point()
                else v for k, v in case.items()}
    out: dict[str, Any] = {"error": None}
    try:
        with checks.reference_pieces(fn, keep=call["exercise"]), checks.grad_mode(), monitor, \
                contextlib.redirect_stdout(io.StringIO()):
            answer = fn(*call_args(case))
        out["output"] = to_plain(answer)
    except CheckFailed as err:
        out["error"] = f"CheckFailed: {err}"[:1000]
    except BaseException as err:  # noqa: BLE001 - a crash, an exit, a KeyboardInterrupt: all wrong answers
        out["error"] = f"{type(err).__name__}: {err}"[:1000]
    out["after"] = _case_state(case)
    return out


def properties(checks: Any, call: dict, fn: Any) -> str | None:
    """The exercise's extra calls (``check_properties``), run here; their verdict travels as data."""
    from induction_course.course.checks.core import CheckFailed

    ex = checks.exercises[call["exercise"]]
    if ex.check_properties is None:
        return None

    def again(*a):
        with checks.reference_pieces(fn, keep=call["exercise"]), checks.grad_mode():
            return fn(*a)

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ex.check_properties(call["exercise"], again, ex.make_case(seed=call["seed"], **call["sizes"]))
    except CheckFailed as err:
        return str(err)[:1000]
    except BaseException as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"[:1000]
    return None


def produce(plan: dict, nb: dict) -> dict:
    """Run the student's code and every planned call; the record the grader verifies."""
    from induction_course.course.grading.reference_use import Monitor, resolve_codes

    checks = importlib.import_module(plan["checks"]).CHECKS
    # resolved before any student code runs: a patched module cannot change what is watched
    forbidden = {x: resolve_codes(keys, checks) for x, keys in plan["forbidden"].items()}
    monitors = {gid: [Monitor(forbidden.get(c["exercise"], set())) for c in calls]
                for gid, calls in plan["calls"].items()}
    ns, errors = run_cells(plan["setup"], solution_sources(nb))
    results: dict[str, list[dict]] = {}
    for gid, calls in plan["calls"].items():
        results[gid] = []
        for i, call in enumerate(calls):
            fn, monitor = ns.get(call["function"]), monitors[gid][i]
            if not callable(fn):
                results[gid].append({"missing": type(fn).__name__ if call["function"] in ns else None})
                continue
            grad = call["exercise"] in plan.get("grad", [])
            first = call_once(checks, call, fn, monitor, grad)
            first["again"] = call_once(checks, call, fn, monitor, grad).get("output")
            first["properties"] = properties(checks, call, fn)
            first["reference_use"] = list(monitor.used)
            first["tampered"] = monitor.tampered
            results[gid].append(first)
    return {"cell_errors": errors, "results": results}


def _write_record(rec: dict, out_path: str) -> None:
    """``torch.save`` to ``out_path`` through a fresh file: whatever was there (a link, a folder
    the student's code left) is replaced, never written through."""
    import os
    import shutil

    import torch

    part = out_path + ".part"
    for path in (part, out_path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        torch.save(rec, fh)
    os.replace(part, out_path)


def record(plan: dict, nb_path: str, out_path: str, cpu_s: int = 600) -> int:
    """Run :func:`produce` on the notebook at ``nb_path`` within ``cpu_s`` CPU seconds and write
    the record to ``out_path``; the exit code (0)."""
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]  # the kernel launcher's, when it started us
    cpu_s = cpu_s if hard == resource.RLIM_INFINITY else min(cpu_s, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))  # runaway student code ends here
    with open(nb_path, encoding="utf-8") as fh:
        nb = json.load(fh)
    import torch

    torch.manual_seed(0)
    _write_record(produce(plan, nb), out_path)
    return 0


def main(argv: list[str]) -> int:
    plan_path, nb_path, out_path = argv[:3]
    with open(plan_path, encoding="utf-8") as fh:
        plan = json.load(fh)
    return record(plan, nb_path, out_path, int(argv[3]) if len(argv) > 3 else 600)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
