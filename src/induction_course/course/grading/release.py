"""``induction-course release``: ``chapters/`` (the student notebooks) from ``solutions/``.

It writes the ``.ipynb`` of every percent script, runs ``nbgrader generate_assignment`` in a
temporary course folder and copies the result into ``chapters/NN_name/`` (outputs cleared,
solutions and hidden tests removed). With ``check=True`` it changes nothing and lists what is
out of date.
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path

from induction_course.course.grading.course_dir import prepare_course
from induction_course.course.grading.layout import check_chapter, find_root, list_chapters
from induction_course.course.grading.notebooks import sync_scripts


def _tree(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _sync_chapter(new: dict[str, Path], out_dir: Path, chapter: str, check: bool) -> list[str]:
    """Make ``out_dir`` hold exactly the files ``new`` (unless ``check``); return what differed."""
    old = _tree(out_dir) if out_dir.exists() else {}
    changed = [f"chapters/{chapter}/{rel}" for rel, path in new.items()
               if rel not in old or not filecmp.cmp(path, old[rel], shallow=False)]
    stale = [rel for rel in old if rel not in new]
    changed += [f"chapters/{chapter}/{rel} (stale)" for rel in stale]
    if not check:
        for rel in stale:
            old[rel].unlink()
        for rel, path in new.items():
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return changed


def release(root: str | Path | None = None, chapters: list[str] | None = None, check: bool = False) -> list[str]:
    """Regenerate ``chapters/`` (and the ``.ipynb`` twins of the scripts) from ``solutions/``.

    With ``check=True`` nothing is written; the return value lists every file that is out of
    date (empty when the repository is consistent). Otherwise it lists the files written.
    """
    root = Path(root) if root else find_root()
    chapters = chapters or list_chapters(root)
    for ch in chapters:
        check_chapter(root, ch)
    from induction_course.course.notebook import links

    # Badges and setup cells come from links.REPOSITORY; refresh them before building notebooks.
    changed = links.sync(root, check=check)
    changed += sync_scripts(root, chapters, check=check)
    with tempfile.TemporaryDirectory(prefix="induction-release-") as tmp:
        for ch in chapters:
            course = prepare_course(root, ch, Path(tmp) / ch)
            changed += _sync_chapter(_tree(course / "release" / ch), Path(root) / "chapters" / ch, ch, check)
    return changed
