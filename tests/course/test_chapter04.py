"""Chapter 4 (metrics): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest

from chapter_harness import HANG_LIMIT_S, chapter, executed

CHAPTER = chapter("04_metrics")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_notebook_shows_the_papers_findings(ns):
    pm = ns["pm"]
    assert (pm[1] > 0.5).all() and (pm[0] < 0.1).all()
    assert (ns["eig_scores"][1] > 0.95).all()
    assert ns["comp"]["K"].mean() > ns["baseline"].mean() + 5 * ns["baseline"].std()
    assert ns["icl_score"](ns["text_loss"]) < -0.2
