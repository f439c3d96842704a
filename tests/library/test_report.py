"""The report's faster analysis gives the numbers of the reference ablation functions, bit for bit."""

from __future__ import annotations

import pytest
import torch

from induction_course import ablation, checkpoints, metrics, report
from induction_course.probes import repeated_random_tokens


@pytest.fixture(scope="module")
def setup():
    model = checkpoints.load_model()
    config = checkpoints.load_config()
    pool = torch.tensor(config["token_pool"])
    ev = checkpoints.load_eval_set()
    text = ev.text[: report.TEXT_CHUNK + 24]  # two chunks, the second one short
    probe = repeated_random_tokens(10, 25, 4, pool, ev.bos, 0)
    return model, pool, ev.bos, text, probe


@pytest.mark.parametrize("kind", ["zero", "mean", "knockout", "pattern_preserving"])
def test_experiments_equal_ablation_effects(setup, kind):
    model, _, _, text, probe = setup
    heads = [(0, 1), (0, 2)] if kind == "pattern_preserving" else [(1, 0), (1, 2)]
    runs = report._Ablations(model, probe, text, 25)
    ours = runs.effect(heads, kind)
    ref = ablation.ablation_effects(model, heads, probe, text, kind=kind, seg_len=25)
    for field in ("clean_probe_loss", "ablated_probe_loss", "clean_icl_score", "ablated_icl_score",
                  "delta_probe_loss", "delta_icl_score"):
        assert getattr(ours, field) == getattr(ref, field), field


def test_analyse_matches_the_reference_single_head_table_and_icl_score(setup):
    model, pool, bos, text, probe = setup
    a = report.analyse(model, pool, bos, text)
    table = ablation.single_head_ablation_table(model, probe, text[:4], kind="zero", seg_len=25)
    assert torch.equal(a["single_head_table"]["delta_probe_loss"], table["delta_probe_loss"])
    assert a["icl_score"] == metrics.icl_score(model, text)
    rep = metrics.repeated_token_losses(model, probe, 25)
    assert (a["loss_first_repeat"], a["loss_later_repeats"]) == (rep.first, rep.later)
    labels = [e["label"] for e in a["experiments"]]
    assert labels[0] == "induction heads, zero-ablated" and labels[-1].startswith("random control")
