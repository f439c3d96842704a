"""Every reference notebook in solutions/ runs top to bottom, in a real kernel, on this CPU."""

from __future__ import annotations

import time

import nbformat
import pytest

from conftest import ROOT
from induction_course.course import grading

CHAPTERS = grading.list_chapters(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_notebook_runs_top_to_bottom(chapter, tmp_path):
    from nbclient import NotebookClient

    nb = grading.notebook_from_script(ROOT / "solutions" / chapter / f"{chapter}.py")
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    n_graded = sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
    assert printed.count("all visible checks passed") == n_graded
    # Only catches a hang; how fast the notebooks run is measured in benchmarks/, not asserted here.
    assert seconds < 1800, f"{chapter} took {seconds:.0f} s: does a cell hang?"
