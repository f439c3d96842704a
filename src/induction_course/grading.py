"""The course machinery: student release, autograding of a class, feedback and CSV export.

Reference notebooks are authored as jupytext *percent scripts*
(``solutions/NN_name/NN_name.py``, nbgrader metadata in the ``# %%`` headers) paired with the
``.ipynb`` next to them, which is nbgrader's source notebook. From them:

- :func:`release` writes the ``.ipynb`` of every script (:func:`notebook_from_script`), runs
  ``nbgrader generate_assignment`` in a temporary course directory and copies the result into
  ``chapters/NN_name/`` (outputs cleared, solutions and hidden tests removed). With
  ``check=True`` it changes nothing and lists what is out of date.
- :func:`grade` copies a class's submissions (a folder of ``<student>.ipynb``, a folder of
  per-student folders, or a zip of either) into a temporary nbgrader course, runs
  ``nbgrader autograde`` and ``nbgrader generate_feedback``, reads the scores from nbgrader's
  SQLite gradebook and writes ``grades.csv``, ``feedback/<student>.html`` and ``report.txt``.
  Submissions are read, never written. A file that is not a notebook, not valid JSON or from
  another chapter gets a line in the report and a zero; the rest of the class is graded.

nbgrader runs in subprocesses (``python -m nbgrader``) of the current interpreter, so the
notebooks execute in the ``python3`` kernel of this environment.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import filecmp
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GradingError",
    "GradeResult",
    "add_subcommands",
    "find_root",
    "grade",
    "list_chapters",
    "notebook_from_script",
    "release",
]

COURSE_ID = "induction-heads"  # the gradebook's course id in every temporary course folder
NBGRADER_DEFAULTS = {"grade": False, "solution": False, "task": False, "schema_version": 3}
_SCRIPT_HEADER = re.compile(r"\A# ---\s*\n# jupyter:", re.M)


class GradingError(Exception):
    """Bad input or a failed step; the CLI prints the message as one line."""


# --------------------------------------------------------------------------------- layout
def find_root(start: str | Path | None = None) -> Path:
    """The course repository: the first folder above ``start`` (default: cwd) holding both
    ``solutions/`` and ``graders/nbgrader_config.py``; else the checkout this package lives in."""
    candidates = []
    here = Path(start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parents[2])
    for c in candidates:
        if (c / "solutions").is_dir() and (c / "graders" / "nbgrader_config.py").is_file():
            return c
    raise GradingError(
        "cannot find the course repository (a folder with solutions/ and graders/nbgrader_config.py); "
        "run from inside it or pass --root"
    )


def list_chapters(root: Path) -> list[str]:
    """Chapter ids: the folders of ``solutions/`` that hold a notebook of the same name."""
    sol = Path(root) / "solutions"
    return sorted(
        d.name for d in sol.iterdir() if d.is_dir() and ((d / f"{d.name}.ipynb").exists() or (d / f"{d.name}.py").exists())
    )


def _check_chapter(root: Path, chapter: str) -> None:
    chapters = list_chapters(root)
    if chapter not in chapters:
        raise GradingError(f"unknown chapter {chapter!r}; the chapters are: {', '.join(chapters) or '(none)'}")


def _is_notebook_script(path: Path) -> bool:
    if path.suffix != ".py" or not path.is_file():
        return False
    with open(path, encoding="utf-8") as fh:
        head = fh.read(400)
    return bool(_SCRIPT_HEADER.match(head))


def paired_scripts(root: Path, chapter: str) -> list[Path]:
    """The jupytext percent scripts of a chapter (each is the source of the ``.ipynb`` beside it)."""
    return sorted(p for p in (Path(root) / "solutions" / chapter).glob("*.py") if _is_notebook_script(p))


# ------------------------------------------------------------------------ jupytext pairing
def _normalise_nbgrader(meta: dict, where: str) -> dict:
    """Fill nbgrader's required keys so the ``# %%`` headers can stay short."""
    out = dict(NBGRADER_DEFAULTS)
    out.update(meta)
    if "grade_id" not in out:
        raise GradingError(f"{where}: nbgrader cell without a grade_id")
    out.setdefault("locked", not out["solution"] or out["grade"])
    if out["grade"] and not out["solution"]:
        out["locked"] = True  # autograder tests are always read-only
    if out["grade"] and "points" not in out:
        raise GradingError(f"{where}: graded cell {out['grade_id']!r} has no points")
    return {k: out[k] for k in sorted(out)}


