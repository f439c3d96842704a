"""Feedback pages: no hidden-test source, light, no empty comment boxes.

Fast tests build a feedback page the way ``nbgrader generate_feedback`` does (its feedback
template, the course's preprocessors and ours) from a small notebook *executed in a kernel*, so
the traceback of its failing hidden test is IPython's own. One slow test grades a chapter-3
submission end to end (a Moodle zip, a deadline, the Moodle export) and checks the real page.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbconvert.preprocessors import Preprocessor

from conftest import ROOT
from induction_course.course.grading import feedback

SECRET = "918273"  # a seed of the hidden test: must never reach a page
GRADE_CELL = f'''assert f(1) == 2, "f(1) should be 2"
print("visible check passed")
### BEGIN HIDDEN TESTS
secret_seed = {SECRET}
assert f(secret_seed) == secret_seed + 1, "f is wrong on other inputs: did you special-case small x?"
### END HIDDEN TESTS'''


def _png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _circuitsvis_output():
    """The output a chapter's attention view leaves: circuitsvis' HTML with its JavaScript inlined."""
    import torch

    from induction_course.course.notebook.viz import attention_view

    view = attention_view(torch.full((2, 4, 4), 0.25), ["a", "b", "c", "d"])
    return nbformat.v4.new_output("display_data", data={"text/html": view._repr_html_(), "text/plain": repr(view)})


@pytest.fixture(scope="module")
def autograded():
    """An 'autograded' notebook: executed in a kernel (the hidden test fails), with a circuitsvis
    view, a plot, widget state and an unanswered solution cell, as nbgrader leaves them."""
    from nbclient import NotebookClient

    cells = [nbformat.v4.new_code_cell("def f(x):\n    return x + 1 if x < 10 else 0"),
             nbformat.v4.new_code_cell(GRADE_CELL),
             nbformat.v4.new_code_cell("import sys\nprint('warning line', file=sys.stderr)"),
             nbformat.v4.new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()")]
    cells[0].metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "f_code", "locked": False}
    cells[1].metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": "f_test", "points": 2, "locked": True}
    cells[3].metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "g_code", "locked": False}
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "P",
                                                                         "language": "python"}})
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    nb.cells[2].outputs += [_circuitsvis_output(),
                            nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {"big": "y" * 50_000}}}}
    return nb


class FakeGetGrades(Preprocessor):
    """What nbgrader's GetGrades does with a gradebook: scores, and "No response." on unchanged solution cells."""

    enabled = True  # as nbgrader's own steps are

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta.update(score=0.0, points=meta.get("points", 0))
        if meta.get("solution"):
            meta["comment"] = feedback.NO_RESPONSE
        return cell, resources


def render(nb, steps) -> str:
    """nbgrader's feedback page of ``nb`` with the preprocessors ``steps`` (as GenerateFeedback sets it up)."""
    import nbgrader
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config

    base = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [str(base / "templates")]
    c.HTMLExporter.extra_template_paths = [str(base / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=c)
    for step in steps:
        exporter.register_preprocessor(step)  # as nbgrader's converters do: a class, not enabled here
    resources = {"nbgrader": {"notebook": "ch", "score": 0.0, "max_score": 2.0, "late_penalty": 0}}
    body, _ = exporter.from_notebook_node(nformat_copy(nb), resources=resources)
    return body


def nformat_copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def _course_steps():
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests

    return [FakeGetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]  # graders/nbgrader_config.py's list


def _text(page: str) -> str:
    return re.sub(r"<[^>]+>", "", page)


# ------------------------------------------------------------------ without and with the fix
def test_nbgraders_own_page_has_the_three_problems(autograded):
    """The baseline: the leak, the weight and the empty boxes are real (else the tests below prove nothing)."""
    page = render(autograded, _course_steps())
    assert SECRET in _text(page)  # the traceback quotes the hidden test
    assert len(page.encode()) > 1_000_000  # circuitsvis' JavaScript
    assert "No response." in page


def test_the_feedback_page_is_clean(autograded):
    page = render(autograded, feedback.feedback_preprocessors(_course_steps()))
    text = _text(page)
    assert SECRET not in text and "secret_seed" not in text and "HIDDEN TESTS" not in text
    assert "f is wrong on other inputs: did you special-case small x?" in text  # the check's message stays
    assert "AssertionError" in text and "visible check passed" in text and "warning line" in text
    assert "a line of the hidden tests, not shown" in text
    assert "No response." not in page and "Comments:" not in page
    assert all(len(s) < 2_000 for s in re.findall(r"<script.*?</script>", page, re.S))  # MathJax's loader only
    assert "circuits-vis" not in page and "Interactive output" in text
    assert "data:image/png;base64," in page  # the plot stays
    assert len(page.encode()) < 60_000
    assert "Score: 0.0 / 2.0" in page  # per-exercise points


def test_only_hidden_source_lines_are_scrubbed():
    hidden = feedback.hidden_lines(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(GRADE_CELL)]))
    assert f"secret_seed = {SECRET}" in hidden and 'assert f(1) == 2, "f(1) should be 2"' not in hidden
    tb = ("\x1b[0;31mAssertionError\x1b[0m Traceback (most recent call last)\n"
          "Cell \x1b[0;32mIn[2], line 5\x1b[0m\n"
          "\x1b[1;32m      3\x1b[0m \x1b[38;5;66;03m### BEGIN HIDDEN TESTS\x1b[39;00m\n"
          f"\x1b[1;32m      4\x1b[0m secret_seed \x1b[38;5;241m=\x1b[39m \x1b[38;5;241m{SECRET}\x1b[39m\n"
          "\x1b[0;32m----> 5\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m f(secret_seed) == secret_seed + 1, "
          "\"f is wrong on other inputs: did you special-case small x?\"\n"
          "      6 ### END HIDDEN TESTS\n"
          "\x1b[0;31mAssertionError\x1b[0m: f is wrong on other inputs: did you special-case small x?")
    clean, removed = feedback.scrub_text(tb, hidden)
    assert removed and SECRET not in clean and "secret_seed" not in clean
    assert clean.count(feedback.HIDDEN_NOTE) == 1  # one note for the run of lines
    assert clean.splitlines()[-1].endswith("f is wrong on other inputs: did you special-case small x?")
    assert "Cell \x1b[0;32mIn[2], line 5" in clean


