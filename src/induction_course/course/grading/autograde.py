"""``induction-course grade``: autograde a class, one student at a time in a course of their own.

:func:`grade` reads a class's submissions (:mod:`.intake`), makes each notebook gradable
(:mod:`.preprocessors`), autogrades each one in a temporary nbgrader course of its own
(release + gradebook + that notebook, no solutions), ``jobs`` at a time, with a time limit per
cell and per notebook and a memory limit on the kernel (``kernel_launcher.py``), merges the
per-student gradebooks into one, runs ``nbgrader generate_feedback`` and writes the outputs
(:mod:`.outputs`). Each run is sandboxed (:mod:`.sandbox`) and its points are recomputed
here from the autograded notebook (:mod:`.scores`), never taken from files the run could
write. A notebook that loops, runs out of memory, kills its kernel or was tampered with gets
a line in the report and the points it earned; the rest of the class is graded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from induction_course.course.grading.course_dir import (
    COURSE_ID,
    KERNEL_NAME,
    base_course,
    merge_gradebooks,
    run_nbgrader,
    student_gradebook,
    with_interpreter_bin,
    write_course_config,
)
from induction_course.course.grading.intake import Submission, read_submissions
from induction_course.course.grading.layout import GradingError, check_chapter, find_root, nbgrader_config_path
from induction_course.course.grading.notebooks import grade_cells, source_notebook
from induction_course.course.grading.outputs import GradeResult, write_outputs
from induction_course.course.grading.sandbox import (
    NPROC,
    PRIVATE,
    SandboxPlan,
    cgroup_create,
    cgroup_remove,
    give_to_run,
    kernel_argv,
    limited_argv,
    memory_events,
    plan_sandbox,
    run_argv,
    run_uid,
)
from induction_course.course.grading.scores import (
    background_note,
    incident_notes,
    mismatch_note,
    read_regular,
    recompute_scores,
)

DEFAULT_TIMEOUT = 120  # seconds per cell (nbgrader's ExecutePreprocessor.timeout)
DEFAULT_MEMORY_MB = 4096  # address space of one kernel (RLIMIT_AS)
DEFAULT_DISK_MB = 512  # the kernel's writable scratch (a size-limited tmpfs in the sandbox)
MAX_AUTOGRADED_MB = 200  # an autograded notebook larger than this is not read back
_LAUNCHER = Path(__file__).resolve().parent / "kernel_launcher.py"
_ENV_KEPT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "MPLBACKEND")  # what a sandboxed run inherits


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
class GradeTask:
    """What one worker needs to grade one student in its own course folder."""
    student: str
    sid: str
    notebook: Any
    course: Path
    base: Path
    repo_config: Path  # the grader's pristine copy of graders/nbgrader_config.py
    chapter: str
    timeout: int
    memory_mb: int
    threads: int
    env_drop: tuple[str, ...]
    index: int = 0
    sandbox: SandboxPlan = field(default_factory=SandboxPlan)
    pristine: Any = None  # the reference notebook: the points of each grade cell
    secrets: tuple[str, ...] = ()  # folders a run must not reach (named in the report when it tried)
    disk_mb: int = DEFAULT_DISK_MB


# ------------------------------------------------------------------- one student, one kernel
def run_limited(cmd: list[str], cwd: Path, env: dict, limit: float, log: Path, pidfile: Path | None,
                popen_kw: dict | None = None) -> tuple[int | None, float]:
    """Run ``cmd`` in its own session; kill it (and the kernel in ``pidfile``) after ``limit`` s.

    Returns (exit code or None on timeout, seconds)."""
    import signal

    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        shown = cmd[cmd.index("nbgrader") - 1:] if "nbgrader" in cmd else cmd
        fh.write(f"$ {' '.join(shown[1:])}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                **(popen_kw or {}))
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


def kernelspec(task: GradeTask) -> dict:
    """The grader's kernel: ``kernel_launcher.py`` with this task's memory and CPU limits, inside
    the kernel sandbox when there is one (interrupts are then messages: a signal to the process
    group would reach bubblewrap, not the kernel)."""
    plan = task.sandbox
    nested = plan.enabled and plan.nested
    executed = task.course / "autograded" / task.sid / task.chapter / f"{task.chapter}.ipynb"
    argv = [*kernel_argv(plan, task.course, task.disk_mb, [executed, task.course / "nbgrader.log"]),
            sys.executable, str(_LAUNCHER),
            *(["--reap"] if nested else []), "--memory-mb", str(task.memory_mb),
            "--cpu-s", str(2 * notebook_time_limit(task.timeout) * max(1, task.threads))]
    if not plan.enabled:  # a pid means something to the grader only outside a pid namespace
        argv += ["--pidfile", str(task.course / "kernel.pid")]
    spec = {"argv": [*argv, "--", "{connection_file}"], "display_name": "Python 3 (grader, limited)",
            "language": "python", "metadata": {"debugger": False}}
    if nested:
        spec["interrupt_mode"] = "message"
    return spec


def worker_env(task: GradeTask) -> dict:
    """The environment of one student's nbgrader: nothing that points into ``solutions/``,
    Jupyter's folders inside the student's course, BLAS threads shared out between the jobs.
    A sandboxed run inherits only a few variables (no tokens or keys of the grader's)."""
    if task.sandbox.enabled:
        env = {k: os.environ[k] for k in _ENV_KEPT if k in os.environ}
        env.update({"HOME": str(task.course / "home"), "JUPYTER_CONFIG_DIR": str(task.course / "jupyter_config"),
                    "JUPYTER_DATA_DIR": str(task.course / "jupyter"), "TMPDIR": str(task.course / "home")})
    else:
        env = {k: v for k, v in os.environ.items()
               if k not in {"PWD", "OLDPWD"} and not any(d in v for d in task.env_drop)}
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
    return with_interpreter_bin(env)


def _set_up_student_course(task: GradeTask) -> None:
    """A copy of the base course with the grader's config and kernel, and the one submission.

    The gradebook (with the hidden tests) and the config nbgrader loads go to ``private/``,
    which the kernel sandbox hides; both are fresh copies of the grader's pristine ones."""
    import nbformat

    course, chapter = task.course, task.chapter
    if course.exists():
        shutil.rmtree(course)
    shutil.copytree(task.base, course, ignore=shutil.ignore_patterns("autograded", "feedback", "submitted"))
    private = course / PRIVATE
    private.mkdir()
    os.replace(course / "gradebook.db", private / "gradebook.db")
    shutil.copyfile(task.repo_config, private / "repo_nbgrader_config.py")
    write_course_config(course, private / "repo_nbgrader_config.py", timeout=task.timeout, db=private / "gradebook.db")
    kdir = course / "jupyter" / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps(kernelspec(task), indent=1), encoding="utf-8")
    for d in ("home", "runtime", "ipython", "jupyter_config"):
        (course / d).mkdir(exist_ok=True)
    dest = course / "submitted" / task.sid / chapter
    dest.mkdir(parents=True)
    nbformat.write(task.notebook, dest / f"{chapter}.ipynb")


