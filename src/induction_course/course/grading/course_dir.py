"""Temporary nbgrader course folders: their config, the ``nbgrader`` command, the gradebook.

Nothing is graded in the repository itself: every nbgrader step runs in a throw-away course
folder whose ``nbgrader_config.py`` loads ``graders/nbgrader_config.py`` and then points the
course at that folder. nbgrader runs in subprocesses (``python -m nbgrader``) of the current
interpreter, so the notebooks execute in the kernels of this environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from induction_course.course.grading.hidden_plan import HIDDEN_BEGIN
from induction_course.course.grading.layout import GradingError, nbgrader_config_path
from induction_course.course.grading.notebooks import dumps_notebook, notebook_from_script, paired_scripts

COURSE_ID = "induction-heads"  # the gradebook's course id in every temporary course folder
KERNEL_NAME = "induction-course-grader"
_GRADING_DIR = Path(__file__).resolve().parent  # holds kernel_launcher.py, loaded by path


def write_course_config(course: Path, repo_config: Path, timeout: int | None = None, db: Path | None = None,
                        shutdown_wait: int | None = None) -> None:
    """Write ``course/nbgrader_config.py``: ``repo_config``, redirected to ``course``.

    With ``timeout`` (seconds per cell) it is an autograding course as well: the grader's
    kernel (see :data:`KERNEL_NAME`) and an Execute step that survives the kernel's death.
    ``db`` is the gradebook (default ``course/gradebook.db``). ``shutdown_wait``: seconds nbgrader
    waits for the kernel to end once the notebook has run (its launcher runs the trusted check's
    producer then).
    """
    db = db or course / "gradebook.db"
    text = "import sys\n" if timeout is not None else ""
    text += f"""\
c = get_config()
load_subconfig({str(repo_config)!r})
c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.course_id = {COURSE_ID!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = {"sqlite:///" + str(db)!r}
"""
    if timeout is not None:
        text += f"""\
# limits: seconds per cell here, memory and CPU in the kernel launcher (kernel_launcher.py)
c.Execute.timeout = {timeout}
c.ExecutePreprocessor.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
c.KernelManager.shutdown_wait_time = {shutdown_wait or 5}
c.Execute.kernel_name = {KERNEL_NAME!r}
c.ExecutePreprocessor.kernel_name = {KERNEL_NAME!r}
c.OverwriteCells.add_missing_cells = False  # the grader puts deleted test cells back itself
sys.path.insert(0, {str(_GRADING_DIR)!r})
from kernel_launcher import survivable_execute  # noqa: E402
from nbgrader.converters import Autograde  # noqa: E402
_pre = list(Autograde.class_traits()["autograde_preprocessors"].default())
_pre = [survivable_execute() if p.__name__ == "Execute" else p for p in _pre]
c.Autograde.autograde_preprocessors = _pre
"""
    (course / "nbgrader_config.py").write_text(text, encoding="utf-8")


# ``python -m nbgrader`` without one optional import: jsonschema imports ``rfc3987_syntax`` when
# it is installed, only to register IRI format checkers, and that builds a parser grammar (1.7 s
# of the 2.9 s an nbgrader process takes to start; one process per student). nbgrader validates
# notebooks against nbformat's schema, which has no IRI formats, so nothing here uses them.
NBGRADER_COMMAND = (sys.executable, "-c", "import sys; sys.modules['rfc3987_syntax'] = None; "
                    "from nbgrader.apps.nbgraderapp import main; main()")


def with_interpreter_bin(env: dict) -> dict:
    """nbgrader shells out to ``alembic`` (gradebook migrations) by name: put this
    interpreter's script folder first on PATH, so grading works from a virtual environment
    that was never activated (``.venv/bin/python -m ...``, as CI and the README run it)."""
    bin_dir = str(Path(sys.executable).parent)
    parts = env.get("PATH", "").split(os.pathsep) if env.get("PATH") else []
    if bin_dir not in parts:
        env["PATH"] = os.pathsep.join([bin_dir, *parts])
    return env


def run_nbgrader(course: Path, *args: str, log: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in ``course``; appended to ``log``; a failure raises :class:`GradingError` if ``check``."""
    env = with_interpreter_bin(dict(os.environ))
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    start = time.perf_counter()
    proc = subprocess.run(
        [*NBGRADER_COMMAND, *args],
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


# sources' hash -> a copy of what generate_assignment made of them (removed when the interpreter exits)
_GENERATED: dict[str, tempfile.TemporaryDirectory] = {}


def _sources_key(root: Path, chapter: str) -> str:
    """What generate_assignment reads: the chapter's files and the repository's nbgrader config."""
    h = hashlib.sha256(chapter.encode())
    src = Path(root) / "solutions" / chapter
    for p in sorted(src.rglob("*")):
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(src).parts):
            h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(nbgrader_config_path(root).read_bytes())
    return h.hexdigest()


def prepare_course(root: Path, chapter: str, course: Path, log: Path | None = None) -> Path:
    """Fill ``course/source/<chapter>`` from ``solutions/`` and run generate_assignment.

    The source notebooks are rebuilt from their percent scripts, so what is released and
    graded is always what the scripts say, even before ``release`` has written the ``.ipynb``.
    Within one process the same sources are generated once (7 s each): a later call copies
    what the first made (several classes or chapters graded, release checks, tests).
    """
    key = _sources_key(root, chapter)
    if key in _GENERATED:
        shutil.copytree(Path(_GENERATED[key].name) / "course", course, dirs_exist_ok=True)
        write_course_config(course, nbgrader_config_path(root))
        if log is not None:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"$ nbgrader generate_assignment {chapter}: reused (same sources earlier in this process)\n")
        return course
    _prepare_course(root, chapter, course, log)
    kept = tempfile.TemporaryDirectory(prefix="induction-generated-")
    shutil.copytree(course, Path(kept.name) / "course")
    _GENERATED[key] = kept
    return course


