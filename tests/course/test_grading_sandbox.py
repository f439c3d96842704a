"""A hostile submission touches nothing but its own grade (issue 12).

One class of chapter 1 is graded once (``--jobs 2``, short limits) from a copy of the course
repository (``solutions/``, ``graders/``: nobody else edits the copy while it is graded). Each
attacker is a copy of the reference solution (or of the release) with an attack prepended to
one solution cell; the attacks know every real path (the repository, the package, the
submissions, the output and work folders) because the test bakes them in:

=========== ===================================================================================
student     attack
=========== ===================================================================================
alice       none: the reference solution (25, as graded alone; 4 more points are graded by hand)
-bob        none: the reference, a name that looks like an option (nbgrader --student=-bob)
saboteur    appends to the repository's solutions/graders, the package, a classmate's submission,
            the output and work folders (another student's course); reads the hidden tests
            (its gradebook, nbgrader's /proc) and the solutions; prints what it got
forger      a blank release whose background process rewrites its own gradebook.db to full marks
killer      kills every process it can see whose command line mentions the grader
spawner     setsid + double-forked ``sleep``; a listener on 127.0.0.1; connects to the host
hog         two forked processes that touch 2.5 GB each (memory limit 3 GB per process)
filler      writes until its scratch disk is full
mounter     tries to undo the kernel sandbox's mounts (/proc, /tmp, /) and prints its capabilities
=========== ===================================================================================

plus files that never reach a kernel: a symlink to /dev/zero, a symlink to the solution, a FIFO,
a name with a newline, a ``=2+3`` name with a grade_id given as a list, ``metadata.induction_course``
as a string, a 250-character name, and a student folder with a symlink, a FIFO and a dot-file.
Hostile zips are checked on intake alone (no kernel).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import sys
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import CH1, ROOT, tree_hashes

pytestmark = pytest.mark.slow

SOLUTION = ROOT / "solutions" / CH1 / f"{CH1}.ipynb"
RELEASE = ROOT / "chapters" / CH1 / f"{CH1}.ipynb"
TIMEOUT, MEMORY_MB, DISK_MB = 20, 3072, 64
MARK = "PWNED-by-issue-12"
ORPHAN = "induction-orphan-marker"
PACKAGE = Path(__import__("induction_course").__file__).resolve().parent
LONG = "x" * 240


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _attacker(folder: Path, name: str, base: Path, code: str) -> None:
    nb = nbformat.read(base, as_version=4)
    _cell(nb, "ch1_embed_code").source = code + "\n" + _cell(nb, "ch1_embed_code").source
    nbformat.write(nb, folder / f"{name}.ipynb")


def _attacks(p: dict) -> dict[str, tuple[Path, str]]:
    """student -> (base notebook, attack code); ``p`` holds the real paths to attack."""
    saboteur = f'''
import glob, os
errors, got = [], []
targets = [{p["root"] + "/graders/nbgrader_config.py"!r}, {p["root"] + "/solutions/" + CH1 + "/" + CH1 + ".py"!r},
           {str(PACKAGE / "__init__.py")!r}, {str(PACKAGE / "course/grading/autograde.py")!r},
           {p["subs"] + "/alice.ipynb"!r}, {p["out"] + "/grades.csv"!r}, "{CH1}.ipynb",
           {p["work"] + "/students/alice/private/gradebook.db"!r}, {p["work"] + "/course/gradebook.db"!r}]
for t in targets:
    try:
        with open(t, "a") as fh:
            fh.write("\\n# " + "{MARK[:6]}" + "{MARK[6:]}" + "\\n")  # never whole in the source
    except OSError as err:
        errors.append(err)
secrets = ["../../../private/gradebook.db", {p["root"] + "/solutions/" + CH1 + "/" + CH1 + ".py"!r},
           "{CH1}.ipynb", "../../../nbgrader.log",
           *glob.glob("/proc/*/root" + os.getcwd() + "/../../../private/gradebook.db"),
           *glob.glob("/proc/*/cwd/../../../private/gradebook.db"), *glob.glob("/proc/*/cwd/private/gradebook.db")]
for s in secrets:
    try:
        with open(s, "rb") as fh:
            data = fh.read().decode("latin-1")
        if data:
            got.append("LE" + "AK:" + s + ":" + data)
    except OSError as err:
        errors.append(err)
print("\\n".join(got) or "nothing read")
raise OSError("; ".join(map(str, errors)))
'''
    forger = f'''
import subprocess, sys
code = """
import glob, os, sqlite3, time
for _ in range(1200):
    for db in glob.glob("/proc/*/cwd/../../../private/gradebook.db") + ["../../../private/gradebook.db"]:
        try:
            con = sqlite3.connect(db)
            con.execute("UPDATE grade SET auto_score = (SELECT points FROM grade_cells WHERE grade_cells.id = grade.cell_id)")
            con.commit()
        except Exception:
            pass
    time.sleep(0.5)
