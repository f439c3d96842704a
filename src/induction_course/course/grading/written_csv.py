"""``induction-course written export|import``: written answers graded by hand, through a CSV file.

``export`` writes one row per student and written question: the student, the question, its
points, the question's text, the rubric (model answer and grading rule), the student's answer,
and the ``score`` and ``comment`` to fill in (already filled for an unanswered question: 0, and
for answers graded by an earlier import). Text cells are spreadsheet-safe
(:func:`.outputs.csv_cell`); the file is UTF-8 with a byte-order mark, which Excel needs to read
non-ASCII names.

``import`` reads the ``score`` (and, if the column is there, ``comment``) of every row, checks
them all (a number from 0 to the question's points; a bad row is named and nothing is written),
writes them into the class's merged nbgrader gradebook as manual scores and comments (the copy
in ``OUT/gradebook/`` and, if ``grade`` ran with ``--workdir`` and it still exists, the one in
``WORKDIR/course/``), and rewrites ``grades.csv``: the written columns, the total and the
``manual_grading`` column, then refreshes what follows from the totals (the late penalty and
the Canvas/Moodle export, :func:`.lms.refresh_grades`). An empty score leaves that answer as it
was (pending, or the score of an earlier import), so a class can be graded in several sittings.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from induction_course.course.grading.layout import GradingError
from induction_course.course.grading.lms import refresh_grades
from induction_course.course.grading.outputs import NEEDS_MANUAL, csv_cell, manual_status
from induction_course.course.grading.written import Manifest, read_manifest

EXPORT_COLUMNS = ["student", "question", "max_points", "question_text", "rubric", "answer", "score", "comment"]
_MAX_ERRORS = 20  # bad rows listed in one error message


@dataclass(frozen=True)
class ManualScore:
    nbgrader_id: str
    question: str
    score: float
    comment: str | None  # None: the file has no comment column (comments are left alone)


def _gradebook_state(path: Path, m: Manifest) -> dict[tuple[str, str], tuple[float | None, str]]:
    """(nbgrader_id, question) -> (points, or None while pending; the manual comment)."""
    from nbgrader.api import Gradebook

    state = {}
    with Gradebook(f"sqlite:///{path}", m.course_id) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's chatter inside nbgrader's API
        for s in m.students:
            for q in m.questions:
                g = gb.find_grade(q.id, m.chapter, m.chapter, s.nbgrader_id)
                c = gb.find_comment(q.id, m.chapter, m.chapter, s.nbgrader_id)
                if g.manual_score is not None:
                    points = float(g.manual_score)
                elif g.auto_score is not None and not g.needs_manual_grade:
                    points = float(g.auto_score)
                else:
                    points = None
                state[(s.nbgrader_id, q.id)] = (points, c.manual_comment or "")
    return state


def export_answers(out: str | Path, csv_path: str | Path, force: bool = False) -> int:
    """Write the written answers of the class graded into ``out`` to ``csv_path``; the number of rows."""
    m = read_manifest(out)
    csv_path = Path(csv_path)
    if csv_path.exists() and not force:
        raise GradingError(f"{csv_path} exists (scores typed into it would be lost); "
                           "import it first, or pass --force to overwrite it")
    state = _gradebook_state(m.gradebook, m)
    rows = []
    for s in m.students:
        for q in m.questions:
            points, comment = state[(s.nbgrader_id, q.id)]
            answer = s.answers.get(q.id, "")
            if not answer and points == 0 and not comment:
                comment = "no answer"
            rows.append([csv_cell(s.student), q.id, f"{q.points:g}", csv_cell(q.question), csv_cell(q.rubric),
                         csv_cell(answer), "" if points is None else f"{points:g}", csv_cell(comment)])
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(EXPORT_COLUMNS)
        w.writerows(rows)
    return len(rows)


def _parse_score(raw: str, top: float) -> tuple[float | None, str | None]:
    """(score, None), (None, None) for an empty cell, or (None, why it is not a valid score)."""
    text = raw.strip()
    if not text:
        return None, None
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # a decimal comma, as many spreadsheets write it
    try:
        value = float(text)
    except ValueError:
        return None, f"score {raw.strip()!r} is not a number"
    if not math.isfinite(value) or value < -1e-9 or value > top + 1e-9:
        return None, f"score {raw.strip()!r} is not between 0 and {top:g} (the question's points)"
    return min(max(value, 0.0), top), None


def _read_scores(m: Manifest, csv_path: Path) -> list[ManualScore]:
    """Every filled-in score of ``csv_path``, checked; :class:`GradingError` naming each bad row."""
    if not csv_path.is_file():
        raise GradingError(f"{csv_path} not found")
    students = {}
    for s in m.students:  # a spreadsheet may drop the apostrophe csv_cell put before a leading '='
        students[s.student] = students[csv_cell(s.student)] = s
    questions = {q.id: q for q in m.questions}
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("student", "question", "score") if c not in (reader.fieldnames or [])]
            if missing:
                raise GradingError(f"{csv_path.name}: no {', '.join(missing)} column (export a fresh file with "
                                   "`induction-course written export`)")
            has_comment = "comment" in reader.fieldnames
            parsed = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as err:
        raise GradingError(f"{csv_path.name} is not UTF-8 text ({err}); save it as CSV UTF-8") from err
    scores, errors, seen = [], [], {}
    for line, row in parsed:
        name, qid = (row.get("student") or "").strip(), (row.get("question") or "").strip()
        if not (name or qid or (row.get("score") or "").strip()):
            continue  # an empty row a spreadsheet left at the end
        where = f"{csv_path.name}, line {line} ({name or '?'}, {qid or '?'})"
        s, q = students.get(name), questions.get(qid)
        if s is None or q is None:
            errors.append(f"{where}: unknown {'student' if s is None else 'question'}: not a graded "
                          f"student and written question of {m.chapter}")
            continue
        if (s.nbgrader_id, q.id) in seen:
            errors.append(f"{where}: a second row for this student and question (first on line "
                          f"{seen[(s.nbgrader_id, q.id)]})")
            continue
        seen[(s.nbgrader_id, q.id)] = line
        value, why = _parse_score(row.get("score") or "", q.points)
        if why:
            errors.append(f"{where}: {why}")
        elif value is not None:
            comment = (row.get("comment") or "").strip() if has_comment else None
            scores.append(ManualScore(s.nbgrader_id, q.id, value, comment))
    if errors:
        more = f"\n  ... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise GradingError("nothing was imported; fix these rows:\n  " + "\n  ".join(errors[:_MAX_ERRORS]) + more)
    return scores


def _write_gradebook(path: Path, m: Manifest, scores: list[ManualScore]) -> None:
    """The manual scores (and comments) into one copy of the class's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{path}", m.course_id) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sc in scores:
            g = gb.find_grade(sc.question, m.chapter, m.chapter, sc.nbgrader_id)
            g.manual_score, g.needs_manual_grade = sc.score, False
            if sc.comment is not None:
                gb.find_comment(sc.question, m.chapter, m.chapter, sc.nbgrader_id).manual_comment = sc.comment or None
        gb.db.commit()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _rewrite_grades_csv(m: Manifest, state: dict) -> int:
    """Put the gradebook's written scores into ``grades.csv`` (other columns kept); pending answers left."""
    path = m.out / "grades.csv"
    if not path.is_file():
        raise GradingError(f"{path} not found: is {m.out} the --out folder of `induction-course grade`?")
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    header = rows[0]
    col = {h: i for i, h in enumerate(header)}
    wanted = ["student", "total", "manual_grading", *[q.id for q in m.questions]]
    if any(c not in col for c in wanted):
        raise GradingError(f"{path} lacks the columns {[c for c in wanted if c not in col]}")
    by_name = {csv_cell(s.student): s for s in m.students}
    pending_total = 0
    for row in rows[1:]:
        s = by_name.get(row[col["student"]])
        if s is None:
            continue
        old = sum(_number(row[col[q.id]]) or 0.0 for q in m.questions)
        new = {q.id: state[(s.nbgrader_id, q.id)][0] for q in m.questions}
        for q in m.questions:
            row[col[q.id]] = NEEDS_MANUAL if new[q.id] is None else f"{new[q.id]:g}"
        total = (_number(row[col["total"]]) or 0.0) - old + sum(v for v in new.values() if v is not None)
        row[col["total"]] = f"{round(total, 6):g}"
        pending = sum(q.points for q in m.questions if new[q.id] is None)
        row[col["manual_grading"]] = manual_status(pending)
        pending_total += sum(1 for v in new.values() if v is None)
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return pending_total