def _gradebook_scores(task: GradeTask) -> dict[str, float] | None:
    """grade_id -> points from the run's gradebook; None if it recorded no submission (or is unreadable)."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(f"sqlite:///{student_gradebook(task.course)}", COURSE_ID) as gb:
            try:
                nb_sub = gb.find_submission_notebook(task.chapter, task.chapter, task.sid)
            except MissingEntry:
                return None
            return {g.cell.name: float(g.score or 0.0) for g in nb_sub.grades}
    except Exception:  # a damaged database is evidence of a damaged run, not a reason to stop
        return None


def _run_student(task: GradeTask, cmd: list[str], log: Path, limit: float) -> tuple[int | None, float, list[str]]:
    """``cmd`` for one student, sandboxed when the plan says so; (exit code, seconds, notes)."""
    plan = task.sandbox
    if not plan.enabled:
        code, seconds = run_limited(cmd, task.course, worker_env(task), limit, log, task.course / "kernel.pid")
        return code, seconds, []
    name = f"induction-grade-{hashlib.sha256(str(task.course).encode()).hexdigest()[:16]}"  # unique per run
    uid = run_uid(plan, task.index)
    give_to_run(task.course, uid)
    procs = cgroup_create(plan, name, task.memory_mb + 1024, NPROC)
    try:
        argv = run_argv(plan, task.course, limited_argv(plan, procs, task.memory_mb + 4096, cmd, uid), writable=procs)
        code, seconds = run_limited(argv, task.course, worker_env(task), limit, log, None)
        hits = memory_events(procs)
    finally:
        cgroup_remove(procs)
    notes = [f"reached the memory limit of its whole run ({task.memory_mb + 1024} MB)"] if hits else []
    return code, seconds, notes


def _problem(code: int | None, limit: int, autograded: Path) -> str | None:
    """Why a run gave no notebook to grade (None when it did)."""
    if code is None:
        return f"did not finish within the time limit of {limit} s for a whole notebook (killed)"
    if code < 0 or code > 128:
        sig = -code if code < 0 else code - 128
        return f"its nbgrader run was killed (signal {sig}); nothing of it was graded"
    if not autograded.exists():
        return "autograding failed (nbgrader could not process the notebook; see nbgrader.log with --workdir)"
    return None


def grade_one(task: GradeTask) -> dict:
    """Autograde one student in a course folder of their own; the points are recomputed here."""
    _set_up_student_course(task)
    course, chapter = task.course, task.chapter
    log = course / "nbgrader.log"
    limit = notebook_time_limit(task.timeout)
    cmd = [sys.executable, "-m", "nbgrader", "autograde", chapter, f"--student={task.sid}", "--force"]
    code, seconds, notes = _run_student(task, cmd, log, limit)
    res: dict[str, Any] = {"student": task.student, "seconds": seconds, "notes": notes, "problem": None, "scores": None}
    log_text = log.read_text(encoding="utf-8", errors="replace")
    if "Exception while loading config file" in log_text:
        raise RuntimeError(f"the grader's nbgrader config failed to load (a bug; see {log})")
    autograded = course / "autograded" / task.sid / chapter / f"{chapter}.ipynb"
    res["problem"] = _problem(code, limit, autograded)
    if res["problem"] is not None:
        return res
    scores, nb = recompute_scores(autograded, task.pristine, MAX_AUTOGRADED_MB * 1_000_000)
    if scores is None:
        res["problem"] = "autograding failed: the autograded notebook could not be read"
        return res
    res["scores"] = scores
    mismatch = mismatch_note(scores, _gradebook_scores(task))
    background = background_note(log_text) if task.sandbox.enabled else None
    res["notes"] = [*incident_notes(nb, task.timeout, task.memory_mb, task.disk_mb, list(task.secrets)),
                    *notes, *([background] if background else []), *([mismatch] if mismatch else [])]
    return res


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


def _tasks(run: _ClassRun, graded: list[Submission], exercises: list[tuple[str, float]]) -> tuple[list[GradeTask], dict[str, list[str]]]:
    """The base course, every notebook made gradable, and one task per student; with the notes.
    A notebook the sanitizers choke on (metadata of the wrong types) costs its student only."""
    from induction_course.course.grading.preprocessors import sanitize  # nbconvert: only when grading

    release_nb = base_course(run.root, run.chapter, run.course, run.log)
    pristine = source_notebook(run.root, run.chapter)
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
                               disk_mb=run.disk_mb))
    return tasks, notes


def _run_tasks(run: _ClassRun, tasks: list[GradeTask], max_points: float) -> dict[str, dict]:
    """``grade_one`` for every task, ``run.jobs`` at a time; a task that raises fails alone."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

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
            status = (f"{sum(r['scores'].values()):g} / {max_points:g}" if r["scores"] is not None
                      else f"0 / {max_points:g} ({r['problem']})")
            run.say(f"  [{done}/{len(tasks)}] {t.student}: {status} in {r['seconds']:.0f} s")
    return outcome