def test_a_page_without_heavy_outputs_keeps_its_html():
    small = nbformat.v4.new_output("display_data", data={"text/html": "<b>table</b>", "text/plain": "t"})
    assert not feedback.lighten_output(small) and small.data["text/html"] == "<b>table</b>"
    widget = nbformat.v4.new_output("display_data", data={feedback.WIDGET_VIEW: {"model_id": "x"}, "text/plain": "VBox()"})
    assert feedback.lighten_output(widget) and "Interactive output VBox()" in widget.data["text/html"]
    long = nbformat.v4.new_output("stream", name="stdout", text="x" * 50_000)
    assert feedback.lighten_output(long) and len(long.text) < feedback.MAX_STREAM + 100


# ------------------------------------------------------------------ wiring into nbgrader
def test_the_course_config_gets_the_steps_in_the_right_places(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    course = tmp_path / "course"
    course.mkdir()
    repo = ROOT / "graders" / "nbgrader_config.py"
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nload_subconfig({str(repo)!r})\n")
    feedback.enable_clean_feedback(course)
    feedback.enable_clean_feedback(course)  # twice: added once
    text = (course / "nbgrader_config.py").read_text()
    assert text.count(feedback.CONFIG_MARKER) == 1
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    names = [p.__name__ for p in config.GenerateFeedback.preprocessors]
    assert names[:2] == ["ScrubHiddenOutputs", "LightenOutputs"] and names[-1] == "DropEmptyComments"
    assert names.index("ScrubHiddenOutputs") < names.index("ClearHiddenTests")  # the block is still there to read
    assert names.index("GetGrades") < names.index("DropEmptyComments")  # the comment is there to drop


# ------------------------------------------------------------------ end to end, chapter 3
CH3 = "03_finding_heads"
WRONG_ON_HIDDEN_SIZES = '''def current_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Right on the visible checks' sizes, wrong on the hidden tests' batch of 3."""
    if pattern.shape[0] == 3:
        return torch.zeros(pattern.shape[1])
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, 2))
'''


@pytest.mark.slow
def test_chapter3_feedback_from_a_moodle_zip(tmp_path):
    """One student of a Moodle download, late, a hidden test failing: the page, grades.csv, the export."""
    from induction_course.course.grading import grade
    from induction_course.course.grading.deadlines import make_policy

    nb = nbformat.read(ROOT / "solutions" / CH3 / f"{CH3}.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ch3_current_token_code")
    code.source = WRONG_ON_HIDDEN_SIZES
    for cell in nb.cells:  # written answers left unanswered: 0 at once, nothing waits for manual grading
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "YOUR ANSWER HERE"
    hidden = feedback.hidden_lines(nb)
    z = tmp_path / "moodle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo(f"Łukasz Żółć_1003_assignsubmission_file_/{CH3}.ipynb", date_time=(2026, 12, 2, 9, 0, 0))
        zf.writestr(info, nbformat.writes(nb))
    out = tmp_path / "out"
    grade(CH3, z, out, root=ROOT, workdir=tmp_path / "work", quiet=True, jobs=1, timeout=300,
          deadline=make_policy("2026-12-01T23:59+01:00", 0.1), lms_format="moodle")
    page = (out / "feedback" / "Łukasz Żółć_1003.html").read_text("utf-8")
    assert len(page.encode()) < 300_000
    text = _text(page)
    leaked = [line for line in hidden if len(line) > 12 and line in text]
    assert not leaked and "for seed in (3101, 3102):" in hidden
    assert "No response." not in page and "circuits-vis" not in page
    # the hidden test did fail: replayed outside the kernel, its line names it by number only
    assert re.search(r"TrustedCheckFailed: .*current_token_score \(hidden test \d+\)", text)
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["name"] == "Łukasz Żółć" and row["moodle_id"] == "1003" and row["ch3_current_token"] == "0"
    assert row["submitted"] == "2026-12-02T09:00:00+01:00" and row["days_late"] == "1"
    assert float(row["total_after_penalty"]) == pytest.approx(float(row["total"]) - 0.1 * float(row["max"]))
    with open(out / "moodle_grades.csv", newline="", encoding="utf-8") as fh:
        sheet = list(csv.reader(fh))
    assert sheet[1][:2] == ["Participant 1003", "Łukasz Żółć"] and sheet[1][4] == row["total_after_penalty"]
    assert os.path.getsize(out / "report.txt") and "Łukasz Żółć_1003: submitted" in (out / "report.txt").read_text("utf-8")
