"""Chapter 5 (ablations): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest

from chapter_harness import HANG_LIMIT_S, chapter, executed
from induction_course.checkpoints import list_steps

CHAPTER = chapter("05_ablations")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_notebook_shows_the_papers_findings(ns):
    # the heads the prose names, found by chapter 3's detectors on the shipped run
    assert ns["INDUCTION"] == [(1, 0), (1, 1), (1, 2), (1, 3)]
    assert ns["PREV_TOKEN"] == [(0, 0), (0, 3)] and ns["CONTROL"] == [(0, 1), (0, 2)]
    effects = dict(ns["rows"])
    zero, knock = effects["induction heads, zero"], effects["induction heads, stripe knockout"]
    assert zero > 3 and knock > 0.75 * zero
    control = [d for label, d in ns["rows"] if label.startswith("random control")][0]
    assert control < 0.2 * zero
    assert ns["sweep_ind"][0] < 0.5 and ns["sweep_ind"][-1] > 3
    assert ns["steps"][-1] == max(list_steps())  # the sweep ends at the shipped model


def test_joint_effects_are_measured_beside_the_single_heads(ns):
    eff = ns["effects"]
    singles = sum(eff[f"head {l}.{h}"]["delta_probe_loss"] for l, h in ns["INDUCTION"])
    joint = eff["all 4 induction heads"]
    assert joint["delta_probe_loss"] > 1.8 * singles  # they back each other up ("about twice")
    # "no in-context learning left": the ablated ICL score is within two standard errors of zero
    assert joint["delta_icl_score"] > 0 and abs(joint["clean_icl_score"] + joint["delta_icl_score"]) < 2 * joint["delta_icl_se"]
    assert eff["both previous-token heads"]["delta_probe_loss"] > 3
    assert abs(dict(ns["rows"])["previous-token heads, pattern-preserving"]) < 0.1  # they steer, they do not write


def test_control_heads_are_explained_by_measurement(ns):
    ctrl, ctrl_mean, ctrl_all = ns["ctrl"], ns["ctrl_mean"], ns["ctrl_all"]
    # the finding to explain: zero ablation of the control lowers the ICL score, beyond two standard errors
    assert ctrl["delta_icl_score"] < -2 * ctrl["delta_icl_se"]
    assert ctrl_all["zero"]["delta_icl_score"] < -2 * ctrl_all["zero"]["delta_icl_se"]  # not noise: all 512 windows
    # broad heads, not previous-token heads
    for head in ns["CONTROL"]:
        assert max(ns["looks"][head]["by_offset"]) < 0.3 and ns["looks"][head]["mean_back"] > 10
    # the loss rises at both ICL positions, far more at the early one: worse prediction, not more ICL
    d, e, l = ctrl["delta_loss_by_position"], ns["e_pos"], ns["l_pos"]
    assert d[e - 1] > 3 * d[l - 1] > 0
    # it is their average output that the model misses: mean ablation costs nothing measurable
    assert abs(ctrl_mean["delta_icl_score"]) < 2 * ctrl_mean["delta_icl_se"]
    assert abs(ctrl_all["mean"]["delta_icl_score"]) < 2 * ctrl_all["mean"]["delta_icl_se"]
    assert ctrl_mean["delta_text_loss"] < 0.25 * ctrl["delta_text_loss"] and abs(ctrl_mean["delta_probe_loss"]) < 0.1
    assert ns["avg_norm"] > ns["rest_norm"] and abs(ns["pp_probe"]) < 0.1
    # while the induction heads' effect survives mean ablation
    ind = ns["effects_mean"]["all 4 induction heads"]
    assert ind["delta_icl_score"] > 2 * ind["delta_icl_se"]


def test_later_cells_take_nothing_from_a_student_variable(ns):
    import nbformat

    nb = nbformat.read(CHAPTER.solution_ipynb, as_version=4)
    demo = [c.source for c in nb.cells if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata.get("nbgrader", {}).get("solution")]
    assert not any("my_table" in src for src in demo)
    assert any("or_reference(ablation_sweep" in src for src in demo)