def _append_student_logs(log: Path, tasks: list[GradeTask]) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        for t in sorted(tasks, key=lambda t: t.sid):
            slog = t.course / "nbgrader.log"
            fh.write(f"===== {t.student} ({t.sid})\n")
            data = read_regular(slog, 5_000_000)
            if data is not None:
                fh.write(data.decode("utf-8", errors="replace"))


def _autograde_class(run: _ClassRun, graded: list[Submission], result: GradeResult) -> tuple[dict, dict]:
    """Autograde, merge the gradebooks (in student order) and generate the feedback;
    return (outcome, notes) by student."""
    tasks, notes = _tasks(run, graded, result.exercises)
    run.say(f"Autograding {len(graded)} submission(s) of {run.chapter}, {run.jobs} at a time "
            f"(limits: {run.timeout} s per cell, {notebook_time_limit(run.timeout)} s per notebook, "
            f"{run.memory_mb} MB) ...")
    outcome = _run_tasks(run, tasks, result.max_points)
    done = [t for t in tasks if outcome[t.student]["scores"] is not None]
    merge_gradebooks(run.course, run.chapter, {t.sid: (t.student, t.course) for t in done},
                     scores={t.sid: outcome[t.student]["scores"] for t in done})
    if any(r["scores"] is not None for r in outcome.values()):
        run_nbgrader(run.course, "generate_feedback", run.chapter, "--force", log=run.log, check=False)
    _append_student_logs(run.log, tasks)
    return outcome, notes


