"""``induction-course grade``: autograde a class, one student at a time in a course of their own.

:func:`grade` reads a class's submissions (:mod:`.intake`), makes each notebook gradable
(:mod:`.preprocessors`), autogrades each one in a temporary nbgrader course of its own
(:mod:`.student_run`: release + gradebook + that notebook, no solutions, then the trusted
check of :mod:`.trusted`), ``jobs`` at a time, with a time limit per
cell and per notebook and a memory limit on the kernel (``kernel_launcher.py``), merges the
per-student gradebooks into one, runs ``nbgrader generate_feedback`` and writes the outputs
(:mod:`.outputs`). Each run is sandboxed (:mod:`.sandbox`) and its points are recomputed
here from the autograded notebook (:mod:`.scores`), never taken from files the run could
write. A notebook that loops, runs out of memory, kills its kernel or was tampered with gets
a line in the report and the points it earned; the rest of the class is graded. Written
questions are left for manual grading, with what their round trip needs kept in ``out/gradebook/``
(:mod:`.written`, :mod:`.written_csv`).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from induction_course.course.grading.course_dir import (
    base_course,
    drop_hidden_tests,
    merge_gradebooks,
    run_nbgrader,
)
from induction_course.course.grading.deadlines import DeadlinePolicy
from induction_course.course.grading.intake import Submission, read_submissions
from induction_course.course.grading.layout import GradingError, check_chapter, find_root, nbgrader_config_path
from induction_course.course.grading.notebooks import grade_cells, source_notebook
from induction_course.course.grading.outputs import GradeResult, write_outputs
from induction_course.course.grading.hidden_plan import preload_modules, trusted_plan
from induction_course.course.grading.sandbox import UID_BASE, SandboxPlan, plan_sandbox, unreadable_by_runs
from induction_course.course.grading.scores import read_regular, total_points
from induction_course.course.grading.written import keep_class, students_to_grade, written_ids
from induction_course.course.grading.student_run import (  # noqa: F401  re-exported: the CLI reads the defaults here
    DEFAULT_DISK_MB,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    GradeTask,
    default_jobs,
    grade_one,
    notebook_time_limit,
)


ZYGOTE_READY_S = 120  # seconds the first notebook waits for the class's zygote at most

# ------------------------------------------------------------------------------ the class
@dataclass
class _ClassRun:
    """The settings of one ``grade`` call that every step below needs."""
    root: Path
    chapter: str
    work: Path
    log: Path
    jobs: int
    timeout: int
    memory_mb: int
    say: Callable[[str], None]
    plan: SandboxPlan = field(default_factory=SandboxPlan)
    disk_mb: int = DEFAULT_DISK_MB
    trusted: bool = True  # run the trusted check (:mod:`.trusted`) after each notebook
    release: Future | None = None  # the base course, made while the submissions are read (:func:`_start_base_course`)

    @property
    def course(self) -> Path:
        return self.work / "course"


def _check_arguments(submissions: str | Path, out: str | Path, timeout: int, memory_mb: int) -> tuple[Path, Path]:
    """(submissions, out) as paths, once they are known to make sense; else :class:`GradingError`."""
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
    return submissions, out


def _base_course(run: _ClassRun) -> Any:
    """The class's base course (:func:`.course_dir.base_course`); returns the release notebook."""
    release_nb = base_course(run.root, run.chapter, run.course, run.log)
    if run.trusted:  # the hidden tests run outside the kernels only (the trusted check)
        drop_hidden_tests(run.course, run.chapter, release_nb)
    return release_nb


def _start_base_course(run: _ClassRun, pool: ThreadPoolExecutor) -> None:
    """A fresh log and work folder; then the base course, made in ``pool`` (nbgrader
    generate_assignment: a subprocess, 5 s) while this thread reads the submissions and plans
    the trusted check: two cores, both busy."""
    import nbformat  # noqa: F401  imported here first: two threads importing it at once can fail
    import nbgrader.api  # noqa: F401

    run.log.write_text("", encoding="utf-8")
    for d in ("course", "students"):  # what an earlier run left in --workdir
        if (run.work / d).exists():
            shutil.rmtree(run.work / d)
    run.release = pool.submit(_base_course, run)