def notebook_from_script(script: str | Path):
    """The ``.ipynb`` (an ``nbformat`` notebook) that a percent script stands for.

    Deterministic: no outputs, no jupytext bookkeeping, cell ids derived from grade ids (or
    the cell's index), nbgrader metadata completed with its defaults.
    """
    import jupytext
    import nbformat

    script = Path(script)
    nb = jupytext.read(script)
    nb.metadata.pop("jupytext", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        meta = {}
        if "nbgrader" in cell.metadata:
            meta["nbgrader"] = _normalise_nbgrader(dict(cell.metadata["nbgrader"]), f"{script.name}, cell {i}")
        if cell.metadata.get("tags"):
            meta["tags"] = list(cell.metadata["tags"])
        cell.metadata = nbformat.from_dict(meta)
        cid = meta.get("nbgrader", {}).get("grade_id", f"cell-{i:03d}")
        if cid in seen:
            raise GradingError(f"{script.name}: grade_id {cid!r} is used twice")
        seen.add(cid)
        cell["id"] = cid
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nb


def _dumps(nb) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def sync_scripts(root: Path, chapters: list[str], check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) the ``.ipynb`` of every percent script.

    Returns the notebooks that were (or would be) changed, relative to ``root``.
    """
    changed = []
    for chapter in chapters:
        for script in paired_scripts(root, chapter):
            target = script.with_suffix(".ipynb")
            text = _dumps(notebook_from_script(script))
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                changed.append(str(target.relative_to(root)))
                if not check:
                    target.write_text(text, encoding="utf-8")
    return changed


# ------------------------------------------------------------------------------- nbgrader
def _write_course_config(course: Path, root: Path) -> None:
    """A temporary course directory: the repository's config, redirected to ``course``."""
    text = f"""\
c = get_config()
load_subconfig({str(Path(root) / 'graders' / 'nbgrader_config.py')!r})
c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.course_id = {COURSE_ID!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = {"sqlite:///" + str(course / "gradebook.db")!r}
"""
    (course / "nbgrader_config.py").write_text(text, encoding="utf-8")


def _nbgrader(course: Path, *args: str, log: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course, env=env, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - start
    if log is not None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ nbgrader {' '.join(args)}  (exit {proc.returncode}, {seconds:.1f} s)\n"
                     f"{proc.stdout}{proc.stderr}\n")
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise GradingError(f"nbgrader {args[0]} failed (exit {proc.returncode}):\n{tail}")
    return proc


def _prepare_course(root: Path, chapter: str, course: Path, log: Path | None = None) -> Path:
    """Fill ``course/source/<chapter>`` from ``solutions/`` and run generate_assignment.

    The source notebooks are rebuilt from their percent scripts, so what is released and
    graded is always what the scripts say, even before ``release`` has written the ``.ipynb``.
    """
    course.mkdir(parents=True, exist_ok=True)
    _write_course_config(course, root)
    src = Path(root) / "solutions" / chapter
    dst = course / "source" / chapter
    scripts = {p.name for p in paired_scripts(root, chapter)}
    ignore_names = {"__pycache__", ".ipynb_checkpoints"}

    def _ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in ignore_names or n.startswith(".") or (Path(folder) == src and n in scripts)}

    shutil.copytree(src, dst, ignore=_ignore)
    for script in paired_scripts(root, chapter):
        (dst / f"{script.stem}.ipynb").write_text(_dumps(notebook_from_script(script)), encoding="utf-8")
    _nbgrader(course, "generate_assignment", chapter, "--force", log=log)
    return course


