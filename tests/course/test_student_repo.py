"""`induction-course student-repo`: the tree students get has no solution text and runs the chapters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from induction_course.course.grading import GradingError
from induction_course.course.student_repo import NEVER, find_leaks, write_student_repo


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "repo"
    write_student_repo(ROOT, out)
    return out


def test_the_tree_has_what_students_need_and_nothing_of_the_instructors(tree):
    for name in NEVER:
        assert not (tree / name).exists(), name
    for chapter in (ROOT / "chapters").iterdir():
        if chapter.is_dir():
            assert (tree / "chapters" / chapter.name / f"{chapter.name}.ipynb").is_file()
    assert (tree / "binder" / "postBuild").is_file() and (tree / "data" / "tokenizer.json").is_file()
    assert (tree / "src" / "induction_course" / "model.py").is_file()
    readme = (tree / "README.md").read_text(encoding="utf-8")
    assert "solutions" not in readme and "chapters/01_build_transformer/01_build_transformer.ipynb" in readme
    assert find_leaks(tree, ROOT) == []


def test_the_leak_check_catches_a_solution_line_a_marker_and_a_forbidden_folder(tree, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tree, bad)
    nb_path = bad / "chapters" / "01_build_transformer" / "01_build_transformer.ipynb"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    script = (ROOT / "solutions" / "01_build_transformer" / "01_build_transformer.py").read_text(encoding="utf-8")
    solution = script.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    line = next(ln for ln in solution.splitlines() if len(ln.strip()) > 12 and not ln.strip().startswith("#"))
    nb["cells"][-1]["source"] = line
    nb_path.write_text(json.dumps(nb), encoding="utf-8")
    (bad / "NOTES.md").write_text("### BEGIN HIDDEN TESTS\n", encoding="utf-8")
    (bad / "solutions").mkdir()
    problems = "\n".join(find_leaks(bad, ROOT))
    assert line.strip() in problems
    assert "NOTES.md: contains '### BEGIN HIDDEN TESTS'" in problems
    assert "solutions/ must not be in the student tree" in problems


def test_an_existing_folder_is_not_replaced_without_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(GradingError, match="--force"):
        write_student_repo(ROOT, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(GradingError, match="refusing"):
        write_student_repo(ROOT, ROOT / "chapters", force=True)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", ["03_finding_heads"])  # loads the shipped checkpoints from the tree
def test_the_chapters_run_on_the_trees_own_package_and_data(tree, chapter, tmp_path):
    """The reference answers (kept by the instructor) run on the student tree's package and data
    alone: nothing the chapters need was left behind."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), MPLBACKEND="Agg")
    where = subprocess.run([sys.executable, "-c", "import induction_course.paths as p; print(p.PACKAGE_DIR, p.data_dir())"],
                           env=env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.split() == [str(tree / "src" / "induction_course"), str(tree / "data")]
    code = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "from induction_course.course.grading import notebook_from_script\n"
        f"nb = notebook_from_script({str(ROOT / 'solutions' / chapter / f'{chapter}.py')!r})\n"
        "nb.cells.append(nbformat.v4.new_code_cell('import induction_course; print(\"PKG\", induction_course.__file__)'))\n"
        f"NotebookClient(nb, timeout=600, kernel_name='python3', resources={{'metadata': {{'path': {str(tmp_path)!r}}}}}).execute()\n"
        "printed = [''.join(o.get('text', '') for o in c.get('outputs', [])) for c in nb.cells]\n"
        "print(printed[-1].strip())\n"
        "print('CHECKS', sum(p.count('all visible checks passed') for p in printed))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"PKG {tree / 'src' / 'induction_course' / '__init__.py'}" in run.stdout  # the kernel used the tree
    assert int(run.stdout.split("CHECKS")[-1]) >= 8
