"""The trusted check of one student: producer in the sandbox, verdicts in the grader.

After nbgrader has run a student's notebook, :func:`run_trusted` starts the producer
(:mod:`.producer`) in the same sandbox as the kernel (a fresh process: nothing the notebook did
survives into it), reads back the answers it recorded as data, and judges them here
(:mod:`.verify`). :func:`apply_verdicts` then takes the points of every grade cell whose hidden
tests fail here, and :func:`annotate` writes the reason under that cell of the autograded
notebook, so that the student's feedback page says it in one line.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, Callable

from induction_course.course.grading.sandbox import kernel_argv

MAX_ANSWERS_MB = 200  # a recorded answer file larger than this is not read
TRUSTED_DIR = "trusted"


def producer_cmd(task: Any, plan: dict, cpu_s: int) -> tuple[list[str], Path]:
    """The producer's command line for ``task`` (in the kernel sandbox) and its answer file."""
    folder = task.course / TRUSTED_DIR
    folder.mkdir(exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    notebook = task.course / "submitted" / task.sid / task.chapter / f"{task.chapter}.ipynb"
    out = folder / "answers.pt"
    cmd = [*kernel_argv(task.sandbox, task.course, task.disk_mb, [], writable=[folder]),
           sys.executable, "-m", "induction_course.course.grading.producer",
           str(folder / "plan.json"), str(notebook), str(out), str(cpu_s)]
    return cmd, out


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


def run_trusted(task: Any, plan: dict, run: Callable[[list[str]], tuple[int | None, float, list[str]]],
                cpu_s: int) -> tuple[dict | None, list[str]]:
    """(verdicts by grade_id, report lines) for one student; ``run`` runs a command in their sandbox."""
    from induction_course.course.grading.producer import solution_sources
    from induction_course.course.grading.verify import verify

    cmd, out = producer_cmd(task, plan, cpu_s)
    code, seconds, notes = run(cmd)
    record = read_answers(out) if code == 0 else None
    if record is None:
        notes = [*notes, "the trusted check got no answers from the notebook's code "
                 f"({'time limit' if code is None else f'exit {code}'}); its grade cells get 0"]
    verdicts = verify(plan, record, solution_sources(task.notebook))
    return verdicts, notes


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
