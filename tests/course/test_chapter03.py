"""Chapter 3 (finding the heads): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest
import torch

from chapter_harness import HANG_LIMIT_S, chapter, executed

CHAPTER = chapter("03_finding_heads")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_shipped_model_heads_are_the_documented_ones(ns):
    # exercise 8 names the heads on the paper's probe (4 copies), as the report does
    assert ns["found"] == {"previous_token": [(0, 0), (0, 3)], "induction": [(1, 0), (1, 1), (1, 2), (1, 3)]}
    # head 1.0 is the weakest induction head: just above the threshold 0.4 on the paper's probe, below it on
    # the notebook's 2-copy probe, the other three above it on both (the prose of exercises 5 and 8 says so)
    paper, short = ns["shipped_tables"]["prefix_matching"][1], ns["tables"]["induction"][1]
    assert 0.4 < paper[0] < 0.55 and paper[1:].min() > 0.55
    assert short[0] < 0.4 and short[1:].min() > 0.45
    # K-composition: through head 0.3 nearly every pool token has its row maximum on the diagonal, through
    # the weaker previous-token head 0.0 a quarter to a third, through 0.1 and 0.2 about chance
    diag = ns["diag_top1"]
    assert diag[3].min() > 0.95
    assert 0.2 < diag[0].min() and diag[0].max() < 0.4
    assert diag[1:3].max() < 0.05
    # the K-composition picture is drawn through the strongest pair: 0.3 and 1.2
    assert (ns["prev_h"], ns["ind_h"]) == (3, 2)


def test_a_demo_cell_falls_back_to_the_reference_and_names_the_exercise(capsys):
    from induction_course import metrics
    from induction_course.course.checks import ch03 as checks

    def identify_heads(prev_scores, induction_scores, threshold=0.4):
        raise NotImplementedError()

    used = checks.mine_or_reference("identify_heads", identify_heads, 8)
    assert "finish exercise 8 (`identify_heads`)" in capsys.readouterr().out
    scores = torch.zeros(2, 4)
    scores[0, 1] = scores[1, 2] = 0.9
    assert used(scores, scores) == {"previous_token": [(0, 1)], "induction": [(1, 2)]}
    # a finished answer is used as it is, silently
    assert checks.mine_or_reference("previous_token_score", metrics.previous_token_score, 2) is metrics.previous_token_score
    assert capsys.readouterr().out == ""
