"""The trusted check of one student: producer in the sandbox, verdicts in the grader.

The kernel launcher runs the producer (:mod:`.producer`) in the student's kernel sandbox, in a
fresh fork of its own once the kernel has ended, so nothing the notebook did reaches it
(:func:`producer_args` are its options; both share the modules the launcher preloads, and the
plan is out of the kernel's reach). After
nbgrader has run, :func:`run_trusted` reads back the answers it recorded, as data, and judges
them here (:mod:`.verify`). :func:`apply_verdicts` then takes the points of every grade cell
whose hidden tests fail here, and :func:`annotate` writes the reason under that cell of the
autograded notebook, so that the student's feedback page says it in one line.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from induction_course.course.grading.hidden_plan import preload_modules
from induction_course.course.grading.kernel_launcher import PRODUCER_LINE

MAX_ANSWERS_MB = 200  # a recorded answer file larger than this is not read
TRUSTED_DIR = "trusted"
_ENDED = re.compile(re.escape(PRODUCER_LINE) + r" (.*?) \([0-9.]+ s\)$", re.M)


def producer_args(task: Any, plan: dict, wall_s: int, cpu_s: int) -> list[str]:
    """The kernel launcher's options that run the producer for ``task`` (its plan written to
    the course's ``trusted/`` folder, the one place of the kernel sandbox it may write besides /tmp)."""
    folder = task.course / TRUSTED_DIR
    folder.mkdir(exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    notebook = task.course / "submitted" / task.sid / task.chapter / f"{task.chapter}.ipynb"
    return ["--preload", ",".join(preload_modules(task.chapter)),
            "--producer", str(folder / "plan.json"), str(notebook), str(folder / "answers.pt"),
            "--producer-cpu-s", str(cpu_s), "--producer-wall-s", str(wall_s)]


def read_answers(path: Path) -> dict | None:
    """The producer's record, loaded as plain data only (``weights_only``); None if unreadable."""
    import torch

    from induction_course.course.grading.scores import read_regular

    data = read_regular(path, MAX_ANSWERS_MB * 1_000_000)
    if data is None:
        return None
    try:
        record = torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # noqa: BLE001 - whatever made it unreadable, it is no answer
        return None
    return record if isinstance(record, dict) else None


def producer_status(log_text: str) -> str | None:
    """How the producer ended, as the kernel launcher wrote it in nbgrader's log (None: it never ran)."""
    found = _ENDED.findall(log_text)
    return found[-1] if found else None


def run_trusted(task: Any, plan: dict, log_text: str) -> tuple[dict | None, list[str]]:
    """(verdicts by grade_id, report lines) for one student, from what the producer recorded."""
    from induction_course.course.grading.producer import solution_sources
    from induction_course.course.grading.verify import verify

    status = producer_status(log_text)
    record = read_answers(task.course / TRUSTED_DIR / "answers.pt") if status == "ended: exit 0" else None
    notes = []
    if record is None:
        why = ("it did not finish: its process or the kernel launcher was killed" if status is None
               else status.removeprefix("ended: ").removeprefix("was "))
        notes.append(f"the trusted check got no answers from the notebook's code ({why}); its grade cells get 0")
    return verify(plan, record, solution_sources(task.notebook)), notes


def apply_verdicts(scores: dict[str, float], verdicts: dict) -> list[str]:
    """Zero every grade cell the trusted check failed; the report lines that say why."""
    lines = []
    for gid, v in verdicts.items():
        if v.passed or gid not in scores:
            continue
        if scores[gid] > 0:
            lines.append(f"{gid}: the kernel's tests passed but the trusted check failed: {v.reasons[0]}")
        scores[gid] = 0.0
        if v.reference_use:
            lines.append(f"REFERENCE USE in {gid}: {', '.join(v.reference_use)} (0 points)")
        if any("tampers with the grader" in r for r in v.reasons) and not any("TAMPERING" in ln for ln in lines):
            lines.append("TAMPERING: " + next(r for r in v.reasons if "tampers with the grader" in r))
    return lines


def annotate(autograded: Path, verdicts: dict) -> None:
    """Under each grade cell the trusted check failed, one error output that says why."""
    import nbformat

    nb = nbformat.read(autograded, as_version=4)
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        v = verdicts.get(gid)
        if cell.cell_type == "code" and v is not None and not v.passed:
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="TrustedCheckFailed", evalue="; ".join(v.reasons[:3]),
                traceback=["TrustedCheckFailed: the grader ran your functions outside the notebook: "
                           + "; ".join(v.reasons[:3])]))
    nbformat.write(nb, autograded)
