"""The student-facing tree: what students get, so that the badges can point at it.

The instructor's repository holds the reference solutions (``solutions/``), the hidden tests,
the wrong-answer catalogues and the grading configuration. ``induction-course student-repo OUT``
writes a tree without any of them: the released chapters, ``binder/`` (so mybinder.org builds
the same image), the package and its data (the notebooks import both), and a README written for
students. Publish OUT as its own repository and set ``links.REPOSITORY`` to it (see the
instructor guide).

The tree is checked before it is reported as written: no nbgrader solution or hidden-test
markers anywhere, and no line of a reference solution or hidden test in any notebook or text
file (the same rule as the release check: a line the students are shown anyway is no leak).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from induction_course.course.grading.layout import GradingError, list_chapters
from induction_course.course.grading.notebooks import notebook_from_script
from induction_course.course.notebook import links

__all__ = ["COPIED", "NEVER", "secret_lines", "find_leaks", "write_student_repo"]

# What students get, relative to the repository root.
COPIED = ("chapters", "binder", "data", "src", "pyproject.toml")
# What must never reach them (checked on the written tree, whatever COPIED says).
NEVER = ("solutions", "graders", "teaching", "tests", "benchmarks", ".ci", ".git")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
_TEXT_SUFFIXES = {".ipynb", ".md", ".txt", ".py", ".json", ".toml", ".cfg"}
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", "checkpoints"}


def _blocks(source: str, begin: str, end: str) -> list[str]:
    return re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), source, flags=re.S)


def secret_lines(script: Path) -> set[str]:
    """Lines of a chapter's solutions and hidden tests that the release does not show anyway."""
    secret, public = set(), set()
    for cell in notebook_from_script(script).cells:
        blocks = _blocks(cell.source, MARKERS[0], MARKERS[1]) + _blocks(cell.source, MARKERS[2], MARKERS[3])
        for block in blocks:
            secret |= {ln.strip() for ln in block.splitlines()
                       if len(ln.strip()) > 12 and not ln.strip().startswith("#")}
        shown = cell.source
        for block in blocks:
            shown = shown.replace(block, "")
        public |= {ln.strip() for ln in shown.splitlines()}
    return secret - public


def _text_files(tree: Path):
    for path in sorted(tree.rglob("*")):
        if path.is_file() and path.suffix in _TEXT_SUFFIXES and not _SKIP_DIRS & set(path.parts):
            yield path


def find_leaks(tree: Path, root: Path) -> list[str]:
    """Every way ``tree`` gives a solution away: forbidden folders, nbgrader markers outside the
    package's own grading code, a chapter's solution or hidden-test lines in its notebook, any
    chapter's in the other documents. Empty when clean."""
    problems = [f"{name}/ must not be in the student tree" for name in NEVER if (tree / name).exists()]
    secrets = {ch: secret_lines(root / "solutions" / ch / f"{ch}.py") for ch in list_chapters(root)}
    everywhere = set().union(*secrets.values()) if secrets else set()
    for path in _text_files(tree):
        rel = path.relative_to(tree)
        if rel.parts[0] == "src":  # the grader names the markers; the library may share lines with answers
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{rel}: contains {m!r}" for m in MARKERS if m in text]
        own = secrets.get(path.stem) if rel.parts[0] == "chapters" else None
        problems += [f"{rel}: contains the solution line {ln!r}" for ln in sorted(own or everywhere) if ln in text][:3]
    return problems


def _student_readme(chapters: list[str]) -> str:
    rows = "\n".join(
        f"| {int(ch[:2])}. {ch[3:].replace('_', ' ')} | [Colab]({links.colab_url(f'chapters/{ch}/{ch}.ipynb')}) "
        f"| `chapters/{ch}/{ch}.ipynb` |" for ch in chapters)
    return f"""# Induction heads: the course notebooks

Five notebooks on induction heads, the "match and copy" circuit of Olsson et al. (2022,
*In-context Learning and Induction Heads*): build a two-layer attention-only transformer, train
it until induction heads form, find them, measure them with the paper's scores, and ablate them.

[![Launch Binder]({links.BINDER_BADGE})]({links.binder_url('chapters')})

| chapter | open | file |
|---|---|---|
{rows}

Work through a chapter top to bottom: fill in every `# YOUR CODE HERE` cell, run the check cell
under it (it explains what is wrong, with a hint), open the hints when you are stuck, and submit
the notebook as your instructor asks. The first cell of each notebook sets up Colab by itself.

On your own machine (Python 3.11+): `pip install -e ".[course]"`, then `jupyter lab chapters/`.
"""


def write_student_repo(root: str | Path, out: str | Path, force: bool = False) -> list[str]:
    """Write the student tree of the course at ``root`` into ``out``; returns what was written.

    ``out`` must not exist (or ``force`` replaces it). Raises :class:`GradingError` when the
    written tree would leak a solution (and removes it)."""
    root, out = Path(root).resolve(), Path(out).resolve()
    if out.exists():
        if not force:
            raise GradingError(f"{out} exists; choose a new folder or pass --force to replace it")
        if root == out or root in out.parents and out.name in NEVER + COPIED:
            raise GradingError(f"refusing to replace {out}: it is part of the course repository")
        shutil.rmtree(out)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
    out.mkdir(parents=True)
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, out / name)
    chapters = list_chapters(root)
    (out / "README.md").write_text(_student_readme(chapters), encoding="utf-8")
    (out / ".gitignore").write_text(".venv/\n__pycache__/\n.ipynb_checkpoints/\n", encoding="utf-8")
    problems = find_leaks(out, root)
    if problems:
        shutil.rmtree(out)
        raise GradingError("the student tree would leak solutions:\n  " + "\n  ".join(problems[:10]))
    return sorted(str(p.relative_to(out)) for p in out.iterdir())