def _tasks(run: _ClassRun, graded: list[Submission], exercises: list[tuple[str, float]]) -> tuple[list[GradeTask], dict[str, list[str]]]:
    """The base course, every notebook made gradable, and one task per student; with the notes.
    A notebook the sanitizers choke on (metadata of the wrong types) costs its student only."""
    from induction_course.course.grading.preprocessors import sanitize  # nbconvert: only when grading

    pristine = source_notebook(run.root, run.chapter)
    plan = trusted_plan(run.chapter, pristine) if run.trusted else None  # the hidden tests, from the course's notebook
    release_nb = run.release.result() if run.release is not None else _base_course(run)
    accepted = {c.metadata["nbgrader"]["grade_id"]: {c.source.strip()}  # the reference's own cells
                for c in pristine.cells if "nbgrader" in c.metadata}
    repo_config = run.work / "grader_nbgrader_config.py"  # read once, before any student code runs
    shutil.copyfile(nbgrader_config_path(run.root), repo_config)
    threads = max(1, default_jobs() // run.jobs)
    drop = (str((Path(run.root) / "solutions").resolve()),)
    secrets = tuple(run.plan.hidden_from_notes)
    tasks, notes = [], {}
    for i, s in enumerate(graded):
        try:
            notes[s.student] = sanitize(s.notebook, release_nb, exercises, accepted)
        except Exception as err:  # malformed metadata that got past intake
            s.problem = f"the notebook's metadata could not be processed ({type(err).__name__}: {err})"
            continue
        tasks.append(GradeTask(s.student, s.nbgrader_id, s.notebook, run.work / "students" / s.nbgrader_id,
                               run.course, repo_config, run.chapter, int(run.timeout), int(run.memory_mb),
                               threads, drop, index=i, sandbox=run.plan, pristine=pristine, secrets=secrets,
                               disk_mb=run.disk_mb, trusted=plan))
    return tasks, notes


def _run_tasks(run: _ClassRun, tasks: list[GradeTask], max_points: float) -> dict[str, dict]:
    """``grade_one`` for every task, ``run.jobs`` at a time; a task that raises fails alone."""
    from concurrent.futures import as_completed

    import nbgrader.api  # noqa: F401  the workers import these: a first import from two threads at once
    import nbgrader.utils  # noqa: F401  fails ("partially initialized module"), so it happens here, once

    outcome: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=run.jobs) as pool:
        futures = {pool.submit(grade_one, t): t for t in tasks}
        for done, fut in enumerate(as_completed(futures), start=1):
            t = futures[fut]
            try:
                r = fut.result()
            except Exception as err:  # a bug or a full disk: this student only
                r = {"student": t.student, "seconds": 0.0, "notes": [], "scores": None,
                     "problem": f"autograding failed ({type(err).__name__}: {err})"}
            outcome[t.student] = r
            status = (f"{total_points(r['scores']):g} / {max_points:g}" if r["scores"] is not None
                      else f"0 / {max_points:g} ({r['problem']})")
            run.say(f"  [{done}/{len(tasks)}] {t.student}: {status} in {r['seconds']:.0f} s")
    return _retry_timeouts(run, tasks, outcome)


def timed_out(r: dict) -> bool:
    """Did a run hit a wall-clock limit (a busy machine's doing as often as the student's)?"""
    return "time limit" in str(r.get("problem") or "") or any("time limit" in n for n in r.get("notes", []))


def _retry_timeouts(run: _ClassRun, tasks: list[GradeTask], outcome: dict[str, dict]) -> dict[str, dict]:
    """Grade once more, alone and with every core, each student who hit a time limit; the
    better of the two runs counts, and the report says so."""
    for t in [t for t in tasks if timed_out(outcome[t.student])]:
        run.say(f"  retrying {t.student} alone (a time limit was hit, maybe by the load of the others) ...")
        try:
            again = grade_one(dataclasses.replace(t, threads=default_jobs()))
        except Exception:  # noqa: BLE001 - the first result stands
            continue
        first = outcome[t.student]
        better = total_points(again["scores"] or {}) >= total_points(first["scores"] or {})
        kept = again if better else first
        kept["notes"] = [*kept.get("notes", []), "hit a time limit and was graded again alone; "
                         + ("the second run counts" if better else "the first run counts (it scored higher)")]
        outcome[t.student] = kept
    return outcome