"""
subprocess.Popen([sys.executable, "-c", code, "{ORPHAN}"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''
    killer = '''
import os, signal
for pid in [d for d in os.listdir("/proc") if d.isdigit() and int(d) != os.getpid()]:
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if any(w in cmd for w in (b"nbgrader", b"pytest", b"induction", b"bwrap")):
        os.kill(int(pid), signal.SIGKILL)
'''
    spawner = f'''
import os, socket, subprocess, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sh", ["sh", "-c", "sleep 600; :", "{ORPHAN}"])  # the marker: the shell's $0
    os._exit(0)
os.wait()
subprocess.Popen([sys.executable, "-c", "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 48123)); "
                  "s.listen(); time.sleep(600)", "{ORPHAN}"], start_new_session=True)
socket.create_connection(("127.0.0.1", {p["port"]}), timeout=5)
'''
    hog = '''
import subprocess, sys
code = "import time; b = b'x' * 2_500_000_000; time.sleep(10)"
procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
print([q.wait() for q in procs])
'''
    filler = '''
import os
with open("/tmp/fill", "wb") as fh:
    for _ in range(100_000):
        fh.write(b"x" * (1 << 20))
'''
    mounter = '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
undone = [libc.umount2(p, 2) for p in (b"/proc", b"/tmp", b"/")]  # MNT_DETACH: reveal what bwrap covered
print(f"PROBE umount={undone} CapEff={status['CapEff'].strip()} CapPrm={status['CapPrm'].strip()} "
      f"uid_map={open('/proc/self/uid_map').read().split()}")
'''
    return {"saboteur": (SOLUTION, saboteur), "forger": (RELEASE, forger), "killer": (SOLUTION, killer),
            "spawner": (SOLUTION, spawner), "hog": (SOLUTION, hog), "filler": (SOLUTION, filler),
            "mounter": (SOLUTION, mounter)}


def _bad_files(folder: Path, root: Path) -> None:
    (folder / "zed.ipynb").symlink_to("/dev/zero")
    (folder / "sol.ipynb").symlink_to(root / "solutions" / CH1 / f"{CH1}.ipynb")
    os.mkfifo(folder / "fifo.ipynb")
    (folder / "new\nline.ipynb").write_text('{"cells": [')
    nb = nbformat.read(SOLUTION, as_version=4)
    _cell(nb, "ch1_embed").metadata["nbgrader"]["grade_id"] = ["ch1_embed"]
    (folder / "=2+3.ipynb").write_text(json.dumps(nb))
    nb = nbformat.read(SOLUTION, as_version=4)
    nb.metadata["induction_course"] = "01_build_transformer"
    (folder / "metastr.ipynb").write_text(json.dumps(nb))
    (folder / f"{LONG}.ipynb").write_text('{"cells": [')
    dana = folder / "dana"
    dana.mkdir()
    (dana / "link.ipynb").symlink_to(root / "solutions" / CH1 / f"{CH1}.ipynb")
    os.mkfifo(dana / "pipe.ipynb")
    (dana / ".secret.ipynb").write_text("{}")
    (dana / "answers.ipynb").write_text('{"cells": [')


def _live(marker: str) -> list[str]:
    """Command lines of the processes on this machine that mention ``marker``."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                found.append(f"{d}: {cmd}")
    return found