def _tree(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def release(root: str | Path | None = None, chapters: list[str] | None = None, check: bool = False) -> list[str]:
    """Regenerate ``chapters/`` (and the ``.ipynb`` twins of the scripts) from ``solutions/``.

    With ``check=True`` nothing is written; the return value lists every file that is out of
    date (empty when the repository is consistent). Otherwise it lists the files written.
    """
    root = Path(root) if root else find_root()
    all_chapters = list_chapters(root)
    chapters = chapters or all_chapters
    for ch in chapters:
        _check_chapter(root, ch)
    changed = sync_scripts(root, chapters, check=check)
    with tempfile.TemporaryDirectory(prefix="induction-release-") as tmp:
        for ch in chapters:
            course = _prepare_course(root, ch, Path(tmp) / ch)
            new = _tree(course / "release" / ch)
            out_dir = Path(root) / "chapters" / ch
            old = _tree(out_dir) if out_dir.exists() else {}
            for rel, path in new.items():
                if rel not in old or not filecmp.cmp(path, old[rel], shallow=False):
                    changed.append(f"chapters/{ch}/{rel}")
            stale = [rel for rel in old if rel not in new]
            changed += [f"chapters/{ch}/{rel} (stale)" for rel in stale]
            if not check:
                for rel in stale:
                    old[rel].unlink()
                for rel, path in new.items():
                    target = out_dir / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
    return changed


# ---------------------------------------------------------------------------- submissions
@dataclass
class Submission:
    student: str
    origin: str  # where it came from, for the report
    notebook: Any = None  # the validated nbformat notebook
    problem: str | None = None
    nbgrader_id: str = ""
    ignored: bool = False  # a second submission of a student: reported, not graded, no row


@dataclass
class GradeResult:
    chapter: str
    exercises: list[tuple[str, float]]  # (grade_id, max points), in notebook order
    rows: list[dict] = field(default_factory=list)  # student, per-exercise points, total, max
    problems: list[str] = field(default_factory=list)
    out: Path | None = None

    @property
    def max_points(self) -> float:
        return sum(p for _, p in self.exercises)


def _grade_cells(nb) -> list[tuple[str, float]]:
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cells.append((meta["grade_id"], float(meta.get("points", 0))))
    return cells


def _grade_ids(nb_json: dict) -> set[str]:
    ids = set()
    for cell in nb_json.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and meta.get("grade_id"):
            ids.add(meta["grade_id"])
    return ids


def _source_notebook(root: Path, chapter: str):
    """The reference notebook of a chapter: from its percent script if it has one."""
    nb_path = Path(root) / "solutions" / chapter / f"{chapter}.ipynb"
    script = nb_path.with_suffix(".py")
    if _is_notebook_script(script):
        return notebook_from_script(script)
    import nbformat

    return nbformat.read(nb_path, as_version=4)


def _chapter_grade_ids(root: Path) -> dict[str, set[str]]:
    out = {}
    for ch in list_chapters(root):
        nb = _source_notebook(root, ch)
        out[ch] = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata}
    return out


