"""The student check helpers: the reference passes, known mistakes get the right hint."""

from __future__ import annotations

import pytest
import torch

from conftest import load_wrong_answers
from induction_course.course.checks import ch01 as checks
from induction_course import functional as F

WRONG = load_wrong_answers("ch01").WRONG_ANSWERS


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_reference_passes_visible_checks(exercise, capsys):
    checks.run_visible_checks(exercise, getattr(F, exercise))
    assert f"✔ {exercise}" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_reference_passes_on_other_sizes(exercise):
    sizes = {"seed": 12345}
    checks.compare_with_reference(exercise, getattr(F, exercise), **sizes)


@pytest.mark.parametrize("wrong", [w for w in WRONG if w.hint], ids=lambda w: f"{w.grade_id}-{w.fn.__name__}")
def test_known_mistake_gets_its_hint(wrong):
    with pytest.raises(checks.CheckFailed) as info:
        checks.run_visible_checks(wrong.function, wrong.fn)
    message = str(info.value)
    assert message.startswith(f"{wrong.function}: ")
    assert wrong.hint in message, f"{wrong.why}: message was\n{message}"


def test_not_implemented_says_so():
    def embed(tokens, W_E):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed, match="not implemented yet"):
        checks.check_embed(embed)


def test_a_crash_is_reported_with_the_input_shapes():
    def head_attn_scores(x, W_Q, b_Q, W_K, b_K):
        return x @ W_Q.T

    with pytest.raises(checks.CheckFailed, match=r"raised RuntimeError.*\n.*x \[2, 5, 8\]"):
        checks.check_head_attn_scores(head_attn_scores)


def test_missing_return_is_explained():
    def unembed(resid, W_U, b_U):
        resid @ W_U + b_U

    with pytest.raises(checks.CheckFailed, match="return"):
        checks.check_unembed(unembed)


def test_pattern_mask_after_softmax_reports_the_row_sum():
    def attention_pattern(scores):
        n = scores.shape[-1]
        return scores.softmax(-1) * torch.ones(n, n).tril()

    with pytest.raises(checks.CheckFailed, match=r"row \d+ .*sums to 0\.\d+[\s\S]*after the softmax"):
        checks.check_attention_pattern(attention_pattern)


def test_large_negative_mask_is_accepted():
    def apply_causal_mask(scores):
        n = scores.shape[-1]
        return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -1e9)

    checks.check_apply_causal_mask(apply_causal_mask)


def test_input_modified_in_place_does_not_fool_the_check():
    def apply_causal_mask(scores):
        n = scores.shape[-1]
        return scores.masked_fill_(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))

    checks.check_apply_causal_mask(apply_causal_mask)


def test_reference_pieces_are_swapped_in_and_restored():
    ns: dict = {}
    exec(
        "def attention_pattern(scores):\n    return scores\n"
        "def attention_layer(*args):\n    return attention_pattern\n",
        ns,
    )
    mine = ns["attention_pattern"]
    with checks.CHECKS.reference_pieces(ns["attention_layer"], keep="attention_layer"):
        assert ns["attention_layer"]() is F.attention_pattern
    assert ns["attention_pattern"] is mine


def test_a_broken_earlier_piece_does_not_fail_a_later_exercise():
    ns: dict = {"torch": torch, "F": F}
    exec(
        "def attention_pattern(scores):\n    return scores.softmax(-2)  # wrong, costs its own points\n"
        "def attention_layer(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):\n"
        "    outs, pats = [], []\n"
        "    for h in range(W_Q.shape[0]):\n"
        "        s = F.head_attn_scores(x, W_Q[h], b_Q[h], W_K[h], b_K[h])\n"
        "        p = attention_pattern(s)\n"
        "        outs.append(F.head_output(p, x, W_V[h], b_V[h], W_O[h]))\n"
        "        pats.append(p)\n"
        "    return torch.stack(outs).sum(0) + b_O, torch.stack(pats, 1)\n",
        ns,
    )
    checks.check_attention_layer(ns["attention_layer"])
    with pytest.raises(checks.CheckFailed, match="wrong axis"):
        checks.check_attention_pattern(ns["attention_pattern"])


def test_unknown_exercise_is_a_key_error():
    with pytest.raises(KeyError, match="unknown exercise"):
        checks.compare_with_reference("nope", F.embed, seed=0)


def test_every_check_helper_exists():
    for name in checks.EXERCISES:
        assert callable(getattr(checks, f"check_{name}"))
