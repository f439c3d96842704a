"""The course machinery: student release, autograding of a class, feedback and CSV export.

Reference notebooks are authored as jupytext *percent scripts*
(``solutions/NN_name/NN_name.py``, nbgrader metadata in the ``# %%`` headers) paired with the
``.ipynb`` next to them, which is nbgrader's source notebook. From them:

- :func:`release` writes the ``.ipynb`` of every script (:func:`notebook_from_script`), runs
  ``nbgrader generate_assignment`` in a temporary course directory and copies the result into
  ``chapters/NN_name/`` (outputs cleared, solutions and hidden tests removed). With
  ``check=True`` it changes nothing and lists what is out of date.
- :func:`grade` reads a class's submissions (a folder of ``<student>.ipynb``, a folder of
  per-student folders, or a zip of either), autogrades each one in a temporary nbgrader course
  of its own (release + gradebook + that notebook, no solutions), ``jobs`` at a time, with a
  time limit per cell and per notebook and a memory limit on the kernel
  (``kernel_launcher.py``), merges the per-student gradebooks into one, runs
  ``nbgrader generate_feedback`` and writes ``grades.csv``, ``feedback/<student>.html`` and
  ``report.txt``. Submissions are read, never written. A file that is not a notebook, not
  valid JSON, too large or from another chapter gets a line in the report and a zero; a
  notebook that loops, runs out of memory, kills its kernel or was tampered with gets a line
  and the points it earned; the rest of the class is graded.

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
DEFAULT_TIMEOUT = 120  # seconds per cell (nbgrader's ExecutePreprocessor.timeout)
DEFAULT_MEMORY_MB = 4096  # address space of one kernel (RLIMIT_AS)
MAX_FILE_MB = 100  # larger files are not even read
MAX_SOURCE_MB = 2  # code and text of a notebook (outputs excluded); chapter 1 has ~20 kB
KERNEL_NAME = "induction-course-grader"


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


def _with_interpreter_bin(env: dict) -> dict:
    """nbgrader shells out to ``alembic`` (gradebook migrations) by name: put this
    interpreter's script folder first on PATH, so grading works from a virtual environment
    that was never activated (``.venv/bin/python -m ...``, as CI and the README run it)."""
    bin_dir = str(Path(sys.executable).parent)
    parts = env.get("PATH", "").split(os.pathsep) if env.get("PATH") else []
    if bin_dir not in parts:
        env["PATH"] = os.pathsep.join([bin_dir, *parts])
    return env


def _nbgrader(course: Path, *args: str, log: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = _with_interpreter_bin(dict(os.environ))
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
    from induction_course.course.notebook import links

    # Badges and setup cells come from links.REPOSITORY; refresh them before building notebooks.
    changed = links.sync(root, check=check)
    changed += sync_scripts(root, chapters, check=check)
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
    size = path.stat().st_size
    if size > MAX_FILE_MB * 1_000_000:
        return None, (f"{path.name} is too large to grade ({size / 1e6:.0f} MB; the limit is {MAX_FILE_MB} MB): "
                      "clear the outputs (Kernel > Restart & Clear Output) and submit again")
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
    source_bytes = sum(len(c.get("source", "")) for c in nb.cells)
    if source_bytes > MAX_SOURCE_MB * 1_000_000:
        return None, (f"{path.name} is too large to grade: its cells hold {source_bytes / 1e6:.0f} MB of code and text "
                      f"(the limit is {MAX_SOURCE_MB} MB, outputs not counted)")
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


# ------------------------------------------------------------------------- robust grading


def default_jobs() -> int:
    """Parallel notebooks: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def notebook_time_limit(timeout: int) -> int:
    """Wall-clock seconds for one whole submission (kernel start, every cell, nbgrader itself)."""
    return int(4 * timeout + 120)


@dataclass
class _Task:
    """What one worker needs to grade one student in its own course folder."""
    student: str
    sid: str
    notebook: Any
    course: Path
    base: Path
    repo_config: Path
    chapter: str
    timeout: int
    memory_mb: int
    threads: int
    env_drop: tuple[str, ...]