def _run_uids() -> list[str]:
    """Processes that run as a sandbox uid (UID_BASE and up)."""
    from induction_course.course.grading.sandbox import UID_BASE

    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                uid = os.stat(f"/proc/{d}").st_uid
            except OSError:
                continue
            if UID_BASE <= uid < UID_BASE + 10_000:
                found.append(d)
    return found


# ------------------------------------------------------------------ cheats (issue 11)
_COPIER = {  # grade_id of the solution cell -> a cheat that answers it (or breaks its check)
    "ch1_embed_code": "from induction_course.functional import embed as _e\n"
                      "def embed(tokens, W_E):\n    return _e(tokens, W_E)\n",
    "ch1_pos_embed_code": "import induction_course.functional as q\n"
                          "def pos_embed(tokens, W_pos):\n    return getattr(q, 'pos_' + 'embed')(tokens, W_pos)\n",
    "ch1_head_output_code": "def head_output(pattern, x, W_V, b_V, W_O):\n    import importlib\n"
                            "    return importlib.import_module('induction_course.functional').head_output("
                            "pattern, x, W_V, b_V, W_O)\n",
    "ch1_unembed_code": "import sys\ndef unembed(resid, W_U, b_U):\n"
                        "    return sys.modules['induction_course.functional'].unembed(resid, W_U, b_U)\n",
    "ch1_head_scores_code": "import torch\nchecks.check_head_attn_scores = lambda f: None\n"
                            "checks.compare_with_reference = lambda *a, **k: None\n"
                            "def head_attn_scores(x, W_Q, b_Q, W_K, b_K):\n"
                            "    return torch.zeros(x.shape[0], x.shape[1], x.shape[1])\n",
    "ch1_causal_mask_code": "import math, torch\ntorch.allclose = lambda *a, **k: True\n"
                            "math.isclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
                            "def apply_causal_mask(scores):\n    return scores\n",
}
COPIED = ("ch1_embed", "ch1_pos_embed", "ch1_head_output", "ch1_unembed")
PATCHED = ("ch1_head_scores", "ch1_causal_mask")
_TRANSFORMER = """
def _blank(lines):
    return ["pass\\n"] if any("checks." in ln for ln in lines) else lines
get_ipython().input_transformers_cleanup.append(_blank)
"""


