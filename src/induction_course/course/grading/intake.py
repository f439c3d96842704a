"""Reading a class's submissions: a folder of ``<student>.ipynb``, a folder of per-student
folders, or a zip of either. Submissions are read, never written.

A file that is not a notebook, not valid JSON, too large or from another chapter becomes a
:class:`Submission` with a ``problem`` (a zero and a line in the report), never an exception:
one bad file must not stop the grading of a class.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from induction_course.course.grading.layout import GradingError
from induction_course.course.grading.lms import LmsName, parse_canvas, parse_entries, parse_moodle
from induction_course.course.grading.notebooks import chapter_grade_ids, grade_ids
from induction_course.course.grading.zipmeta import member_name, member_time

MAX_FILE_MB = 100  # larger files are not even read
MAX_SOURCE_MB = 2  # code and text of a notebook (outputs excluded); chapter 1 has ~20 kB
MAX_ZIP_MB = 2000  # everything a zip may unpack to, checked before writing
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of one member (a notebook compresses ~10x)
MAX_NAME = 100  # longer file or student names are shortened, with a stable id
JUNK = {".DS_Store", "__MACOSX", "__pycache__", ".ipynb_checkpoints", "Thumbs.db"}  # skipped without a word


@dataclass
class Submission:
    student: str
    origin: str  # where it came from, for the report
    notebook: Any = None  # the validated nbformat notebook
    problem: str | None = None
    nbgrader_id: str = ""
    ignored: bool = False  # a second submission of a student: reported, not graded, no row
    notes: list[str] = field(default_factory=list)  # for its report line (skipped files, a shortened name)
    name: str = ""  # the person's name when an LMS download gave one (Moodle, Canvas)
    lms: str = ""  # "moodle" or "canvas": which LMS ``lms_id`` belongs to
    lms_id: str = ""  # Moodle's participant id or Canvas' user id
    submitted: float | None = None  # POSIX time of the graded file (a zip member's time); None: unknown


def _read_notebook(path: Path) -> tuple[Any, str | None]:
    """(notebook, None) if ``path`` is a valid notebook of a gradable size, else (None, reason)."""
    import nbformat

    if path.suffix.lower() != ".ipynb":
        return None, f"{path.name} is not a Jupyter notebook (expected a .ipynb file)"
    raw, why = read_bounded(path, MAX_FILE_MB * 1_000_000)
    if raw is None:
        return None, why
    try:
        text = raw.decode("utf-8")
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


def read_bounded(path: Path, limit: int) -> tuple[bytes | None, str]:
    """(bytes, "") of a regular file of at most ``limit`` bytes, else (None, why). Never follows a
    symlink, never blocks on a FIFO, never reads a device or more than ``limit`` + 1 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        kind = "a symbolic link" if path.is_symlink() else f"unreadable ({err.strerror})"
        return None, f"{path.name} is {kind}, not a regular file: not read"
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, f"{path.name} is not a regular file (a FIFO, device or socket): not read"
        data = fh.read(limit + 1)
    if len(data) > limit:
        return None, (f"{path.name} is too large to grade (over {limit / 1e6:.0f} MB, the limit): "
                      "clear the outputs (Kernel > Restart & Clear Output) and submit again")
    return data, ""


def metadata_problem(nb: Any) -> str | None:
    """What is wrong with the types of a notebook's course and nbgrader metadata (None: nothing)."""
    ic = nb.metadata.get("induction_course")
    if ic is not None and not (isinstance(ic, dict) and isinstance(ic.get("chapter", ""), str)):
        return "metadata.induction_course is not an object with a text 'chapter'"
    types = {"grade_id": str, "grade": bool, "solution": bool, "locked": bool, "task": bool,
             "points": (int, float), "checksum": str, "schema_version": int}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict):
            return f"cell {i}: its nbgrader metadata is not an object"
        for key, want in types.items():
            if key in meta and not isinstance(meta[key], want) or key == "points" and isinstance(meta.get(key), bool):
                return f"cell {i}: nbgrader {key} has the wrong type ({type(meta[key]).__name__})"
    return None


