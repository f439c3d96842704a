"""chapters/ is exactly what `induction-course release` makes from solutions/, and leaks nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from conftest import CH1, ROOT
from induction_course.course import grading

CHAPTERS = grading.list_chapters(ROOT)


def _notebooks(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*/*.ipynb"))


def test_there_is_a_release_for_every_chapter():
    assert CH1 in CHAPTERS
    for ch in CHAPTERS:
        assert (ROOT / "chapters" / ch / f"{ch}.ipynb").is_file(), f"run `induction-course release` for {ch}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_notebook_is_in_sync_with_its_script(chapter):
    for script in grading.paired_scripts(ROOT, chapter):
        expected = grading.dumps_notebook(grading.notebook_from_script(script))
        actual = script.with_suffix(".ipynb").read_text(encoding="utf-8")
        assert actual == expected, f"{script.name} and its .ipynb differ: run `induction-course release`"


@pytest.mark.slow
def test_chapters_are_exactly_what_release_generates():
    assert grading.release(ROOT, check=True) == [], "run `induction-course release` and commit chapters/"


@pytest.mark.parametrize("path", _notebooks("solutions") + _notebooks("chapters"), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


def _marked_blocks(source: str, begin: str, end: str) -> list[str]:
    return re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), source, flags=re.S)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_release_contains_no_solution_code_and_no_hidden_tests(chapter):
    src = grading.notebook_from_script(ROOT / "solutions" / chapter / f"{chapter}.py")
    rel_text = (ROOT / "chapters" / chapter / f"{chapter}.ipynb").read_text(encoding="utf-8")
    rel_sources = "\n".join(c.source for c in nbformat.reads(rel_text, as_version=4).cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in rel_text
    secret_lines, public_lines = set(), set()
    for cell in src.cells:
        blocks = _marked_blocks(cell.source, "### BEGIN SOLUTION", "### END SOLUTION")
        blocks += _marked_blocks(cell.source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
        for block in blocks:
            secret_lines |= {ln.strip() for ln in block.splitlines() if len(ln.strip()) > 12 and not ln.strip().startswith("#")}
        public = cell.source
        for block in blocks:
            public = public.replace(block, "")
        public_lines |= {ln.strip() for ln in public.splitlines()}
    assert secret_lines, "the chapter should have solutions and hidden tests"
    # A line the students are shown anyway (e.g. `with torch.no_grad():` in a stub) is no leak.
    secret_lines -= public_lines
    leaked = [ln for ln in secret_lines if ln in rel_sources]
    assert not leaked, f"solution or hidden-test lines in the release: {leaked[:3]}"
    assert not list((ROOT / "chapters" / chapter).glob("*.py")), "the jupytext script must not be released"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_release_keeps_stubs_checks_and_metadata(chapter):
    src = grading.notebook_from_script(ROOT / "solutions" / chapter / f"{chapter}.py")
    rel = nbformat.read(ROOT / "chapters" / chapter / f"{chapter}.ipynb", as_version=4)
    assert rel.metadata["induction_course"]["chapter"] == chapter
    assert rel.metadata["kernelspec"]["name"] == "python3"
    assert "jupytext" not in rel.metadata
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in rel.cells if "nbgrader" in c.metadata}
    for cell in src.cells:
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        released = by_id[meta["grade_id"]]
        if cell.cell_type == "markdown" and meta["grade"]:  # a written answer, graded by hand
            assert released.source == "YOUR ANSWER HERE" and released.metadata["nbgrader"]["points"] == meta["points"]
            continue
        if meta["solution"]:
            assert "raise NotImplementedError()" in released.source
        if meta["grade"]:
            assert "checks." in released.source, f"{meta['grade_id']}: visible checks should call the package"
            assert released.metadata["nbgrader"]["points"] == meta["points"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_has_checks_hidden_tests_and_prose(chapter):
    nb = grading.notebook_from_script(ROOT / "solutions" / chapter / f"{chapter}.py")
    cells = nb.cells
    graded = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert len(graded) >= 8  # written answers (markdown grade cells) are tested in test_chapters.py
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    tag = "ch" + str(int(chapter[:2]))
    for i in graded:
        cell = cells[i]
        gid = cell.metadata["nbgrader"]["grade_id"]
        assert gid.startswith(tag + "_"), f"{gid}: grade ids of {chapter} start with {tag}_"
        assert cell.metadata["nbgrader"]["points"] > 0
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source, gid
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
        assert "checks." in visible, f"{gid}: no visible check"
        assert cells[i - 1].metadata.get("nbgrader", {}).get("solution"), f"{gid}: the solution cell comes right before"
        prose = next(c for c in reversed(cells[: i - 1]) if c.cell_type == "markdown").source
        assert re.search(r"\(\d+ points?, ★+, \d+ min\)", prose), f"{gid}: state points, difficulty and time"
        assert "in:" in prose and "out:" in prose, f"{gid}: state the shapes in and out"


@pytest.mark.slow
def test_release_check_finds_and_release_repairs_a_stale_copy(tmp_path):
    """On a copy of the repository: --check lists what is stale, release rewrites it, then all is clean."""
    import shutil

    for part in ("solutions", "chapters", "graders"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("*.db", "__pycache__"))
    release_nb = tmp_path / "chapters" / CH1 / f"{CH1}.ipynb"
    data = json.loads(release_nb.read_text())
    data["cells"][0]["source"] = "edited by hand"
    release_nb.write_text(json.dumps(data))
    (tmp_path / "chapters" / CH1 / "stray.txt").write_text("x")
    script = tmp_path / "solutions" / CH1 / f"{CH1}.py"
    script.write_text(script.read_text().replace("# # Chapter 1", "# # Chapter one", 1))

    stale = grading.release(tmp_path, [CH1], check=True)
    assert f"solutions/{CH1}/{CH1}.ipynb" in stale
    assert f"chapters/{CH1}/{CH1}.ipynb" in stale
    assert f"chapters/{CH1}/stray.txt (stale)" in stale
    assert "edited by hand" in release_nb.read_text(), "--check must not write"

    grading.release(tmp_path, [CH1])
    assert grading.release(tmp_path, [CH1], check=True) == []
    assert "Chapter one" in release_nb.read_text()
    assert not (tmp_path / "chapters" / CH1 / "stray.txt").exists()


def test_nbgrader_runs_without_the_iri_format_parser():
    import subprocess
    import sys

    from induction_course.course.grading.course_dir import NBGRADER_COMMAND

    version = subprocess.run([*NBGRADER_COMMAND, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.strip(), version.stderr[-2000:]
    # what nbgrader validates (nbformat's schema) still validates, and still refuses a broken notebook
    probe = ("import sys; sys.modules['rfc3987_syntax'] = None\n"
             "import nbformat\n"
             "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')])\n"
             "nbformat.validate(nb)\n"
             "del nb.cells[0]['source']\n"
             "try:\n    nbformat.validate(nb)\nexcept nbformat.ValidationError:\n    print('refused')\n"
             "print('rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is None)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["refused", "True"], out.stderr[-2000:]
