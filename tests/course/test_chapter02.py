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
    """The shipped run's bump (the later-copy loss's largest drop) comes before the step at which
    the report's induction criterion first holds (450, quoted in the text), and by the sweep's
    last checkpoint the later copies cost well under half the first."""
    assert ns["formed"]["step"] == 450 and round(ns["formed"]["seconds"]) == 18
    assert 200 <= ns["bump"] <= ns["formed"]["step"]
    assert ns["laters"][-1] < 0.5 * ns["firsts"][-1]


def test_fixed_offset_cheat_is_exposed_by_varied_lengths(ns):
    gen = torch.Generator().manual_seed(3)
    probe = ns["repeated_random_tokens"](5, 7, 3, ns["pool"], 0, gen)
    assert ns["later_copy_accuracy"](ns["fixed_offset_predict"](probe, 10), probe, 7) < 0.2
    assert ns["later_copy_accuracy"](ns["induction_predict"](probe), probe, 7) == 1.0


def test_the_bump_marker_is_a_window_that_holds_the_drop(ns):
    """The marker is the interval between the two checkpoints where the later-copy loss drops most
    (find_bump returns its end); the training loss is still falling inside it."""
    from induction_course import curves

    lo, hi = curves.change_window(ns["steps"], ns["later_all"], rising=False)
    assert hi == ns["bump"] and ns["steps"].index(hi) == ns["steps"].index(lo) + 1
    assert ns["later_all"][ns["steps"].index(lo)] - ns["later_all"][ns["steps"].index(hi)] > 0.5
    assert ns["smoothed"][lo] - ns["smoothed"][hi] > 0.1  # the training loss falls inside the window
    # the windows the text quotes: later-copy loss 259-304, training loss's steepest fall 198-298,
    # prefix-matching 217-259 (what `induction-course report` prints), the sweep's later-copy loss 217-304
    assert (lo, hi) == (259, 304) and ns["k"] == 198
    assert curves.bump_window(ns["history"]) == (217, 259)
    assert curves.change_window(ns["ck_steps"], ns["laters"], rising=False) == (217, 304)


def test_comparison_loads_the_shipped_result_by_default(ns):
    """By default the experiment cell loads data/chapter2_comparison.json (seconds, not minutes),
    and the numbers the text quotes are the file's."""
    assert ns["TRAIN_COMPARISON"] is False
    runs = ns["comparison"]["runs"]
    rep, nat = runs["with repeated segments"], runs["natural text only"]
    at = {h["step"]: h for h in rep}
    assert ns["comparison"]["steps"] == 900 and rep[-1]["step"] == nat[-1]["step"] == 900
    assert at[389]["loss_later_repeats"] == pytest.approx(2.14, abs=0.01)
    assert at[900]["loss_later_repeats"] == pytest.approx(0.76, abs=0.01)
    assert at[900]["loss_first_repeat"] == pytest.approx(5.79, abs=0.01)
    # induction formed with the segments (later copies under half the first, a prefix-matching head) ...
    assert at[389]["loss_later_repeats"] < 0.5 * at[389]["loss_first_repeat"]
    assert at[900]["best_prefix_matching_layer1"] > 0.6
    # ... and not without them
    assert nat[-1]["loss_later_repeats"] > nat[-1]["loss_first_repeat"] - 0.2
    assert nat[-1]["best_prefix_matching_layer1"] < 0.1
    # the training times the text quotes are the file's
    import nbformat

    prose = " ".join(" ".join(c.source.split()) for c in nbformat.read(CHAPTER.solution_ipynb, as_version=4).cells
                     if c.cell_type == "markdown")
    sec = ns["comparison"]["seconds"]
    quoted = (f"took {sum(sec.values()):.0f} s for both ({sec['with repeated segments']:.0f} s + "
              f"{sec['natural text only']:.0f} s, printed below)")
    assert quoted in prose


def test_chapter_says_the_trained_model_is_chapter_1s_without_layernorm(ns):
    import nbformat

    nb = nbformat.read(CHAPTER.solution_ipynb, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "The trained model has chapter 1's architecture" in prose and "no LayerNorm" in prose
    assert "adds LayerNorm" not in prose and "2,000 steps)" not in prose
    assert ns["mcfg"].normalization is None


def test_demo_cells_fall_back_to_the_reference_with_a_note(capsys):
    from induction_course.course.checks import ch02

    def blank(*args, **kwargs):
        raise NotImplementedError()

    loss = torch.rand(3, 20)
    assert ch02.or_reference(blank, "repeat_losses")(loss, 4) == ch02.REFERENCES["repeat_losses"](loss, 4)
    assert "finish exercise 6 (`repeat_losses`)" in capsys.readouterr().out
    assert ch02.or_reference(lambda steps, values, rising=True: 7, "find_bump")([0, 1], [0.0, 1.0]) == 7