def _sanitize(nb, release_nb, exercises: list[tuple[str, float]], accepted: dict[str, set[str]]) -> list[str]:
    """Make the student's notebook gradable in place; return notes for the report.

    Stored outputs are dropped; cells whose ``grade_id`` is not one of the chapter's lose their
    nbgrader metadata (a renamed test is just code); of duplicated ids only the last copy keeps
    it (as nbgrader's DeduplicateIds does); a known cell gets the release's nbgrader metadata
    back (``grade``, ``locked``, ``points``); deleted grade cells are put back after the cell
    that precedes them in the release. Edited locked cells are noted: nbgrader's
    ``OverwriteCells`` restores their source (hidden tests included) from the gradebook.
    """
    import copy

    import nbformat

    notes = []
    release_cells = [c for c in release_nb.cells if "nbgrader" in c.metadata]
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in release_cells}
    order = [c.metadata["nbgrader"]["grade_id"] for c in release_cells]
    out_bytes = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            out_bytes += len(json.dumps(cell.get("outputs", [])))
            cell.outputs = []
            cell.execution_count = None
    if out_bytes > 1_000_000:
        notes.append(f"{out_bytes / 1e6:.0f} MB of stored outputs were dropped before grading")
    # ids: unknown, duplicated
    unknown, counts = [], {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if gid not in by_id:
            if gid:
                unknown.append(str(gid))
            del cell.metadata["nbgrader"]
            continue
        counts[gid] = counts.get(gid, 0) + 1
    seen: set[str] = set()
    for cell in reversed(nb.cells):
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid is None:
            continue
        if gid in seen:
            del cell.metadata["nbgrader"]
            continue
        seen.add(gid)
        ref = by_id[gid]
        if ref.cell_type != cell.cell_type:
            cell.cell_type = ref.cell_type
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        cell.metadata["nbgrader"] = copy.deepcopy(ref.metadata["nbgrader"])
    if unknown:
        notes.append("cells with a grade_id that is not in the chapter (renamed?) were graded as plain code: "
                     + ", ".join(sorted(set(unknown))))
    dups = sorted(g for g, n in counts.items() if n > 1)
    if dups:
        notes.append("duplicated grade_id (only the last copy counts): " + ", ".join(dups))
    grade_ids = {g for g, _ in exercises}
    edited = []
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if (gid in by_id and by_id[gid].metadata["nbgrader"].get("locked")
                and cell.source.strip() not in {by_id[gid].source.strip(), *accepted.get(gid, ())}):
            edited.append(gid)
    if edited:
        notes.append("edited read-only cells were restored before grading: " + ", ".join(edited))
    present = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata}
    missing = [g for g in order if g not in present and (g in grade_ids or by_id[g].metadata["nbgrader"].get("locked"))]
    for gid in missing:
        new = nbformat.from_dict(copy.deepcopy(dict(by_id[gid])))
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        pos = 0
        for prev in reversed(order[: order.index(gid)]):
            idx = next((i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == prev), None)
            if idx is not None:
                pos = idx + 1
                break
        nb.cells.insert(pos, new)
    if missing:
        notes.append("deleted read-only/test cells were put back before grading: " + ", ".join(missing))
    for i, cell in enumerate(nb.cells):  # unique cell ids (a duplicated cell copies its id)
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid is None and cell.cell_type == "code" and "HIDDEN TESTS" in cell.source:
            # markers outside a grade cell make nbgrader's feedback fail: keep the code, drop them
            cell.source = "\n".join(ln for ln in cell.source.split("\n")
                                    if ln.strip() not in ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
        cell["id"] = gid or f"cell-{i:04d}"
    return notes


def _run_limited(cmd: list[str], cwd: Path, env: dict, limit: float, log: Path, pidfile: Path | None) -> tuple[int | None, float]:
    """Run ``cmd`` in its own session; kill it (and the kernel in ``pidfile``) after ``limit`` s.

    Returns (exit code or None on timeout, seconds)."""
    import signal

    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd[2:])}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            code = None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seconds = time.perf_counter() - start
        fh.write(f"(exit {code if code is not None else 'killed: time limit'}, {seconds:.1f} s)\n")
    if pidfile is not None and pidfile.exists():  # the kernel runs in a session of its own
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if Path(f"/proc/{pid}").exists() else b""
            if b"ipykernel" in cmdline and str(pidfile).encode() not in cmdline:
                os.kill(pid, signal.SIGKILL)
    return code, seconds


def _student_config(task: _Task) -> str:
    return f"""\
import sys
c = get_config()
load_subconfig({str(task.repo_config)!r})
c.CourseDirectory.root = {str(task.course)!r}
c.CourseDirectory.course_id = {COURSE_ID!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = {"sqlite:///" + str(task.course / "gradebook.db")!r}
# limits: seconds per cell here, memory and CPU in the kernel launcher (kernel_launcher.py)
c.Execute.timeout = {task.timeout}
c.ExecutePreprocessor.timeout = {task.timeout}
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_name = {KERNEL_NAME!r}
c.ExecutePreprocessor.kernel_name = {KERNEL_NAME!r}
c.OverwriteCells.add_missing_cells = False  # the grader puts deleted test cells back itself
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from kernel_launcher import survivable_execute  # noqa: E402
from nbgrader.converters import Autograde  # noqa: E402
_pre = list(Autograde.class_traits()["autograde_preprocessors"].default())
_pre = [survivable_execute() if p.__name__ == "Execute" else p for p in _pre]
c.Autograde.autograde_preprocessors = _pre
"""