def _load_submission(path: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> tuple[Any, str | None]:
    """(notebook, None) for a good submission, (None, reason) otherwise."""
    import nbformat

    if path.suffix.lower() != ".ipynb":
        return None, f"{path.name} is not a Jupyter notebook (expected a .ipynb file)"
    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        return None, f"{path.name} is not valid JSON (not UTF-8 text): is it really a notebook?"
    except json.JSONDecodeError as err:
        return None, f"{path.name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); the file may be truncated or corrupted"
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        return None, f"{path.name} is JSON but not a Jupyter notebook (no 'cells'/'nbformat')"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises several kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, f"{path.name} is not a valid Jupyter notebook ({first})"
    declared = (nb.metadata.get("induction_course") or {}).get("chapter")
    ids = _grade_ids(nb)
    mine = chapter_ids.get(chapter, set())
    if declared and declared != chapter:
        return None, f"{path.name} is the notebook of chapter {declared}, not {chapter}"
    if not ids & mine:
        other = [ch for ch, chids in chapter_ids.items() if ch != chapter and ids & chids]
        if other:
            return None, f"{path.name} is the notebook of chapter {other[0]}, not {chapter}"
        return None, f"{path.name} has none of the exercises of {chapter} (is it the course notebook?)"
    return nb, None


def _safe_extract(zpath: Path, dest: Path) -> list[tuple[str, str]]:
    """Extract a zip below ``dest`` only (no absolute paths, no ``..``, no ``__MACOSX``).

    Returns ``(member, error)`` for members that could not be read (a damaged export); an
    unreadable zip as a whole raises :class:`GradingError`.
    """
    import zlib

    damaged: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as err:
        raise GradingError(f"{zpath} is not a readable zip file ({err})") from err
    with zf:
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p]
            if not parts or name.startswith("/") or ".." in parts or parts[0] == "__MACOSX":
                continue
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
                target.unlink(missing_ok=True)
                damaged.append(("/".join(parts), str(err) or type(err).__name__))
    return damaged


def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name in {"__MACOSX", "__pycache__", ".ipynb_checkpoints"}