def load_submission(path: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> tuple[Any, str | None]:
    """(notebook, None) for a good submission, (None, reason) otherwise."""
    nb, problem = _read_notebook(path)
    if nb is None:
        return None, problem
    problem = metadata_problem(nb)
    if problem is not None:
        return None, f"{path.name}: {problem} (was the notebook edited by hand?)"
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


def short_name(name: str) -> str:
    """``name`` if it is short enough, else its start and a stable id (the same name, the same id)."""
    if len(name) <= MAX_NAME and len(name.encode()) <= MAX_NAME * 2:
        return name
    stem, dot, ext = name.rpartition(".") if "." in name[-8:] else (name, "", "")
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{stem[:60]}~{digest}{dot}{ext}"


def _member_problem(info: zipfile.ZipInfo, parts: list[str], name: str, seen: set[str], total: int) -> str | None:
    """Why a zip member is skipped (None: it is extracted). Checked before a byte is written."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in parts or "." in parts:
        return "a path with '..' or '.'"
    if any(p.startswith(".") for p in parts):
        return "a hidden (dot) file"
    if name.rstrip("/") in seen:
        return "a duplicate of an earlier member"
    if info.is_dir():
        return None
    if info.file_size > MAX_FILE_MB * 1_000_000:
        return f"too large ({info.file_size / 1e6:.0f} MB unpacked; the limit is {MAX_FILE_MB} MB)"
    if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
        return f"compressed {info.file_size / info.compress_size:.0f}:1 (a zip bomb?)"
    if total + info.file_size > MAX_ZIP_MB * 1_000_000:
        return f"over the {MAX_ZIP_MB} MB the whole zip may unpack to"
    return None


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Write one member, never more bytes than its header declared (a header may lie)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    left = info.file_size
    with zf.open(info) as src, open(target, "xb") as out:
        while chunk := src.read(min(1 << 20, left + 1)):
            left -= len(chunk)
            if left < 0:
                raise ValueError("more data than its header declared")
            out.write(chunk)


def safe_extract(zpath: Path, dest: Path, zone: tzinfo | None = None) -> list[tuple[str, str]]:
    """Extract a zip below ``dest`` only; returns ``(member, why)`` for every member not extracted.

    Skipped, each with its reason: absolute paths, ``..``, dot-files, duplicates, a file where a
    folder of the same name is (or the reverse), members too large or too compressed (checked
    against the headers before writing, and while writing). ``__MACOSX/`` is skipped silently.
    Over-long names are shortened (:func:`short_name`). An unreadable zip raises :class:`GradingError`.
    Names are read as :func:`member_name` says; each file's modification time is its member's
    (:func:`member_time`, local times read in ``zone``), or 0 when the zip has none: a
    submission's time for ``--due`` (:mod:`.deadlines` takes 0 as unknown).
    """
    skipped: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as err:
        raise GradingError(f"{zpath} is not a readable zip file ({err})") from err
    seen: set[str] = set()
    total = 0
    with zf:
        for info in zf.infolist():
            name = member_name(info).replace("\\", "/")
            parts = [p for p in name.split("/") if p]
            if not parts or parts[0] == "__MACOSX" or parts[-1] in JUNK:
                continue
            why = _member_problem(info, parts, name, seen, total)
            shown = "/".join(short_name(p) for p in parts)
            if why is not None:
                skipped.append((shown, f"skipped: {why}"))
                continue
            seen.add(name.rstrip("/"))
            target = dest.joinpath(*(short_name(p) for p in parts))
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                total += info.file_size
                _copy_member(zf, info, target)
                when = member_time(info, zone) or 0.0
                os.utime(target, (when, when))
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
                    ValueError) as err:
                if target.is_file():
                    target.unlink()
                skipped.append((shown, f"could not be extracted ({getattr(err, 'strerror', None) or err or type(err).__name__})"))
    return skipped


def is_hidden(p: Path) -> bool:
    """Files no student handed in on purpose: dot files, macOS and Jupyter droppings."""
    return p.name.startswith(".") or p.name in JUNK


def _walk_notebooks(entry: Path) -> tuple[list[Path], list[str], list[str]]:
    """(the notebooks, the other regular files, what was skipped and why) below a student's folder;
    symlinks are never followed, FIFOs and devices never opened."""
    found, others, skipped = [], [], []
    for dirpath, dirnames, filenames in os.walk(entry, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(Path(d)) and not (here / d).is_symlink())
        for name in sorted(filenames + [d for d in os.listdir(here) if (here / d).is_symlink() and d not in filenames]):
            p = here / name
            if is_hidden(p):
                continue
            mode = p.lstat().st_mode
            if not stat.S_ISREG(mode):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                skipped.append(f"{p.relative_to(entry)} skipped ({kind})")
            elif p.suffix.lower() == ".ipynb":
                found.append(p)
            else:
                others.append(p.name)
    return found, others, skipped


def file_time(p: Path) -> float | None:
    """A file's modification time (a zip member's, once extracted): when it was submitted."""
    try:
        return p.lstat().st_mtime
    except OSError:
        return None


@dataclass
class _Found:
    """The files of one student's submission: where they lie and what the report calls them."""
    student: str
    base: Path  # paths are shown relative to it, after ``prefix``
    prefix: str
    notebooks: list[Path]
    others: list[str]
    skipped: list[str]
    where: str = "in the folder"


