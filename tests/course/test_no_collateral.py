"""A wrong or missing answer costs its own exercise only, in every chapter.

The notebook runs top to bottom once with *every* exercise left as released (``raise
NotImplementedError``), and once with every exercise replaced by a catalogued wrong answer; at
each grade cell the student's own answer to *that* exercise alone is put back (in a copy of the
namespace) and the grade cell must pass. So no grade cell may rest on another exercise's answer,
on a variable an earlier exercise or demo cell was supposed to create from it, or on state that
an earlier failing cell left half-made. This is stronger than blanking one exercise at a time
(that is implied) and costs one notebook run per chapter and mode.
"""

from __future__ import annotations

import ast

import nbformat
import pytest

from chapter_harness import CHAPTERS, HANG_LIMIT_S, Chapter, chapter_env, solution_notebook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(HANG_LIMIT_S)]


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _released_solutions(ch: Chapter) -> dict[str, str]:
    """grade_id -> the released (blank) source of every solution cell."""
    nb = nbformat.read(ch.release_ipynb, as_version=4)
    return {_nbgrader(c)["grade_id"]: c.source for c in nb.cells if _nbgrader(c).get("solution")}


def _defined_functions(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]


def _quietly(source: str, ns: dict, name: str) -> None:
    """A demo or answer cell: its failure is the student's own, not the grader's business."""
    try:
        exec(compile(source, f"<{name}>", "exec"), ns)
    except Exception:
        pass


def _grade_cells_with_only_their_own_answer(ch: Chapter, wrong_by_function: dict | None) -> dict[str, str]:
    """Run the chapter with every answer blank (or wrong); grade_id -> error of each grade cell
    that fails although its own exercise's answer was put back."""
    import matplotlib.pyplot as plt

    released = _released_solutions(ch)
    failures: dict[str, str] = {}
    own_answer = ""
    ns: dict = {"__name__": f"__{ch.id}_collateral__"}
    with chapter_env(ch):
        for cell in solution_notebook(ch).cells:
            if cell.cell_type != "code":
                continue
            meta = _nbgrader(cell)
            gid = meta.get("grade_id", "cell")
            if meta.get("solution"):
                own_answer = cell.source
                _quietly(released[gid], ns, f"{gid} (released)")
                for fn_name in _defined_functions(cell.source):
                    if wrong_by_function and fn_name in wrong_by_function:
                        ns[fn_name] = wrong_by_function[fn_name]
            elif meta.get("grade"):
                mine = dict(ns)
                _quietly(own_answer, mine, f"{gid} (own answer)")
                try:
                    exec(compile(cell.source, f"<{gid}>", "exec"), mine)
                except Exception as err:  # noqa: BLE001 - any failure here is collateral
                    failures[gid] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            else:
                _quietly(cell.source, ns, gid)
            plt.close("all")
    return failures


@pytest.mark.parametrize("ch", CHAPTERS, ids=str)
def test_a_blank_exercise_costs_only_its_own_points(ch):
    failures = _grade_cells_with_only_their_own_answer(ch, None)
    assert not failures, (
        f"{ch.id}: with the other exercises unanswered, these grade cells fail although their own "
        f"answer is right (they rest on another exercise's answer): {failures}")


@pytest.mark.parametrize("ch", CHAPTERS, ids=str)
def test_a_wrong_exercise_costs_only_its_own_points(ch):
    wrong: dict = {}
    for entry in ch.wrong_answers:  # the first catalogued mistake of each function
        wrong.setdefault(entry.function, entry.fn)
    failures = _grade_cells_with_only_their_own_answer(ch, wrong)
    assert not failures, (
        f"{ch.id}: with the other exercises wrong, these grade cells fail although their own "
        f"answer is right (they rest on another exercise's answer): {failures}")
