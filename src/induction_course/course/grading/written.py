"""Written questions: markdown answer cells that the instructor grades by hand.

A written question is a locked markdown cell (the question) followed by a markdown answer cell
with the nbgrader metadata ``{"solution": true, "grade": true, "grade_id": "chN_written_...",
"points": P}``. In ``solutions/`` the answer cell holds, between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, a model answer and the rubric for the grader; ``release`` replaces that
block with nbgrader's text stub (:data:`TEXT_STUB`), so neither reaches ``chapters/`` (nor the
gradebook: nbgrader stores cells after clearing the solutions).

``grade`` cannot score these cells. Each student's answer is read from their autograded
notebook: an unanswered question (only the stub, or nothing) gets 0 at once, an answered one
stays pending (``needs manual grading`` in ``grades.csv``). ``grade`` then keeps in
``OUT/gradebook/`` what the instructor's round trip (:mod:`.written_csv`) needs: the class's
merged nbgrader gradebook and ``written.json`` (the questions, their rubrics and every graded
student's answers). That folder is the instructor's: it holds the rubrics and the answers.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from induction_course.course.grading.course_dir import COURSE_ID
from induction_course.course.grading.layout import GradingError

TEXT_STUB = "YOUR ANSWER HERE"  # what students see in an answer cell (ClearSolutions.text_stub)
KEPT = "gradebook"  # the folder of ``grade``'s --out that the round trip reads and updates
MANIFEST = "written.json"
GRADEBOOK = "gradebook.db"
_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.S | re.M)


@dataclass(frozen=True)
class WrittenQuestion:
    id: str  # the answer cell's grade_id: a column of grades.csv
    points: float
    question: str  # the locked markdown cell before the answer cell
    rubric: str  # the answer cell's solution block: the model answer and the rubric


@dataclass(frozen=True)
class StudentAnswers:
    student: str  # the name in grades.csv
    nbgrader_id: str  # the student's id in the gradebook
    answers: dict[str, str]  # grade_id -> answer text ("" when unanswered)


@dataclass(frozen=True)
class Manifest:
    """``OUT/gradebook/written.json``, read back."""
    out: Path
    chapter: str
    course_id: str
    questions: list[WrittenQuestion]
    students: list[StudentAnswers]
    workdir_gradebook: Path | None  # the --workdir's course/gradebook.db, when grade had one

    @property
    def gradebook(self) -> Path:
        return self.out / KEPT / GRADEBOOK


def is_written(cell: Any) -> bool:
    """Whether ``cell`` is a written answer cell: a markdown grade cell."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    return cell.get("cell_type") == "markdown" and isinstance(meta, dict) and bool(meta.get("grade"))


def solution_block(source: str) -> str:
    """The text between the solution markers (the model answer and the rubric); '' if none."""
    found = _SOLUTION.search(source)
    return found.group(1).strip() if found else ""


def written_questions(nb: Any) -> list[WrittenQuestion]:
    """The written questions of a notebook (the reference: with rubrics), in notebook order."""
    out = []
    for i, cell in enumerate(nb.cells):
        if not is_written(cell):
            continue
        meta = cell.metadata["nbgrader"]
        before = nb.cells[i - 1] if i > 0 else None
        question = before.source.strip() if before is not None and before.cell_type == "markdown" else ""
        out.append(WrittenQuestion(meta["grade_id"], float(meta.get("points", 0)), question,
                                   solution_block(cell.source)))
    return out


def answer_text(source: str) -> str:
    """A student's answer: the cell without nbgrader's stub lines; '' when nothing else is written."""
    return "\n".join(ln for ln in source.split("\n") if ln.strip() != TEXT_STUB).strip()


def written_answers(nb: Any, ids: Iterable[str]) -> dict[str, str]:
    """grade_id -> the answer in a student's (autograded) notebook; '' for a missing or blank one."""
    wanted = set(ids)
    found: dict[str, str] = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in wanted and is_written(cell) and gid not in found:
            found[gid] = answer_text(str(cell.get("source", "")))
    return {gid: found.get(gid, "") for gid in sorted(wanted)}


