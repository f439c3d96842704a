"""Chapter 3 (finding the heads): the notebook runs, the reference passes, wrong answers lose."""

from __future__ import annotations

import pytest

from _chapter_tests import (check_catalogue, check_wrong_answer, grade_class_of_two, notebook_namespace, run_cell,
                            wrong_answers)
from induction_course import checks_ch03

CHAPTER = "03_finding_heads"
WRONG = wrong_answers("ch03")


@pytest.fixture(scope="module")
def ch3():
    return notebook_namespace(CHAPTER)


def test_solution_notebook_runs_top_to_bottom_quickly(ch3):
    ns, cells, seconds = ch3
    assert len(cells) >= 8
    assert seconds < 60, f"the notebook took {seconds:.0f} s in-process"


def test_reference_passes_every_grade_cell(ch3):
    ns, cells, _ = ch3
    for grade_id, source in cells.items():
        run_cell(source, ns, grade_id)


def test_catalogue_covers_every_exercise_three_times(ch3):
    ns, cells, _ = ch3
    check_catalogue("ch03", cells, ns)


@pytest.mark.parametrize("wrong", WRONG, ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_wrong_answer_fails_its_grade_cell_and_gets_its_hint(wrong, ch3):
    ns, cells, _ = ch3
    check_wrong_answer(wrong, ns, cells, checks_ch03)


def test_shipped_model_heads_are_the_documented_ones(ch3):
    ns = ch3[0]
    assert ns["found"] == {"previous_token": [(0, 1), (0, 2)], "induction": [(1, 0), (1, 1), (1, 2), (1, 3)]}
    diag = ns["diag_top1"]
    assert diag[1:3].min() > 0.5 and diag[0].max() < 0.3  # K-composition through the previous-token heads


def test_not_implemented_says_so():
    def previous_token_score(pattern):
        raise NotImplementedError()

    with pytest.raises(checks_ch03.CheckFailed, match="not implemented yet"):
        checks_ch03.check_previous_token_score(previous_token_score)


@pytest.mark.slow
def test_class_of_two_is_graded_full_marks_and_zero(tmp_path):
    rows = grade_class_of_two(CHAPTER, tmp_path)
    assert rows["alice"]["total"] == rows["alice"]["max"] and float(rows["alice"]["max"]) >= 8
    assert float(rows["bob"]["total"]) == 0
