"""Chapter 5 (ablations): the reference notebook runs, every wrong answer loses its points, the
reference passes every grade cell, and a class of two grades to full marks and zero."""

from __future__ import annotations

from collections import Counter

import pytest

from _chapter_tests import execute_in_process, grade_cells, grade_class_of_two, hidden_part, solution_notebook
from conftest import load_wrong_answers
from induction_course import checks_ch05 as checks

CHAPTER = "05_ablations"
WRONG = load_wrong_answers("ch05").WRONG_ANSWERS


@pytest.fixture(scope="module")
def nb():
    return solution_notebook(CHAPTER)


@pytest.fixture(scope="module")
def cells(nb):
    return grade_cells(nb)


@pytest.fixture(scope="module")
def executed(nb):
    return execute_in_process(nb, CHAPTER)


@pytest.fixture(scope="module")
def ns(executed):
    return executed[0]


def test_solution_notebook_runs_top_to_bottom_quickly(executed):
    _, seconds = executed
    print(f"{CHAPTER} ran in {seconds:.1f} s")
    assert seconds < 90


def test_notebook_shows_the_papers_findings(ns):
    effects = dict(ns["rows"])
    zero, knock = effects["induction heads, zero"], effects["induction heads, stripe knockout"]
    assert zero > 3 and knock > 0.75 * zero
    control = [d for label, d in ns["rows"] if label.startswith("random control")][0]
    assert control < 0.2 * zero
    assert ns["sweep_ind"][0] < 0.5 and ns["sweep_ind"][-1] > 3


def test_reference_passes_every_grade_cell(ns, cells):
    for grade_id, source in cells.items():
        exec(compile(source, f"<{grade_id}>", "exec"), dict(ns))


def test_at_least_seven_graded_exercises(cells):
    assert len(cells) >= 7


def test_catalogue_covers_every_exercise_three_times(cells):
    counts = Counter(w.grade_id for w in WRONG)
    assert set(counts) == set(cells)
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("wrong", WRONG, ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_wrong_answer_fails_its_grade_cell(wrong, ns, cells):
    env = dict(ns)
    env[wrong.function] = wrong.fn
    with pytest.raises(Exception):
        exec(compile(cells[wrong.grade_id], f"<{wrong.grade_id}>", "exec"), env)
    env = dict(ns)
    env[wrong.function] = wrong.fn
    with pytest.raises(Exception):
        exec(compile(hidden_part(cells[wrong.grade_id]), f"<{wrong.grade_id} hidden>", "exec"), env)


@pytest.mark.parametrize("wrong", [w for w in WRONG if w.hint], ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_known_mistake_gets_its_hint(wrong):
    with pytest.raises(checks.CheckFailed) as info:
        checks.run_visible_checks(wrong.function, wrong.fn)
    assert str(info.value).startswith(f"{wrong.function}: ")
    assert wrong.hint in str(info.value), f"{wrong.why}: message was\n{info.value}"


def test_not_implemented_says_so():
    def zero_ablation(model, tokens, layer, head):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_zero_ablation(zero_ablation)


@pytest.mark.slow
def test_class_of_two_gets_full_marks_and_zero(tmp_path):
    rows = grade_class_of_two(CHAPTER, tmp_path)
    assert rows["alice"]["total"] == rows["alice"]["max"] and float(rows["alice"]["max"]) > 0
    assert float(rows["bob"]["total"]) == 0
