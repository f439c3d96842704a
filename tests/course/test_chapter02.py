"""Chapter 2 (training): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest
import torch

from chapter_harness import HANG_LIMIT_S, chapter, executed

CHAPTER = chapter("02_training")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_the_bump_is_where_induction_forms(ns):
    assert 400 <= ns["bump"] <= 900
    assert ns["laters"][-1] < 0.5 * ns["firsts"][-1]


def test_fixed_offset_cheat_is_exposed_by_varied_lengths(ns):
    gen = torch.Generator().manual_seed(3)
    probe = ns["repeated_random_tokens"](5, 7, 3, ns["pool"], 0, gen)
    assert ns["later_copy_accuracy"](ns["fixed_offset_predict"](probe, 10), probe, 7) < 0.2
    assert ns["later_copy_accuracy"](ns["induction_predict"](probe), probe, 7) == 1.0