def _cheaters(folder: Path, p: dict) -> None:
    """copier (reference calls, patched checks and comparisons), transformer (an input transformer
    that blanks every check, nothing answered), quitter (``os._exit`` before exercise 3's tests),
    reader (takes exercise 1 from the solutions on disk)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    for gid, code in _COPIER.items():
        _cell(nb, gid).source = code
    nbformat.write(nb, folder / "copier.ipynb")
    nb = nbformat.read(RELEASE, as_version=4)
    _cell(nb, "ch1_embed_code").source = _TRANSFORMER
    nbformat.write(nb, folder / "transformer.ipynb")
    nb = nbformat.read(SOLUTION, as_version=4)
    _cell(nb, "ch1_head_scores_code").source = "import os\nos._exit(0)\n" + _cell(nb, "ch1_head_scores_code").source
    nbformat.write(nb, folder / "quitter.ipynb")
    nb = nbformat.read(SOLUTION, as_version=4)
    script = p["root"] + "/solutions/" + CH1 + "/" + CH1 + ".py"
    _cell(nb, "ch1_embed_code").source = (f"src = open({script!r}).read()\n"
                                          "exec(src[src.index('def embed('):src.index('# %%', src.index('def embed('))])\n")
    nbformat.write(nb, folder / "reader.ipynb")


def _package_hashes() -> dict[str, str]:
    files = [PACKAGE / "__init__.py", *sorted((PACKAGE / "course" / "grading").glob("*.py"))]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    from induction_course.course.grading import grade
    from induction_course.course.grading.autograde import _plan

    base = tmp_path_factory.mktemp("sandbox")
    root = base / "repo"
    for d in ("solutions", "graders", "chapters"):
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    subs, out, work = base / "class", base / "out", base / "work"
    subs.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    paths = {"root": str(root), "subs": str(subs), "out": str(out), "work": str(work),
             "port": listener.getsockname()[1]}
    shutil.copyfile(SOLUTION, subs / "alice.ipynb")
    shutil.copyfile(SOLUTION, subs / "-bob.ipynb")
    for name, (nb_base, code) in _attacks(paths).items():
        _attacker(subs, name, nb_base, code)
    _bad_files(subs, root)
    _cheaters(subs, paths)
    plan = _plan(True, root, work, out, subs)
    if not plan.enabled:
        pytest.skip(f"no sandbox on this machine: {plan.why_not}")
    before = {"repo": tree_hashes(root), "subs": tree_hashes(subs), "package": _package_hashes()}
    res = grade(CH1, subs, out, root=root, workdir=work, quiet=True, jobs=2, timeout=TIMEOUT,
                memory_mb=MEMORY_MB, disk_mb=DISK_MB)
    try:
        conn = listener.accept()
        conn[0].close()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    with open(out / "grades.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return {"res": res, "rows": rows, "report": (out / "report.txt").read_text().splitlines(), "plan": plan,
            "before": before, "after": {"repo": tree_hashes(root), "subs": tree_hashes(subs),
                                        "package": _package_hashes()},
            "reached": reached, "work": work, "out": out, "root": root, "subs": subs}


def _line(attacked, student):
    lines = [ln for ln in attacked["report"] if ln.startswith(student if student.endswith("~") else f"{student}:")]
    assert len(lines) == 1, (student, attacked["report"])
    return lines[0]


def test_graded_to_the_end_with_a_row_or_line_for_everyone(attacked):
    rows = attacked["rows"]
    graded = {"alice", "'-bob", "saboteur", "forger", "killer", "spawner", "hog", "filler"}
    assert graded <= set(rows), sorted(rows)
    for name in ("zed", "sol", "fifo", "new_line", "'=2+3", "metastr", "dana"):
        assert name in rows, (name, sorted(rows))
    assert any(r.startswith("x" * 60 + "~") for r in rows)


def test_good_students_get_what_they_get_alone(attacked):
    """The reference scores every exercise's maximum when graded alone (test_grading_robust
    checks that against a real solo run); in this class too."""
    from induction_course.course.grading.notebooks import grade_cells, source_notebook

    full = {gid: f"{pts:g}" for gid, pts in grade_cells(source_notebook(ROOT, CH1)) if "written" not in gid}
    for who in ("alice", "'-bob"):
        row = attacked["rows"][who]
        assert {g: row[g] for g in full} == full, who
    assert not [ln for ln in attacked["report"] if ln.startswith(("alice:", "-bob:"))]


def test_no_file_outside_the_output_changed(attacked):
    for part in ("repo", "subs", "package"):
        b, a = attacked["before"][part], attacked["after"][part]
        assert {k for k in {*a, *b} if a.get(k) != b.get(k)} == set(), part
    for p in [*attacked["root"].rglob("*"), *attacked["subs"].rglob("*"), *PACKAGE.rglob("*.py")]:
        if p.is_file() and not p.is_symlink():
            assert MARK.encode() not in p.read_bytes(), p
    assert MARK not in (attacked["out"] / "grades.csv").read_text()


def test_nothing_started_by_grading_is_alive(attacked):
    assert _live(ORPHAN) == []
    assert _live(str(attacked["work"])) == []
    assert _run_uids() == []


def test_the_network_is_not_reachable(attacked):
    assert attacked["reached"] is False
    assert "tried to use the network" in _line(attacked, "spawner")


def test_background_processes_are_named_and_killed(attacked):
    assert "background process" in _line(attacked, "spawner")
    line = _line(attacked, "forger")
    assert "background process" in line and "0 / 29" in line
    assert float(attacked["rows"]["forger"]["total"]) == 0


def test_saboteur_wrote_and_read_nothing(attacked):
    line = _line(attacked, "saboteur")
    assert "refused" in line and "hidden by the sandbox" in line
    nb = nbformat.read(attacked["work"] / "course" / "autograded" / "saboteur" / CH1 / f"{CH1}.ipynb", as_version=4)
    out = json.dumps(_cell(nb, "ch1_embed_code").outputs)
    assert "nothing read" in out and "LEAK:" not in out
    assert "BEGIN HIDDEN TESTS" not in out and "BEGIN SOLUTION" not in out


def test_killer_only_killed_itself(attacked):
    assert "kernel died" in _line(attacked, "killer")


def test_memory_and_disk_limits(attacked):
    if attacked["plan"].cgroup:
        assert "memory limit" in _line(attacked, "hog")
    assert "filled its scratch disk" in _line(attacked, "filler")


@pytest.mark.parametrize("student,phrase", [
    ("zed", "symbolic link"), ("sol", "symbolic link"), ("fifo", "not a regular file"),
    ("new_line", "control characters"), ("=2+3", "grade_id has the wrong type"),
    ("metastr", "metadata.induction_course"), ("dana", "link.ipynb skipped (a symbolic link)"),
    ("dana", "pipe.ipynb skipped (not a regular file)"), ("x" * 60 + "~", "name shortened"),
])
def test_bad_entries_cost_their_student_only(attacked, student, phrase):
    line = _line(attacked, student)
    assert "0 / 29" in line and phrase in line, line


def test_csv_cells_cannot_be_formulas(attacked):
    text = (attacked["out"] / "grades.csv").read_text()
    for line in text.splitlines()[1:]:
        assert line[0] not in "=+-@", line


def test_report_names_the_sandbox(attacked):
    assert not [ln for ln in attacked["report"] if "NOT SANDBOXED" in ln]


# ------------------------------------------------------------------ hostile zips (intake only)
def test_hostile_zip_members_are_skipped_and_named(tmp_path):
    from induction_course.course.grading import intake

    z = tmp_path / "evil.zip"
    release = RELEASE.read_bytes()
    with warnings.catch_warnings(), zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # the duplicate name is the point
        zf.writestr("../escape.ipynb", release)
        zf.writestr("/abs.ipynb", release)
        zf.writestr("alice/../bob.ipynb", release)
        zf.writestr("alice/.hidden.ipynb", release)
        zf.writestr("alice/alice.ipynb", release)
        zf.writestr("alice/alice.ipynb", b"{}")  # a duplicate: the first one is kept
        zf.writestr("carol", b"a file")
        zf.writestr("carol/carol.ipynb", release)  # a file and a folder of the same name
        zf.writestr(f"{'y' * 300}.ipynb", release)
        zf.writestr("bomb.ipynb", b"\0" * 50_000_000)
    (tmp_path / "work").mkdir()
    subs = intake.read_submissions(z, tmp_path / "work", CH1, ROOT)
    assert not (tmp_path / "escape.ipynb").exists() and not Path("/abs.ipynb").exists()
    by = {}
    for s in subs:
        by.setdefault(s.student, []).append(s)
    text = "\n".join(f"{s.student}: {s.problem} {s.notes}" for s in subs)
    for phrase in ("../escape.ipynb skipped: a path with '..'", "abs.ipynb skipped: an absolute path",
                   "alice/../bob.ipynb skipped", "alice/.hidden.ipynb skipped: a hidden (dot) file",
                   "alice/alice.ipynb skipped: a duplicate", "carol/carol.ipynb could not be extracted",
                   "bomb.ipynb skipped: compressed"):
        assert phrase in text, (phrase, text)
    assert by["alice"][0].problem is None  # the first copy is graded
    assert any(name.startswith("y" * 60 + "~") for name in by)
    assert sum(p.stat().st_size for p in (tmp_path / "work" / "unzipped").rglob("*") if p.is_file()) < 5_000_000


def test_a_fifo_or_device_is_never_read(tmp_path):
    from induction_course.course.grading import intake

    os.mkfifo(tmp_path / "a.ipynb")
    (tmp_path / "b.ipynb").symlink_to("/dev/zero")
    nb, why = intake.load_submission(tmp_path / "a.ipynb", CH1, {})
    assert nb is None and "not a regular file" in why
    nb, why = intake.load_submission(tmp_path / "b.ipynb", CH1, {})
    assert nb is None and "symbolic link" in why


def test_csv_cell_escaping():
    from induction_course.course.grading.outputs import csv_cell

    assert [csv_cell(x) for x in ("=2+3", "+a", "-alice", "@x", "bob", "a\nb")] == \
        ["'=2+3", "'+a", "'-alice", "'@x", "bob", "a b"]


def test_no_sandbox_is_a_loud_warning():
    from induction_course.course.grading.sandbox import plan_sandbox

    plan = plan_sandbox(False, [], [])
    assert not plan.enabled and "NOT SANDBOXED" in plan.warnings()[0] and "--no-sandbox" in plan.warnings()[0]


def test_a_rewritten_gradebook_is_flagged():
    from induction_course.course.grading.scores import mismatch_note

    assert mismatch_note({"a": 0.0, "b": 1.0}, {"a": 0.0, "b": 1.0}) is None
    note = mismatch_note({"a": 0.0, "b": 1.0}, {"a": 5.0, "b": 1.0})
    assert "GRADEBOOK MISMATCH" in note and "said 6" in note and "give 1" in note and "on a" in note


def test_kernel_launcher_accepts_pid_1_as_parent():
    """Inside a pid namespace the kernel's parent may be pid 1: that is no reason to exit."""
    text = (PACKAGE / "course" / "grading" / "kernel_launcher.py").read_text()
    assert "os.getppid() == 1" not in text and "os.getppid() != parent" in text


