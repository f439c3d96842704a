"""Shared fixtures.

Grading fixtures (course machinery): one autograded class of chapter 1 shared by the end-to-end
grading tests (autograding runs a Jupyter kernel per notebook: ~15 s each). The chapters' own
test helpers (the solution notebooks executed in-process, their grade cells, the wrong-answer
catalogues) are in ``tests/course/chapter_harness.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CH1 = "01_build_transformer"

os.environ.setdefault("MPLBACKEND", "Agg")
# Two test workers share the cores: one torch thread each, whatever the load looks like at the
# moment a test asks (the same numbers on every run; tests of the choice itself override it).
os.environ.setdefault("INDUCTION_COURSE_THREADS", "1")

# Two workers (pytest-xdist, ``-n 2`` in pyproject.toml). Each module runs on one worker, so its
# module-scoped fixtures are built once; the modules that grade whole classes (several kernels at
# once, under time limits) form one unit: they run one after another, never beside each other.
CLASS_GRADING = {"test_grading_robust.py", "test_grading_sandbox.py", "test_grading_autograde.py",
                 "test_chapters.py", "test_grading_feedback.py", "test_grading_manual.py"}


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndClassGrading(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "class-grading" if Path(module).name in CLASS_GRADING else module

    return ModulesAndClassGrading(config, log)


def tree_hashes(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), with their modes."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        str(p.relative_to(path.parent if path.is_file() else path)): hashlib.sha256(p.read_bytes()).hexdigest()
        + f" {p.stat().st_mode:o}"
        for p in files
    }


# ------------------------------------------------------------------ an autograded class
WRONG_PATTERN_CELL = '''def attention_pattern(scores):
    """Softmax over the wrong axis: a classic."""
    return apply_causal_mask(scores).softmax(dim=-2)
'''


def make_class(folder: Path) -> dict[str, str]:
    """Write a class of submissions of chapter 1 into ``folder`` (one file per student).

    Returns ``student -> what it is``. Three real notebooks (reference, untouched release, one
    wrong answer) and every kind of bad input.
    """
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    solution = ROOT / "solutions" / CH1 / f"{CH1}.ipynb"
    release = ROOT / "chapters" / CH1 / f"{CH1}.ipynb"
    shutil.copyfile(solution, folder / "alice.ipynb")
    shutil.copyfile(release, folder / "bob.ipynb")
    nb = nbformat.read(solution, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ch1_pattern_code":
            cell.source = WRONG_PATTERN_CELL
    nbformat.write(nb, folder / "carol.ipynb")
    # not valid JSON: a truncated download
    (folder / "dave.ipynb").write_bytes(solution.read_bytes()[:700])
    # not a notebook at all
    (folder / "erin.pdf").write_bytes(b"%PDF-1.4 not a notebook\n")
    # JSON, but not a notebook
    (folder / "frank.ipynb").write_text(json.dumps({"answer": 42}))
    # a notebook of another chapter
    other = nbformat.read(release, as_version=4)
    other.metadata["induction_course"] = {"chapter": "02_train_and_find"}
    for cell in other.cells:
        meta = cell.metadata.get("nbgrader")
        if meta:
            meta["grade_id"] = meta["grade_id"].replace("ch1_", "ch2_")
            cell["id"] = meta["grade_id"]
    nbformat.write(other, folder / "gina.ipynb")
    # a valid notebook that is not from this course
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    nbformat.write(plain, folder / "hank.ipynb")
    return {
        "alice": "reference", "bob": "release", "carol": "wrong pattern", "dave": "truncated",
        "erin": "pdf", "frank": "json", "gina": "other chapter", "hank": "plain notebook",
    }


def folder_of_folders_zip(flat: Path, zpath: Path, students: set[str] | None = None) -> None:
    """The same class (or only ``students`` of it) as an LMS export: a zip with one folder per student."""
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(p for p in flat.iterdir() if students is None or p.stem in students):
            # LMS exports often rename the file; keep the student in the folder name
            zf.write(f, f"{f.stem}/{f.stem}_submission{f.suffix}")


ZIPPED = {"alice", "carol", "dave", "gina"}  # two kernels (right, wrong) and two bad files: the zip run


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """Grade the class as a folder of notebooks; then part of it again, as a zip of per-student
    folders (a different intake, and a second run whose grades must be the same)."""
    import csv

    from induction_course.course.grading import grade

    base = tmp_path_factory.mktemp("class")
    flat = base / "flat"
    kinds = make_class(flat)
    zpath = base / "export.zip"
    folder_of_folders_zip(flat, zpath, ZIPPED)
    before = {"flat": tree_hashes(flat), "zip": tree_hashes(zpath)}
    out1, out2 = base / "out_flat", base / "out_zip"
    res1 = grade(CH1, flat, out1, root=ROOT, quiet=True)
    res2 = grade(CH1, zpath, out2, root=ROOT, quiet=True)
    after = {"flat": tree_hashes(flat), "zip": tree_hashes(zpath)}

    def rows(out):
        with open(out / "grades.csv", newline="") as fh:
            return list(csv.DictReader(fh))

    return {
        "kinds": kinds, "flat": flat, "zip": zpath, "out1": out1, "out2": out2,
        "res1": res1, "res2": res2, "rows1": rows(out1), "rows2": rows(out2),
        "before": before, "after": after,
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run ~100x faster on one thread than with two busy-waiting OpenMP threads on
    a shared machine; modules of tiny-model tests opt in, and the setting is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