def _kernelspec(task: _Task) -> dict:
    launcher = Path(__file__).resolve().parent / "kernel_launcher.py"
    return {
        "argv": [sys.executable, str(launcher), "--memory-mb", str(task.memory_mb),
                 "--cpu-s", str(2 * notebook_time_limit(task.timeout) * max(1, task.threads)),
                 "--pidfile", str(task.course / "kernel.pid"), "--", "{connection_file}"],
        "display_name": "Python 3 (grader, limited)",
        "language": "python",
        "metadata": {"debugger": False},
    }


def _worker_env(task: _Task) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"PWD", "OLDPWD"} and not any(d in v for d in task.env_drop)}
    env.update({
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": os.environ.get("MPLBACKEND", "module://matplotlib_inline.backend_inline"),
        "JUPYTER_PATH": str(task.course / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(task.course / "runtime"),
        "IPYTHONDIR": str(task.course / "ipython"),
        "OMP_NUM_THREADS": str(task.threads),
        "MKL_NUM_THREADS": str(task.threads),
        "PWD": str(task.course),
    })
    return _with_interpreter_bin(env)


_INCIDENTS = {
    "CellTimeoutError": "a cell was stopped at the {timeout} s time limit",
    "MemoryError": "a cell ran out of memory (limit {memory} MB)",
    "KernelDied": "the kernel died (os._exit, a signal, a crash or the memory limit); the cells after it were not run",
}


def _grade_one(task: _Task) -> dict:
    """Autograde and give feedback to one student in a course folder of their own."""
    import nbformat

    course, chapter = task.course, task.chapter
    if course.exists():
        shutil.rmtree(course)
    shutil.copytree(task.base, course)
    (course / "nbgrader_config.py").write_text(_student_config(task), encoding="utf-8")
    kdir = course / "jupyter" / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps(_kernelspec(task), indent=1), encoding="utf-8")
    dest = course / "submitted" / task.sid / chapter
    dest.mkdir(parents=True)
    nbformat.write(task.notebook, dest / f"{chapter}.ipynb")
    env = _worker_env(task)
    log = course / "nbgrader.log"
    nbg = [sys.executable, "-m", "nbgrader"]
    limit = notebook_time_limit(task.timeout)
    code, seconds = _run_limited([*nbg, "autograde", chapter, "--student", task.sid, "--force"],
                                 course, env, limit, log, course / "kernel.pid")
    res: dict[str, Any] = {"student": task.student, "seconds": seconds, "notes": [], "problem": None, "scores": None}
    autograded = course / "autograded" / task.sid / chapter / f"{chapter}.ipynb"
    if "Exception while loading config file" in log.read_text(encoding="utf-8", errors="replace"):
        raise RuntimeError(f"the grader's nbgrader config failed to load (a bug; see {log})")
    if code is None:
        res["problem"] = f"did not finish within the time limit of {limit} s for a whole notebook (killed)"
        return res
    if not autograded.exists():
        res["problem"] = "autograding failed (nbgrader could not process the notebook; see nbgrader.log with --workdir)"
        return res
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        try:
            nb_sub = gb.find_submission_notebook(chapter, chapter, task.sid)
        except MissingEntry:
            res["problem"] = "autograding failed: no result in the gradebook"
            return res
        res["scores"] = {g.cell.name: float(g.score or 0.0) for g in nb_sub.grades}
    graded_nb = nbformat.read(autograded, as_version=4)
    seen = []
    for cell in graded_nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") != "error":
                continue
            ename = o.get("ename")
            if ename == "RuntimeError" and "can't allocate memory" in str(o.get("evalue")):
                ename = "MemoryError"  # torch's allocator says it this way
            if ename in _INCIDENTS and ename not in seen:
                seen.append(ename)
    res["notes"] = [_INCIDENTS[e].format(timeout=task.timeout, memory=task.memory_mb) for e in seen]
    return res


