"""Where things are in the course repository: its root, its chapters, and the one error type.

A chapter is a folder ``solutions/NN_name/`` holding ``NN_name.ipynb`` or its jupytext twin
``NN_name.py``; its student release lives in ``chapters/NN_name/``.
"""

from __future__ import annotations

from pathlib import Path


class GradingError(Exception):
    """Bad input or a failed step; the CLI prints the message as one line."""


def find_root(start: str | Path | None = None) -> Path:
    """The course repository: the first folder above ``start`` (default: cwd) holding both
    ``solutions/`` and ``graders/nbgrader_config.py``; else the checkout this package lives in."""
    candidates = []
    here = Path(start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parents[4])  # src/induction_course/course/grading -> checkout
    for c in candidates:
        if (c / "solutions").is_dir() and (c / "graders" / "nbgrader_config.py").is_file():
            return c
    raise GradingError(
        "cannot find the course repository (a folder with solutions/ and graders/nbgrader_config.py); "
        "run from inside it or pass --root"
    )


def list_chapters(root: Path) -> list[str]:
    """Chapter ids: the folders of ``solutions/`` that hold a notebook of the same name."""
    sol = Path(root) / "solutions"
    return sorted(
        d.name for d in sol.iterdir() if d.is_dir() and ((d / f"{d.name}.ipynb").exists() or (d / f"{d.name}.py").exists())
    )


def check_chapter(root: Path, chapter: str) -> None:
    """Raise :class:`GradingError`, naming the chapters there are, unless ``chapter`` is one."""
    chapters = list_chapters(root)
    if chapter not in chapters:
        raise GradingError(f"unknown chapter {chapter!r}; the chapters are: {', '.join(chapters) or '(none)'}")


def nbgrader_config_path(root: Path) -> Path:
    """The repository's nbgrader config, which every temporary course folder loads first."""
    return Path(root) / "graders" / "nbgrader_config.py"
