"""One class, one import of torch: a zygote that forks each student's kernel launcher into that
student's sandbox.

    python zygote.py SOCKET UID_LO UID_HI PRELOAD[,PRELOAD...]   (run by the grader, as root)

A chapter-1 kernel spends about 6 s importing torch, TransformerLens and the checks; 20 students
pay it 20 times. The grader (when it is root and the sandbox nests) starts this process once per
class: it imports those modules, then listens on a Unix socket that every run sandbox sees.
A student's kernel launcher (``kernel_launcher.py --zygote SOCKET``, already inside that
student's kernel sandbox) connects and sends its command line, environment and standard streams.
The zygote forks a child that

1. checks the peer: a run uid of this class (``UID_LO`` <= uid < ``UID_HI``), served once per uid
   (the launcher connects before any student code of that uid runs, so a later connection,
   from the student's code, is refused);
2. joins the peer's cgroups (its memory and process limits), takes its resource limits (from
   ``/proc``, not from the request), opens its namespaces and enters them: network, IPC and UTS
   (the run sandbox's), then pid, mount and the user namespace (the kernel sandbox's);
3. becomes the peer's uid and gid there (no groups, no capabilities, ``no_new_privs``) before it
   touches any path or runs anything the sandbox's files could change;
4. forks the launcher's ``main`` there, with the peer's environment and streams: the kernel and
   the trusted check's producer are then forks of a process that holds the imports.

The peer waits for the exit status and exits with it; its sandbox ends with it (bubblewrap
kills the pid namespace), and everything the zygote forked into it ends too. Anything the
zygote refuses or fails at before the launcher runs, the peer does itself, as without a zygote.
Linux only; the grader uses it only when it runs as root (``setns`` into the sandboxes).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import struct
import sys

# The run sandbox's namespaces (owned by the grader's user namespace), then the kernel sandbox's
# pid and mount namespaces and, last, its user namespace: the children then hold no capability
# over the kernel sandbox's mounts, as a process outside that user namespace with its owner's
# uid would.
_OUTER_NAMESPACES = ("net", "ipc", "uts")
_INNER_NAMESPACES = ("pid", "mnt")  # mount last: after it, /proc is the sandbox's
MAX_REQUEST = 1 << 20
ACCEPTED, REFUSED, STARTED = b"Y", b"N", b"S"
STARTED_LINE = "kernel_launcher: run by the class's zygote"  # in nbgrader's log


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc, ctypes


def _peer(conn: socket.socket) -> tuple[int, int, int]:
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid, gid


def _cgroup_files(pid: int) -> list[str]:
    """The ``cgroup.procs`` files of the peer's own cgroups (v1: memory and pids; v2: its group)."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    out = []
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh.read().splitlines():
            _, controllers, path = line.split(":", 2)
            if path == "/":
                continue
            if v2 and controllers == "":
                out.append(f"/sys/fs/cgroup{path}/cgroup.procs")
            elif not v2:
                out += [f"/sys/fs/cgroup/{c}{path}/cgroup.procs" for c in controllers.split(",") if c in ("memory", "pids")]
    return [f for f in out if os.path.exists(f)]


_LIMIT_NAMES = {"Max cpu time": "RLIMIT_CPU", "Max file size": "RLIMIT_FSIZE", "Max data size": "RLIMIT_DATA",
                "Max stack size": "RLIMIT_STACK", "Max core file size": "RLIMIT_CORE", "Max processes": "RLIMIT_NPROC",
                "Max open files": "RLIMIT_NOFILE", "Max address space": "RLIMIT_AS"}


def _limits_of(pid: int) -> list[tuple[int, tuple[int, int]]]:
    """The peer's resource limits, as the kernel shows them (``/proc/PID/limits``)."""
    out = []
    with open(f"/proc/{pid}/limits") as fh:
        for line in fh.read().splitlines()[1:]:
            name = next((n for n in _LIMIT_NAMES if line.startswith(n)), None)
            if name is None:
                continue
            soft, hard = line[len(name):].split()[:2]
            value = [resource.RLIM_INFINITY if v == "unlimited" else int(v) for v in (soft, hard)]
            out.append((getattr(resource, _LIMIT_NAMES[name]), (value[0], value[1])))
    return out


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise OSError("no Uid line")


def _inside(pid: int, table: str, outside: int) -> int:
    """The id that ``outside`` (an id of this namespace) is within the peer's user namespace."""
    with open(f"/proc/{pid}/{table}") as fh:
        for line in fh.read().splitlines():
            first_in, first_out, count = map(int, line.split())
            if first_out <= outside < first_out + count:
                return first_in + outside - first_out
    raise OSError(f"{outside} has no id in the peer's user namespace")