def forget_generated() -> None:
    """Generate afresh from now on (a benchmark that times whole runs)."""
    _GENERATED.clear()


def _prepare_course(root: Path, chapter: str, course: Path, log: Path | None) -> None:
    course.mkdir(parents=True, exist_ok=True)
    write_course_config(course, nbgrader_config_path(root))
    src = Path(root) / "solutions" / chapter
    dst = course / "source" / chapter
    scripts = {p.name for p in paired_scripts(root, chapter)}
    ignore_names = {"__pycache__", ".ipynb_checkpoints"}

    def _ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in ignore_names or n.startswith(".") or (Path(folder) == src and n in scripts)}

    shutil.copytree(src, dst, ignore=_ignore)
    for script in paired_scripts(root, chapter):
        (dst / f"{script.stem}.ipynb").write_text(dumps_notebook(notebook_from_script(script)), encoding="utf-8")
    run_nbgrader(course, "generate_assignment", chapter, "--force", log=log)


def base_course(root: Path, chapter: str, base: Path, log: Path) -> Any:
    """The course folder every student's copy starts from: release, gradebook, no solutions.

    ``generate_assignment`` runs in a throw-away folder; ``base`` keeps its release, its
    gradebook (which holds the release's cells and the hidden tests, never the solutions:
    nbgrader saves cells after clearing the solutions) and the chapter's non-notebook files.
    Returns the release notebook.
    """
    import nbformat

    with tempfile.TemporaryDirectory(prefix="induction-generate-") as tmp:
        tcourse = prepare_course(root, chapter, Path(tmp) / "course", log=log)
        base.mkdir(parents=True)
        shutil.copytree(tcourse / "release", base / "release")
        shutil.copytree(tcourse / "source", base / "source", ignore=shutil.ignore_patterns("*.ipynb"))
        shutil.copyfile(tcourse / "gradebook.db", base / "gradebook.db")
    write_course_config(base, nbgrader_config_path(root))
    return nbformat.read(base / "release" / chapter / f"{chapter}.ipynb", as_version=4)


def drop_hidden_tests(course: Path, chapter: str, release_nb: Any) -> list[str]:
    """Give every grade cell of ``course``'s gradebook its release source (hidden tests gone).

    With the trusted check on, a student's kernel runs the visible tests only: the hidden ones
    are replayed outside it (:mod:`.trusted`), from the grader's copy of the notebook. So the
    kernel never holds them (nothing to read, even where the sandbox is weak), and no student
    run pays for them twice. The checksums are nbgrader's own, so its OverwriteCells restores
    exactly these sources. Returns the grade ids changed."""
    import warnings

    from nbgrader.api import Gradebook
    from nbgrader.utils import compute_checksum

    released = {c.metadata["nbgrader"]["grade_id"]: c for c in release_nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id")}
    changed = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in gb.find_notebook(chapter, chapter).source_cells:
            rel = released.get(cell.name)
            if rel is None or HIDDEN_BEGIN not in cell.source:
                continue
            if HIDDEN_BEGIN in rel.source:
                raise GradingError(f"the release of {chapter} still holds hidden tests in {cell.name}")
            cell.source, cell.checksum = rel.source, compute_checksum(rel)
            changed.append(cell.name)
        gb.db.commit()
    return changed


def student_gradebook(scourse: Path) -> Path:
    """Where a student's course keeps its gradebook (``private/`` when it was sandboxed)."""
    private = scourse / "private" / "gradebook.db"
    return private if private.exists() else scourse / "gradebook.db"


def _student_grades(scourse: Path, chapter: str, sid: str) -> tuple[dict, dict] | None:
    """(grades, comments) by cell name from one student's own gradebook; None if it has no submission."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{student_gradebook(scourse)}", COURSE_ID) as sgb:
        try:
            snb = sgb.find_submission_notebook(chapter, chapter, sid)
        except MissingEntry:
            return None
        grades = {g.cell.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in snb.grades}
        comments = {c.cell.name: c.auto_comment for c in snb.comments}
    return grades, comments


def merge_gradebooks(course: Path, chapter: str, results: dict[str, tuple[str, Path]],
                     scores: dict[str, dict[str, float]] | None = None) -> None:
    """Copy every student's grades and comments into ``course/gradebook.db``, in student order.

    ``scores`` (sid -> grade_id -> points, recomputed by the grader) replace the auto scores
    of the students' own gradebooks, which a run could have written; a None is a written answer
    left for manual grading (no auto score, needs manual grade). No run gives manual scores."""
    import warnings

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush chatter inside nbgrader's API
        for sid in sorted(results):
            _, scourse = results[sid]
            found = _student_grades(scourse, chapter, sid)
            if found is None:
                continue
            grades, comments = found
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(chapter, sid)
            nb = gb.find_submission_notebook(chapter, chapter, sid)
            trusted = (scores or {}).get(sid)
            for g in nb.grades:
                if g.cell.name in grades:
                    g.auto_score, g.manual_score, g.needs_manual_grade = grades[g.cell.name]
                if trusted is not None and g.cell.name in trusted:
                    g.auto_score, g.manual_score = trusted[g.cell.name], None
                    g.needs_manual_grade = g.auto_score is None
            for c in nb.comments:
                if c.cell.name in comments:
                    c.auto_comment = comments[c.cell.name]
            gb.db.commit()
            for part in ("submitted", "autograded", "feedback"):
                src = scourse / part / sid
                if src.exists():
                    shutil.copytree(src, course / part / sid, dirs_exist_ok=True)