def pending_scores(answers: dict[str, str]) -> dict[str, float | None]:
    """The scores ``grade`` can give written answers: 0 for a blank one, None (pending) otherwise."""
    return {gid: (0.0 if not text else None) for gid, text in answers.items()}


def keep_for_manual_grading(out: Path, chapter: str, course_id: str, questions: list[WrittenQuestion],
                            students: list[StudentAnswers], gradebook: Path | None,
                            workdir_gradebook: Path | None) -> Path | None:
    """Write ``out/gradebook/``: a copy of the class's merged gradebook and ``written.json``.

    Nothing (and a stale folder of an earlier run removed) when the chapter has no written
    question or nobody was graded. Returns the folder, or None."""
    folder = Path(out) / KEPT
    if folder.exists():
        shutil.rmtree(folder)
    if not questions or not students or gradebook is None or not gradebook.is_file():
        return None
    folder.mkdir(parents=True)
    shutil.copyfile(gradebook, folder / GRADEBOOK)
    data = {
        "chapter": chapter,
        "course_id": course_id,
        "workdir_gradebook": str(workdir_gradebook) if workdir_gradebook else None,
        "questions": [vars(q) for q in questions],
        "students": [vars(s) for s in students],
    }
    (folder / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return folder


def read_manifest(out: str | Path) -> Manifest:
    """``out/gradebook/written.json`` of a graded class; :class:`GradingError` if it is missing or broken."""
    out = Path(out)
    path = out / KEPT / MANIFEST
    if not out.is_dir():
        raise GradingError(f"{out} is not a folder (give the --out folder of `induction-course grade`)")
    if not path.is_file() or not (out / KEPT / GRADEBOOK).is_file():
        raise GradingError(f"{out} holds no written answers to grade ({KEPT}/{MANIFEST} and {KEPT}/{GRADEBOOK} "
                           "are written by `induction-course grade` when a graded chapter has written questions)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        questions = [WrittenQuestion(q["id"], float(q["points"]), q["question"], q["rubric"]) for q in data["questions"]]
        students = [StudentAnswers(s["student"], s["nbgrader_id"], dict(s["answers"])) for s in data["students"]]
        chapter, course_id, wd = data["chapter"], data["course_id"], data.get("workdir_gradebook")
    except (ValueError, KeyError, TypeError) as err:
        raise GradingError(f"{path} is damaged ({type(err).__name__}: {err}); run `induction-course grade` again") from err
    return Manifest(out, chapter, course_id, questions, students, Path(wd) if wd else None)


def students_to_grade(subs: list[Any], outcome: dict[str, dict]) -> list[StudentAnswers]:
    """The students ``grade`` graded (their rows in grades.csv carry points), with their written
    answers; call it after the outputs are written (a failed run has become a problem by then)."""
    out = []
    for s in subs:
        r = outcome.get(s.student)
        if s.ignored or s.problem is not None or r is None or r.get("scores") is None:
            continue
        out.append(StudentAnswers(s.student, s.nbgrader_id, dict(r.get("written", {}))))
    return out


def written_ids(nb: Any) -> list[str]:
    """The grade_ids of the written questions of ``nb``: the columns left for manual grading."""
    return [q.id for q in written_questions(nb)]


def keep_class(out: Path, chapter: str, pristine: Any, students: list[StudentAnswers], course: Path,
               keep_workdir: bool) -> Path | None:
    """What ``grade`` calls once the outputs are written: :func:`keep_for_manual_grading` with the
    reference's questions and the merged gradebook of ``course`` (named in the manifest too, for
    ``import`` to update, when the work folder is kept)."""
    book = Path(course) / GRADEBOOK
    return keep_for_manual_grading(out, chapter, COURSE_ID, written_questions(pristine), students, book,
                                   book if keep_workdir else None)
