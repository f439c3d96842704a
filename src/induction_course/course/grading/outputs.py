"""What ``induction-course grade`` leaves in ``--out``: ``grades.csv``, ``feedback/<student>.html``
and ``report.txt``.

Every student has a row and a feedback file: a submission that could not be graded gets
zeros and a short HTML page that says why, so that nobody's grade silently goes missing.
"""

from __future__ import annotations

import csv
import html
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from induction_course.course.grading.deadlines import LATE_COLUMNS, DeadlinePolicy, late_values, report_lines
from induction_course.course.grading.intake import Submission
from induction_course.course.grading.lms import id_column, identity_columns, save_settings, write_export


@dataclass
class GradeResult:
    chapter: str
    exercises: list[tuple[str, float]]  # (grade_id, max points), in notebook order
    rows: list[dict] = field(default_factory=list)  # student, per-exercise points, total, max
    problems: list[str] = field(default_factory=list)
    out: Path | None = None
    warnings: list[str] = field(default_factory=list)  # the top of report.txt (e.g. no sandbox)
    written: list[str] = field(default_factory=list)  # grade_ids of the written questions (graded by hand)
    deadline: DeadlinePolicy | None = None  # --due and the late policy (.deadlines)
    lms_format: str | None = None  # --format: "canvas" or "moodle" (.lms)
    lms_assignment: str = ""  # the assignment column of a Canvas export (default: the chapter)
    lms_kinds: set[str] = field(default_factory=set)  # the LMSs whose downloads the class came from

    @property
    def max_points(self) -> float:
        return sum(p for _, p in self.exercises)


def feedback_html(student: str, chapter: str, message: str, max_points: float) -> str:
    """The feedback page of a submission that could not be graded."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Feedback: "
        f"{html.escape(student)}</title></head>\n<body>\n<h1>{html.escape(chapter)}: {html.escape(student)}</h1>\n"
        f"<p><strong>Score: 0 / {max_points:g}</strong></p>\n"
        f"<p>Your submission could not be graded: {html.escape(message)}.</p>\n"
        "<p>Please submit the chapter's notebook (the <code>.ipynb</code> file you worked in), "
        "and ask your instructor if you think this is a mistake.</p>\n</body></html>\n"
    )


def _fmt(x: float) -> str:
    return f"{x:g}"


# ---- written questions (graded by hand, see .written): a pending answer's points are None
NEEDS_MANUAL = "needs manual grading"  # its cell in grades.csv


def manual_status(pending_points: float) -> str:
    """The ``manual_grading`` column: the points still to be graded by hand, or done."""
    return f"pending ({pending_points:g} point{'' if pending_points == 1 else 's'})" if pending_points else "done"


def _manual_columns(result: GradeResult, per: dict) -> dict:
    """``manual_grading`` for a chapter with written questions (no column otherwise)."""
    if not result.written:
        return {}
    return {"manual_grading": manual_status(sum(p for gid, p in result.exercises if per.get(gid) is None))}


def _cell(value) -> str:
    return NEEDS_MANUAL if value is None else csv_cell(value) if isinstance(value, str) else _fmt(value)


# ---- seminar columns: the LMS's name and id (.lms), the deadline (.deadlines); after the others
def _seminar_header(result: GradeResult) -> list[str]:
    return [*identity_columns(result.lms_kinds), *(LATE_COLUMNS if result.deadline else [])]


def _seminar_values(result: GradeResult, s: Submission, total: float) -> dict:
    values = {"name": s.name, **({id_column(s.lms): s.lms_id} if s.lms else {})}
    if result.deadline is not None:
        values.update(late_values(result.deadline, s.submitted, total, result.max_points))
    return values


def _seminar_files(result: GradeResult) -> list[str]:
    """The LMS export and the settings a later refresh needs (.lms); the report's lines on both and on lateness."""
    lines = report_lines(result.deadline, result.rows) if result.deadline else []
    assignment = result.lms_assignment or result.chapter
    if result.deadline or result.lms_format:
        save_settings(result.out, result.deadline, result.lms_format, assignment, result.max_points)
    if result.lms_format:
        lines += write_export(result.out, result.lms_format, result.rows, result.max_points, assignment)[1]
    return lines


def csv_cell(text: str) -> str:
    """A text cell that a spreadsheet shows as text: no formula (``=``, ``+``, ``-``, ``@``, tab,
    carriage return first get a ``'``), no line breaks."""
    text = text.replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def _zero(result: GradeResult, s: Submission, extra: list[str], fb_dir: Path, say: Callable[[str], None]) -> dict:
    """Points of a submission that was not graded: zeros, a report line and a feedback page that says why."""
    max_points = result.max_points
    why = "; ".join([s.problem or "unknown problem", *extra])
    result.problems.append(f"{s.student}: 0 / {max_points:g} points — {why} [{s.origin}]")
    say(f"  {s.student}: 0 / {max_points:g} — {why}")
    (fb_dir / f"{s.student}.html").write_text(feedback_html(s.student, result.chapter, why, max_points),
                                              encoding="utf-8")
    return {gid: 0.0 for gid, _ in result.exercises}