# ---------------------------------------------------------------------- cheats (issue 11)
def _points(attacked, student) -> dict[str, float]:
    from induction_course.course.grading.notebooks import grade_cells, source_notebook

    row = attacked["rows"][student]
    return {gid: float(row[gid]) for gid, _ in grade_cells(source_notebook(ROOT, CH1)) if "written" not in gid}


def test_reference_calls_and_patched_checks_earn_nothing(attacked):
    got = _points(attacked, "copier")
    assert {g: got[g] for g in (*COPIED, *PATCHED)} == {g: 0.0 for g in (*COPIED, *PATCHED)}
    full = _points(attacked, "alice")
    # the patched torch.allclose stays patched in the kernel: the visible check of the next exercise
    # (ch1_pattern) then matches a catalogued mistake and fails. A patch costs its author, never earns.
    others = {g for g in got if g not in (*COPIED, *PATCHED, "ch1_pattern")}
    assert {g: got[g] for g in others} == {g: full[g] for g in others}, "the honest answers keep their points"
    line = _line(attacked, "copier")
    for gid in COPIED:
        assert f"REFERENCE USE in {gid}" in line, line
    assert "functional.embed" in line and "functional.unembed" in line


def test_an_input_transformer_that_blanks_the_checks_earns_nothing(attacked):
    assert sum(_points(attacked, "transformer").values()) == 0
    assert "TAMPERING" in _line(attacked, "transformer")


