"""Chapter 5 (ablations): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest

from chapter_harness import HANG_LIMIT_S, chapter, executed

CHAPTER = chapter("05_ablations")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_notebook_shows_the_papers_findings(ns):
    effects = dict(ns["rows"])
    zero, knock = effects["induction heads, zero"], effects["induction heads, stripe knockout"]
    assert zero > 3 and knock > 0.75 * zero
    control = [d for label, d in ns["rows"] if label.startswith("random control")][0]
    assert control < 0.2 * zero
    assert ns["sweep_ind"][0] < 0.5 and ns["sweep_ind"][-1] > 3
