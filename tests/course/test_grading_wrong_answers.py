"""Every wrong answer of the catalogue loses the points of its exercise.

Fast path: the grade cells (visible checks and hidden tests) are taken from the solution
notebook and executed in-process, in the namespace of the executed reference notebook with
the student's function replaced by the wrong one. ``test_grading_autograde.py`` proves the
same wiring end to end through nbgrader for one of them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import load_wrong_answers

WRONG = load_wrong_answers("ch01").WRONG_ANSWERS


def test_reference_passes_every_grade_cell(ch1_namespace, ch1_grade_cells):
    for grade_id, source in ch1_grade_cells.items():
        ns = dict(ch1_namespace)
        exec(compile(source, f"<{grade_id}>", "exec"), ns)


def test_catalogue_covers_every_exercise_three_times(ch1_grade_cells):
    counts = Counter(w.grade_id for w in WRONG)
    assert set(counts) == set(ch1_grade_cells), "every grade cell needs wrong answers, and only grade cells"
    assert min(counts.values()) >= 3, counts


def test_catalogue_functions_exist_in_the_notebook(ch1_namespace):
    for w in WRONG:
        assert callable(ch1_namespace.get(w.function)), f"{w.function} is not defined by the notebook"


@pytest.mark.parametrize("wrong", WRONG, ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_wrong_answer_fails_its_grade_cell(wrong, ch1_namespace, ch1_grade_cells):
    ns = dict(ch1_namespace)
    ns[wrong.function] = wrong.fn
    with pytest.raises(Exception):
        exec(compile(ch1_grade_cells[wrong.grade_id], f"<{wrong.grade_id}>", "exec"), ns)


@pytest.mark.parametrize("wrong", WRONG, ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_hidden_tests_alone_catch_wrong_answers_too(wrong, ch1_namespace, ch1_grade_cells):
    """The hidden part, run without the visible checks, fails as well (fresh inputs, other sizes)."""
    src = ch1_grade_cells[wrong.grade_id]
    hidden = src.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
    ns = dict(ch1_namespace)
    ns[wrong.function] = wrong.fn
    with pytest.raises(Exception):
        exec(compile(hidden, f"<{wrong.grade_id} hidden>", "exec"), ns)
