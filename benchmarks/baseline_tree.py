"""The previous implementation for the benchmarks' "ratio to the previous one": a scratch copy of
this checkout's package in which the files of issue 15 (training, evaluation, report, thread
settings) are put back as they were at a git revision (``git show REV:path``, read-only), so the
ratio measures those changes and nothing else. ``data/`` is shared (a symlink)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REV = "e3f21a3"  # main before issue 15
FILES = (
    "src/induction_course/training.py",
    "src/induction_course/evaluation.py",
    "src/induction_course/report.py",
    "src/induction_course/curves.py",
    "src/induction_course/checkpoints.py",
    "src/induction_course/course/notebook/runtime.py",
)


def build(dest: Path, rev: str = DEFAULT_REV) -> Path:
    """Write the baseline under ``dest`` and return its ``src`` folder (for ``PYTHONPATH``)."""
    dest = Path(dest)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for rel in FILES:
        old = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{rel}"], capture_output=True, check=True).stdout
        (dest / rel).write_bytes(old)
    (dest / "data").symlink_to(ROOT / "data")
    return dest / "src"
