"""A student's points, recomputed by the grader from the autograded notebook.

The gradebook a student's nbgrader run leaves behind is only evidence: the score recorded is
the one this module computes, in the grader's own process, from the autograded notebook's
outputs with nbgrader's own rule (:func:`nbgrader.utils.determine_grade`) and the points of
the *pristine* reference notebook (never the points a student's copy claims). A difference with
the gradebook is reported. The report lines for what a run ran into (time-outs, memory, a dead
kernel, writes the sandbox refused, a full scratch disk) are read from the same outputs.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from pathlib import Path
from typing import Any

INCIDENTS = {
    "CellTimeoutError": "a cell was stopped at the {timeout} s time limit",
    "MemoryError": "a cell ran out of memory (limit {memory} MB)",
    "KernelDied": "the kernel died (os._exit, a signal, a crash or the memory limit); the cells after it were not run",
}
_OS_INCIDENTS = (  # (pattern in an error's text, report line): what the sandbox refused
    (re.compile(r"Read-only file system"), "tried to write outside its scratch folder (refused: read-only file system)"),
    (re.compile(r"No space left on device|File too large"), "filled its scratch disk (limit {disk} MB)"),
    (re.compile(r"Network is unreachable|Connection refused|Cannot assign requested address|Name or service not known|"
                r"Temporary failure in name resolution"), "tried to use the network (there is none)"),
    (re.compile(r"Operation not permitted|Permission denied"), "was refused an operation by the sandbox (permission denied)"),
    (re.compile(r"Resource temporarily unavailable|can't start new thread"), "hit the process limit"),
)
_BACKGROUND = re.compile(r"kernel_launcher: (\d+) background process")


def read_regular(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of a regular file (no symlink, FIFO or device), or None; at most ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = fh.read(max_bytes + 1)
    return data if len(data) <= max_bytes else None


def recompute_scores(autograded: Path, pristine: Any, max_bytes: int) -> tuple[dict[str, float] | None, Any]:
    """(grade_id -> points, the notebook) from the autograded notebook; (None, None) if it cannot be read.

    Only the code grade cells: a written answer (a markdown grade cell) is graded by hand
    (:mod:`.written`)."""
    import nbformat
    from nbgrader.utils import determine_grade

    data = read_regular(autograded, max_bytes)
    if data is None:
        return None, None
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:  # a broken file is a failed run, whatever broke it
        return None, None
    points = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0))
              for c in pristine.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}
    got: dict[str, float] = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if not isinstance(gid, str) or gid not in points or gid in got or cell.get("cell_type") != "code":
            continue
        trusted = copy.deepcopy(cell)
        trusted.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": gid, "points": points[gid]}
        try:
            score, _ = determine_grade(trusted)
        except Exception:
            score = 0.0
        got[gid] = min(points[gid], max(0.0, float(score or 0.0)))
    return {gid: got.get(gid, 0.0) for gid in points}, nb


def total_points(scores: dict[str, float | None]) -> float:
    """The points given so far: a written answer still to be graded by hand (None) counts 0."""
    return sum(v for v in scores.values() if v is not None)


def mismatch_note(recomputed: dict[str, float], gradebook: dict[str, float] | None) -> str | None:
    """The report line when the run's gradebook disagrees with the grader (tampering or a bug)."""
    if gradebook is None:
        return "the run left no gradebook entry; the grader's own count of the outputs was recorded"
    diff = sorted(g for g in recomputed if abs(recomputed[g] - float(gradebook.get(g, 0.0))) > 1e-6)
    if not diff:
        return None
    return (f"GRADEBOOK MISMATCH: the run's gradebook said {sum(gradebook.get(g, 0.0) for g in recomputed):g} points, "
            f"the autograded notebook's outputs give {sum(recomputed.values()):g} (recorded); differs on {', '.join(diff)}")


def incident_notes(nb: Any, timeout: int, memory_mb: int, disk_mb: int, hidden: list[str]) -> list[str]:
    """Report lines for what the notebook ran into, from the error outputs of an autograded notebook."""
    seen: list[str] = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") != "error":
                continue
            ename, text = o.get("ename"), f"{o.get('ename')}: {o.get('evalue')}"
            if ename == "RuntimeError" and "can't allocate memory" in str(o.get("evalue")):
                ename = "MemoryError"  # torch's allocator says it this way
            lines = [INCIDENTS[ename]] if ename in INCIDENTS else []
            lines += [line for pat, line in _OS_INCIDENTS if pat.search(text)]
            lines += [f"reached for {p} (hidden by the sandbox)" for p in hidden
                      if re.search(re.escape(p) + r"(/|'|\b)", text) and ("No such file" in text or "not found" in text)]
            seen += [ln for ln in lines if ln not in seen]
    return [ln.format(timeout=timeout, memory=memory_mb, disk=disk_mb) for ln in seen]


def background_note(log_text: str) -> str | None:
    """The kernel launcher's count of processes still alive when the kernel (or the trusted
    check's producer, which runs the same solution cells first) ended."""
    counts = [int(m.group(1)) for m in _BACKGROUND.finditer(log_text)]
    if not counts:
        return None
    return f"left {max(counts)} background process(es) running after its code ended (killed)"
