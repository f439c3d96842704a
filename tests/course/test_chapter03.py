"""Chapter 3 (finding the heads): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest

from chapter_harness import HANG_LIMIT_S, chapter, executed

CHAPTER = chapter("03_finding_heads")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_shipped_model_heads_are_the_documented_ones(ns):
    assert ns["found"] == {"previous_token": [(0, 1), (0, 2)], "induction": [(1, 0), (1, 1), (1, 2), (1, 3)]}
    diag = ns["diag_top1"]
    assert diag[1:3].min() > 0.5 and diag[0].max() < 0.3  # K-composition through the previous-token heads
