"""Chapter 4 (metrics): the notebook runs, the reference passes, wrong answers lose."""

from __future__ import annotations

import pytest

from _chapter_tests import standard_tests
from induction_course.course.checks import ch04 as checks

CHAPTER = "04_metrics"
globals().update(standard_tests(CHAPTER, "ch04", checks))


def test_notebook_shows_the_papers_findings(ns):
    pm = ns["pm"]
    assert (pm[1] > 0.5).all() and (pm[0] < 0.1).all()
    assert (ns["eig_scores"][1] > 0.95).all()
    assert ns["comp"]["K"].mean() > ns["baseline"].mean() + 5 * ns["baseline"].std()
    assert ns["icl_score"](ns["text_loss"]) < -0.2


def test_not_implemented_says_so():
    def icl_score(per_token_loss):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_icl_score(icl_score)