def _choose(f: _Found, chapter: str, chapter_ids: dict[str, set[str]], own_name=lambda p: p.name) -> Submission:
    """The one notebook of ``chapter`` among ``f.notebooks`` (``own_name``: a file's name as the student gave it)."""
    if not f.notebooks:
        return Submission(f.student, f.prefix, problem=f"no notebook (.ipynb) {f.where}"
                          + (f" (found: {', '.join(sorted(f.others)[:5])})" if f.others else " (it is empty)"),
                          notes=f.skipped)
    candidates = [(p, *load_submission(p, chapter, chapter_ids)) for p in f.notebooks]
    good = [(p, nb) for p, nb, err in candidates if nb is not None]
    named = [(p, nb) for p, nb in good if own_name(p) == f"{chapter}.ipynb"]
    if len(good) == 1 or len(named) == 1:
        p, nb = good[0] if len(good) == 1 else named[0]
        return Submission(f.student, f"{f.prefix}{p.relative_to(f.base)}", nb, notes=f.skipped, submitted=file_time(p))
    latest = max((t for t in map(file_time, f.notebooks) if t is not None), default=None)
    if not good:
        return Submission(f.student, f.prefix, problem="; ".join(err for _, _, err in candidates), notes=f.skipped,
                          submitted=latest)
    names = ", ".join(str(p.relative_to(f.base)) for p, _ in good)
    return Submission(f.student, f.prefix, problem=f"several notebooks of {chapter} ({names}); keep exactly one",
                      notes=f.skipped, submitted=latest)


