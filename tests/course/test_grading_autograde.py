"""End to end: autograde a class of chapter 1 through nbgrader (slow: one kernel per notebook).

The class (see conftest.make_class): alice = the reference solution, bob = the untouched
release, carol = the reference with a softmax over the wrong axis, and five bad files. It is
graded twice: as a folder of notebooks and as a zip of per-student folders (an LMS export).
"""

from __future__ import annotations

import re

import pytest

from conftest import CH1, ZIPPED

pytestmark = pytest.mark.slow

EXERCISE_COLUMNS = None


def _by_student(rows):
    return {r["student"]: r for r in rows}


def _exercises(rows):
    """The autograded exercises' columns (not the written questions, graded by hand)."""
    return [k for k in rows[0] if k not in ("student", "total", "max", "manual_grading") and "_written_" not in k]


def _written(rows):
    return [k for k in rows[0] if "_written_" in k]


def test_csv_has_one_row_per_student_and_the_right_columns(graded_class):
    rows = graded_class["rows1"]
    assert [r["student"] for r in rows] == sorted(graded_class["kinds"])
    header = list(rows[0])
    assert header[0] == "student" and header[-3:] == ["total", "max", "manual_grading"]
    assert len(_written(rows)) == 2 and header.index(_written(rows)[-1]) < header.index("total")
    assert len(_exercises(rows)) >= 8 and all(c.startswith("ch1_") for c in _exercises(rows))
    for r in rows:
        assert float(r["total"]) == pytest.approx(sum(float(r[c]) for c in _exercises(rows)))
        assert r["max"] == "29"  # 25 autograded, 4 graded by hand


def test_reference_solution_gets_full_marks(graded_class):
    alice = _by_student(graded_class["rows1"])["alice"]
    assert alice["total"] == "25" and alice["manual_grading"] == "pending (4 points)"
    assert [alice[c] for c in _written(graded_class["rows1"])] == ["needs manual grading"] * 2


def test_untouched_release_gets_zero(graded_class):
    bob = _by_student(graded_class["rows1"])["bob"]
    assert float(bob["total"]) == 0 and bob["manual_grading"] == "done"  # unanswered: 0, nothing to grade


def test_a_wrong_answer_loses_its_exercise_only(graded_class):
    carol = _by_student(graded_class["rows1"])["carol"]
    alice = _by_student(graded_class["rows1"])["alice"]
    assert carol["ch1_pattern"] == "0"
    for col in _exercises(graded_class["rows1"]):
        if col != "ch1_pattern":
            # attention_layer and the rest call carol's attention_pattern, but are checked
            # with the reference in its place: one mistake, one exercise.
            assert carol[col] == alice[col], col


@pytest.mark.parametrize("student,phrase", [
    ("dave", "not valid JSON"),
    ("erin", "not a Jupyter notebook"),
    ("frank", "not a Jupyter notebook"),
    ("gina", "chapter 02_train_and_find, not 01_build_transformer"),
    ("hank", "none of the exercises"),
])
def test_bad_submission_gets_zero_and_a_clear_line(graded_class, student, phrase):
    row = _by_student(graded_class["rows1"])[student]
    assert float(row["total"]) == 0
    report = (graded_class["out1"] / "report.txt").read_text()
    line = next(ln for ln in report.splitlines() if ln.startswith(f"{student}:"))
    assert phrase in line
    feedback = (graded_class["out1"] / "feedback" / f"{student}.html").read_text()
    assert "could not be graded" in feedback


def test_every_student_gets_a_feedback_file_without_hidden_test_source(graded_class):
    fb = graded_class["out1"] / "feedback"
    assert sorted(p.stem for p in fb.glob("*.html")) == sorted(graded_class["kinds"])
    alice = (fb / "alice.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in alice and "compare_with_reference" not in alice
    carol = (fb / "carol.html").read_text()
    assert "softmax(dim=-1)" in carol  # the hint of the visible check reaches the student


def test_zip_of_folders_gives_identical_grades(graded_class):
    """Grading again (other layout, zip; part of the class) gives the same grades: deterministic."""
    rows1, rows2 = graded_class["rows1"], graded_class["rows2"]
    assert [r["student"] for r in rows2] == sorted(ZIPPED)
    assert rows2 == [r for r in rows1 if r["student"] in ZIPPED]
    def lines(out):  # a report line names the file it read, which the zip renamed
        text = (out / "report.txt").read_text()
        return [re.sub(r"\[.*?\]|\S*\.ipynb", "FILE", ln) for ln in text.splitlines() if ln.split(":")[0] in ZIPPED]

    assert lines(graded_class["out2"]) == lines(graded_class["out1"])


def test_submissions_are_not_modified(graded_class):
    assert graded_class["before"] == graded_class["after"]
