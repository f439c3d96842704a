"""Per-student sandboxes: bubblewrap around each nbgrader run, and a second one around its kernel.

Two layers, because nbgrader needs the hidden tests and the student's code must not see them:

- the *run* sandbox holds ``python -m nbgrader autograde`` for one student: the system, the
  interpreter and the package read-only; the repository, ``/tmp``, ``/home``, ``/root``, the
  work folder (other students), the submissions and the output folder hidden behind empty
  tmpfs; only that student's course folder writable; new pid, net, ipc and uts namespaces;
  it dies with the grader. Run by root, it runs as a uid of its own (``UID_BASE + n``), so that
  file permissions and ``RLIMIT_NPROC`` apply to it as to any unprivileged user.
- the *kernel* sandbox (the kernelspec's argv) holds the student's kernel: the course folder
  read-only, its ``private/`` (the gradebook with the hidden tests, the config) hidden, a
  size-limited tmpfs ``/tmp`` its only writable place (the disk limit), a pid namespace of its
  own (it sees neither nbgrader nor the grader, and when the kernel ends, all it started ends).
- a cgroup (v1 or v2, where ``/sys/fs/cgroup`` is writable) caps the memory and the number of
  processes of one student's whole run; without one, ``RLIMIT_AS`` per process and
  ``RLIMIT_NPROC`` (own uid only) are what is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

UID_BASE = 61000
NPROC = 256  # processes and threads of one run (cgroup pids.max; RLIMIT_NPROC for its own uid)  # run sandboxes of a root grader: uid UID_BASE + n, never a real account
PRIVATE = "private"  # the course sub-folder the kernel never sees
_CGROUP_ROOT = Path("/sys/fs/cgroup")
ZYGOTE_SOCKET = "/run/induction-zygote.sock"  # below a hidden folder (/run): only the bind shows it
_ALWAYS_HIDDEN = ("/tmp", "/var/tmp", "/home", "/root", "/run", "/mnt", "/media", "/srv")


@dataclass
class SandboxPlan:
    """How the runs of one class are isolated (decided once per class by :func:`plan_sandbox`)."""
    bwrap: str | None = None  # None: no sandbox at all
    why_not: str = ""  # the warning printed and written to the report when there is none
    as_root: bool = False  # each run gets a uid of its own
    nested: bool = False  # the kernel gets a sandbox of its own (hidden tests out of its reach)
    cgroup: str | None = None  # "v1", "v2" or None
    hidden: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    hidden_from_notes: list[str] = field(default_factory=list)  # named in a report line when reached for
    zygote: str | None = None  # the class's zygote socket (:mod:`.zygote`), seen by every run at ZYGOTE_SOCKET

    @property
    def enabled(self) -> bool:
        return self.bwrap is not None

    def warnings(self) -> list[str]:
        """Lines for the top of report.txt: what this run does not protect."""
        if not self.enabled:
            return [f"WARNING: NOT SANDBOXED ({self.why_not}): student code ran as the grader's own user "
                    "with the grader's files, processes and network in reach; grades are recomputed by "
                    "the grader, but a hostile notebook could change files outside its folder"]
        out = []
        if not self.nested:
            out.append("WARNING: the kernel has no sandbox of its own here (nested namespaces refused): "
                       "student code can read the hidden tests in its gradebook")
        if not self.cgroup:
            out.append("note: no writable cgroup: memory is limited per process (RLIMIT_AS), "
                       + ("processes per student by RLIMIT_NPROC" if self.as_root else "process count not limited"))
        return out


def find_bwrap() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap")
                                          if os.access(p, os.X_OK)), None)


def run_uid(plan: SandboxPlan, n: int) -> int | None:
    """The uid of run ``n`` when the grader is root (None: the grader's own)."""
    return UID_BASE + n if plan.as_root else None


def _probe(plan: SandboxPlan) -> tuple[bool, bool, str]:
    """(a run sandbox starts, a kernel sandbox starts inside it, bwrap's error)."""
    kw = {"capture_output": True, "text": True, "timeout": 30}
    inner = [plan.bwrap, "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        r = subprocess.run(run_argv(plan, Path("/"), limited_argv(plan, [], 1024, ["/bin/true"], run_uid(plan, 0))), **kw)
        if r.returncode != 0:
            return False, False, (r.stderr.strip().splitlines() or ["bwrap failed"])[-1]
        r2 = subprocess.run(run_argv(plan, Path("/"), limited_argv(plan, [], 1024, inner, run_uid(plan, 0))), **kw)
    except (OSError, subprocess.SubprocessError) as err:
        return False, False, str(err)
    return True, r2.returncode == 0, ""


def _cgroup_kind() -> str | None:
    if (_CGROUP_ROOT / "cgroup.controllers").exists():
        ok = {"memory", "pids"} <= set((_CGROUP_ROOT / "cgroup.subtree_control").read_text().split())
        return "v2" if ok and os.access(_CGROUP_ROOT, os.W_OK) else None
    if all(os.access(_CGROUP_ROOT / c, os.W_OK) for c in ("memory", "pids")):
        return "v1"
    return None


def plan_sandbox(enabled: bool, visible: list[Path], hidden: list[Path]) -> SandboxPlan:
    """The sandbox this machine allows; ``hidden`` are hidden from every run, ``visible`` (the
    interpreter, the package) stay readable even below a hidden folder."""
    if not enabled:
        return SandboxPlan(why_not="--no-sandbox was given")
    if not sys.platform.startswith("linux"):
        return SandboxPlan(why_not=f"no bubblewrap sandbox on {sys.platform}")
    plan = SandboxPlan(bwrap=find_bwrap(), as_root=os.geteuid() == 0)
    if plan.bwrap is None:
        return SandboxPlan(why_not="bubblewrap (bwrap) is not installed; apt-get install bubblewrap")
    works, plan.nested, err = _probe(plan)
    if not works:
        return SandboxPlan(why_not=f"bubblewrap cannot start here: {err}")
    plan.cgroup = _cgroup_kind()
    paths = sorted({str(Path(p).resolve()) for p in [*map(Path, _ALWAYS_HIDDEN), *hidden] if Path(p).exists()},
                   key=lambda p: (p.count("/"), p))
    plan.hidden = [p for p in paths if not any(p.startswith(h.rstrip("/") + "/") for h in paths if h != p)]
    plan.kept = sorted({str(Path(p).resolve()) for p in visible if Path(p).exists()})
    return plan


def unreadable_by_runs(plan: SandboxPlan, folders: list[Path]) -> list[Path]:
    """What below ``folders`` a run could not read: a root grader gives each run a uid of its
    own, and to it a file only its owner may read (safetensors writes 0600) looks missing."""
    if not (plan.enabled and plan.as_root):
        return []
    out: list[Path] = []
    for top in folders:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            if os.stat(dirpath).st_mode & (stat.S_IROTH | stat.S_IXOTH) != stat.S_IROTH | stat.S_IXOTH:
                out.append(Path(dirpath))
            out += [Path(dirpath, f) for f in filenames
                    if not os.stat(os.path.join(dirpath, f)).st_mode & stat.S_IROTH]
    return out


def run_argv(plan: SandboxPlan, course: Path, cmd: list[str], writable: list[Path] = ()) -> list[str]:
    """``cmd`` in a run sandbox whose only writable folder is ``course`` (and the files
    ``writable``: the cgroup's ``cgroup.procs``, which the run joins from inside)."""
    argv = [plan.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if plan.as_root:  # for the prelude (a /proc without bwrap's covers, which a nested sandbox
        # refuses to mount below; then the run's own uid); its setuid drops them all
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SYS_ADMIN"]
    for h in plan.hidden:
        argv += ["--tmpfs", h] if Path(h).is_dir() else ["--ro-bind", "/dev/null", h]
    for k in plan.kept:
        argv += [*_open_parents(plan, k), "--ro-bind", k, k]
    for w in writable:
        argv += ["--bind", str(w), str(w)]
    if plan.zygote:  # read-only: a socket can be connected to all the same
        argv += ["--ro-bind", plan.zygote, ZYGOTE_SOCKET]
    return [*argv, *_open_parents(plan, str(course)), "--bind", str(course), str(course),
            "--chdir", str(course), "--", *cmd]


def _open_parents(plan: SandboxPlan, path: str) -> list[str]:
    """bwrap creates the folders above a bind inside a tmpfs as 0700 (root's): make them 0755,
    so that the run's own uid can reach what is bound below them."""
    out: list[str] = []
    for h in plan.hidden:
        if path.startswith(h.rstrip("/") + "/"):
            parts = Path(path).relative_to(h).parts[:-1]
            for i in range(len(parts)):
                out += ["--perms", "0755", "--dir", str(Path(h, *parts[:i + 1]))]
    return out


def kernel_argv(plan: SandboxPlan, course: Path, disk_mb: int, blanked: list[Path] = (),
                writable: list[Path] = ()) -> list[str]:
    """The prefix of the kernel's argv: the kernel sandbox (empty when there is none). The files
    ``blanked`` read as empty inside it: the notebook nbgrader executes (its hidden tests are
    already restored on disk) and nbgrader's log; the folders ``writable`` stay writable (the
    trusted check's answer file)."""
    if not (plan.enabled and plan.nested):
        return []
    size = str(disk_mb * 1024 * 1024)
    blank = [a for f in blanked for a in ("--ro-bind", "/dev/null", str(f))]
    blank += [a for w in writable for a in ("--bind", str(w), str(w))]
    return [plan.bwrap, "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc", "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm",
            "--ro-bind", str(course), str(course), "--tmpfs", str(course / PRIVATE), *blank,
            "--setenv", "TMPDIR", "/tmp", "--setenv", "HOME", "/tmp",
            "--setenv", "IPYTHONDIR", "/tmp/ipython", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib", "--"]


def give_to_run(course: Path, uid: int | None) -> None:
    """Hand ``course`` to the run's own uid (when the grader is root)."""
    if uid is None:
        return
    for dirpath, dirnames, filenames in os.walk(course):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in dirnames + filenames)]:
            os.lchown(name, uid, uid)


# ------------------------------------------------------------------------------ cgroups
def cgroup_create(plan: SandboxPlan, name: str, memory_mb: int, pids: int) -> list[Path]:
    """A cgroup per run; returns the ``cgroup.procs`` files its first process must join."""
    if not plan.cgroup:
        return []
    if plan.cgroup == "v2":
        d = _CGROUP_ROOT / name
        d.mkdir(exist_ok=True)
        (d / "memory.max").write_text(str(memory_mb * 1024 * 1024))
        (d / "memory.swap.max").exists() and (d / "memory.swap.max").write_text("0")
        (d / "pids.max").write_text(str(pids))
        dirs = [d]
    else:
        dirs = [_CGROUP_ROOT / "memory" / name, _CGROUP_ROOT / "pids" / name]
        for d in dirs:
            d.mkdir(exist_ok=True)
        (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))
        (dirs[1] / "pids.max").write_text(str(pids))
    procs = [d / "cgroup.procs" for d in dirs]
    return procs


_PRELUDE = """\
import os, resource, sys
i = sys.argv.index("--")
uid, nproc, mem = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for f in sys.argv[4:i]:
    with open(f, "w") as fh:
        fh.write(str(os.getpid()))
if nproc:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if uid >= 0:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8, None) != 0:
        sys.exit("prelude: cannot mount /proc: " + os.strerror(ctypes.get_errno()))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        sys.exit("prelude: could not become the run's uid")
os.execv(sys.argv[i + 1], sys.argv[i + 1:])
"""


def limited_argv(plan: SandboxPlan, procs: list[Path], memory_mb: int, argv: list[str], uid: int | None) -> list[str]:
    """``argv`` behind a few lines of Python, run inside the sandbox, that join the cgroup, set
    the limits every process of the run inherits (``RLIMIT_NPROC`` only for a uid of its own:
    the count is per user; ``RLIMIT_AS``, a backstop for nbgrader itself, the kernel launcher
    sets the kernel's own; no core dumps) and, for a root grader, become the run's uid: bwrap
    runs as root (it can then bind the interpreter wherever it lives), the run never does."""
    nproc = NPROC if uid is not None else 0
    return [sys.executable, "-S", "-c", _PRELUDE, str(-1 if uid is None else uid), str(nproc),
            str(memory_mb * 1024 * 1024), *map(str, procs), "--", *argv]


def cgroup_pids(procs: list[Path]) -> list[int]:
    pids: set[int] = set()
    for p in procs:
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(x) for x in p.read_text().split()}
    return sorted(pids)


def cgroup_remove(procs: list[Path]) -> int:
    """Kill whatever is left in the cgroup and remove it; returns how many processes were left."""
    left = cgroup_pids(procs)
    for _ in range(50):
        pids = cgroup_pids(procs)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for p in procs:
        with contextlib.suppress(OSError):
            p.parent.rmdir()
    return len(left)


def memory_events(procs: list[Path]) -> int:
    """How often the run hit its cgroup memory limit."""
    for p in procs:
        for name in ("memory.failcnt", "memory.events"):
            f = p.parent / name
            with contextlib.suppress(OSError, ValueError):
                text = f.read_text()
                if name == "memory.failcnt":
                    return int(text.strip())
                return sum(int(line.split()[1]) for line in text.splitlines() if line.split()[0] in {"max", "oom_kill"})
    return 0