def _append_student_logs(log: Path, tasks: list[GradeTask]) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        for t in sorted(tasks, key=lambda t: t.sid):
            slog = t.course / "nbgrader.log"
            fh.write(f"===== {t.student} ({t.sid})\n")
            data = read_regular(slog, 5_000_000)
            if data is not None:
                fh.write(data.decode("utf-8", errors="replace"))


def _generate_feedback(run: _ClassRun, sids: list[str]) -> None:
    """``nbgrader generate_feedback`` for the class, split into ``run.jobs`` processes that run
    at once (each leaves out the others' students; the gradebook is only read)."""
    groups = [sids[i::run.jobs] for i in range(min(run.jobs, len(sids)))]
    if len(groups) <= 1:
        run_nbgrader(run.course, "generate_feedback", run.chapter, "--force", log=run.log, check=False)
        return
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = [pool.submit(run_nbgrader, run.course, "generate_feedback", run.chapter, "--force",
                               "--CourseDirectory.student_id_exclude=" + ",".join(s for s in sids if s not in group),
                               log=run.log, check=False) for group in map(set, groups)]
    for fut in futures:
        fut.result()  # an error starting nbgrader is the grader's, not a student's: it stops the run


def _start_zygote(run: _ClassRun, n: int) -> Any:
    """The class's zygote (:mod:`.zygote`: the kernels' imports, once for the class) where it can
    work: a root grader, nested sandboxes on Linux, the trusted check on; else None."""
    plan = run.plan
    if not (run.trusted and plan.enabled and plan.nested and plan.as_root and sys.platform.startswith("linux")):
        return None
    import os

    from induction_course.course.grading.zygote import Zygote

    folder = run.work / "zygote"
    threads = str(max(1, default_jobs() // run.jobs))
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
    env.update({"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,  # read at import:
                "MPLBACKEND": os.environ.get("MPLBACKEND", "module://matplotlib_inline.backend_inline"),  # as a kernel's
                "HOME": str(folder), "TMPDIR": str(folder), "MPLCONFIGDIR": str(folder / "matplotlib")})
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "zygote.log", "ab") as log:
        return Zygote(folder, range(UID_BASE, UID_BASE + n), preload_modules(run.chapter), env, log)


def _autograde_class(run: _ClassRun, graded: list[Submission], result: GradeResult) -> tuple[dict, dict]:
    """Autograde, merge the gradebooks (in student order) and generate the feedback;
    return (outcome, notes) by student."""
    zygote = _start_zygote(run, len(graded))  # it imports while the base course is made
    try:
        tasks, notes = _tasks(run, graded, result.exercises)
        run.say(f"Autograding {len(graded)} submission(s) of {run.chapter}, {run.jobs} at a time "
                f"(limits: {run.timeout} s per cell, {notebook_time_limit(run.timeout)} s per notebook, "
                f"{run.memory_mb} MB) ...")
        if zygote is not None and zygote.ready(ZYGOTE_READY_S):
            run.plan.zygote = str(zygote.socket)
        outcome = _run_tasks(run, tasks, result.max_points)
    finally:
        run.plan.zygote = None
        if zygote is not None:
            zygote.close()
    done = [t for t in tasks if outcome[t.student]["scores"] is not None]
    merge_gradebooks(run.course, run.chapter, {t.sid: (t.student, t.course) for t in done},
                     scores={t.sid: outcome[t.student]["scores"] for t in done})
    if any(r["scores"] is not None for r in outcome.values()):
        from induction_course.course.grading.feedback import enable_clean_feedback  # nbconvert: only here

        enable_clean_feedback(run.course)  # no hidden-test lines, scripts or empty boxes (.feedback)
        _generate_feedback(run, sorted(t.sid for t in done))
    _append_student_logs(run.log, tasks)
    return outcome, notes


def _plan(sandbox: bool, root: Path, work: Path, out: Path, submissions: Path) -> SandboxPlan:
    """The sandbox of this class: the repository, the work folder, the output and the
    submissions hidden; the interpreter, the package and its data (shipped checkpoints, the
    tokenizer: chapters 2-5 load them) visible."""
    import induction_course
    from induction_course.paths import data_dir

    package, data = Path(induction_course.__file__).resolve().parent, data_dir().resolve()
    visible = [Path(sys.prefix), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent, package, data]
    secret = [Path(root), work, out, submissions]
    plan = plan_sandbox(sandbox, visible, secret)
    plan.hidden_from_notes = [str(p.resolve()) for p in secret]
    closed = unreadable_by_runs(plan, [package, data])
    if closed:
        where = data if closed[0].is_relative_to(data) else package
        raise GradingError(
            f"{len(closed)} file(s) of the package or its data that every notebook reads are readable by their "
            f"owner only, e.g. {closed[0]} (mode {closed[0].stat().st_mode & 0o777:04o}); the sandboxed runs use "
            f"uids of their own, so to them the files look missing. Run `chmod -R a+rX {where}` and grade again.")
    return plan


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
    sandbox: bool = True,
    disk_mb: int = DEFAULT_DISK_MB,
    deadline: DeadlinePolicy | None = None,
    lms_format: str | None = None,
    lms_assignment: str = "",
    trusted: bool = True,
) -> GradeResult:
    """Autograde every submission of a class; write ``grades.csv``, ``feedback/`` and ``report.txt`` in ``out``.

    Each submission is autograded in a course folder of its own (the release, the gradebook
    and that one notebook; never ``solutions/``), ``jobs`` at a time, each kernel limited to
    ``timeout`` seconds per cell, ``notebook_time_limit(timeout)`` per notebook and
    ``memory_mb`` of address space. With ``sandbox`` (the default) each run is isolated by
    bubblewrap (see :mod:`.sandbox`); where that is impossible, or with ``sandbox=False``,
    grading goes on with a warning at the top of ``report.txt``. Points are recomputed by the
    grader from each autograded notebook; the per-student gradebooks are then merged, in
    student order, into ``course/gradebook.db``. ``deadline``: lateness and penalties; ``lms_format``: that
    LMS's import file too; ``trusted=False`` (tests of other steps only) skips :mod:`.trusted`."""
    root = Path(root) if root else find_root()
    check_chapter(root, chapter)
    jobs = default_jobs() if not jobs or jobs < 1 else int(jobs)
    submissions, out = _check_arguments(submissions, out, timeout, memory_mb)
    tmp = tempfile.TemporaryDirectory(prefix="induction-grade-") if workdir is None else None
    work = Path(tmp.name) if tmp else Path(workdir).resolve()
    run = _ClassRun(root, chapter, work, work / "nbgrader.log", jobs, timeout, memory_mb,
                    say=(lambda line: None) if quiet else (lambda line: print(line, flush=True)), disk_mb=disk_mb,
                    trusted=trusted)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        work.mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)  # a folder that exists can be hidden from the runs
        run.plan = _plan(sandbox, root, work, out, submissions)
        _start_base_course(run, pool)
        subs = read_submissions(submissions, work, chapter, root, zip_tz=deadline.zone if deadline else None)
        pristine = source_notebook(root, chapter)
        result = GradeResult(chapter, grade_cells(pristine), out=out, warnings=run.plan.warnings(),
                             written=written_ids(pristine), deadline=deadline, lms_format=lms_format,
                             lms_assignment=lms_assignment)
        for line in result.warnings:
            print(line, flush=True)  # even with quiet: nobody should miss it
        graded = [s for s in subs if s.problem is None and s.notebook is not None]
        outcome, notes = _autograde_class(run, graded, result) if graded else ({}, {})  # bad files need no nbgrader
        write_outputs(result, subs, outcome, notes, run.course, run.say)
        keep_class(out, chapter, pristine, students_to_grade(subs, outcome), run.course, keep_workdir=tmp is None)
        return result
    finally:
        pool.shutdown(wait=True)  # the base course is finished before its folder goes
        if tmp is not None:
            tmp.cleanup()