def _collect(folder: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> list[Submission]:
    """One submission per top-level entry: a sub-folder is a student, a file is ``<student>.ext``."""
    subs: dict[str, Submission] = {}
    problems: list[Submission] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _hidden(entry):
            continue
        if entry.is_dir():
            student = entry.name
            found = sorted(
                p for p in entry.rglob("*.ipynb")
                if p.is_file() and not any(_hidden(q) for q in p.relative_to(entry).parents if str(q) != ".")
                and not _hidden(p)
            )
            origin = f"{entry.name}/"
            if not found:
                others = sorted(p.name for p in entry.rglob("*") if p.is_file() and not _hidden(p))
                sub = Submission(student, origin, problem="no notebook (.ipynb) in the folder"
                                 + (f" (found: {', '.join(others[:5])})" if others else " (it is empty)"))
            else:
                candidates = [(p, *_load_submission(p, chapter, chapter_ids)) for p in found]
                good = [(p, nb) for p, nb, err in candidates if nb is not None]
                named = [(p, nb) for p, nb in good if p.name == f"{chapter}.ipynb"]
                if len(good) == 1 or len(named) == 1:
                    p, nb = good[0] if len(good) == 1 else named[0]
                    sub = Submission(student, f"{origin}{p.relative_to(entry)}", nb)
                elif not good:
                    sub = Submission(student, origin, problem="; ".join(err for _, _, err in candidates))
                else:
                    names = ", ".join(str(p.relative_to(entry)) for p, _ in good)
                    sub = Submission(student, origin, problem=f"several notebooks of {chapter} ({names}); "
                                     "keep exactly one")
        else:
            student = entry.stem if entry.suffix else entry.name
            nb, err = _load_submission(entry, chapter, chapter_ids)
            sub = Submission(student, entry.name, nb, err)
        if student in subs:
            problems.append(Submission(student, sub.origin, problem=f"a second submission for {student} "
                                       f"({sub.origin}) was ignored; graded {subs[student].origin}", ignored=True))
            continue
        subs[student] = sub
    out = [subs[k] for k in sorted(subs)]
    _assign_ids(out)
    return out + problems


def _assign_ids(subs: list[Submission]) -> None:
    """nbgrader student ids: letters, digits, ``_`` and ``-`` only, unique, deterministic."""
    used: set[str] = set()
    for sub in subs:
        base = re.sub(r"[^A-Za-z0-9_-]", "_", sub.student) or "student"
        sid, n = base, 1
        while sid.lower() in used:
            n += 1
            sid = f"{base}_{n}"
        used.add(sid.lower())
        sub.nbgrader_id = sid


def _feedback_html(student: str, chapter: str, message: str, max_points: float) -> str:
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


def grade(
    chapter: str,
    submissions: str | Path,
    out: str | Path,
    root: str | Path | None = None,
    workdir: str | Path | None = None,
    quiet: bool = False,
) -> GradeResult:
    """Autograde every submission of a class; write ``grades.csv``, ``feedback/`` and ``report.txt`` in ``out``."""
    import nbformat

    root = Path(root) if root else find_root()
    _check_chapter(root, chapter)
    submissions = Path(submissions)
    if not submissions.exists():
        raise GradingError(f"submissions not found: {submissions}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GradingError(f"--out {out} exists and is not a folder")
    sub_abs, out_abs = submissions.resolve(), out.resolve()
    if submissions.is_dir() and (out_abs == sub_abs or sub_abs in out_abs.parents):
        raise GradingError(f"--out {out} is inside the submissions folder; choose a folder outside it")
    if submissions.is_file() and not zipfile.is_zipfile(submissions):
        raise GradingError(f"{submissions} is neither a folder nor a zip file")

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="induction-grade-") if workdir is None else None
    work = Path(tmp.name) if tmp else Path(workdir)
    try:
        work.mkdir(parents=True, exist_ok=True)
        log = work / "nbgrader.log"
        # 1. the submissions, read-only: a zip is extracted into the work folder
        if submissions.is_file():
            folder = work / "unzipped"
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            damaged = _safe_extract(submissions, folder)
            entries = [p for p in folder.iterdir() if not _hidden(p)]
            if len(entries) == 1 and entries[0].is_dir() and entries[0].name == submissions.stem:
                folder = entries[0]  # the zip of a folder: its content is the class
                damaged = [(m.split("/", 1)[1], e) for m, e in damaged if "/" in m]
        else:
            folder, damaged = submissions, []
        chapter_ids = _chapter_grade_ids(root)
        subs = _collect(folder, chapter, chapter_ids)
        known = {s.student for s in subs}
        for member, err in damaged:
            first = member.split("/", 1)[0]
            student = first if "/" in member else Path(first).stem
            problem = f"{member} could not be extracted from the zip ({err})"
            if student in known:
                subs.append(Submission(student, member, problem=problem + "; ignored", ignored=True))
            else:
                known.add(student)
                subs.append(Submission(student, member, problem=problem))
        _assign_ids([s for s in subs if not s.ignored])
        subs.sort(key=lambda s: (s.ignored, s.student))

        # 2. a fresh nbgrader course with this chapter's assignment in its gradebook
        course = work / "course"
        if course.exists():
            shutil.rmtree(course)
        exercises = _grade_cells(_source_notebook(root, chapter))
        result = GradeResult(chapter, exercises, out=out)
        max_points = result.max_points

        graded = [s for s in subs if s.problem is None and s.notebook is not None]
        if graded:  # a class of bad files only needs no nbgrader at all
            _prepare_course(root, chapter, course, log=log)
        for s in graded:
            dest = course / "submitted" / s.nbgrader_id / chapter
            dest.mkdir(parents=True)
            nbformat.write(s.notebook, dest / f"{chapter}.ipynb")

        # 3. autograde and feedback (one kernel per notebook, one student after the other)
        if graded:
            say(f"Autograding {len(graded)} submission(s) of {chapter} ...")
            _nbgrader(course, "autograde", chapter, "--force", log=log, check=False)
            _nbgrader(course, "generate_feedback", chapter, "--force", log=log, check=False)

        # 4. scores from the gradebook
        from nbgrader.api import Gradebook, MissingEntry

        scores: dict[str, dict[str, float]] = {}
        with contextlib.ExitStack() as stack:
            gb = stack.enter_context(Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID)) if graded else None
            for s in graded:
                autograded = course / "autograded" / s.nbgrader_id / chapter / f"{chapter}.ipynb"
                if not autograded.exists():
                    s.problem = "autograding failed (see nbgrader.log of a run with --workdir)"
                    continue
                try:
                    nb_sub = gb.find_submission_notebook(chapter, chapter, s.nbgrader_id)
                except MissingEntry:
                    s.problem = "autograding failed: no result in the gradebook"
                    continue
                by_id = {g.cell.name: (g.score or 0.0) for g in nb_sub.grades}
                scores[s.student] = {gid: float(by_id.get(gid, 0.0)) for gid, _ in exercises}

        # 5. outputs
        out.mkdir(parents=True, exist_ok=True)
        fb_dir = out / "feedback"
        fb_dir.mkdir(exist_ok=True)
        for old in fb_dir.glob("*.html"):
            old.unlink()
        header = ["student", *[gid for gid, _ in exercises], "total", "max"]
        rows = []
        for s in subs:
            if s.ignored:
                result.problems.append(f"{s.student}: {s.problem}")
                say(f"  {s.student}: {s.problem}")
                continue
            per = scores.get(s.student) if s.problem is None else None
            if per is None:
                per = {gid: 0.0 for gid, _ in exercises}
                result.problems.append(f"{s.student}: 0 points — {s.problem} [{s.origin}]")
                say(f"  {s.student}: 0 / {max_points:g} — {s.problem}")
                (fb_dir / f"{s.student}.html").write_text(
                    _feedback_html(s.student, chapter, s.problem or "unknown problem", max_points), encoding="utf-8"
                )
            else:
                fb = course / "feedback" / s.nbgrader_id / chapter / f"{chapter}.html"
                if fb.exists():
                    shutil.copyfile(fb, fb_dir / f"{s.student}.html")
                else:
                    result.problems.append(f"{s.student}: no feedback file was generated")
                say(f"  {s.student}: {sum(per.values()):g} / {max_points:g}")
            total = sum(per.values())
            row = {"student": s.student, **{gid: per[gid] for gid, _ in exercises}, "total": total, "max": max_points}
            rows.append(row)
        result.rows = rows
        with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            for row in rows:
                w.writerow([row["student"], *[_fmt(row[h]) for h in header[1:]]])
        report = [f"{chapter}: {len(rows)} student(s), max {max_points:g} points", *result.problems]
        (out / "report.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
        say(f"Wrote {out / 'grades.csv'} and {len(list(fb_dir.glob('*.html')))} feedback file(s) in {fb_dir}")
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


# -------------------------------------------------------------------------------- the CLI
def _cmd_release(args: argparse.Namespace) -> int:
    try:
        root = Path(args.root) if args.root else find_root()
        changed = release(root, args.chapters or None, check=args.check)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print("out of date (run `induction-course release`):")
            for c in changed:
                print(f"  {c}")
            return 1
        print("chapters/ and the solution notebooks are up to date.")
        return 0
    print("\n".join(f"wrote {c}" for c in changed) if changed else "nothing to do: chapters/ is up to date.")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    try:
        grade(args.chapter, args.submissions, args.out, root=args.root, workdir=args.workdir)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def add_subcommands(subparsers) -> None:
    """Register ``release`` and ``grade`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "release",
        help="regenerate chapters/ (student notebooks) from solutions/ with nbgrader",
        description="Rebuild each solutions/NN/NN.ipynb from its jupytext script, then chapters/ with "
        "nbgrader generate_assignment (solutions and hidden tests removed, outputs cleared).",
    )
    p.add_argument("chapters", nargs="*", help="chapter ids (default: all), e.g. 01_build_transformer")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    p.add_argument("--root", help="the course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_release)

    g = subparsers.add_parser(
        "grade",
        help="autograde a class: grades.csv and one HTML feedback file per student",
        description="SUBMISSIONS is a folder of <student>.ipynb, a folder with one sub-folder per "
        "student, or a zip of either. Submissions are never modified.",
    )
    g.add_argument("chapter", help="chapter id, e.g. 01_build_transformer")
    g.add_argument("submissions", help="folder or zip of the submissions")
    g.add_argument("--out", required=True, help="output folder (grades.csv, feedback/, report.txt)")
    g.add_argument("--root", help="the course repository (default: found from the current folder)")
    g.add_argument("--workdir", help="keep nbgrader's course folder here (default: a temporary folder)")
    g.set_defaults(func=_cmd_grade)
