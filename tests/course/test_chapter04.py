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
    assert (ns["eig_scores"][1] > 0.95).all()
    # every induction head K-composes with the previous-token head 0.3 far above random heads
    assert (ns["comp"]["K"][:, 3] > ns["baseline"].mean + 5 * ns["baseline"].std).all()


def test_frobenius_k_composition_finds_the_main_previous_token_head_but_not_the_second(ns):
    comp, kc, prev = ns["comp"]["K"], ns["kc"]["top1"], ns["prev_heads"]
    assert prev == [0, 3]
    rel = ns["rel"]
    for h1 in range(kc.shape[0]):
        # the paper's score puts the strong previous-token head 0.3 first, clearly above the others ...
        assert int(comp[h1].argmax()) == 3 and rel[h1, 3] > 1.3
        # ... but does not single out the second one, 0.0: no more than the mean of the others
        assert rel[h1, 0] < 1.1
        # the token-level K-circuit and the functional split rank 0.3, then 0.0, then the other heads
        assert kc[h1].argsort(descending=True)[:2].tolist() == [3, 0]
        assert kc[h1, 3] > 0.9 and kc[h1, 0] > 0.15 and kc[h1, [1, 2]].max() < 0.1
        split = ns["split"].scores[h1, ns["split"].head_columns()]
        assert split.argsort(descending=True)[:2].tolist() == [3, 0]
        assert split[3] > 4 and split[0] > 0.5 and split[[1, 2]].abs().max() < 0.2


def test_icl_band_is_less_noisy_than_single_tokens(ns):
    import math

    band, single = ns["band"], ns["single"]
    assert band.mean < -0.3 and band.se < 0.06
    assert single.std() / math.sqrt(len(single)) > 2 * band.se


def test_eigenvalue_copying_saturates_before_the_phase_change_and_ov_top1_rises_most_across_it(ns):
    steps, eig, ov_top1 = ns["steps"], ns["eig"].mean(-1), ns["ov_top1"].mean(-1)
    saturated = next(i for i in range(len(steps)) if eig[i] > 0.95)
    assert steps[saturated] < ns["lo"]  # saturated before the bump (steps 217-259)
    assert ov_top1[saturated] < 0.3 < ov_top1[-1]
    i_lo, i_hi = steps.index(ns["lo"]), steps.index(ns["hi"])
    rise = int((ov_top1[1:] - ov_top1[:-1]).argmax()) + 1  # OV top-1's largest rise ends at this checkpoint
    assert i_lo < rise <= i_hi