def _collect_folder(entry: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> Submission:
    """A student's folder: the one notebook of ``chapter`` in it, searched at any depth."""
    found, others, skipped = _walk_notebooks(entry)
    return _choose(_Found(entry.name, entry, f"{entry.name}/", found, others, skipped), chapter, chapter_ids)


def _lms_own_name(p: Path) -> str:
    """The name a student gave a file, under the LMS's prefix (Canvas: ``lastfirst_1_2_<name>``)."""
    info = parse_moodle(p.name) or parse_canvas(p.name)
    return info.file if info is not None and info.file else p.name


def _collect_lms(group: list[Path], info: LmsName, folder: Path, chapter: str,
                 chapter_ids: dict[str, set[str]]) -> Submission:
    """One participant of an LMS download: all their entries (Moodle: a folder per submission
    plugin; Canvas: a file per upload) are one submission, named and numbered as the LMS says."""
    found, others, skipped = [], [], []
    for entry in group:
        mode = entry.lstat().st_mode
        if stat.S_ISDIR(mode):
            nbs, more, bad = _walk_notebooks(entry)
            found, others, skipped = found + nbs, others + more, skipped + [f"{entry.name}/{b}" for b in bad]
        elif stat.S_ISREG(mode) and entry.suffix.lower() == ".ipynb":
            found.append(entry)
        elif stat.S_ISREG(mode):
            others.append(_lms_own_name(entry))
        else:
            skipped.append(f"{entry.name} skipped ({'a symbolic link' if stat.S_ISLNK(mode) else 'not a regular file'})")
    prefix = f"{group[0].name}/" if len(group) == 1 and stat.S_ISDIR(group[0].lstat().st_mode) else ""
    base = group[0] if prefix else folder
    sub = _choose(_Found(info.student, base, prefix, found, others, skipped, "in the submission"),
                  chapter, chapter_ids, _lms_own_name)
    sub.name, sub.lms, sub.lms_id = info.name, info.lms, info.id
    return sub


def _entry_submission(entry: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> Submission:
    """A top-level entry of a plain class: a sub-folder is a student, a file is ``<student>.ext``."""
    if stat.S_ISDIR(entry.lstat().st_mode):
        return _collect_folder(entry, chapter, chapter_ids)
    nb, err = load_submission(entry, chapter, chapter_ids)  # refuses symlinks, FIFOs, devices
    return Submission(entry.stem if entry.suffix else entry.name, entry.name, nb, err, submitted=file_time(entry))


def _clean_name(sub: Submission) -> None:
    """One line per student in the report, a file name per student in feedback/: no control
    characters, a bounded length, one Unicode form (NFC: macOS writes names decomposed)."""
    sub.student = unicodedata.normalize("NFC", sub.student)
    if re.search(r"[\x00-\x1f\x7f]", sub.student):
        sub.notes.append("control characters (newlines, tabs) in the name were replaced by _")
        sub.student = re.sub(r"[\x00-\x1f\x7f]", "_", sub.student)
        sub.name = re.sub(r"[\x00-\x1f\x7f]", "_", sub.name)
    if short_name(sub.student) != sub.student:
        sub.notes.append(f"name shortened from {len(sub.student)} characters")
        sub.student = short_name(sub.student)


def collect(folder: Path, chapter: str, chapter_ids: dict[str, set[str]]) -> list[Submission]:
    """One submission per student: a top-level sub-folder or ``<student>.ext`` file of a plain
    class; every entry of one participant of a Moodle or Canvas download (:mod:`.lms`)."""
    subs: dict[str, Submission] = {}
    problems: list[Submission] = []
    entries = [e for e in sorted(folder.iterdir(), key=lambda p: p.name) if e.name not in JUNK]
    shown = [e for e in entries if not is_hidden(e)]
    lms = parse_entries([e.name for e in shown], {e.name for e in shown if not stat.S_ISDIR(e.lstat().st_mode)})
    groups: dict[str, list[Path]] = {}
    for e in shown:
        if e.name in lms:
            groups.setdefault(lms[e.name].student, []).append(e)
    for entry in entries:
        if is_hidden(entry):  # a hidden file is no student's submission, but someone may miss it
            problems.append(Submission(entry.name, entry.name, problem="skipped: a hidden (dot) file or folder",
                                       ignored=True))
            continue
        info = lms.get(entry.name)
        if info is not None and groups[info.student][0] != entry:
            continue  # collected with the participant's first entry
        sub = (_collect_lms(groups[info.student], info, folder, chapter, chapter_ids) if info is not None
               else _entry_submission(entry, chapter, chapter_ids))
        _clean_name(sub)
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
        base = re.sub(r"[^A-Za-z0-9_-]", "_", short_name(sub.student)) or "student"
        base = base if base[0].isalnum() else f"s{base}"  # never an option to nbgrader
        sid, n = base, 1
        while sid.lower() in used:
            n += 1
            sid = f"{base}_{n}"
        used.add(sid.lower())
        sub.nbgrader_id = sid


def _unzip(zpath: Path, folder: Path, zone: tzinfo | None = None) -> tuple[Path, list[tuple[str, str]]]:
    """Extract ``zpath`` into ``folder``; return the folder that holds the class and the damaged members."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    damaged = safe_extract(zpath, folder, zone)
    entries = [p for p in folder.iterdir() if not is_hidden(p)]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name == zpath.stem:
        folder = entries[0]  # the zip of a folder: its content is the class
        prefix = folder.name + "/"
        damaged = [(m[len(prefix):] if m.startswith(prefix) else m, e) for m, e in damaged]
    return folder, damaged


def _add_damaged(subs: list[Submission], damaged: list[tuple[str, str]]) -> None:
    """Every zip member that was not extracted is named on its student's line; a damaged one
    is its student's submission if they have none; the rest get a line of their own."""
    by_name = {s.student: s for s in subs if not s.ignored}
    for member, why in damaged:
        first = member.split("/", 1)[0]
        info = parse_moodle(first) or ("/" not in member and parse_canvas(first)) or None
        student = info.student if info else first if "/" in member else Path(first).stem
        line = f"zip member {member} {why}"
        if student in by_name and not student.startswith("."):
            by_name[student].notes.append(line)
        elif why.startswith("could not be extracted") and student not in ("", ".", ".."):
            by_name[student] = Submission(student, member, problem=line, name=info.name if info else "",
                                          lms=info.lms if info else "", lms_id=info.id if info else "")
            subs.append(by_name[student])
        else:
            subs.append(Submission(member, member, problem=line, ignored=True))


def read_submissions(submissions: Path, work: Path, chapter: str, root: Path,
                     zip_tz: tzinfo | None = None) -> list[Submission]:
    """The class, graded ones first, each in student order; a zip is extracted into ``work/unzipped``
    (its members' local times read in ``zip_tz``, see :func:`.zipmeta.member_time`)."""
    if submissions.is_file():
        folder, damaged = _unzip(submissions, work / "unzipped", zip_tz)
    else:
        folder, damaged = submissions, []
    subs = collect(folder, chapter, chapter_grade_ids(root))
    _add_damaged(subs, damaged)
    assign_ids([s for s in subs if not s.ignored])
    subs.sort(key=lambda s: (s.ignored, s.student))
    return subs
