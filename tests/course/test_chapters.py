"""The tests every chapter gets, parametrised over the five chapters (``chapter_harness.CHAPTERS``).

Each chapter's solution notebook (built from ``solutions/NN/NN.py``) is executed once,
in-process; its grade cells (visible checks and hidden tests) are then run in its namespace,
with the reference solution and with every entry of the wrong-answer catalogue
``graders/wrong_answers/chNN.py`` in place of the student's function. The class-of-two test
autogrades the reference and the untouched release through nbgrader, end to end.
Tests of one chapter only live in ``test_chapterNN.py``.

Run one chapter: ``pytest tests/course/test_chapters.py -k 04_metrics``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from chapter_harness import CHAPTERS, HANG_LIMIT_S, executed, grade_class_of_two, hidden_part, param_id, run_cell, \
    solution_notebook, with_wrong_answer, written_cells, written_points

pytestmark = pytest.mark.timeout(HANG_LIMIT_S)  # a hang fails the test; speed lives in benchmarks/

over_chapters = pytest.mark.parametrize("chapter", CHAPTERS, ids=str)
over_exercises = pytest.mark.parametrize(
    "chapter, exercise", [(c, e) for c in CHAPTERS for e in c.exercises], ids=str)
over_wrong_answers = pytest.mark.parametrize(
    "chapter, wrong", [(c, w) for c in CHAPTERS for w in c.wrong_answers], ids=param_id)
over_hinted_wrong_answers = pytest.mark.parametrize(
    "chapter, wrong", [(c, w) for c in CHAPTERS for w in c.wrong_answers if w.hint], ids=param_id)


# ----------------------------------------------------------------- the reference solution
@over_chapters
def test_solution_notebook_runs_top_to_bottom(chapter):
    run = executed(chapter)  # first use: executes the notebook, within the hang limit
    print(f"{chapter} ran in {run.seconds:.1f} s")
    assert run.code_cells > 0 and run.cells


@over_chapters
def test_enough_graded_exercises(chapter):
    assert len(executed(chapter).cells) >= chapter.min_exercises


@over_chapters
def test_reference_passes_every_grade_cell(chapter):
    run = executed(chapter)
    for grade_id, source in run.cells.items():
        run_cell(source, run.ns, grade_id)


@over_exercises
def test_reference_passes_visible_checks(chapter, exercise, capsys):
    chapter.checks.run_visible_checks(exercise, executed(chapter).ns[exercise])
    assert f"✔ {exercise}" in capsys.readouterr().out


@over_exercises
def test_reference_passes_compare_with_reference_on_a_fresh_seed(chapter, exercise):
    chapter.checks.compare_with_reference(exercise, executed(chapter).ns[exercise], seed=12345)


# -------------------------------------------------------------------- the check helpers
@over_chapters
def test_every_check_helper_exists(chapter):
    for name in chapter.checks.EXERCISES:
        assert callable(getattr(chapter.checks, f"check_{name}")), name


@over_chapters
def test_unknown_exercise_is_a_key_error(chapter):
    with pytest.raises(KeyError, match="unknown exercise"):
        chapter.checks.compare_with_reference("nope", print, seed=0)


@over_exercises
def test_not_implemented_says_so(chapter, exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(chapter.checks.CheckFailed, match="not implemented yet"):
        getattr(chapter.checks, f"check_{exercise}")(stub)


# ---------------------------------------------------------------- the wrong-answer catalogue
@over_chapters
def test_catalogue_covers_every_exercise_three_times(chapter):
    cells = executed(chapter).cells
    counts = Counter(w.grade_id for w in chapter.wrong_answers)
    assert set(counts) <= set(cells), f"wrong answers for no grade cell: {set(counts) - set(cells)}"
    assert not set(cells) - set(counts), f"grade cells without wrong answers: {set(cells) - set(counts)}"
    assert min(counts.values()) >= 3, counts


@over_chapters
def test_catalogue_functions_exist_in_the_notebook(chapter):
    ns = executed(chapter).ns
    for w in chapter.wrong_answers:
        assert callable(ns.get(w.function)), f"{w.function} is not defined by the notebook"


@over_wrong_answers
def test_wrong_answer_fails_its_grade_cell(chapter, wrong):
    run = executed(chapter)
    with pytest.raises(Exception):
        run_cell(run.cells[wrong.grade_id], with_wrong_answer(run.ns, wrong), wrong.grade_id)


@over_wrong_answers
def test_hidden_tests_alone_catch_the_wrong_answer(chapter, wrong):
    """The hidden part, run without the visible checks, fails as well (fresh inputs, other sizes)."""
    run = executed(chapter)
    with pytest.raises(Exception):
        run_cell(hidden_part(run.cells[wrong.grade_id]), with_wrong_answer(run.ns, wrong), wrong.grade_id + " hidden")


@over_hinted_wrong_answers
def test_known_mistake_gets_its_hint(chapter, wrong):
    with pytest.raises(chapter.checks.CheckFailed) as info:
        chapter.checks.run_visible_checks(wrong.function, wrong.fn)
    message = str(info.value)
    assert message.startswith(f"{wrong.function}: "), message
    assert wrong.hint in message, f"{wrong.why}: message was\n{message}"


# ------------------------------------------------------------------ autograding end to end
# Chapter 1's reference and release are autograded, in a larger class, by test_grading_autograde.py.
@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS[1:], ids=str)
def test_class_of_two_gets_full_marks_and_zero(chapter, tmp_path):
    rows = grade_class_of_two(chapter, tmp_path)
    alice, bob = rows["alice"], rows["bob"]
    by_hand = written_points(chapter)  # the reference's written answers wait for the instructor
    assert float(alice["total"]) == float(alice["max"]) - by_hand and float(alice["max"]) >= chapter.min_exercises
    assert alice["manual_grading"] == f"pending ({by_hand:g} points)"
    assert float(bob["total"]) == 0 and bob["manual_grading"] == "done"  # blank answers: 0 at once


# ------------------------------------------------------------------ written questions (graded by hand)
@over_chapters
def test_written_questions_have_points_a_question_and_a_rubric(chapter):
    """1-3 written questions near the end (after the last exercise, before the summary): each a
    locked markdown question stating its points, then an answer cell whose solution block holds a
    model answer and a rubric."""
    import re

    cells = solution_notebook(chapter).cells
    written = written_cells(solution_notebook(chapter))
    assert 1 <= len(written) <= 3, f"{chapter}: {len(written)} written questions"
    last_exercise = max(i for i, c in enumerate(cells) if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))
    summary = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Summarise in your own words" in c.source)
    tag = "ch" + str(int(chapter.id[:2]))
    for i, cell in written:
        meta = cell.metadata["nbgrader"]
        gid, points = meta["grade_id"], meta["points"]
        assert gid.startswith(f"{tag}_written_") and points > 0 and meta["solution"] and not meta["locked"], gid
        assert last_exercise < i < summary, f"{gid}: written questions go after the last exercise, before the summary"
        question = cells[i - 1]
        assert question.cell_type == "markdown" and question.metadata["nbgrader"]["locked"], f"{gid}: no locked question"
        assert re.search(rf"\({points:g} points?\)", question.source), f"{gid}: the question states its {points} points"
        block = cell.source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
        assert cell.source.strip().startswith("### BEGIN SOLUTION") and cell.source.strip().endswith("### END SOLUTION")
        assert "**Model answer.**" in block and f"**Rubric ({points:g} point" in block, f"{gid}: model answer and rubric"


@over_chapters
def test_written_answers_and_rubrics_stay_out_of_the_student_notebook(chapter):
    """The release's answer cells hold only nbgrader's stub; no line of a model answer or rubric is
    anywhere in chapters/."""
    import nbformat

    from induction_course.course.grading.written import TEXT_STUB

    release = nbformat.read(chapter.release_ipynb, as_version=4)
    released = dict((c.metadata["nbgrader"]["grade_id"], c) for _, c in written_cells(release))
    shipped = "\n".join([c.source for c in release.cells] + [p.read_text(encoding="utf-8", errors="replace")
                        for p in chapter.release_ipynb.parent.rglob("*") if p.is_file()])
    for _, cell in written_cells(solution_notebook(chapter)):
        gid = cell.metadata["nbgrader"]["grade_id"]
        assert released[gid].source == TEXT_STUB and not released[gid].metadata["nbgrader"]["locked"], gid
        block = cell.source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
        for line in (ln.strip() for ln in block.splitlines()):
            assert len(line) < 20 or line not in shipped, f"{gid}: {line!r} reached chapters/"
        assert "Rubric" not in shipped and "Model answer" not in shipped


# ------------------------------------------------------------ help before the first failure
_HELP_IN_PROGRESS = {  # chapters whose owners are still adding hints (issue 16)
}


@pytest.mark.parametrize("chapter", [
    pytest.param(c, id=str(c), marks=[pytest.mark.skip(reason=_HELP_IN_PROGRESS[c.id])] if c.id in _HELP_IN_PROGRESS else [])
    for c in CHAPTERS])
def test_every_exercise_has_hints_and_expected_output(chapter):
    """In the release notebook, the prose of every exercise (the markdown between the previous code
    cell and its solution cell) has the difficulty/importance line, at least one collapsible hint
    and an expected output (a number or a picture of the correct plot, which must exist)."""
    import re

    import nbformat

    nb = nbformat.read(chapter.release_ipynb, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution") or cell.cell_type != "code":
            continue
        prose = []
        for prev in reversed(nb.cells[:i]):
            if prev.cell_type == "code":
                break
            prose.insert(0, prev.source)
        text = "\n".join(prose)
        gid = meta["grade_id"]
        if not re.search(r"\*\*Difficulty\*\* [●○]{5} · \*\*Importance\*\* [●○]{5} · about \d+ minutes", text):
            problems.append(f"{gid}: no '**Difficulty** ●●○○○ · **Importance** ●●●○○ · about N minutes' line")
        hints = re.findall(r"<details><summary>Hint (\d)</summary>(.*?)</details>", text, re.S)
        if not 1 <= len(hints) <= 3 or [int(n) for n, _ in hints] != list(range(1, len(hints) + 1)):
            problems.append(f"{gid}: needs 1-3 hints, numbered from 1, in <details> blocks")
        if "**Expected output**" not in text:
            problems.append(f"{gid}: no '**Expected output**'")
        for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", text):
            png = chapter.release_ipynb.parent / image
            if not png.is_file() or png.stat().st_size > 100_000:
                problems.append(f"{gid}: expected-output image {image} missing from chapters/{chapter.id} or over 100 kB")
    assert not problems, "\n".join(problems)
