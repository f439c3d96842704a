"""A student who answers nothing still gets, in every demo cell, either output or one line naming
the exercise to finish first.

Each chapter's *release* notebook (``chapters/NN/NN.ipynb``, every exercise ``raise
NotImplementedError()``) runs top to bottom in-process. Grade cells fail, as they must (their
message is the check's "not implemented yet"). Every other cell that raises must raise an error
whose message names an exercise ("finish exercise 8 (`identify_heads`) first"): never a bare
``NameError`` or ``NotImplementedError`` from a variable or function an unanswered exercise was
supposed to provide.
"""

from __future__ import annotations

import os
import re

import nbformat
import pytest

from chapter_harness import CHAPTERS, HANG_LIMIT_S, Chapter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(HANG_LIMIT_S)]

NAMES_AN_EXERCISE = re.compile(r"exercise\s+\d+|exercise `\w+`", re.I)

# Chapters whose owners are still adding the fallbacks: {chapter id: "owned by ..., in progress"}.
IN_PROGRESS: dict[str, str] = {}


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def demo_cell_errors(ch: Chapter) -> list[str]:
    """Run the release notebook of ``ch``; the errors of non-grade cells that name no exercise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = nbformat.read(ch.release_ipynb, as_version=4)
    ns: dict = {"__name__": f"__{ch.id}_release__"}
    bad: list[str] = []
    saved = {k: os.environ.get(k) for k, _ in ch.env}
    os.environ.update(dict(ch.env))
    try:
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                exec(compile(cell.source, f"<{ch.id} cell {i}>", "exec"), ns)
            except Exception as err:  # noqa: BLE001
                if _nbgrader(cell).get("grade"):
                    continue  # a grade cell of an unanswered exercise fails: that is its job
                msg = f"{type(err).__name__}: {err}"
                if not NAMES_AN_EXERCISE.search(str(err)):
                    first = cell.source.strip().splitlines()[0][:60]
                    bad.append(f"cell {i} ({first!r}): {msg.splitlines()[0][:200]}")
            finally:
                plt.close("all")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return bad


def _params():
    return [pytest.param(ch, id=ch.id, marks=[pytest.mark.skip(reason=IN_PROGRESS[ch.id])] if ch.id in IN_PROGRESS else [])
            for ch in CHAPTERS]


@pytest.mark.parametrize("ch", _params())
def test_unanswered_release_demo_cells_name_the_exercise_to_finish(ch):
    bad = demo_cell_errors(ch)
    assert not bad, f"{ch.id}: demo cells fail without naming the exercise to finish first:\n" + "\n".join(bad)