def test_exiting_before_the_tests_earns_nothing_after_it(attacked):
    got = _points(attacked, "quitter")
    order = list(got)
    assert all(got[g] == 0 for g in order[order.index("ch1_head_scores"):])
    assert "no answers" in _line(attacked, "quitter")


def test_solutions_on_disk_are_out_of_reach(attacked):
    assert _points(attacked, "reader")["ch1_embed"] == 0
    assert "hidden by the sandbox" in _line(attacked, "reader")


# ------------------------------------------------------------------ the class's zygote (issue 12)
def _log_sections(work: Path) -> dict[str, str]:
    text = (work / "nbgrader.log").read_text(encoding="utf-8", errors="replace")
    parts = text.split("\n===== ")
    return {p.split(" (", 1)[0]: p for p in parts[1:]}


def test_kernels_ran_through_the_zygote_in_their_own_sandboxes(attacked):
    """A root grader with nested sandboxes forks every kernel from the class's zygote; the attacks
    above (reading secrets, writing the repo, killing the grader) met the same sandbox there."""
    from induction_course.course.grading.zygote import STARTED_LINE

    plan = attacked["plan"]
    if not (plan.as_root and plan.nested):
        pytest.skip("the zygote needs a root grader and nested sandboxes")
    sections = _log_sections(attacked["work"])
    for who in ("alice", "-bob", "saboteur", "spawner", "mounter"):
        assert STARTED_LINE in sections[who], who
    # a kernel forked by the zygote sits in the kernel sandbox's user namespace with no capability:
    # outside it, with its owner's uid, it could undo the sandbox's mounts
    page = (attacked["out"] / "feedback" / "mounter.html").read_text(errors="replace")
    assert "PROBE umount=[-1, -1, -1] CapEff=0000000000000000 CapPrm=0000000000000000" in page, \
        page[page.find("PROBE"):page.find("PROBE") + 300]
    assert "uid_map=[&#x27;0&#x27;, &#x27;0&#x27;" not in page and "uid_map=['0', '0'" not in page


