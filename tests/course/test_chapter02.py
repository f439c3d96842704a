"""Chapter 2 (training): the notebook runs, the reference passes, wrong answers lose."""

from __future__ import annotations

import pytest

from _chapter_tests import standard_tests
from induction_course.course.checks import ch02 as checks

CHAPTER = "02_training"
globals().update(standard_tests(CHAPTER, "ch02", checks, env={"NBGRADER_EXECUTION": "autograde"}, max_seconds=60, min_exercises=8))


def test_the_bump_is_where_induction_forms(ns):
    assert 400 <= ns["bump"] <= 900
    assert ns["laters"][-1] < 0.5 * ns["firsts"][-1]


def test_fixed_offset_cheat_is_exposed_by_varied_lengths(ns):
    gen = __import__("torch").Generator().manual_seed(3)
    probe = ns["repeated_random_tokens"](5, 7, 3, ns["pool"], 0, gen)
    assert ns["later_copy_accuracy"](ns["fixed_offset_predict"](probe, 10), probe, 7) < 0.2
    assert ns["later_copy_accuracy"](ns["induction_predict"](probe), probe, 7) == 1.0


def test_not_implemented_says_so():
    def per_token_loss(logits, tokens):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_per_token_loss(per_token_loss)
