"""Chapter 5 (ablations): what this chapter's solution notebook must show.

The tests every chapter gets (the reference passes, wrong answers lose, ...) are in
``test_chapters.py``.
"""

from __future__ import annotations

import pytest

from chapter_harness import HANG_LIMIT_S, chapter, executed

CHAPTER = chapter("05_ablations")
pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def ns():
    """The namespace of the executed solution notebook (shared with test_chapters.py)."""
    return executed(CHAPTER).ns


def test_notebook_shows_the_papers_findings(ns):
    effects = dict(ns["rows"])
    zero, knock = effects["induction heads, zero"], effects["induction heads, stripe knockout"]
    assert zero > 3 and knock > 0.75 * zero
    control = [d for label, d in ns["rows"] if label.startswith("random control")][0]
    assert control < 0.2 * zero
    assert ns["sweep_ind"][0] < 0.5 and ns["sweep_ind"][-1] > 3


def test_joint_effects_are_measured_beside_the_single_heads(ns):
    eff = ns["effects"]
    singles = sum(eff[f"head 1.{h}"]["delta_probe_loss"] for h in range(4))
    joint = eff["all 4 induction heads"]
    assert joint["delta_probe_loss"] > 2 * singles  # they back each other up
    # "no in-context learning left": the ablated ICL score is within two standard errors of zero
    assert joint["delta_icl_score"] > 0 and abs(joint["clean_icl_score"] + joint["delta_icl_score"]) < 2 * joint["delta_icl_se"]
    assert eff["both previous-token heads"]["delta_probe_loss"] > 3


def test_head_00_is_explained_by_measurement(ns):
    h00 = ns["effects"]["head 0.0"]
    others = [r["delta_text_loss"] for k, r in ns["effects"].items() if k.startswith("head ") and k != "head 0.0"]
    assert h00["delta_text_loss"] > 2 * max(others)  # it matters everywhere, not in context
    assert abs(h00["delta_probe_loss"]) < 0.1  # no role in induction
    assert h00["delta_icl_score"] < 0 < ns["effects_mean"]["head 0.0"]["delta_icl_score"]  # sign flips with the kind
    assert max(ns["by_offset"]) < 0.3  # a spread "recent tokens" head, not a previous-token head
    assert float(ns["direct"].mean()) < 0.5 * h00["delta_text_loss"]


def test_later_cells_take_nothing_from_a_student_variable(ns):
    import nbformat

    nb = nbformat.read(CHAPTER.solution_ipynb, as_version=4)
    demo = [c.source for c in nb.cells if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata.get("nbgrader", {}).get("solution")]
    assert not any("my_table" in src for src in demo)
    assert any("or_reference(ablation_sweep" in src for src in demo)