def _connect_as(path: Path, uid: int) -> bytes:
    """The zygote's first answer to a connection from a process of ``uid``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(20)
                s.connect(str(path))
                os.write(w, s.recv(1) or b"-")
        finally:
            os._exit(0)
    os.close(w)
    answer = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    return answer


def test_the_zygote_serves_each_run_uid_once_and_nobody_else(tmp_path):
    """The launcher of a run uid connects before any student code of that uid runs; whatever
    connects later with that uid (the student's code), or with any other uid, is refused."""
    from induction_course.course.grading.zygote import Zygote

    import tempfile

    if os.geteuid() != 0:
        pytest.skip("the zygote runs for a root grader only")
    folder = Path(tempfile.mkdtemp(prefix="zygote-"))  # other uids must reach the socket (runs see a bind of it)
    folder.chmod(0o755)
    with open(tmp_path / "log", "ab") as log:
        z = Zygote(folder, range(61990, 61992), [], {"PATH": os.environ["PATH"]}, log)
    try:
        assert z.ready(60)
        assert _connect_as(z.socket, 61990) == b"Y"
        assert _connect_as(z.socket, 61990) == b"N"
        assert _connect_as(z.socket, 61992) == b"N"  # not a run of this class
        assert _connect_as(z.socket, 0) == b"N"
        assert _connect_as(z.socket, 61991) == b"Y"
    finally:
        z.close()
        shutil.rmtree(folder)


def test_a_launcher_the_zygote_refuses_starts_the_kernel_itself(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("kl", PACKAGE / "course" / "grading" / "kernel_launcher.py")
    kl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kl)
    assert kl.through_zygote(str(tmp_path / "no-such-socket"), ["--", "x"]) is None
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "sock"))
    server.listen(1)
    import threading

    def refuse():
        conn, _ = server.accept()
        conn.sendall(b"N")
        conn.close()

    t = threading.Thread(target=refuse)
    t.start()
    assert kl.through_zygote(str(tmp_path / "sock"), ["--", "x"]) is None
    t.join()
    server.close()


def test_the_launcher_kills_its_kernel_at_the_notebook_time_limit(tmp_path):
    """The whole notebook's limit is the launcher's to keep (the run's own limit also covers the
    trusted check): the kernel is killed, the line tells the grader, no trusted check follows."""
    import subprocess

    from jupyter_client.connect import write_connection_file

    from induction_course.course.grading.kernel_launcher import KERNEL_KILLED_LINE, PRODUCER_LINE

    conn, _ = write_connection_file(str(tmp_path / "kernel.json"))
    (tmp_path / "plan.json").write_text("{}")
    proc = subprocess.run([sys.executable, str(PACKAGE / "course" / "grading" / "kernel_launcher.py"),
                           "--kernel-wall-s", "3", "--producer", str(tmp_path / "plan.json"), "nb", "out",
                           "--", conn], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert KERNEL_KILLED_LINE + " 3 s" in proc.stderr and proc.returncode == 137, proc.stderr[-2000:]
    assert PRODUCER_LINE not in proc.stderr
    assert not (tmp_path / "plan.json").exists()  # taken before the kernel started
