"""Chapter 5 (ablations): the notebook runs, the reference passes, wrong answers lose."""

from __future__ import annotations

import pytest

from _chapter_tests import standard_tests
from induction_course.course.checks import ch05 as checks

CHAPTER = "05_ablations"
globals().update(standard_tests(CHAPTER, "ch05", checks))


def test_notebook_shows_the_papers_findings(ns):
    effects = dict(ns["rows"])
    zero, knock = effects["induction heads, zero"], effects["induction heads, stripe knockout"]
    assert zero > 3 and knock > 0.75 * zero
    control = [d for label, d in ns["rows"] if label.startswith("random control")][0]
    assert control < 0.2 * zero
    assert ns["sweep_ind"][0] < 0.5 and ns["sweep_ind"][-1] > 3


def test_not_implemented_says_so():
    def zero_ablation(model, tokens, layer, head):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_zero_ablation(zero_ablation)
