"""Chapter 1 (build the transformer): its reference pieces and its checks.

The reference pieces (``induction_course.functional``) agree with the model and pass the
chapter's checks; the checks explain crashes and typical slips and swap in the reference of
the other pieces. The tests every chapter gets (the solution notebook's reference passes,
wrong answers lose, ...) are in ``test_chapters.py``.
"""

from __future__ import annotations

import pytest
import torch

from chapter_harness import HANG_LIMIT_S
from induction_course import functional as F
from induction_course.course.checks import ch01 as checks
from induction_course.course.checks.core import random_model
from induction_course.model import AttnOnlyTransformer, ModelConfig

pytestmark = pytest.mark.timeout(HANG_LIMIT_S)


@pytest.fixture(scope="module")
def model():
    return random_model(seed=3, d_vocab=29, n_ctx=16, d_model=16, n_heads=3, d_head=4, n_layers=2)


@pytest.fixture(scope="module")
def tokens(model):
    return torch.randint(0, model.cfg.d_vocab, (3, 11), generator=torch.Generator().manual_seed(0))


def test_forward_of_the_pieces_equals_the_model(model, tokens):
    logits, patterns = F.transformer_forward(tokens, model)
    ref_logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    for layer, pattern in enumerate(patterns):
        torch.testing.assert_close(pattern, cache[f"blocks.{layer}.attn.hook_pattern"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(logits, model(tokens), atol=1e-5, rtol=1e-5)  # the fused fast path too


def test_pieces_equal_the_model_hooks(model, tokens):
    _, cache = model.run_with_cache(tokens)
    x = F.embed(tokens, model.W_E) + F.pos_embed(tokens, model.W_pos)
    torch.testing.assert_close(x, cache["blocks.0.hook_resid_pre"])
    scores = F.head_attn_scores(x, model.W_Q[0, 1], model.b_Q[0, 1], model.W_K[0, 1], model.b_K[0, 1])
    masked = F.apply_causal_mask(scores)
    torch.testing.assert_close(masked, cache["blocks.0.attn.hook_attn_scores"][:, 1])
    pattern = F.attention_pattern(scores)
    torch.testing.assert_close(pattern, cache["blocks.0.attn.hook_pattern"][:, 1])
    out = F.head_output(pattern, x, model.W_V[0, 1], model.b_V[0, 1], model.W_O[0, 1])
    torch.testing.assert_close(out, cache["blocks.0.attn.hook_result"][:, :, 1], atol=1e-6, rtol=1e-5)
    attn_out, _ = F.attention_layer(x, model.W_Q[0], model.b_Q[0], model.W_K[0], model.b_K[0],
                                    model.W_V[0], model.b_V[0], model.W_O[0], model.b_O[0])
    torch.testing.assert_close(attn_out, cache["blocks.0.hook_attn_out"], atol=1e-6, rtol=1e-5)


def test_forward_refuses_layernorm_models():
    m = AttnOnlyTransformer(ModelConfig(d_vocab=7, n_ctx=4, d_model=8, n_heads=2, d_head=4, normalization="LN"))
    with pytest.raises(ValueError, match="LayerNorm"):
        F.transformer_forward(torch.zeros(1, 3, dtype=torch.long), m)


def test_bridge_pieces_match_the_model(model, tokens):
    bridge = F.bridge_from_tl_state_dict(F.to_tl_state_dict(model), model.cfg)
    logits, patterns = F.bridge_logits_and_patterns(bridge, tokens)
    ref_logits, ref_patterns = F.transformer_forward(tokens, model)
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(patterns, torch.stack(ref_patterns), atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        ov = F.full_ov_circuit(bridge, 1, 2)
        torch.testing.assert_close(ov.AB, model.W_E @ model.W_OV[1, 2] @ model.W_U, atol=1e-4, rtol=1e-4)
        qk = F.pos_qk_circuit(bridge, 0, 1)
        torch.testing.assert_close(qk.AB, model.W_pos @ model.W_QK[0, 1] @ model.W_pos.T, atol=1e-4, rtol=1e-4)
        score = F.ov_copying_score(ov)
        eig = torch.linalg.eigvals(ov.AB.double())
        assert score == pytest.approx(float(eig.sum().real / eig.abs().sum()), abs=1e-3)


def test_bridge_from_bad_state_dict_names_the_key(model):
    sd = F.to_tl_state_dict(model)
    del sd["unembed.b_U"]
    with pytest.raises(ValueError, match="unembed.b_U"):
        F.bridge_from_tl_state_dict(sd, model.cfg)


# ------------------------------------------------------------------------ the checks
@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_library_reference_passes_visible_checks(exercise, capsys):
    checks.run_visible_checks(exercise, getattr(F, exercise))
    assert f"✔ {exercise}" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_library_reference_passes_on_a_fresh_seed(exercise):
    sizes = {"seed": 12345}
    checks.compare_with_reference(exercise, getattr(F, exercise), **sizes)


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


def test_input_modified_in_place_is_named_by_the_check():
    """The right values from a function that changes its input break the contract (issue 11):
    the visible check says so, before the trusted check would take the points."""
    def apply_causal_mask(scores):
        n = scores.shape[-1]
        return scores.masked_fill_(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))

    with pytest.raises(checks.CheckFailed, match="in place"):
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
