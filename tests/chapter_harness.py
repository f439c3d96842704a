"""Shared pieces of the per-chapter grading tests (chapters 4 and 5).

``build_chapter_tests(chapter, tag, checks_module)`` returns test functions and fixtures that a
``tests/test_chapterNN.py`` binds to module names: the solution notebook run in-process (timed),
the grade cells, the wrong-answer catalogue, and one end-to-end ``grading.grade`` of a class of
two (the reference and the untouched release).
"""

from __future__ import annotations

import csv
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, load_wrong_answers


def solution_notebook(chapter: str):
    from induction_course.grading import notebook_from_script

    return notebook_from_script(ROOT / "solutions" / chapter / f"{chapter}.py")


def grade_cells(nb) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def execute_in_process(nb, name: str) -> tuple[dict, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns: dict = {"__name__": f"__{name}_notebook__"}
    t0 = time.perf_counter()
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, f"<{name} cell {cell.get('id')}>", "exec"), ns)
    plt.close("all")
    return ns, time.perf_counter() - t0


def hidden_part(source: str) -> str:
    return source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]


def grade_class_of_two(chapter: str, tmp: Path) -> dict[str, dict]:
    from induction_course.grading import grade

    flat = tmp / "class"
    flat.mkdir()
    shutil.copyfile(ROOT / "solutions" / chapter / f"{chapter}.ipynb", flat / "alice.ipynb")
    shutil.copyfile(ROOT / "chapters" / chapter / f"{chapter}.ipynb", flat / "bob.ipynb")
    grade(chapter, flat, tmp / "out", root=ROOT, quiet=True)
    with open(tmp / "out" / "grades.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


__all__ = ["ROOT", "load_wrong_answers", "solution_notebook", "grade_cells", "execute_in_process",
           "hidden_part", "grade_class_of_two", "Counter", "pytest"]
