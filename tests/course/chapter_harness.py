"""What the chapter tests share: the five chapters, their solution notebooks executed in-process,
their grade cells and their wrong-answer catalogues.

``tests/course/test_chapters.py`` holds the tests every chapter gets (parametrised over
:data:`CHAPTERS`); ``tests/course/test_chapterNN.py`` holds the tests of one chapter. Both read
the executed solution notebook through :func:`executed`, which runs each chapter's notebook at
most once per test session.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]

# pytest-timeout limit of one chapter test, setting up its fixtures included (executing a
# solution notebook, autograding a class of two). Only catches hangs: today's slowest such test
# takes about a minute on a 2-core CPU. Speed is measured in benchmarks/, not here.
HANG_LIMIT_S = 900


@dataclass(frozen=True)
class Chapter:
    """One chapter of the course, as the tests see it."""

    id: str  # the folder under solutions/ and chapters/, e.g. "04_metrics"
    tag: str  # the check module and catalogue, e.g. "ch04"
    min_exercises: int  # the number of grade cells must not drop below this
    env: tuple[tuple[str, str], ...] = ()  # environment variables set while the notebook runs

    def __str__(self) -> str:
        return self.id

    @property
    def script(self) -> Path:
        return ROOT / "solutions" / self.id / f"{self.id}.py"

    @property
    def solution_ipynb(self) -> Path:
        return ROOT / "solutions" / self.id / f"{self.id}.ipynb"

    @property
    def release_ipynb(self) -> Path:
        return ROOT / "chapters" / self.id / f"{self.id}.ipynb"

    @property
    def checks(self) -> ModuleType:
        """``induction_course.course.checks.chNN``."""
        return importlib.import_module(f"induction_course.course.checks.{self.tag}")

    @property
    def exercises(self) -> list[str]:
        return sorted(self.checks.EXERCISES)

    @property
    def wrong_answers(self) -> list:
        """The entries of ``graders/wrong_answers/chNN.py``."""
        return load_wrong_answers(self.tag).WRONG_ANSWERS


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("01_build_transformer", "ch01", min_exercises=14),
    # autograde mode: the notebook trains its short run instead of offering the long one
    Chapter("02_training", "ch02", min_exercises=8, env=(("NBGRADER_EXECUTION", "autograde"),)),
    Chapter("03_finding_heads", "ch03", min_exercises=8),
    Chapter("04_metrics", "ch04", min_exercises=7),
    Chapter("05_ablations", "ch05", min_exercises=7),
)


def chapter(chapter_id: str) -> Chapter:
    """The :class:`Chapter` whose id is ``chapter_id``."""
    return next(c for c in CHAPTERS if c.id == chapter_id)


def load_wrong_answers(tag: str) -> ModuleType:
    """The catalogue module ``graders/wrong_answers/<tag>.py`` (loaded once)."""
    name = f"_wrong_answers_{tag}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "graders" / "wrong_answers" / f"{tag}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the solution notebook
def solution_notebook(ch: Chapter):
    """The reference notebook of ``ch``, built from its percent script (as ``release`` does)."""
    from induction_course.course.grading import notebook_from_script

    return notebook_from_script(ch.script)


def grade_cells(nb) -> dict[str, str]:
    """grade_id -> source of every autograded (code) grade cell of ``nb`` (hidden tests included);
    the written questions' answer cells (markdown, graded by hand) are :func:`written_cells`."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}


def written_cells(nb) -> list[tuple[int, dict]]:
    """(index, cell) of every written answer cell of ``nb``: a markdown grade cell."""
    return [(i, c) for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]


@dataclass
class ExecutedNotebook:
    ns: dict  # the namespace every code cell ran in
    cells: dict[str, str]  # grade cells by grade_id
    code_cells: int  # how many code cells ran
    seconds: float


@contextlib.contextmanager
def chapter_env(ch: Chapter):
    """``ch.env`` set in ``os.environ`` while the block runs (the notebook reads it), then restored;
    figures closed afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = {k: os.environ.get(k) for k, _ in ch.env}
    os.environ.update(dict(ch.env))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        plt.close("all")


def execute_notebook(ch: Chapter) -> ExecutedNotebook:
    """Execute every code cell of the solution notebook of ``ch`` in one namespace, in-process,
    with ``ch.env`` set meanwhile."""
    nb = solution_notebook(ch)
    ns: dict = {"__name__": f"__{ch.id}_notebook__"}
    ran = 0
    start = time.perf_counter()
    with chapter_env(ch):
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, f"<{ch.id} cell {cell.get('id')}>", "exec"), ns)
                ran += 1
    return ExecutedNotebook(ns, grade_cells(nb), ran, time.perf_counter() - start)


_EXECUTED: dict[str, ExecutedNotebook | BaseException] = {}


def executed(ch: Chapter) -> ExecutedNotebook:
    """The solution notebook of ``ch`` executed in-process: once per session, shared by every test
    (a notebook that fails fails every test that needs it, without running again)."""
    if ch.id not in _EXECUTED:
        try:
            _EXECUTED[ch.id] = execute_notebook(ch)
        except Exception as err:
            _EXECUTED[ch.id] = err
            raise
    run = _EXECUTED[ch.id]
    if isinstance(run, BaseException):
        raise RuntimeError(f"the solution notebook of {ch.id} failed: {type(run).__name__}: {run}") from run
    return run


def run_cell(source: str, ns: dict, name: str) -> None:
    """Run a cell's source in a copy of ``ns`` (the notebook's functions keep their own globals)."""
    exec(compile(source, f"<{name}>", "exec"), dict(ns))


def hidden_part(source: str) -> str:
    """The hidden tests of a grade cell, without the visible checks."""
    return source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]


def with_wrong_answer(ns: dict, wrong) -> dict:
    """A copy of the notebook's namespace with the student's function replaced by ``wrong``."""
    bad = dict(ns)
    bad[wrong.function] = wrong.fn
    return bad


def param_id(value) -> str:
    """A test id: a chapter's id, an exercise's name, or ``<grade_id>-<function>`` for a wrong answer."""
    if hasattr(value, "grade_id"):
        return f"{value.grade_id}-{value.fn.__name__}"
    return str(value)


# ------------------------------------------------------------------- autograding end to end
def written_points(ch: Chapter) -> float:
    """The points of the written questions of ``ch`` (graded by hand, never by the autograder)."""
    return sum(float(c.metadata["nbgrader"]["points"]) for _, c in written_cells(solution_notebook(ch)))


def grade_class_of_two(ch: Chapter, tmp_path: Path) -> dict[str, dict]:
    """Autograde the reference (alice) and the untouched release (bob) through nbgrader;
    the rows of ``grades.csv`` by student."""
    from induction_course.course.grading import grade

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copyfile(ch.solution_ipynb, subs / "alice.ipynb")
    shutil.copyfile(ch.release_ipynb, subs / "bob.ipynb")
    out = tmp_path / "out"
    grade(ch.id, subs, out, root=ROOT, quiet=True)
    with open(out / "grades.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}