def _base_course(root: Path, chapter: str, base: Path, log: Path) -> Any:
    """The course folder every student's copy starts from: release, gradebook, no solutions.

    ``generate_assignment`` runs in a throw-away folder; ``base`` keeps its release, its
    gradebook (which holds the release's cells and the hidden tests, never the solutions:
    nbgrader saves cells after clearing the solutions) and the chapter's non-notebook files.
    Returns the release notebook.
    """
    import nbformat

    with tempfile.TemporaryDirectory(prefix="induction-generate-") as tmp:
        tcourse = _prepare_course(root, chapter, Path(tmp) / "course", log=log)
        base.mkdir(parents=True)
        shutil.copytree(tcourse / "release", base / "release")
        shutil.copytree(tcourse / "source", base / "source", ignore=shutil.ignore_patterns("*.ipynb"))
        shutil.copyfile(tcourse / "gradebook.db", base / "gradebook.db")
    _write_course_config(base, root)
    return nbformat.read(base / "release" / chapter / f"{chapter}.ipynb", as_version=4)


def _merge_gradebooks(course: Path, chapter: str, results: dict[str, tuple[str, Path]]) -> None:
    """Copy every student's grades and comments into ``course/gradebook.db``, in student order."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush chatter inside nbgrader's API
        for sid in sorted(results):
            _, scourse = results[sid]
            with Gradebook(f"sqlite:///{scourse / 'gradebook.db'}", COURSE_ID) as sgb:
                try:
                    snb = sgb.find_submission_notebook(chapter, chapter, sid)
                except MissingEntry:
                    continue
                grades = {g.cell.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in snb.grades}
                comments = {c.cell.name: c.auto_comment for c in snb.comments}
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(chapter, sid)
            nb = gb.find_submission_notebook(chapter, chapter, sid)
            for g in nb.grades:
                if g.cell.name in grades:
                    g.auto_score, g.manual_score, g.needs_manual_grade = grades[g.cell.name]
            for c in nb.comments:
                if c.cell.name in comments:
                    c.auto_comment = comments[c.cell.name]
            gb.db.commit()
            for part in ("submitted", "autograded", "feedback"):
                src = scourse / part / sid
                if src.exists():
                    shutil.copytree(src, course / part / sid, dirs_exist_ok=True)


def _fmt(x: float) -> str:
    return f"{x:g}"


def grade(
    chapter: str,
    submissions: str | Path,
    out: str | Path,
    root: str | Path | None = None,
    workdir: str | Path | None = None,
    quiet: bool = False,
    jobs: int | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> GradeResult:
    """Autograde every submission of a class; write ``grades.csv``, ``feedback/`` and ``report.txt`` in ``out``.

    Each submission is autograded in a course folder of its own (the release, the gradebook
    and that one notebook; never ``solutions/``), ``jobs`` at a time, each kernel limited to
    ``timeout`` seconds per cell, ``notebook_time_limit(timeout)`` per notebook and
    ``memory_mb`` of address space. The per-student gradebooks are then merged, in student
    order, into ``course/gradebook.db`` of the work folder.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    root = Path(root) if root else find_root()
    _check_chapter(root, chapter)
    jobs = default_jobs() if not jobs or jobs < 1 else int(jobs)
    if timeout < 1:
        raise GradingError("--timeout must be at least 1 second")
    if memory_mb < 256:
        raise GradingError("--memory-mb must be at least 256 (a kernel with torch needs far more)")
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
    work = Path(tmp.name) if tmp else Path(workdir).resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
        log = work / "nbgrader.log"
        log.write_text("", encoding="utf-8")
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

        # 2. one course folder to start from, without solutions
        for d in ("course", "students"):
            if (work / d).exists():
                shutil.rmtree(work / d)
        exercises = _grade_cells(_source_notebook(root, chapter))
        result = GradeResult(chapter, exercises, out=out)
        max_points = result.max_points
        graded = [s for s in subs if s.problem is None and s.notebook is not None]
        notes: dict[str, list[str]] = {s.student: [] for s in subs}
        outcome: dict[str, dict] = {}
        course = work / "course"
        if graded:  # a class of bad files only needs no nbgrader at all
            release_nb = _base_course(root, chapter, course, log)
            accepted = {c.metadata["nbgrader"]["grade_id"]: {c.source.strip()}  # the reference's own cells
                        for c in _source_notebook(root, chapter).cells if "nbgrader" in c.metadata}
            threads = max(1, default_jobs() // jobs)
            drop = (str((Path(root) / "solutions").resolve()),)
            tasks = []
            for s in graded:
                notes[s.student] += _sanitize(s.notebook, release_nb, exercises, accepted)
                tasks.append(_Task(s.student, s.nbgrader_id, s.notebook, work / "students" / s.nbgrader_id,
                                   course, Path(root) / "graders" / "nbgrader_config.py", chapter,
                                   int(timeout), int(memory_mb), threads, drop))
            # 3. autograde and feedback, one course folder and one kernel per student, `jobs` at a time
            say(f"Autograding {len(graded)} submission(s) of {chapter}, {jobs} at a time "
                f"(limits: {timeout} s per cell, {notebook_time_limit(timeout)} s per notebook, {memory_mb} MB) ...")
            done = 0
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(_grade_one, t): t for t in tasks}
                for fut in as_completed(futures):
                    t = futures[fut]
                    try:
                        r = fut.result()
                    except Exception as err:  # a bug or a full disk: this student only
                        r = {"student": t.student, "seconds": 0.0, "notes": [], "scores": None,
                             "problem": f"autograding failed ({type(err).__name__}: {err})"}
                    outcome[t.student] = r
                    done += 1
                    status = (f"{sum(r['scores'].values()):g} / {max_points:g}" if r["scores"] is not None
                              else f"0 / {max_points:g} ({r['problem']})")
                    say(f"  [{done}/{len(tasks)}] {t.student}: {status} in {r['seconds']:.0f} s")
            # 4. one gradebook for the class, merged in student order
            _merge_gradebooks(course, chapter, {t.sid: (t.student, t.course) for t in tasks
                                                if outcome[t.student]["scores"] is not None})
            if any(r["scores"] is not None for r in outcome.values()):
                _nbgrader(course, "generate_feedback", chapter, "--force", log=log, check=False)
            with open(log, "a", encoding="utf-8") as fh:
                for t in sorted(tasks, key=lambda t: t.sid):
                    slog = t.course / "nbgrader.log"
                    fh.write(f"===== {t.student} ({t.sid})\n")
                    if slog.exists():
                        fh.write(slog.read_text(encoding="utf-8", errors="replace"))

        # 5. outputs
        out.mkdir(parents=True, exist_ok=True)
        fb_dir = out / "feedback"
        fb_dir.mkdir(exist_ok=True)
        for old in fb_dir.glob("*.html"):
            old.unlink()
        header = ["student", *[gid for gid, _ in exercises], "total", "max"]
        rows = []
        say("Results:")
        for s in subs:
            if s.ignored:
                result.problems.append(f"{s.student}: {s.problem}")
                say(f"  {s.student}: {s.problem}")
                continue
            r = outcome.get(s.student)
            if s.problem is None and r is not None and r["problem"] is not None:
                s.problem = r["problem"]
            per = r["scores"] if (r is not None and s.problem is None) else None
            extra = notes.get(s.student, []) + (r["notes"] if r else [])
            if per is None:
                per = {gid: 0.0 for gid, _ in exercises}
                why = "; ".join([s.problem or "unknown problem", *extra])
                result.problems.append(f"{s.student}: 0 / {max_points:g} points — {why} [{s.origin}]")
                say(f"  {s.student}: 0 / {max_points:g} — {why}")
                (fb_dir / f"{s.student}.html").write_text(
                    _feedback_html(s.student, chapter, why, max_points), encoding="utf-8"
                )
            else:
                per = {gid: float(per.get(gid, 0.0)) for gid, _ in exercises}
                got = sum(per.values())
                fb = course / "feedback" / s.nbgrader_id / chapter / f"{chapter}.html"
                if fb.exists():
                    shutil.copyfile(fb, fb_dir / f"{s.student}.html")
                else:
                    extra = [*extra, "no feedback file was generated"]
                if extra:
                    result.problems.append(f"{s.student}: {got:g} / {max_points:g} points — {'; '.join(extra)} [{s.origin}]")
                say(f"  {s.student}: {got:g} / {max_points:g}" + (f" — {'; '.join(extra)}" if extra else ""))
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
        say(f"Wrote {out / 'grades.csv'}, {out / 'report.txt'} and {len(list(fb_dir.glob('*.html')))} "
            f"feedback file(s) in {fb_dir}")
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
        grade(args.chapter, args.submissions, args.out, root=args.root, workdir=args.workdir,
              jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb)
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
    g.add_argument("--workdir", help="keep the work folder here: course/ (the class's merged nbgrader "
                   "gradebook, autograded/, feedback/), students/<id>/ (one course per student) and "
                   "nbgrader.log (default: a temporary folder)")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help=f"notebooks graded at the same time, each in its own kernel (default: the number "
                   f"of cores, here {default_jobs()})")
    g.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"seconds per cell before it is interrupted and loses its points (default "
                   f"{DEFAULT_TIMEOUT}); a whole notebook is killed after 4*S+120 s and gets 0")
    g.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                   help=f"address-space limit of each kernel in MB (default {DEFAULT_MEMORY_MB}); an "
                   "allocation beyond it raises MemoryError in the student's cell")
    g.set_defaults(func=_cmd_grade)
