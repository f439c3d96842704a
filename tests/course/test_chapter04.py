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
    assert ns["comp"]["K"].mean() > ns["baseline"].mean + 5 * ns["baseline"].std


def test_frobenius_k_composition_misleads_and_the_k_circuit_does_not(ns):
    comp, kc, prev = ns["comp"]["K"], ns["kc"]["top1"], ns["prev_heads"]
    assert prev == [1, 2]
    # the paper's score puts head 0.0 (not a previous-token head) first for head 1.2 ...
    assert int(comp[2].argmax()) == 0
    # ... the token-level K-circuit and the functional split put the previous-token heads first for every head
    for h1 in range(kc.shape[0]):
        assert set(kc[h1].argsort(descending=True)[:2].tolist()) == set(prev)
        assert kc[h1, prev].min() > 0.7 and kc[h1, 0] < 0.1
        split = ns["split"].scores[h1, ns["split"].head_columns()]
        assert split[prev].min() > 2.5 and split[0].abs() < 0.2


def test_icl_band_is_less_noisy_than_single_tokens(ns):
    import math

    band, single = ns["band"], ns["single"]
    assert band.mean < -0.3 and band.se < 0.06
    assert single.std() / math.sqrt(len(single)) > 2 * band.se


def test_eigenvalue_copying_saturates_before_the_phase_change_and_ov_top1_does_not(ns):
    steps = ns["steps"]
    i346, i2000 = steps.index(346), steps.index(steps[-1])
    assert ns["eig"][i346].mean() > 0.9  # saturated long before the bump (steps 467-532)
    assert ns["ov_top1"][i346].mean() < 0.3 < ns["ov_top1"][i2000].mean()