def _plan(sandbox: bool, root: Path, work: Path, out: Path, submissions: Path) -> SandboxPlan:
    """The sandbox of this class: the repository, the work folder, the output and the
    submissions hidden; the interpreter, the package and its data (shipped checkpoints, the
    tokenizer: chapters 2-5 load them) visible."""
    import induction_course
    from induction_course.paths import data_dir

    visible = [Path(sys.prefix), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent,
               Path(induction_course.__file__).resolve().parent, data_dir().resolve()]
    secret = [Path(root), work, out, submissions]
    plan = plan_sandbox(sandbox, visible, secret)
    plan.hidden_from_notes = [str(p.resolve()) for p in secret]
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
) -> GradeResult:
    """Autograde every submission of a class; write ``grades.csv``, ``feedback/`` and ``report.txt`` in ``out``.

    Each submission is autograded in a course folder of its own (the release, the gradebook
    and that one notebook; never ``solutions/``), ``jobs`` at a time, each kernel limited to
    ``timeout`` seconds per cell, ``notebook_time_limit(timeout)`` per notebook and
    ``memory_mb`` of address space. With ``sandbox`` (the default) each run is isolated by
    bubblewrap (see :mod:`.sandbox`); where that is impossible, or with ``sandbox=False``,
    grading goes on with a warning at the top of ``report.txt``. Points are recomputed by the
    grader from each autograded notebook; the per-student gradebooks are then merged, in
    student order, into ``course/gradebook.db`` of the work folder.
    """
    root = Path(root) if root else find_root()
    check_chapter(root, chapter)
    jobs = default_jobs() if not jobs or jobs < 1 else int(jobs)
    submissions, out = _check_arguments(submissions, out, timeout, memory_mb)
    tmp = tempfile.TemporaryDirectory(prefix="induction-grade-") if workdir is None else None
    work = Path(tmp.name) if tmp else Path(workdir).resolve()
    run = _ClassRun(root, chapter, work, work / "nbgrader.log", jobs, timeout, memory_mb,
                    say=(lambda line: None) if quiet else (lambda line: print(line, flush=True)), disk_mb=disk_mb)
    try:
        work.mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)  # a folder that exists can be hidden from the runs
        run.plan = _plan(sandbox, root, work, out, submissions)
        run.log.write_text("", encoding="utf-8")
        subs = read_submissions(submissions, work, chapter, root)
        for d in ("course", "students"):
            if (work / d).exists():
                shutil.rmtree(work / d)
        result = GradeResult(chapter, grade_cells(source_notebook(root, chapter)), out=out,
                             warnings=run.plan.warnings())
        for line in result.warnings:
            print(line, flush=True)  # even with quiet: nobody should miss it
        graded = [s for s in subs if s.problem is None and s.notebook is not None]
        outcome, notes = _autograde_class(run, graded, result) if graded else ({}, {})  # bad files need no nbgrader
        write_outputs(result, subs, outcome, notes, run.course, run.say)
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()