def _graded(result: GradeResult, s: Submission, scores: dict, extra: list[str], course: Path, fb_dir: Path,
            say: Callable[[str], None]) -> dict:
    """Points of a graded submission; its nbgrader feedback is copied to ``fb_dir``."""
    max_points, chapter = result.max_points, result.chapter
    per = {gid: None if gid in scores and scores[gid] is None else float(scores.get(gid, 0.0))
           for gid, _ in result.exercises}  # None: a written answer left for manual grading
    got = sum(v for v in per.values() if v is not None)
    fb = course / "feedback" / s.nbgrader_id / chapter / f"{chapter}.html"
    if fb.exists():
        shutil.copyfile(fb, fb_dir / f"{s.student}.html")
    else:
        extra = [*extra, "no feedback file was generated"]
    if extra:
        result.problems.append(f"{s.student}: {got:g} / {max_points:g} points — {'; '.join(extra)} [{s.origin}]")
    say(f"  {s.student}: {got:g} / {max_points:g}" + (f" — {'; '.join(extra)}" if extra else ""))
    return per


def student_row(result: GradeResult, s: Submission, outcome: dict | None, notes: list[str], course: Path,
                fb_dir: Path, say: Callable[[str], None]) -> dict | None:
    """The CSV row of one submission (None for an ignored second copy), its report line and feedback file.

    ``outcome`` is what autograding returned (None if it was not autograded); a problem it
    reports becomes the submission's problem.
    """
    if s.ignored:
        result.problems.append(f"{s.student}: {'; '.join([s.problem or '', *s.notes])}")
        say(f"  {s.student}: {s.problem}")
        return None
    if s.problem is None and outcome is not None and outcome["problem"] is not None:
        s.problem = outcome["problem"]
    extra = s.notes + notes + (outcome["notes"] if outcome else [])
    if outcome is not None and s.problem is None and outcome["scores"] is not None:
        per = _graded(result, s, outcome["scores"], extra, course, fb_dir, say)
    else:
        per = _zero(result, s, extra, fb_dir, say)
    total = sum(v for v in per.values() if v is not None)
    return {"student": s.student, **{gid: per[gid] for gid, _ in result.exercises}, "total": total,
            "max": result.max_points, **_manual_columns(result, per), **_seminar_values(result, s, total)}


def write_grades_csv(path: Path, result: GradeResult) -> None:
    """One row per student: the points of every exercise, the total and the maximum."""
    header = ["student", *[gid for gid, _ in result.exercises], "total", "max",
              *(["manual_grading"] if result.written else []), *_seminar_header(result)]
    # UTF-8 without a byte-order mark: what Python, R, LMS importers and LibreOffice read by
    # default (Excel: Data > From Text/CSV, UTF-8); the LMS exports are UTF-8 as well
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for row in result.rows:
            w.writerow([csv_cell(row["student"]), *[_cell(row.get(h, "")) for h in header[1:]]])


def write_outputs(result: GradeResult, subs: list[Submission], outcome: dict[str, dict],
                  notes: dict[str, list[str]], course: Path, say: Callable[[str], None]) -> None:
    """Fill ``result.out``: ``grades.csv``, ``feedback/`` (stale pages removed) and ``report.txt``."""
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    fb_dir = out / "feedback"
    fb_dir.mkdir(exist_ok=True)
    for old in fb_dir.glob("*.html"):
        old.unlink()
    say("Results:")
    result.lms_kinds = {s.lms for s in subs if s.lms and not s.ignored}
    rows = [student_row(result, s, outcome.get(s.student), notes.get(s.student, []), course, fb_dir, say)
            for s in subs]
    result.rows = [r for r in rows if r is not None]
    write_grades_csv(out / "grades.csv", result)
    report = [f"{result.chapter}: {len(result.rows)} student(s), max {result.max_points:g} points",
              *result.warnings, *result.problems, *_seminar_files(result)]
    # a file name may hold a newline: one student, one line
    (out / "report.txt").write_text("\n".join(re.sub(r"[\x00-\x1f\x7f]", "_", ln) for ln in report) + "\n",
                                    encoding="utf-8")
    say(f"Wrote {out / 'grades.csv'}, {out / 'report.txt'} and {len(list(fb_dir.glob('*.html')))} "
        f"feedback file(s) in {fb_dir}")
