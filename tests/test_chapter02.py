"""Chapter 2 (training): the notebook runs, the reference passes, wrong answers lose."""

from __future__ import annotations

import pytest

from _chapter_tests import (check_catalogue, check_wrong_answer, grade_class_of_two, notebook_namespace, run_cell,
                            wrong_answers)
from induction_course import checks_ch02

CHAPTER = "02_training"
WRONG = wrong_answers("ch02")


@pytest.fixture(scope="module")
def ch2():
    return notebook_namespace(CHAPTER, env={"NBGRADER_EXECUTION": "autograde"})


def test_solution_notebook_runs_top_to_bottom_quickly(ch2):
    ns, cells, seconds = ch2
    assert len(cells) >= 8
    assert seconds < 60, f"the notebook took {seconds:.0f} s in-process"


def test_reference_passes_every_grade_cell(ch2):
    ns, cells, _ = ch2
    for grade_id, source in cells.items():
        run_cell(source, ns, grade_id)


def test_catalogue_covers_every_exercise_three_times(ch2):
    ns, cells, _ = ch2
    check_catalogue("ch02", cells, ns)


@pytest.mark.parametrize("wrong", WRONG, ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_wrong_answer_fails_its_grade_cell_and_gets_its_hint(wrong, ch2):
    ns, cells, _ = ch2
    check_wrong_answer(wrong, ns, cells, checks_ch02)


def test_the_bump_is_where_induction_forms(ch2):
    ns = ch2[0]
    assert 400 <= ns["bump"] <= 900
    assert ns["laters"][-1] < 0.5 * ns["firsts"][-1]


def test_fixed_offset_cheat_is_exposed_by_varied_lengths(ch2):
    ns = ch2[0]
    gen = __import__("torch").Generator().manual_seed(3)
    probe = ns["repeated_random_tokens"](5, 7, 3, ns["pool"], 0, gen)
    assert ns["later_copy_accuracy"](ns["fixed_offset_predict"](probe, 10), probe, 7) < 0.2
    assert ns["later_copy_accuracy"](ns["induction_predict"](probe), probe, 7) == 1.0


def test_not_implemented_says_so():
    def per_token_loss(logits, tokens):
        raise NotImplementedError()

    with pytest.raises(checks_ch02.CheckFailed, match="not implemented yet"):
        checks_ch02.check_per_token_loss(per_token_loss)


@pytest.mark.slow
def test_class_of_two_is_graded_full_marks_and_zero(tmp_path):
    rows = grade_class_of_two(CHAPTER, tmp_path)
    assert rows["alice"]["total"] == rows["alice"]["max"] and float(rows["alice"]["max"]) >= 8
    assert float(rows["bob"]["total"]) == 0
