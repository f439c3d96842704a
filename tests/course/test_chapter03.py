"""Chapter 3 (finding the heads): the notebook runs, the reference passes, wrong answers lose."""

from __future__ import annotations

import pytest

from _chapter_tests import standard_tests
from induction_course.course.checks import ch03 as checks

CHAPTER = "03_finding_heads"
globals().update(standard_tests(CHAPTER, "ch03", checks, max_seconds=60, min_exercises=8))


def test_shipped_model_heads_are_the_documented_ones(ns):
    assert ns["found"] == {"previous_token": [(0, 1), (0, 2)], "induction": [(1, 0), (1, 1), (1, 2), (1, 3)]}
    diag = ns["diag_top1"]
    assert diag[1:3].min() > 0.5 and diag[0].max() < 0.3  # K-composition through the previous-token heads


def test_not_implemented_says_so():
    def previous_token_score(pattern):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_previous_token_score(previous_token_score)
