"""Launch a Jupyter kernel for autograding with resource limits (run as a script).

    python kernel_launcher.py [--reap] --memory-mb 4096 --cpu-s 1200 --kernel-wall-s 600 [--pidfile F]
           [--preload torch,... --producer PLAN NOTEBOOK ANSWERS --producer-cpu-s N --producer-wall-s N]
           [--zygote SOCKET] -- {connection_file}

``induction-course grade`` writes a kernelspec whose ``argv`` is this command. It starts the
kernel (ipykernel, same interpreter) as a child process and stays its parent. Before that, it

- caps the address space (``RLIMIT_AS``; a failing allocation raises ``MemoryError`` in the
  student's cell instead of the machine swapping or the OOM killer choosing a victim);
- caps CPU time (``RLIMIT_CPU``, a backstop for loops that ignore the interrupt: the kernel
  gets ``SIGXCPU`` and dies);
- forbids core dumps;
- asks Linux to kill it when its parent (the ``nbgrader autograde`` process) dies, and the
  kernel when it dies (``PR_SET_PDEATHSIG``), so that killing a runaway autograde leaves no
  kernel behind (jupyter_client starts kernels in their own session, out of reach of a
  process-group kill);
- with ``--preload`` (Linux) imports the modules the kernel and the producer both need (torch,
  the chapter's checks, TransformerLens): the kernel and the producer are forks that share them
  (each fresh interpreter would pay for them again: 2-6 s per student);
- with ``--producer`` takes the trusted check's plan into memory that no fork inherits and
  deletes its file, so that the notebook's code finds the hidden tests' inputs nowhere; and
  makes itself non-dumpable once the kernel is forked (a process of the same user could
  otherwise read its memory).

With ``--zygote SOCKET`` it first asks the class's zygote (:mod:`.zygote`), which holds those
imports already, to run all of this in its place, in this sandbox, as this user; it waits and
exits with the kernel's status, or does it all itself when the zygote refuses or fails.

It writes the kernel's pid to ``--pidfile`` so the grader can kill it explicitly as well, and
kills the kernel ``--kernel-wall-s`` seconds after it started itself (the whole notebook's time
limit; :data:`KERNEL_KILLED_LINE` on stderr, and no trusted check then). When
the kernel ends, with ``--reap`` (inside the kernel sandbox, a pid namespace of its own) it
counts the processes still alive in the namespace (setsid, double forks), says so on stderr
(nbgrader's log, where the grader reads it) and kills them. The kernel's stdout/stderr go to
/dev/null there, so that student code cannot write into the grader's log (its output reaches
the notebook anyway). Then, with ``--producer``, it empties the sandbox's scratch folders and
runs the producer (:mod:`.producer`: the student's solution cells and the grader's hidden
calls, answers written to ``ANSWERS``) in a fresh fork, which nothing the notebook did reaches;
it is killed after ``--producer-wall-s`` seconds, and its end is written to stderr
(:data:`PRODUCER_LINE`). nbgrader waits for it: its kernel manager's shutdown wait is set to
that limit (:func:`.course_dir.write_course_config`).

:func:`survivable_execute` returns nbgrader's ``Execute`` preprocessor with one change: when the
kernel dies (``os._exit``, a signal, the memory or CPU limit), the cell that was running gets an
error output ``KernelDied`` and every later code cell an error ``NotRun`` instead of nbgrader
discarding the whole notebook; the grade cells that passed before the death keep their points.
A kernel that dies before its first cell (its launcher was killed, or it could not start) leaves
every code cell with a ``KernelDied`` error: graded, with 0 for each grade cell.
The grader's nbgrader config imports this file by path (``sys.path``), not as part of the package.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time

PRODUCER_LINE = "kernel_launcher: the trusted check's producer"  # how its end reads in nbgrader's log
KERNEL_KILLED_LINE = "kernel_launcher: the kernel was killed at the notebook's time limit of"
_HERE = os.path.dirname(os.path.abspath(__file__))
_SHARE = sys.platform.startswith("linux")  # fork without exec after loading torch: Linux only
_SPARE: set[int] = set()  # --spare: the launcher in the sandbox that the zygote runs us for


def _set_limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # pragma: no cover - best effort
        pass


def _to_devnull() -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)


def _kill_the_rest(spared: int, what: str = "the kernel") -> None:
    """Count, name on stderr and kill what is left in this pid namespace besides init, us,
    ``spared`` and the launcher that asked the zygote to run us (``--spare``: its end would end
    the sandbox)."""
    keep = {1, os.getpid(), spared, *_SPARE}
    left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep]
    with open("/proc/1/comm") as fh:
        in_sandbox = fh.read().strip() == "bwrap"  # kill(-1) outside a pid namespace would hit the machine
    if left and in_sandbox:
        os.write(2, f"kernel_launcher: {len(left)} background process(es) still running when {what} "
                    "ended; killed\n".encode())
    if not in_sandbox:
        return
    if not _SPARE:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:  # nothing was left: the usual case
            pass
        return
    for _ in range(50):  # one by one, until no fork outruns it (the cgroup caps how many there are)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep]
        if not left:
            break
        time.sleep(0.01)


def _clear_scratch() -> None:
    """Empty the kernel sandbox's own tmpfs folders: the kernel starts on a clean scratch disk."""
    import shutil

    for top in ("/tmp", "/dev/shm"):
        for name in os.listdir(top):
            path = os.path.join(top, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:  # what cannot go stays: the student's own files, in the student's own sandbox
                pass


def import_all(modules: list[str]) -> None:
    """Import ``modules`` here, before any fork; one that fails is left to the code that needs it."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the cell or call that needs it will say what is wrong
            pass


def _take_plan(path: str):
    """The producer's plan, read into memory that forked children do not get (``MADV_DONTFORK``),
    and its file removed: the kernel, forked later, finds the hidden tests' inputs nowhere."""
    import mmap

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        buf = mmap.mmap(-1, max(size, 1))
        if hasattr(mmap, "MADV_DONTFORK"):
            buf.madvise(mmap.MADV_DONTFORK)
        view, got = memoryview(buf), 0
        while got < size:
            n = os.readv(fd, [view[got:size]])
            if n == 0:
                break
            got += n
        view.release()
    finally:
        os.close(fd)
    os.unlink(path)
    return buf, got


def _not_dumpable() -> None:
    """Out of the kernel's reach: a process of the same user may read or trace a dumpable one."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_DUMPABLE = 4
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except Exception:  # pragma: no cover - best effort
            pass


def _producer_child(plan: tuple, spec: list[str], cpu_s: int, reap: bool) -> None:
    """The forked producer: never returns (a fork must not run on into the launcher's code)."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent()
        if reap:
            _to_devnull()
        import json

        buf, size = plan
        from induction_course.course.grading.producer import record

        code = record(json.loads(buf[:size]), spec[1], spec[2], cpu_s)
    except BaseException:  # noqa: BLE001 - whatever happened, the grader finds no answers
        code = 1
    finally:
        os._exit(code if isinstance(code, int) else 1)


def wait_at_most(pid: int, deadline: float, group: bool = False) -> int | None:
    """The wait status of child ``pid``; None if it was still running at ``deadline`` (a
    ``time.monotonic()``) and was killed then (its process group with ``group``)."""
    while True:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            return raw
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


def _run_producer(plan: tuple, spec: list[str], cpu_s: int, wall_s: float, reap: bool) -> None:
    """Run the producer to its end or its time limit, say how it ended, kill what it left behind."""
    import mmap

    start = time.monotonic()
    if hasattr(mmap, "MADV_DOFORK"):
        plan[0].madvise(mmap.MADV_DOFORK)  # the kernel is gone: this fork is the plan's reader
    pid = os.fork()
    if pid == 0:
        _producer_child(plan, spec, cpu_s, reap)
    raw = wait_at_most(pid, start + wall_s, group=True)
    status = f"ended: exit {os.waitstatus_to_exitcode(raw)}" if raw is not None else \
        f"was killed at its time limit of {wall_s:g} s"
    os.write(2, f"{PRODUCER_LINE} {status} ({time.monotonic() - start:.1f} s)\n".encode())
    if reap:
        _kill_the_rest(pid, "the trusted check's producer")
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kernel(rest: list[str], shared: bool, reap: bool) -> None:
    """The forked kernel: in this process when it holds the preloaded modules, else by ``exec``.
    Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_parent()
        if reap:
            _to_devnull()
        if not shared:
            os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", *rest])
        sys.argv = ["ipykernel_launcher", "-f", *rest]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=["-f", *rest])
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)


def through_zygote(path: str, argv: list[str]) -> int | None:
    """Have the class's zygote (:mod:`.zygote`) run this launcher, with the imports it holds, in
    this sandbox; its exit code, or None when it cannot (this process then does it all itself)."""
    import json
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(path)
            if conn.recv(1) != b"Y":
                return None
            request = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
            socket.send_fds(conn, [request], [0, 1, 2])
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(None)  # the kernel runs as long as nbgrader wants
            if conn.recv(1) != b"S":
                return None
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
    except (OSError, ValueError):
        return None
    try:
        return int(json.loads(answer)["exit"]) & 0xFF
    except (ValueError, KeyError, TypeError):
        return 1


def _options(argv: list[str]) -> tuple[dict, list[str]]:
    """(options, the kernel's own arguments after ``--``)."""
    opts: dict = {"memory_mb": 0, "cpu_s": 0, "pidfile": None, "reap": False, "preload": [], "producer": None,
                  "producer_cpu_s": 600, "producer_wall_s": 600.0, "zygote": None, "kernel_wall_s": float("inf")}
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i]
        if key == "--reap":
            opts["reap"], i = True, i + 1
            continue
        if key == "--producer":
            opts["producer"], i = argv[i + 1:i + 4], i + 4
            continue
        val = argv[i + 1]
        if key in ("--memory-mb", "--cpu-s", "--producer-cpu-s"):
            opts[key[2:].replace("-", "_")] = int(val)
        elif key in ("--producer-wall-s", "--kernel-wall-s"):
            opts[key[2:].replace("-", "_")] = float(val)
        elif key in ("--pidfile", "--zygote"):
            opts[key[2:]] = val
        elif key == "--spare":
            _SPARE.add(int(val))
        elif key == "--preload":
            opts["preload"] = [m for m in val.split(",") if m]
        else:
            raise SystemExit(f"kernel_launcher: unknown option {key}")
        i += 2
    rest = argv[i + 1:]
    if not rest or (opts["producer"] is not None and len(opts["producer"]) != 3):
        raise SystemExit("usage: kernel_launcher.py [--reap] [--memory-mb N] [--cpu-s N] [--pidfile F] "
                         "[--preload M,...] [--producer PLAN NOTEBOOK ANSWERS] [--producer-cpu-s N] "
                         "[--producer-wall-s S] [--kernel-wall-s S] [--zygote SOCKET] -- CONNECTION_FILE")
    return opts, rest


def main(argv: list[str]) -> None:
    started = time.monotonic()
    opts, rest = _options(argv)
    if opts["zygote"]:
        i = argv.index("--zygote")
        code = through_zygote(opts["zygote"], ["--spare", str(os.getpid()), *argv[:i], *argv[i + 2:]])
        if code is not None:
            os._exit(code)
    if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:  # the kernel gets a clean sys.path
        del sys.path[0]
    if opts["memory_mb"] > 0:
        _set_limit(resource.RLIMIT_AS, opts["memory_mb"] * 1024 * 1024)
    if opts["cpu_s"] > 0:
        _set_limit(resource.RLIMIT_CPU, opts["cpu_s"])
    _set_limit(resource.RLIMIT_CORE, 0)
    parent = os.getppid()  # 1 is a legitimate parent inside a pid namespace: compare, not test for 1
    die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        raise SystemExit(1)
    reap, shared = opts["reap"], _SHARE and bool(opts["preload"])
    if shared:
        import_all(opts["preload"])
    plan = _take_plan(opts["producer"][0]) if opts["producer"] else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel
    child = os.fork()
    if child == 0:
        _kernel(rest, shared, reap)
    _not_dumpable()
    if opts["pidfile"]:
        with open(opts["pidfile"], "w") as fh:
            fh.write(str(child))

    def on_term(signum, frame):  # jupyter_client's forced shutdown signals the whole process group
        if reap:
            _kill_the_rest(child)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    status = wait_at_most(child, started + opts["kernel_wall_s"])
    if status is None:  # nbgrader sees a dead kernel; the grader reads this line and gives the notebook 0
        os.write(2, f"{KERNEL_KILLED_LINE} {opts['kernel_wall_s']:g} s\n".encode())
        plan, status = None, 137 << 8
    if reap:
        _kill_the_rest(child)
    if plan is not None:  # the kernel is gone: now the trusted check, on a clean scratch disk
        if reap:
            _clear_scratch()
        _run_producer(plan, opts["producer"], opts["producer_cpu_s"], opts["producer_wall_s"], reap)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def survivable_execute():
    """nbgrader's ``Execute`` that survives the death of its kernel (see the module docstring)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.notebooknode import NotebookNode
    from nbgrader.preprocessors import Execute

    def _error(ename: str, evalue: str) -> NotebookNode:
        return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])

    class SurvivableExecute(Execute):
        _dead_at: int | None = None
        _started = False  # has a cell been reached (the kernel started)?

        def preprocess_cell(self, cell, resources, index):
            self._started = True
            if cell.cell_type != "code" or not cell.source.strip():
                return super().preprocess_cell(cell, resources, index)
            if self._dead_at is not None:
                cell.outputs = [_error("NotRun", f"not run: the kernel died in cell {self._dead_at}")]
                return cell, self.resources
            try:
                return super().preprocess_cell(cell, resources, index)
            except CellTimeoutError:  # interrupted, but not idle within nbclient's grace period (a
                # busy machine, or C code that ignores the interrupt): this cell loses, the rest runs
                cell.outputs.append(_error(
                    "CellTimeoutError", "the cell did not stop at the time limit even when interrupted"))
                return cell, self.resources
            except DeadKernelError:
                self._dead_at = index
                cell.outputs.append(_error(
                    "KernelDied", "the kernel died while running this cell (os._exit, a signal, "
                    "a crash, or the grader's memory/CPU limit); later cells were not run"))
                return cell, self.resources

        def preprocess(self, nb, resources=None, km=None):
            self._dead_at = None
            self._started = False
            try:
                return super().preprocess(nb, resources, km=km)
            except RuntimeError as err:  # "Kernel died before replying to kernel_info", a startup timeout
                if self._started:
                    raise
                for cell in nb.cells:  # the notebook is graded as it stands: nothing of it ran
                    if cell.cell_type == "code" and cell.source.strip():
                        cell.outputs = [_error("KernelDied", f"the kernel died before the first cell ran ({err})")]
                return nb, resources if resources is not None else {}

    return SurvivableExecute


if __name__ == "__main__":
    main(sys.argv[1:])