def import_scores(out: str | Path, csv_path: str | Path) -> dict[str, int]:
    """Enter the scores of ``csv_path`` into the gradebook(s) and ``grades.csv`` of the class in ``out``.

    Then the columns that follow from the totals are refreshed (:func:`.lms.refresh_grades`: the
    late penalty, the Canvas/Moodle export) when ``grade`` wrote them.

    Returns counts: ``scores`` imported, ``comments`` among them, ``pending`` answers left,
    ``workdir_gradebook`` (1 updated, 0 none recorded, -1 could not be updated), and ``lms``: the
    report lines of the rewritten LMS export."""
    m = read_manifest(out)
    scores = _read_scores(m, Path(csv_path))
    _write_gradebook(m.gradebook, m, scores)
    pending = _rewrite_grades_csv(m, _gradebook_state(m.gradebook, m))
    lms_lines = refresh_grades(m.out)  # the late penalty of the new totals, the LMS export (if grade wrote them)
    workdir = 0
    if m.workdir_gradebook is not None and m.workdir_gradebook.is_file():
        try:
            _write_gradebook(m.workdir_gradebook, m, scores)
            workdir = 1
        except Exception:  # noqa: BLE001 - the work folder was re-graded or removed since: the kept copy counts
            workdir = -1
    return {"scores": len(scores), "comments": sum(1 for s in scores if s.comment), "pending": pending,
            "workdir_gradebook": workdir, "lms": lms_lines}