def _setns(libc, ctypes, fd: int) -> None:
    if libc.setns(fd, 0) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def _drop_capabilities(libc, ctypes) -> None:
    """No capability left, in any namespace: joining a user namespace grants them all there, and a
    uid change inside one where root is unmapped does not clear them."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    got = (Data * 2)()
    if libc.capget(ctypes.byref(header), got) != 0 or any(d.effective or d.permitted for d in got):
        raise OSError("capabilities left after capset")


def _enter(conn: socket.socket, pid: int, uid: int, gid: int) -> dict:
    """Steps 2-3 of the module docstring, in this (forked, single-threaded) process; the request."""
    libc, ctypes = _libc()
    conn.settimeout(10)
    msg, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
    if len(fds) != 3:
        raise OSError("the request did not carry the three standard streams")
    while len(msg) < MAX_REQUEST:  # the peer closes its side once the request is sent
        more = conn.recv(MAX_REQUEST - len(msg))
        if not more:
            break
        msg += more
    request = json.loads(msg)
    pidfd = os.pidfd_open(pid)
    if _uid_of(pid) != uid:
        raise OSError("the peer changed")
    outer = [os.open(f"/proc/{pid}/ns/{n}", os.O_RDONLY) for n in _OUTER_NAMESPACES]
    joins_user = os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
    user = [os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)] if joins_user else []
    inner = [os.open(f"/proc/{pid}/ns/{n}", os.O_RDONLY) for n in _INNER_NAMESPACES]
    inside_uid, inside_gid = _inside(pid, "uid_map", uid), _inside(pid, "gid_map", gid)
    for procs in _cgroup_files(pid):
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    limits = _limits_of(pid)
    signal.pidfd_send_signal(pidfd, 0)  # still the same process: the pid was not reused meanwhile
    for i, fd in enumerate(fds):
        os.dup2(fd, i)
    keep = {0, 1, 2, conn.fileno(), *outer, *user, *inner}
    for fd in range(3, 1024):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd in outer:  # the run sandbox's: joined with the caps of the grader's root
        _setns(libc, ctypes, fd)
    for r, lim in limits:
        resource.setrlimit(r, lim)
    os.setgroups([])  # a user namespace may refuse setgroups: none from here on
    for fd in [*inner, *user]:  # pid and mount (still with root's caps: their owner may be an
        _setns(libc, ctypes, fd)  # outer user namespace of the sandbox's), then its user namespace
    os.setresgid(inside_gid, inside_gid, inside_gid)
    os.setresuid(inside_uid, inside_uid, inside_uid)
    _drop_capabilities(libc, ctypes)
    PR_SET_NO_NEW_PRIVS = 38
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if os.getuid() != inside_uid or os.geteuid() != inside_uid:
        raise OSError("could not become the peer's uid")
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    return request


def _serve_one(conn: socket.socket, pid: int, uid: int, gid: int, launcher) -> None:
    """The forked child for one peer: never returns."""
    code = 1
    try:
        request = _enter(conn, pid, uid, gid)
        child = os.fork()
        if child == 0:
            conn.close()
            os.write(2, f"{STARTED_LINE}\n".encode())
            launcher.main(request["argv"])  # os._exit()s
            os._exit(1)
        conn.sendall(STARTED)
        _, status = os.waitpid(child, 0)
        conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
        code = 0
    except BaseException:  # noqa: BLE001 - the peer starts the kernel itself, or loses it
        code = 1
    finally:
        os._exit(code)


def serve(path: str, uids: range, preload: list[str]) -> None:
    """Import ``preload``, then fork a launcher into the sandbox of every run uid that asks, once."""
    import importlib
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kernel_launcher", os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_launcher.py"))
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    launcher.die_with_parent()  # a grader that is killed leaves no zygote behind
    launcher.import_all(preload)
    _libc()  # ctypes loaded now: nothing is loaded from a sandbox's files later
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)
    server.listen(64)
    served: set[int] = set()
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        try:  # the children that ended since the last connection
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        try:
            pid, uid, gid = _peer(conn)
            if uid in served or uid not in uids:
                conn.sendall(REFUSED)
                continue
            served.add(uid)
            conn.sendall(ACCEPTED)
            if os.fork() == 0:
                server.close()
                _serve_one(conn, pid, uid, gid, launcher)
        except OSError:
            pass
        finally:
            conn.close()


# ------------------------------------------------------------------------- the grader's side
class Zygote:
    """The grader's handle on a class's zygote: started at once, ready a few seconds later."""

    def __init__(self, folder, uids: range, preload: list[str], env: dict, log) -> None:
        import subprocess
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.socket = folder / "socket"
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(self.socket), str(uids.start), str(uids.stop),
             ",".join(preload)], cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=log, start_new_session=True)

    def ready(self, timeout: float) -> bool:
        """Has it imported its modules and opened its socket (within ``timeout`` seconds)?"""
        import select

        if select.select([self._proc.stdout], [], [], timeout)[0]:
            return self._proc.stdout.readline().strip() == b"ready"
        return False

    def close(self) -> None:
        """Stop it and whatever it forked that is still alive outside the students' cgroups."""
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()
        self._proc.stdout.close()


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # run by path: the grading folder is not a place to import from
    _path, _lo, _hi, _preload_arg = sys.argv[1:5]
    serve(_path, range(int(_lo), int(_hi)), [m for m in _preload_arg.split(",") if m])
