"""Shared body of the per-chapter grading tests (chapters 2 to 5).

``standard_tests(chapter, tag, checks_module)`` returns the fixtures (``executed``, ``ns``,
``cells``) and tests that every ``tests/test_chapterNN.py`` binds with ``globals().update(...)``:
the solution notebook runs in-process within a time budget, the reference passes every grade
cell, every wrong answer of ``graders/wrong_answers/chNN.py`` fails its grade cell (whole cell,
and hidden part alone) and gets its hint, and a class of two (the reference, the untouched
release) is autograded end to end through nbgrader. Chapter-specific tests use ``ns``.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections import Counter

import pytest

from conftest import ROOT, load_wrong_answers


def solution_notebook(chapter: str):
    """The reference notebook of ``chapter``, built from its percent script."""
    from induction_course.course.grading import notebook_from_script

    return notebook_from_script(ROOT / "solutions" / chapter / f"{chapter}.py")


def grade_cells(nb) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def execute_in_process(nb, name: str, env: dict | None = None) -> tuple[dict, float]:
    """Execute every code cell of ``nb`` in one namespace (with ``env`` set meanwhile); returns
    (namespace, seconds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    ns: dict = {"__name__": f"__{name}_notebook__"}
    start = time.perf_counter()
    try:
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, f"<{name} cell {cell.get('id')}>", "exec"), ns)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        plt.close("all")
    return ns, time.perf_counter() - start


def notebook_namespace(chapter: str, env: dict | None = None) -> tuple[dict, dict, float]:
    """The solution notebook executed in-process: (namespace, grade cells by grade_id, seconds)."""
    nb = solution_notebook(chapter)
    ns, seconds = execute_in_process(nb, chapter, env)
    return ns, grade_cells(nb), seconds


def run_cell(source: str, ns: dict, name: str) -> None:
    exec(compile(source, f"<{name}>", "exec"), dict(ns))


def hidden_part(source: str) -> str:
    return source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]


def wrong_answers(tag: str):
    return load_wrong_answers(tag).WRONG_ANSWERS


def check_catalogue(tag: str, grade_cells: dict, ns: dict) -> None:
    wrong = wrong_answers(tag)
    counts = Counter(w.grade_id for w in wrong)
    assert set(counts) <= set(grade_cells), set(counts) - set(grade_cells)
    missing = set(grade_cells) - set(counts)
    assert not missing, f"grade cells without wrong answers: {missing}"
    assert min(counts.values()) >= 3, counts
    for w in wrong:
        assert callable(ns.get(w.function)), f"{w.function} is not defined by the notebook"


def check_wrong_answer(w, ns: dict, grade_cells: dict, checks_module) -> None:
    bad = dict(ns)
    bad[w.function] = w.fn
    with pytest.raises(Exception):
        run_cell(grade_cells[w.grade_id], bad, w.grade_id)
    with pytest.raises(Exception):
        run_cell(hidden_part(grade_cells[w.grade_id]), bad, w.grade_id + " hidden")
    if w.hint:
        with pytest.raises(checks_module.CheckFailed) as info:
            checks_module.run_visible_checks(w.function, w.fn)
        message = str(info.value)
        assert message.startswith(f"{w.function}: "), message
        assert w.hint in message, f"{w.why}: message was\n{message}"


def grade_class_of_two(chapter: str, tmp_path) -> dict[str, dict]:
    from induction_course.course.grading import grade

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copyfile(ROOT / "solutions" / chapter / f"{chapter}.ipynb", subs / "alice.ipynb")
    shutil.copyfile(ROOT / "chapters" / chapter / f"{chapter}.ipynb", subs / "bob.ipynb")
    out = tmp_path / "out"
    grade(chapter, subs, out, root=ROOT, quiet=True)
    with open(out / "grades.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def standard_tests(chapter: str, tag: str, checks_module, *, env: dict | None = None, max_seconds: float = 90,
                   min_exercises: int = 7) -> dict:
    """The fixtures and tests every chapter has; see the module docstring."""

    @pytest.fixture(scope="module")
    def executed():
        return notebook_namespace(chapter, env)

    @pytest.fixture(scope="module")
    def ns(executed):
        return executed[0]

    @pytest.fixture(scope="module")
    def cells(executed):
        return executed[1]

    def test_solution_notebook_runs_top_to_bottom_quickly(executed):
        seconds = executed[2]
        print(f"{chapter} ran in {seconds:.1f} s")
        assert seconds < max_seconds, f"the notebook took {seconds:.0f} s in-process"

    def test_enough_graded_exercises(cells):
        assert len(cells) >= min_exercises

    def test_reference_passes_every_grade_cell(ns, cells):
        for grade_id, source in cells.items():
            run_cell(source, ns, grade_id)

    def test_catalogue_covers_every_exercise_three_times(ns, cells):
        check_catalogue(tag, cells, ns)

    @pytest.mark.parametrize("wrong", wrong_answers(tag), ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
    def test_wrong_answer_fails_its_grade_cell_and_gets_its_hint(wrong, ns, cells):
        check_wrong_answer(wrong, ns, cells, checks_module)

    @pytest.mark.slow
    def test_class_of_two_gets_full_marks_and_zero(tmp_path):
        rows = grade_class_of_two(chapter, tmp_path)
        assert rows["alice"]["total"] == rows["alice"]["max"] and float(rows["alice"]["max"]) >= min_exercises
        assert float(rows["bob"]["total"]) == 0

    return {name: obj for name, obj in locals().items()
            if name.startswith("test_") or name in ("executed", "ns", "cells")}
