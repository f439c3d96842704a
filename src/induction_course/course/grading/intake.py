"""Reading a class's submissions: a folder of ``<student>.ipynb``, a folder of per-student
folders, or a zip of either. Submissions are read, never written.

A file that is not a notebook, not valid JSON, too large or from another chapter becomes a
:class:`Submission` with a ``problem`` (a zero and a line in the report), never an exception:
one bad file must not stop the grading of a class.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from induction_course.course.grading.layout import GradingError
from induction_course.course.grading.notebooks import chapter_grade_ids, grade_ids

MAX_FILE_MB = 100  # larger files are not even read
MAX_SOURCE_MB = 2  # code and text of a notebook (outputs excluded); chapter 1 has ~20 kB


@dataclass
class Submission:
    student: str
    origin: str  # where it came from, for the report
    notebook: Any = None  # the validated nbformat notebook
    problem: str | None = None
    nbgrader_id: str = ""
    ignored: bool = False  # a second submission of a student: reported, not graded, no row


def _read_notebook(path: Path) -> tuple[Any, str | None]:
    """(notebook, None) if ``path`` is a valid notebook of a gradable size, else (None, reason)."""
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
    return nb, None


def load_submission(path: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> tuple[Any, str | None]:
    """(notebook, None) for a good submission, (None, reason) otherwise."""
    nb, problem = _read_notebook(path)
    if nb is None:
        return None, problem
    declared = (nb.metadata.get("induction_course") or {}).get("chapter")
    ids = grade_ids(nb)
    mine = chapter_ids.get(chapter, set())
    if declared and declared != chapter:
        return None, f"{path.name} is the notebook of chapter {declared}, not {chapter}"
    if not ids & mine:
        other = [ch for ch, chids in chapter_ids.items() if ch != chapter and ids & chids]
        if other:
            return None, f"{path.name} is the notebook of chapter {other[0]}, not {chapter}"
        return None, f"{path.name} has none of the exercises of {chapter} (is it the course notebook?)"
    return nb, None


def safe_extract(zpath: Path, dest: Path) -> list[tuple[str, str]]:
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


def is_hidden(p: Path) -> bool:
    """Files no student handed in on purpose: dot files, macOS and Jupyter droppings."""
    return p.name.startswith(".") or p.name in {"__MACOSX", "__pycache__", ".ipynb_checkpoints"}


def _collect_folder(entry: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> Submission:
    """A student's folder: the one notebook of ``chapter`` in it, searched at any depth."""
    student = entry.name
    found = sorted(
        p for p in entry.rglob("*.ipynb")
        if p.is_file() and not any(is_hidden(q) for q in p.relative_to(entry).parents if str(q) != ".")
        and not is_hidden(p)
    )
    origin = f"{entry.name}/"
    if not found:
        others = sorted(p.name for p in entry.rglob("*") if p.is_file() and not is_hidden(p))
        return Submission(student, origin, problem="no notebook (.ipynb) in the folder"
                          + (f" (found: {', '.join(others[:5])})" if others else " (it is empty)"))
    candidates = [(p, *load_submission(p, chapter, chapter_ids)) for p in found]
    good = [(p, nb) for p, nb, err in candidates if nb is not None]
    named = [(p, nb) for p, nb in good if p.name == f"{chapter}.ipynb"]
    if len(good) == 1 or len(named) == 1:
        p, nb = good[0] if len(good) == 1 else named[0]
        return Submission(student, f"{origin}{p.relative_to(entry)}", nb)
    if not good:
        return Submission(student, origin, problem="; ".join(err for _, _, err in candidates))
    names = ", ".join(str(p.relative_to(entry)) for p, _ in good)
    return Submission(student, origin, problem=f"several notebooks of {chapter} ({names}); keep exactly one")


def collect(folder: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> list[Submission]:
    """One submission per top-level entry: a sub-folder is a student, a file is ``<student>.ext``."""
    subs: dict[str, Submission] = {}
    problems: list[Submission] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if is_hidden(entry):
            continue
        if entry.is_dir():
            sub = _collect_folder(entry, chapter, chapter_ids)
        else:
            nb, err = load_submission(entry, chapter, chapter_ids)
            sub = Submission(entry.stem if entry.suffix else entry.name, entry.name, nb, err)
        student = sub.student
        if student in subs:
            problems.append(Submission(student, sub.origin, problem=f"a second submission for {student} "
                                       f"({sub.origin}) was ignored; graded {subs[student].origin}", ignored=True))
            continue
        subs[student] = sub
    out = [subs[k] for k in sorted(subs)]
    assign_ids(out)
    return out + problems


def assign_ids(subs: list[Submission]) -> None:
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


def _unzip(zpath: Path, folder: Path) -> tuple[Path, list[tuple[str, str]]]:
    """Extract ``zpath`` into ``folder``; return the folder that holds the class and the damaged members."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    damaged = safe_extract(zpath, folder)
    entries = [p for p in folder.iterdir() if not is_hidden(p)]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name == zpath.stem:
        folder = entries[0]  # the zip of a folder: its content is the class
        damaged = [(m.split("/", 1)[1], e) for m, e in damaged if "/" in m]
    return folder, damaged


def _add_damaged(subs: list[Submission], damaged: list[tuple[str, str]]) -> None:
    """A zip member that could not be extracted is its student's submission, unless they have one."""
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


def read_submissions(submissions: Path, work: Path, chapter: str, root: Path) -> list[Submission]:
    """The class, graded ones first, each in student order; a zip is extracted into ``work/unzipped``."""
    if submissions.is_file():
        folder, damaged = _unzip(submissions, work / "unzipped")
    else:
        folder, damaged = submissions, []
    subs = collect(folder, chapter, chapter_grade_ids(root))
    _add_damaged(subs, damaged)
    assign_ids([s for s in subs if not s.ignored])
    subs.sort(key=lambda s: (s.ignored, s.student))
    return subs
