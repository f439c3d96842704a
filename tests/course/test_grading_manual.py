"""Written questions graded by hand: ``grade`` leaves them pending, ``written export`` / ``written
import`` carry the instructor's scores into the gradebook and grades.csv.

The fast tests build a small class by hand (a gradebook made with nbgrader's API, the files
``grade`` leaves in ``--out``); the slow one grades a real class of chapter 1 end to end.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import CH1, ROOT
from induction_course.course.cli import main
from induction_course.course.grading.course_dir import COURSE_ID, with_interpreter_bin
from induction_course.course.grading.outputs import GradeResult, manual_status, write_grades_csv
from induction_course.course.grading.written import (
    TEXT_STUB,
    StudentAnswers,
    WrittenQuestion,
    answer_text,
    keep_for_manual_grading,
    pending_scores,
    read_manifest,
    written_answers,
    written_questions,
)
from induction_course.course.grading.written_csv import EXPORT_COLUMNS, export_answers, import_scores

CHAPTER = "09_test"
QUESTIONS = [
    WrittenQuestion("ch9_written_a", 2.0, "**Written question 1 (2 points).** Why?", "**Model answer.** Because.\n\n"
                    "**Rubric (2 points).** 1 point: because; 1 point: a number."),
    WrittenQuestion("ch9_written_b", 1.0, "**Written question 2 (1 point).** How?", "**Model answer.** So.\n\n"
                    "**Rubric (1 point).** 1 point: so."),
]
STUDENTS = [  # (name, gradebook id, answers): Renée answered both, =bob only the first, carl nothing
    ("Renée Réf", "renee_ref", {"ch9_written_a": "Weil die Maske\nzuerst kommt: 0.5 und 0.5.", "ch9_written_b": "Ainsi."}),
    ("=bob", "bob", {"ch9_written_a": "=1+1, the rows sum to one", "ch9_written_b": ""}),
    ("carl", "carl", {"ch9_written_a": "", "ch9_written_b": ""}),
]
CODE_POINTS = {"renee_ref": 3.0, "bob": 1.0, "carl": 0.0}


@pytest.fixture(scope="module")
def gradebook_template(tmp_path_factory) -> Path:
    """The merged gradebook ``grade`` leaves: one code cell (autograded) and the two written cells
    (made once: creating a gradebook runs alembic, seconds)."""
    from nbgrader.api import Gradebook

    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    saved = os.environ["PATH"]
    os.environ["PATH"] = with_interpreter_bin(dict(os.environ))["PATH"]
    try:
        _fill_gradebook(Gradebook(f"sqlite:///{path}", COURSE_ID))
    finally:
        os.environ["PATH"] = saved
    return path


def _fill_gradebook(gradebook) -> None:

    with gradebook as gb:
        gb.update_or_create_assignment(CHAPTER)
        gb.update_or_create_notebook(CHAPTER, CHAPTER)
        gb.update_or_create_grade_cell("ch9_code", CHAPTER, CHAPTER, max_score=3, cell_type="code")
        for q in QUESTIONS:
            gb.update_or_create_grade_cell(q.id, CHAPTER, CHAPTER, max_score=q.points, cell_type="markdown")
            gb.update_or_create_solution_cell(q.id, CHAPTER, CHAPTER)
        for _, sid, answers in STUDENTS:
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(CHAPTER, sid)
            code = gb.find_grade("ch9_code", CHAPTER, CHAPTER, sid)
            code.auto_score, code.needs_manual_grade = CODE_POINTS[sid], False
            for gid, score in pending_scores(answers).items():
                g = gb.find_grade(gid, CHAPTER, CHAPTER, sid)
                g.auto_score, g.needs_manual_grade = score, score is None
        gb.db.commit()


def _grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


@pytest.fixture
def graded(tmp_path, gradebook_template) -> Path:
    """``--out`` of a graded class of three, as ``grade`` leaves it (grades.csv, gradebook/)."""
    out = tmp_path / "graded"
    out.mkdir()
    book = tmp_path / "work" / "course" / "gradebook.db"
    book.parent.mkdir(parents=True)
    shutil.copyfile(gradebook_template, book)
    students = [StudentAnswers(name, sid, answers) for name, sid, answers in STUDENTS]
    keep_for_manual_grading(out, CHAPTER, COURSE_ID, QUESTIONS, students, book, book)
    result = GradeResult(CHAPTER, [("ch9_code", 3.0)] + [(q.id, q.points) for q in QUESTIONS],
                         written=[q.id for q in QUESTIONS])
    for name, sid, answers in STUDENTS:
        per = {"ch9_code": CODE_POINTS[sid], **pending_scores(answers)}
        pending = sum(q.points for q in QUESTIONS if per[q.id] is None)
        result.rows.append({"student": name, **per, "total": sum(v for v in per.values() if v is not None),
                            "max": 6.0, "manual_grading": manual_status(pending)})
    write_grades_csv(out / "grades.csv", result)
    return out


def _export(out: Path, path: Path) -> list[dict]:
    export_answers(out, path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _write_scores(path: Path, rows: list[dict], scores: dict[tuple[str, str], tuple[str, str]]) -> None:
    """``rows`` (of an export) with (score, comment) of (student cell, question) filled in."""
    for r in rows:
        if (r["student"], r["question"]) in scores:
            r["score"], r["comment"] = scores[(r["student"], r["question"])]
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# ------------------------------------------------------------------------- cells and answers
def test_questions_and_rubrics_come_from_the_reference_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("**Written question 1 (2 points).** Why?",
                                      metadata={"nbgrader": {"grade_id": "ch9_q", "locked": True}}),
        nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\n**Model answer.** Because.\n### END SOLUTION",
                                      metadata={"nbgrader": {"grade": True, "solution": True,
                                                             "grade_id": "ch9_written_a", "points": 2}}),
        nbformat.v4.new_code_cell("assert True", metadata={"nbgrader": {"grade": True, "grade_id": "ch9_code",
                                                                        "points": 1}}),
    ])
    assert written_questions(nb) == [WrittenQuestion("ch9_written_a", 2.0, "**Written question 1 (2 points).** Why?",
                                                     "**Model answer.** Because.")]


def test_an_answer_is_what_the_student_wrote_besides_the_stub():
    assert answer_text(TEXT_STUB) == "" and answer_text(f"  \n{TEXT_STUB}\n\n") == ""
    assert answer_text(f"{TEXT_STUB}\nThe mask comes first.") == "The mask comes first."
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Mine.", metadata={"nbgrader": {"grade": True, "solution": True,
                                                                      "grade_id": "ch9_written_a", "points": 2}}),
        nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade": True, "grade_id": "ch9_written_b",
                                                                  "points": 1}}),  # not markdown: no answer
    ])
    answers = written_answers(nb, ["ch9_written_a", "ch9_written_b"])
    assert answers == {"ch9_written_a": "Mine.", "ch9_written_b": ""}
    assert pending_scores(answers) == {"ch9_written_a": None, "ch9_written_b": 0.0}


def test_grades_csv_says_what_is_pending(graded):
    rows = _grades(graded)
    header = list(next(iter(rows.values())))
    assert header[-3:] == ["total", "max", "manual_grading"]
    renee, bob, carl = rows["Renée Réf"], rows["'=bob"], rows["carl"]
    assert renee["ch9_written_a"] == renee["ch9_written_b"] == "needs manual grading"
    assert (renee["total"], renee["max"], renee["manual_grading"]) == ("3", "6", "pending (3 points)")
    assert (bob["ch9_written_a"], bob["ch9_written_b"], bob["manual_grading"]) == ("needs manual grading", "0",
                                                                                   "pending (2 points)")
    assert (carl["ch9_written_a"], carl["total"], carl["manual_grading"]) == ("0", "0", "done")


def test_no_manual_grading_column_without_written_questions(tmp_path):
    result = GradeResult(CHAPTER, [("ch9_code", 3.0)], rows=[{"student": "a", "ch9_code": 3.0, "total": 3.0, "max": 3.0}])
    write_grades_csv(tmp_path / "grades.csv", result)
    assert (tmp_path / "grades.csv").read_text().splitlines() == ["student,ch9_code,total,max", "a,3,3,3"]


# ------------------------------------------------------------------------------ the round trip
def test_export_lists_every_answer_with_its_rubric(graded, tmp_path):
    rows = _export(graded, tmp_path / "answers.csv")
    assert list(rows[0]) == EXPORT_COLUMNS
    assert [(r["student"], r["question"]) for r in rows] == [
        (name.replace("=", "'="), q.id) for name, _, _ in STUDENTS for q in QUESTIONS]
    first = rows[0]
    assert first["max_points"] == "2" and "Rubric (2 points)" in first["rubric"] and "Model answer" in first["rubric"]
    assert first["answer"] == "Weil die Maske zuerst kommt: 0.5 und 0.5."  # one line in a spreadsheet
    assert rows[2]["answer"] == "'=1+1, the rows sum to one"  # text, not a formula
    assert (rows[0]["score"], rows[2]["score"]) == ("", "")  # to fill in
    assert (rows[3]["score"], rows[3]["comment"]) == ("0", "no answer")  # unanswered: 0 already
    assert (tmp_path / "answers.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8


def test_export_does_not_overwrite_a_file_with_scores(graded, tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("scores typed in by hand")
    with pytest.raises(Exception, match="--force"):
        export_answers(graded, path)
    assert path.read_text() == "scores typed in by hand"
    export_answers(graded, path, force=True)
    assert path.read_text(encoding="utf-8-sig").startswith("student,question")


def test_import_enters_scores_into_the_gradebooks_and_grades_csv(graded, tmp_path):
    from nbgrader.api import Gradebook

    path = tmp_path / "answers.csv"
    rows = _export(graded, path)
    for r in rows:
        r["student"] = r["student"].replace("'=", "=")  # Excel drops the apostrophe when it saves a CSV
    _write_scores(path, rows, {("Renée Réf", "ch9_written_a"): ("1,5", "Gut, aber: die Zahlen?"),
                               ("Renée Réf", "ch9_written_b"): ("1", ""),
                               ("=bob", "ch9_written_a"): ("2", "")})
    done = import_scores(graded, path)
    # the unanswered questions' prefilled 0 and "no answer" come back too
    assert done == {"scores": 6, "comments": 4, "pending": 0, "workdir_gradebook": 1, "lms": []}
    grades = _grades(graded)
    renee, bob, carl = grades["Renée Réf"], grades["'=bob"], grades["carl"]
    assert (renee["ch9_written_a"], renee["ch9_written_b"], renee["total"], renee["manual_grading"]) == (
        "1.5", "1", "5.5", "done")
    assert (bob["ch9_written_a"], bob["ch9_written_b"], bob["total"], bob["manual_grading"]) == ("2", "0", "3", "done")
    assert (carl["total"], carl["manual_grading"]) == ("0", "done")
    for book in (graded / "gradebook" / "gradebook.db", tmp_path / "work" / "course" / "gradebook.db"):
        with Gradebook(f"sqlite:///{book}", COURSE_ID) as gb:
            g = gb.find_grade("ch9_written_a", CHAPTER, CHAPTER, "renee_ref")
            assert (g.manual_score, g.needs_manual_grade, g.score) == (1.5, False, 1.5)
            c = gb.find_comment("ch9_written_a", CHAPTER, CHAPTER, "renee_ref")
            assert c.manual_comment == "Gut, aber: die Zahlen?"
            assert gb.find_submission(CHAPTER, "renee_ref").score == pytest.approx(5.5)
            assert gb.find_submission(CHAPTER, "bob").needs_manual_grade is False
    again = _export(graded, tmp_path / "again.csv")  # a second export shows what was imported
    assert (again[0]["score"], again[0]["comment"]) == ("1.5", "Gut, aber: die Zahlen?")


def test_an_empty_score_stays_pending_and_imports_add_up(graded, tmp_path):
    path = tmp_path / "answers.csv"
    rows = _export(graded, path)
    _write_scores(path, rows, {("Renée Réf", "ch9_written_a"): ("2", "")})
    assert import_scores(graded, path)["pending"] == 2  # Renée's second, bob's first
    renee = _grades(graded)["Renée Réf"]
    assert (renee["ch9_written_a"], renee["ch9_written_b"], renee["total"], renee["manual_grading"]) == (
        "2", "needs manual grading", "5", "pending (1 point)")
    _write_scores(path, rows, {("Renée Réf", "ch9_written_a"): ("0.5", ""), ("Renée Réf", "ch9_written_b"): ("1", "")})
    import_scores(graded, path)  # a regrade replaces the earlier score, it does not add to it
    renee = _grades(graded)["Renée Réf"]
    assert (renee["ch9_written_a"], renee["total"], renee["manual_grading"]) == ("0.5", "4.5", "done")


def test_other_columns_of_grades_csv_are_kept(graded, tmp_path):
    lines = (graded / "grades.csv").read_text(encoding="utf-8").splitlines()
    lines = [lines[0] + ",late_days"] + [ln + f",{i}" for i, ln in enumerate(lines[1:])]
    (graded / "grades.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = tmp_path / "answers.csv"
    _write_scores(path, _export(graded, path), {("carl", "ch9_written_a"): ("1", "generous")})
    import_scores(graded, path)
    grades = _grades(graded)
    assert [r["late_days"] for r in grades.values()] == ["0", "1", "2"]
    assert grades["carl"]["total"] == "1"


def test_import_refreshes_the_lms_export(graded, tmp_path):
    """A class graded with --format canvas: once the manual scores are in, the Canvas file has the
    final totals; a student with answers still pending stays out of it."""
    from induction_course.course.grading import lms

    with open(graded / "grades.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, rows = [*reader.fieldnames, "name", lms.id_column("canvas")], list(reader)
    for r, (name, _, _) in zip(rows, STUDENTS):
        r["name"], r[lms.id_column("canvas")] = name, str(100 + len(name))
    with open(graded / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    lms.save_settings(graded, None, "canvas", "Chapter 9", 6.0)
    path = tmp_path / "answers.csv"
    _write_scores(path, _export(graded, path), {("Renée Réf", "ch9_written_a"): ("2", ""),
                                                ("Renée Réf", "ch9_written_b"): ("0.5", "")})
    done = import_scores(graded, path)
    assert done["pending"] == 1 and any("not in canvas_grades.csv" in ln for ln in done["lms"])
    with open(graded / lms.EXPORT_FILES["canvas"], newline="", encoding="utf-8") as fh:
        canvas = {r[0]: r[-1] for r in csv.reader(fh)}
    assert canvas["Renée Réf"] == "5.5" and canvas["carl"] == "0" and "=bob" not in canvas


@pytest.mark.parametrize("score, why", [
    ("3", "line 2 (Renée Réf, ch9_written_a): score '3' is not between 0 and 2"),
    ("-1", "line 2 (Renée Réf, ch9_written_a): score '-1' is not between 0 and 2"),
    ("two", "line 2 (Renée Réf, ch9_written_a): score 'two' is not a number"),
    ("nan", "line 2 (Renée Réf, ch9_written_a): score 'nan' is not between 0 and 2"),
])
def test_a_bad_score_is_named_and_nothing_is_written(graded, tmp_path, score, why, capsys):
    path = tmp_path / "answers.csv"
    rows = _export(graded, path)
    _write_scores(path, rows, {("Renée Réf", "ch9_written_a"): (score, ""), ("carl", "ch9_written_b"): ("1", "")})
    before = {p: p.read_bytes() for p in [graded / "grades.csv", graded / "gradebook" / "gradebook.db"]}
    assert main(["written", "import", str(graded), str(path)]) == 2
    err = capsys.readouterr().err
    assert f"answers.csv, {why}" in err and "nothing was imported" in err
    assert {p: p.read_bytes() for p in before} == before


def test_unknown_rows_and_duplicates_are_named(graded, tmp_path):
    path = tmp_path / "answers.csv"
    rows = _export(graded, path)
    rows.append({**rows[0], "student": "mallory"})
    rows.append({**rows[1], "question": "ch9_written_z"})
    rows.append({**rows[2]})
    rows.append({k: "" for k in rows[0]})  # an empty row (a spreadsheet's) is no error
    _write_scores(path, rows, {})
    with pytest.raises(Exception) as info:
        import_scores(graded, path)
    msg = str(info.value)
    assert "line 8 (mallory, ch9_written_a): unknown student" in msg
    assert "line 9 (Renée Réf, ch9_written_z): unknown question" in msg
    assert "line 10 ('=bob, ch9_written_a): a second row for this student and question (first on line 4)" in msg


def test_import_needs_the_columns_and_a_graded_folder(graded, tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("student,question,points\ncarl,ch9_written_a,1\n", encoding="utf-8")
    with pytest.raises(Exception, match="no score column"):
        import_scores(graded, path)
    with pytest.raises(Exception, match="holds no written answers"):
        import_scores(tmp_path, path)
    assert main(["written", "export", str(tmp_path / "nowhere")]) == 2


def test_the_manifest_keeps_answers_and_rubrics_for_the_instructor(graded):
    m = read_manifest(graded)
    assert (m.chapter, [q.id for q in m.questions], [s.student for s in m.students]) == (
        CHAPTER, ["ch9_written_a", "ch9_written_b"], ["Renée Réf", "=bob", "carl"])
    data = json.loads((graded / "gradebook" / "written.json").read_text(encoding="utf-8"))
    assert data["students"][0]["answers"]["ch9_written_a"].startswith("Weil die Maske\n")
    assert keep_for_manual_grading(graded, CHAPTER, COURSE_ID, QUESTIONS, [], None, None) is None
    assert not (graded / "gradebook").exists(), "a later grade run with nobody graded removes the stale folder"


# --------------------------------------------------------------------------------- end to end
STUDENT_ANSWERS = {
    "ch1_written_mask": "Erst maskieren: jede Zeile ist eine Verteilung, [1, 0, 0] und [0.5, 0.5, 0].\n"
                        "Softmax first gives rows summing to 1/3 and 2/3.",
    "ch1_written_qk_ov": "=QK decides where, OV what; the copying scores are near 0 (+0.29 at most).",
}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_class_is_graded_by_hand_end_to_end(tmp_path, capsys):
    """grade a class of two (the reference with written answers; the untouched release), export
    the answers, fill in scores, import them: grades.csv and the gradebooks hold them."""
    from nbgrader.api import Gradebook

    from induction_course.course.grading import grade

    subs = tmp_path / "subs"
    subs.mkdir()
    nb = nbformat.read(ROOT / "solutions" / CH1 / f"{CH1}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in STUDENT_ANSWERS:
            cell.source = STUDENT_ANSWERS[gid]
    nbformat.write(nb, subs / "Zoë Ångström.ipynb")
    shutil.copyfile(ROOT / "chapters" / CH1 / f"{CH1}.ipynb", subs / "bob.ipynb")
    out, work = tmp_path / "graded", tmp_path / "work"
    grade(CH1, subs, out, root=ROOT, workdir=work, quiet=True, jobs=2, trusted=False)  # written answers only

    rows = _grades(out)
    zoe, bob = rows["Zoë Ångström"], rows["bob"]
    written = sorted(STUDENT_ANSWERS)
    autograded = sum(float(v) for k, v in zoe.items() if k.startswith("ch1_") and k not in written)
    assert zoe["max"] == "29" and autograded > 0  # 25 autograded points, 4 graded by hand
    assert [zoe[g] for g in written] == ["needs manual grading"] * 2
    assert float(zoe["total"]) == autograded and zoe["manual_grading"] == "pending (4 points)"
    assert [bob[g] for g in written] == ["0", "0"] and bob["total"] == "0" and bob["manual_grading"] == "done"
    feedback = (out / "feedback" / "Zoë Ångström.html").read_text(encoding="utf-8")
    assert "Erst maskieren" in feedback and "Rubric" not in feedback and "Model answer" not in feedback

    path = tmp_path / "answers.csv"
    assert main(["written", "export", str(out), "--out", str(path)]) == 0
    exported = _export(out, tmp_path / "check.csv")
    assert len(exported) == 4 and all("Rubric (2 points)" in r["rubric"] for r in exported)
    mine = {r["question"]: r for r in exported if r["student"] == "Zoë Ångström"}
    assert mine["ch1_written_mask"]["answer"].startswith("Erst maskieren: jede Zeile") and mine["ch1_written_mask"]["score"] == ""
    assert mine["ch1_written_qk_ov"]["answer"].startswith("'=QK decides where")
    assert [r["score"] for r in exported if r["student"] == "bob"] == ["0", "0"]
    with open(path, newline="", encoding="utf-8-sig") as fh:
        filled = list(csv.DictReader(fh))
    _write_scores(path, filled, {("Zoë Ångström", "ch1_written_mask"): ("2", "Très bien"),
                                 ("Zoë Ångström", "ch1_written_qk_ov"): ("1.5", "")})
    assert main(["written", "import", str(out), str(path)]) == 0
    assert "0 answer(s) still need manual grading" in capsys.readouterr().out

    zoe = _grades(out)["Zoë Ångström"]
    assert (zoe["ch1_written_mask"], zoe["ch1_written_qk_ov"], zoe["manual_grading"]) == ("2", "1.5", "done")
    assert float(zoe["total"]) == autograded + 3.5
    sid = read_manifest(out).students[[s.student for s in read_manifest(out).students].index("Zoë Ångström")].nbgrader_id
    for book in (out / "gradebook" / "gradebook.db", work / "course" / "gradebook.db"):
        with Gradebook(f"sqlite:///{book}", COURSE_ID) as gb:
            assert gb.find_submission(CH1, sid).score == pytest.approx(autograded + 3.5)
            assert gb.find_comment("ch1_written_mask", CH1, CH1, sid).manual_comment == "Très bien"
