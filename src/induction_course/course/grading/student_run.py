"""One student, one kernel: how a single submission is autograded in a course folder of its own.

:func:`grade_one` sets up the student's course (the release, the gradebook hidden in
``private/``, that one notebook), runs ``nbgrader autograde`` in the student's sandbox with a
time limit per cell and per notebook and a memory limit on the kernel (``kernel_launcher.py``),
recomputes the points from the autograded notebook (:mod:`.scores`), never from files the run
could write, and judges the hidden tests, which the kernel launcher replayed in a process of its
own once the kernel had ended, outside the sandbox (:mod:`.trusted`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from induction_course.course.grading.course_dir import (
    COURSE_ID,
    KERNEL_NAME,
    NBGRADER_COMMAND,
    student_gradebook,
    with_interpreter_bin,
    write_course_config,
)
from induction_course.course.grading.sandbox import (
    NPROC,
    PRIVATE,
    ZYGOTE_SOCKET,
    SandboxPlan,
    cgroup_create,
    cgroup_remove,
    give_to_run,
    kernel_argv,
    limited_argv,
    memory_events,
    run_argv,
    run_uid,
)
from induction_course.course.grading.kernel_launcher import KERNEL_KILLED_LINE
from induction_course.course.grading.trusted import TRUSTED_DIR, annotate, apply_verdicts, producer_args, run_trusted
from induction_course.course.grading.scores import (
    background_note,
    incident_notes,
    mismatch_note,
    recompute_scores,
)
from induction_course.course.grading.written import (
    pending_scores,
    written_answers,
    written_questions,
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


def producer_time_limit(timeout: int) -> int:
    """Wall-clock seconds for the trusted check's producer (it runs once the kernel has ended)."""
    return notebook_time_limit(timeout)


def run_time_limit(task: "GradeTask") -> int:
    """Wall-clock seconds for a student's whole nbgrader run: the notebook, and the producer if any."""
    return notebook_time_limit(task.timeout) + (producer_time_limit(task.timeout) if task.trusted is not None else 0)


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
    trusted: dict | None = None  # the trusted check's plan (:func:`.hidden_plan.trusted_plan`); None: off


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
            if b"kernel_launcher" in cmdline and str(pidfile).encode() in cmdline:  # ours, not a reused pid
                os.kill(pid, signal.SIGKILL)
    return code, seconds


def kernelspec(task: GradeTask) -> dict:
    """The grader's kernel: ``kernel_launcher.py`` with this task's memory and CPU limits (and the
    trusted check's producer, run once the kernel has ended; through the class's zygote when there
    is one), inside the kernel sandbox when there is one (interrupts are then messages: a signal to
    the process group would reach bubblewrap, not the kernel)."""
    plan = task.sandbox
    nested = plan.enabled and plan.nested
    executed = task.course / "autograded" / task.sid / task.chapter / f"{task.chapter}.ipynb"
    trusted: list[str] = []
    if task.trusted is not None:
        wall = producer_time_limit(task.timeout)
        trusted = producer_args(task, task.trusted, wall, 2 * wall * max(1, task.threads))
        trusted += ["--zygote", ZYGOTE_SOCKET] if plan.zygote else []
    writable = [task.course / TRUSTED_DIR] if trusted else []
    argv = [*kernel_argv(plan, task.course, task.disk_mb, [executed, task.course / "nbgrader.log"], writable),
            sys.executable, str(_LAUNCHER),
            *(["--reap"] if nested else []), "--memory-mb", str(task.memory_mb),
            "--cpu-s", str(2 * notebook_time_limit(task.timeout) * max(1, task.threads)),
            "--kernel-wall-s", str(notebook_time_limit(task.timeout)), *trusted]
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
    # the producer runs last; jupyter_client sends SIGTERM after half of this wait
    wait = 2 * producer_time_limit(task.timeout) + 30 if task.trusted is not None else None
    write_course_config(course, private / "repo_nbgrader_config.py", timeout=task.timeout, db=private / "gradebook.db",
                        shutdown_wait=wait)
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


def _problem(code: int | None, task: GradeTask, autograded: Path, log_text: str) -> str | None:
    """Why a run gave no notebook to grade, or one that gets 0 (None when it did)."""
    if KERNEL_KILLED_LINE in log_text:  # the kernel launcher keeps the notebook's own limit
        return f"did not finish within the time limit of {notebook_time_limit(task.timeout)} s for a whole notebook (killed)"
    if code is None:  # the run's: the notebook, and the trusted check after it
        return f"did not finish within the time limit of {run_time_limit(task)} s for its whole run (killed)"
    if code < 0 or code > 128:
        sig = -code if code < 0 else code - 128
        return f"its nbgrader run was killed (signal {sig}); nothing of it was graded"
    if not autograded.exists():
        return "autograding failed (nbgrader could not process the notebook; see nbgrader.log with --workdir)"
    return None


def _trusted_check(task: GradeTask, scores: dict[str, float], autograded: Path, log_text: str) -> list[str]:
    """Judge what the producer recorded (:mod:`.trusted`), zero what fails and say so in the feedback."""
    verdicts, notes = run_trusted(task, task.trusted, log_text)
    notes = [*notes, *apply_verdicts(scores, verdicts)]
    annotate(autograded, verdicts)
    return notes


def grade_one(task: GradeTask) -> dict:
    """Autograde one student in a course folder of their own; the points are recomputed here."""
    _set_up_student_course(task)
    course, chapter = task.course, task.chapter
    log = course / "nbgrader.log"
    limit = run_time_limit(task)
    cmd = [*NBGRADER_COMMAND, "autograde", chapter, f"--student={task.sid}", "--force"]
    code, seconds, notes = _run_student(task, cmd, log, limit)
    res: dict[str, Any] = {"student": task.student, "seconds": seconds, "notes": notes, "problem": None, "scores": None}
    log_text = log.read_text(encoding="utf-8", errors="replace")
    if "Exception while loading config file" in log_text:
        raise RuntimeError(f"the grader's nbgrader config failed to load (a bug; see {log})")
    autograded = course / "autograded" / task.sid / chapter / f"{chapter}.ipynb"
    res["problem"] = _problem(code, task, autograded, log_text)
    if res["problem"] is not None:
        return res
    scores, nb = recompute_scores(autograded, task.pristine, MAX_AUTOGRADED_MB * 1_000_000)
    if scores is None:
        res["problem"] = "autograding failed: the autograded notebook could not be read"
        return res
    res["written"] = written_answers(nb, [q.id for q in written_questions(task.pristine)])
    mismatch = mismatch_note(scores, _gradebook_scores(task))
    if task.trusted is not None:  # the hidden tests again, judged outside the student's kernel
        notes = [*notes, *_trusted_check(task, scores, autograded, log_text)]
    res["scores"] = {**scores, **pending_scores(res["written"])}  # written answers: 0 if blank, else by hand
    background = background_note(log_text) if task.sandbox.enabled else None
    res["notes"] = [*incident_notes(nb, task.timeout, task.memory_mb, task.disk_mb, list(task.secrets)),
                    *notes, *([background] if background else []), *([mismatch] if mismatch else [])]
    return res
