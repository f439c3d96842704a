"""Launch a Jupyter kernel for autograding with resource limits (run as a script, not imported).

    python kernel_launcher.py --memory-mb 4096 --cpu-s 1200 --pidfile F -- {connection_file}

``induction-course grade`` writes a kernelspec whose ``argv`` is this command. Before it
``exec``\\ s ``python -m ipykernel_launcher -f {connection_file}`` (same interpreter), it

- caps the address space (``RLIMIT_AS``; a failing allocation raises ``MemoryError`` in the
  student's cell instead of the machine swapping or the OOM killer choosing a victim);
- caps CPU time (``RLIMIT_CPU``, a backstop for loops that ignore the interrupt: the kernel
  gets ``SIGXCPU`` and dies);
- forbids core dumps;
- asks Linux to kill the kernel when its parent (the ``nbgrader autograde`` process) dies
  (``PR_SET_PDEATHSIG``), so that killing a runaway autograde leaves no kernel behind
  (jupyter_client starts kernels in their own session, out of reach of a process-group kill);
- writes its pid to ``--pidfile`` so the grader can kill it explicitly as well;
- with ``--reap`` (inside the kernel sandbox, a pid namespace of its own) it stays as the
  kernel's parent instead of ``exec``-ing it: when the kernel ends it counts the processes
  still alive in the namespace (setsid, double forks), says so on stderr (nbgrader's log, where
  the grader reads it) and kills them. The kernel's stdout/stderr go to /dev/null there, so that
  student code cannot write into the grader's log (its output reaches the notebook anyway).

It only uses the standard library, so it starts in milliseconds and never imports the package.

:func:`survivable_execute` returns nbgrader's ``Execute`` preprocessor with one change: when the
kernel dies (``os._exit``, a signal, the memory or CPU limit), the cell that was running gets an
error output ``KernelDied`` and every later code cell an error ``NotRun`` instead of nbgrader
discarding the whole notebook; the grade cells that passed before the death keep their points.
The grader's nbgrader config imports this file by path (``sys.path``), not as part of the package.
"""

from __future__ import annotations

import os
import resource
import signal
import sys


def _set_limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # pragma: no cover - best effort
        pass


def _kill_the_rest(kernel: int) -> None:
    """Count, name on stderr and kill what is left in this pid namespace besides init, us and the kernel."""
    left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid(), kernel)]
    with open("/proc/1/comm") as fh:
        in_sandbox = fh.read().strip() == "bwrap"  # kill(-1) outside a pid namespace would hit the machine
    if left and in_sandbox:
        os.write(2, f"kernel_launcher: {len(left)} background process(es) still running when the kernel "
                    "ended; killed\n".encode())
    if in_sandbox:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:  # nothing was left: the usual case
            pass


def _reap(rest: list[str]) -> None:
    """Run the kernel as a child; when it ends, kill and count what it left behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are messages to the kernel here
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", *rest])

    def on_term(signum, frame):  # jupyter_client's forced shutdown signals the whole process group
        _kill_the_rest(child)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    _, status = os.waitpid(child, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _kill_the_rest(child)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main(argv: list[str]) -> None:
    memory_mb = cpu_s = 0
    pidfile = None
    reap = False
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i]
        if key == "--reap":
            reap, i = True, i + 1
            continue
        val = argv[i + 1]
        if key == "--memory-mb":
            memory_mb = int(val)
        elif key == "--cpu-s":
            cpu_s = int(val)
        elif key == "--pidfile":
            pidfile = val
        else:
            raise SystemExit(f"kernel_launcher: unknown option {key}")
        i += 2
    rest = argv[i + 1:]
    if not rest:
        raise SystemExit("usage: kernel_launcher.py [--reap] [--memory-mb N] [--cpu-s N] [--pidfile F] -- CONNECTION_FILE")
    if memory_mb > 0:
        _set_limit(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    if cpu_s > 0:
        _set_limit(resource.RLIMIT_CPU, cpu_s)
    _set_limit(resource.RLIMIT_CORE, 0)
    parent = os.getppid()  # 1 is a legitimate parent inside a pid namespace: compare, not test for 1
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        raise SystemExit(1)
    if reap:
        _reap(rest)
    if pidfile:
        with open(pidfile, "w") as fh:
            fh.write(str(os.getpid()))
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", *rest])


def survivable_execute():
    """nbgrader's ``Execute`` that survives the death of its kernel (see the module docstring)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.notebooknode import NotebookNode
    from nbgrader.preprocessors import Execute

    def _error(ename: str, evalue: str) -> NotebookNode:
        return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])

    class SurvivableExecute(Execute):
        _dead_at: int | None = None

        def preprocess_cell(self, cell, resources, index):
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
            return super().preprocess(nb, resources, km=km)

    return SurvivableExecute


if __name__ == "__main__":
    main(sys.argv[1:])
