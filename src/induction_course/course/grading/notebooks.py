"""Reference notebooks: jupytext percent scripts and the ``.ipynb`` they stand for.

Reference notebooks are authored as percent scripts (``solutions/NN_name/NN_name.py``, nbgrader
metadata in the ``# %%`` headers) paired with the ``.ipynb`` next to them, which is nbgrader's
source notebook. The ``.ipynb`` is always rebuilt from the script, byte for byte the same
(:func:`dumps_notebook`), so a diff of the pair means someone forgot ``induction-course release``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from induction_course.course.grading.layout import GradingError, list_chapters

NBGRADER_DEFAULTS = {"grade": False, "solution": False, "task": False, "schema_version": 3}
_SCRIPT_HEADER = re.compile(r"\A# ---\s*\n# jupyter:", re.M)


def is_notebook_script(path: Path) -> bool:
    """Whether ``path`` is a jupytext percent script (a ``.py`` with jupytext's YAML header)."""
    if path.suffix != ".py" or not path.is_file():
        return False
    with open(path, encoding="utf-8") as fh:
        head = fh.read(400)
    return bool(_SCRIPT_HEADER.match(head))


def paired_scripts(root: Path, chapter: str) -> list[Path]:
    """The jupytext percent scripts of a chapter (each is the source of the ``.ipynb`` beside it)."""
    return sorted(p for p in (Path(root) / "solutions" / chapter).glob("*.py") if is_notebook_script(p))


def _normalise_nbgrader(meta: dict, where: str) -> dict:
    """Fill nbgrader's required keys so the ``# %%`` headers can stay short."""
    out = dict(NBGRADER_DEFAULTS)
    out.update(meta)
    if "grade_id" not in out:
        raise GradingError(f"{where}: nbgrader cell without a grade_id")
    out.setdefault("locked", not out["solution"])  # a written answer (solution and grade) stays editable
    if out["grade"] and not out["solution"]:
        out["locked"] = True  # autograder tests are always read-only
    if out["grade"] and "points" not in out:
        raise GradingError(f"{where}: graded cell {out['grade_id']!r} has no points")
    return {k: out[k] for k in sorted(out)}


def notebook_from_script(script: str | Path):
    """The ``.ipynb`` (an ``nbformat`` notebook) that a percent script stands for.

    Deterministic: no outputs, no jupytext bookkeeping, cell ids derived from grade ids (or
    the cell's index), nbgrader metadata completed with its defaults.
    """
    import jupytext
    import nbformat

    script = Path(script)
    nb = jupytext.read(script)
    nb.metadata.pop("jupytext", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        meta = {}
        if "nbgrader" in cell.metadata:
            meta["nbgrader"] = _normalise_nbgrader(dict(cell.metadata["nbgrader"]), f"{script.name}, cell {i}")
        if cell.metadata.get("tags"):
            meta["tags"] = list(cell.metadata["tags"])
        cell.metadata = nbformat.from_dict(meta)
        cid = meta.get("nbgrader", {}).get("grade_id", f"cell-{i:03d}")
        if cid in seen:
            raise GradingError(f"{script.name}: grade_id {cid!r} is used twice")
        seen.add(cid)
        cell["id"] = cid
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nb


def dumps_notebook(nb) -> str:
    """The text of a notebook as the repository stores it (what ``release`` compares and writes)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def sync_scripts(root: Path, chapters: list[str], check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) the ``.ipynb`` of every percent script.

    Returns the notebooks that were (or would be) changed, relative to ``root``.
    """
    changed = []
    for chapter in chapters:
        for script in paired_scripts(root, chapter):
            target = script.with_suffix(".ipynb")
            text = dumps_notebook(notebook_from_script(script))
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                changed.append(str(target.relative_to(root)))
                if not check:
                    target.write_text(text, encoding="utf-8")
    return changed


def source_notebook(root: Path, chapter: str):
    """The reference notebook of a chapter: from its percent script if it has one."""
    nb_path = Path(root) / "solutions" / chapter / f"{chapter}.ipynb"
    script = nb_path.with_suffix(".py")
    if is_notebook_script(script):
        return notebook_from_script(script)
    import nbformat

    return nbformat.read(nb_path, as_version=4)


def grade_cells(nb) -> list[tuple[str, float]]:
    """``(grade_id, points)`` of every graded cell, in notebook order: the exercises."""
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cells.append((meta["grade_id"], float(meta.get("points", 0))))
    return cells


def grade_ids(nb_json: Any) -> set[str]:
    """Every ``grade_id`` of a notebook read from an untrusted file (any cell may be malformed)."""
    ids = set()
    for cell in nb_json.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str) and meta["grade_id"]:
            ids.add(meta["grade_id"])
    return ids


def chapter_grade_ids(root: Path) -> dict[str, set[str]]:
    """chapter -> the grade ids of its reference notebook (tells one chapter's notebook from another's)."""
    out = {}
    for ch in list_chapters(root):
        nb = source_notebook(root, ch)
        out[ch] = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata}
    return out
