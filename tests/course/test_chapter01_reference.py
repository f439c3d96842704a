"""The reference pieces of chapter 1 (induction_course.functional) agree with the model."""

from __future__ import annotations

import pytest
import torch

from induction_course.course.checks import ch01 as checks
from induction_course import functional as F
from induction_course.model import AttnOnlyTransformer, ModelConfig


@pytest.fixture(scope="module")
def model():
    return checks.random_model(seed=3, d_vocab=29, n_ctx=16, d_model=16, n_heads=3, d_head=4, n_layers=2)


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
