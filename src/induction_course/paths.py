"""Where the shipped artefacts live, for a source checkout and for an installed wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent


def data_dir() -> Path:
    """``data/`` of the checkout (editable install) or the copy inside the wheel."""
    for candidate in (REPO_ROOT / "data", PACKAGE_DIR / "_data"):
        if (candidate / "tokenizer.json").is_file():
            return candidate
    return REPO_ROOT / "data"


def default_checkpoint_dir() -> Path:
    return data_dir() / "checkpoints"
