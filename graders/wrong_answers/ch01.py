"""Catalogue of plausible wrong answers to chapter 1 (01_build_transformer).

Every entry is a mistake students really make. ``tests/course/test_chapters.py`` runs the
grade cell of the exercise (visible checks *and* hidden tests, taken from the solution notebook)
with the student's function replaced by each wrong answer, and asserts that the cell fails, so
the exercise's points are lost. When ``hint`` is given, ``tests/course/test_chapters.py`` also asserts that
the *visible* checks fail with a message containing it (the student is told the cause).

To add one: write the function (same signature as the exercise) and decorate it with
``@wrong(grade_id, function_name, why, hint=...)``. At least three per exercise.
"""

from __future__ import annotations

import math

import torch

from induction_course.course.checks.catalogue import WrongAnswer, new_catalogue  # noqa: F401

from induction_course import functional as F
from induction_course.model import hook_name


WRONG_ANSWERS, wrong = new_catalogue()


def _future(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).triu(1)


# ------------------------------------------------------------------------------ embed
@wrong("ch1_embed", "embed", "scales by sqrt(d_model) like the original Transformer", hint="sqrt(d_model)")
def embed_scaled(tokens, W_E):
    return W_E[tokens] * math.sqrt(W_E.shape[1])


@wrong("ch1_embed", "embed", "multiplies one-hot tokens by W_E.T", hint="W_E.T")
def embed_transposed(tokens, W_E):
    return torch.nn.functional.one_hot(tokens, W_E.shape[0]).float() @ W_E @ W_E.T


@wrong("ch1_embed", "embed", "drops the batch: embeds the first sequence only", hint="batch")
def embed_first_sequence(tokens, W_E):
    return W_E[tokens[0]]


@wrong("ch1_embed", "embed", "off by one in the token id", hint="off by one")
def embed_off_by_one(tokens, W_E):
    return W_E[(tokens + 1) % W_E.shape[0]]


# -------------------------------------------------------------------------- pos_embed
@wrong("ch1_pos_embed", "pos_embed", "indexes W_pos with the token ids", hint="token ids")
def pos_embed_by_token(tokens, W_pos):
    return W_pos[tokens % W_pos.shape[0]]


@wrong("ch1_pos_embed", "pos_embed", "forgets the batch dimension", hint="batch")
def pos_embed_no_batch(tokens, W_pos):
    return W_pos[: tokens.shape[1]]


@wrong("ch1_pos_embed", "pos_embed", "positions start at 1", hint="off by one")
def pos_embed_off_by_one(tokens, W_pos):
    b, p = tokens.shape
    return W_pos[1 : p + 1].unsqueeze(0).expand(b, -1, -1)


@wrong("ch1_pos_embed", "pos_embed", "returns all n_ctx positions", hint="first `pos` rows")
def pos_embed_all_rows(tokens, W_pos):
    return W_pos.unsqueeze(0).expand(tokens.shape[0], -1, -1)


# -------------------------------------------------------------------- head_attn_scores
@wrong("ch1_head_scores", "head_attn_scores", "no 1/sqrt(d_head)", hint="sqrt(d_head)")
def scores_unscaled(x, W_Q, b_Q, W_K, b_K):
    return (x @ W_Q + b_Q) @ (x @ W_K + b_K).transpose(-1, -2)


@wrong("ch1_head_scores", "head_attn_scores", "divides by sqrt(d_model)", hint="not sqrt(d_model)")
def scores_scaled_by_d_model(x, W_Q, b_Q, W_K, b_K):
    return (x @ W_Q + b_Q) @ (x @ W_K + b_K).transpose(-1, -2) / math.sqrt(x.shape[-1])


@wrong("ch1_head_scores", "head_attn_scores", "keys on rows, queries on columns", hint="swapped")
def scores_transposed(x, W_Q, b_Q, W_K, b_K):
    return (x @ W_K + b_K) @ (x @ W_Q + b_Q).transpose(-1, -2) / math.sqrt(W_Q.shape[-1])


@wrong("ch1_head_scores", "head_attn_scores", "forgets the biases", hint="biases")
def scores_no_bias(x, W_Q, b_Q, W_K, b_K):
    return (x @ W_Q) @ (x @ W_K).transpose(-1, -2) / math.sqrt(W_Q.shape[-1])


@wrong("ch1_head_scores", "head_attn_scores", "divides by d_head (no square root)", hint="not d_head")
def scores_scaled_by_d_head(x, W_Q, b_Q, W_K, b_K):
    return (x @ W_Q + b_Q) @ (x @ W_K + b_K).transpose(-1, -2) / W_Q.shape[-1]


# ------------------------------------------------------------------- apply_causal_mask
@wrong("ch1_causal_mask", "apply_causal_mask", "masks the diagonal too (off by one)", hint="diagonal")
def mask_diagonal(scores):
    n = scores.shape[-1]
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(0), float("-inf"))


@wrong("ch1_causal_mask", "apply_causal_mask", "masks the past instead of the future", hint="wrong way round")
def mask_past(scores):
    n = scores.shape[-1]
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).tril(-1), float("-inf"))


@wrong("ch1_causal_mask", "apply_causal_mask", "fills with 0 instead of -inf", hint="-inf")
def mask_with_zero(scores):
    return scores.masked_fill(_future(scores.shape[-1]), 0.0)


@wrong("ch1_causal_mask", "apply_causal_mask", "multiplies by a 0/1 lower-triangular matrix", hint="-inf")
def mask_multiply(scores):
    n = scores.shape[-1]
    return scores * torch.ones(n, n).tril()


# ------------------------------------------------------------------- attention_pattern
@wrong("ch1_pattern", "attention_pattern", "softmax over the query axis", hint="wrong axis")
def pattern_softmax_queries(scores):
    return F.apply_causal_mask(scores).softmax(dim=-2)


@wrong("ch1_pattern", "attention_pattern", "mask applied after the softmax", hint="after the softmax")
def pattern_mask_after_softmax(scores):
    return scores.softmax(dim=-1).masked_fill(_future(scores.shape[-1]), 0.0)


@wrong("ch1_pattern", "attention_pattern", "no causal mask", hint="later keys")
def pattern_no_mask(scores):
    return scores.softmax(dim=-1)


@wrong("ch1_pattern", "attention_pattern", "softmax over the batch axis", hint="softmax over the last axis")
def pattern_softmax_batch(scores):
    return F.apply_causal_mask(scores).softmax(dim=0).nan_to_num(0.0)


# ------------------------------------------------------------------------ head_output
@wrong("ch1_head_output", "head_output", "pattern transposed (keys attend to queries)", hint="pattern @ v")
def head_output_pattern_transposed(pattern, x, W_V, b_V, W_O):
    return pattern.transpose(-1, -2) @ (x @ W_V + b_V) @ W_O


@wrong("ch1_head_output", "head_output", "transposed W_O", hint="Hint")
def head_output_W_O_transposed(pattern, x, W_V, b_V, W_O):
    return pattern @ (x @ W_V + b_V) @ W_O.T


@wrong("ch1_head_output", "head_output", "forgets the value bias", hint="value bias")
def head_output_no_b_V(pattern, x, W_V, b_V, W_O):
    return pattern @ (x @ W_V) @ W_O


@wrong("ch1_head_output", "head_output", "returns z, forgets the output projection", hint="W_O")
def head_output_no_W_O(pattern, x, W_V, b_V, W_O):
    return pattern @ (x @ W_V + b_V)


# -------------------------------------------------------------------- attention_layer
def _layer_parts(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, scale=True):
    q = torch.einsum("bpd,hde->bhpe", x, W_Q) + b_Q[:, None]
    k = torch.einsum("bpd,hde->bhpe", x, W_K) + b_K[:, None]
    v = torch.einsum("bpd,hde->bhpe", x, W_V) + b_V[:, None]
    scores = q @ k.transpose(-1, -2)
    if scale:
        scores = scores / math.sqrt(W_Q.shape[-1])
    pattern = F.attention_pattern(scores)
    return pattern, pattern @ v  # z [batch, head, q, d_head]


@wrong("ch1_attention_layer", "attention_layer", "averages the heads instead of summing", hint="don't average")
def layer_mean_heads(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    pattern, z = _layer_parts(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O)
    return torch.einsum("bhpe,hed->bhpd", z, W_O).mean(1) + b_O, pattern


@wrong("ch1_attention_layer", "attention_layer", "forgets b_O", hint="b_O")
def layer_no_b_O(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    pattern, z = _layer_parts(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O)
    return torch.einsum("bhpe,hed->bpd", z, W_O), pattern


@wrong("ch1_attention_layer", "attention_layer", "adds b_O once per head", hint="once per layer")
def layer_b_O_per_head(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    pattern, z = _layer_parts(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O)
    return (torch.einsum("bhpe,hed->bhpd", z, W_O) + b_O).sum(1), pattern


@wrong("ch1_attention_layer", "attention_layer", "no 1/sqrt(d_head)", hint="sqrt(d_head)")
def layer_unscaled(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    pattern, z = _layer_parts(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, scale=False)
    return torch.einsum("bhpe,hed->bpd", z, W_O) + b_O, pattern


@wrong("ch1_attention_layer", "attention_layer", "concatenates heads in the wrong order (d_head-major)")
def layer_wrong_concat(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    pattern, z = _layer_parts(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O)
    B, H, P, E = z.shape
    z_cat = z.permute(0, 2, 1, 3).reshape(B, P, H * E)  # (head, d_head) order
    W_cat = W_O.transpose(0, 1).reshape(H * E, -1)  # (d_head, head) order: mismatched
    return z_cat @ W_cat + b_O, pattern


@wrong("ch1_attention_layer", "attention_layer", "returns the pattern as [batch, q, head, k]",
       hint="[batch, n_heads, q_pos, k_pos]")
def layer_pattern_axes(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    out, pattern = F.attention_layer(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O)
    return out, pattern.transpose(1, 2)


# ---------------------------------------------------------------------------- unembed
@wrong("ch1_unembed", "unembed", "forgets b_U", hint="b_U")
def unembed_no_bias(resid, W_U, b_U):
    return resid @ W_U


@wrong("ch1_unembed", "unembed", "returns probabilities", hint="not probabilities")
def unembed_softmax(resid, W_U, b_U):
    return (resid @ W_U + b_U).softmax(-1)


@wrong("ch1_unembed", "unembed", "transposes W_U", hint="Hint")
def unembed_transposed(resid, W_U, b_U):
    return resid @ W_U.T + b_U


@wrong("ch1_unembed", "unembed", "returns log-probabilities", hint="log-probabilities")
def unembed_log_softmax(resid, W_U, b_U):
    return (resid @ W_U + b_U).log_softmax(-1)


# ---------------------------------------------------------------- transformer_forward
def _forward(tokens, model, pos=True, residual=True, same_layer=False, b_U=True):
    resid = F.embed(tokens, model.W_E)
    if pos:
        resid = resid + F.pos_embed(tokens, model.W_pos)
    patterns = []
    for layer in range(model.cfg.n_layers):
        w = 0 if same_layer else layer
        out, pattern = F.attention_layer(resid, model.W_Q[w], model.b_Q[w], model.W_K[w], model.b_K[w],
                                         model.W_V[w], model.b_V[w], model.W_O[w], model.b_O[w])
        resid = resid + out if residual else out
        patterns.append(pattern)
    return resid @ model.W_U + (model.b_U if b_U else 0), patterns


@wrong("ch1_forward", "transformer_forward", "forgets the positional embedding", hint="positional embedding")
def forward_no_pos(tokens, model):
    return _forward(tokens, model, pos=False)


@wrong("ch1_forward", "transformer_forward", "residual not added: resid = attn_out", hint="residual stream")
def forward_no_residual(tokens, model):
    return _forward(tokens, model, residual=False)


@wrong("ch1_forward", "transformer_forward", "uses layer 0's weights in every layer")
def forward_same_layer(tokens, model):
    return _forward(tokens, model, same_layer=True)


@wrong("ch1_forward", "transformer_forward", "forgets b_U", hint="b_U")
def forward_no_b_U(tokens, model):
    return _forward(tokens, model, b_U=False)


@wrong("ch1_forward", "transformer_forward", "returns only the last layer's pattern", hint="one per layer")
def forward_last_pattern_only(tokens, model):
    logits, patterns = _forward(tokens, model)
    return logits, [patterns[-1]]


# ------------------------------------------------------------------- to_tl_state_dict
@wrong("ch1_tl_state_dict", "to_tl_state_dict", "puts all layers under each blocks.{l} key", hint="that layer's slice")
def sd_stacked(model):
    sd = model.tl_state_dict()
    for layer in range(model.cfg.n_layers):
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
            sd[f"blocks.{layer}.attn.{name}"] = getattr(model, name).detach()
    return sd


@wrong("ch1_tl_state_dict", "to_tl_state_dict", "swaps W_Q and W_K", hint="belongs under")
def sd_swapped(model):
    sd = model.tl_state_dict()
    for layer in range(model.cfg.n_layers):
        b = f"blocks.{layer}.attn"
        sd[f"{b}.W_Q"], sd[f"{b}.W_K"] = sd[f"{b}.W_K"], sd[f"{b}.W_Q"]
    return sd


@wrong("ch1_tl_state_dict", "to_tl_state_dict", "forgets unembed.b_U", hint="missing key")
def sd_no_b_U(model):
    sd = model.tl_state_dict()
    del sd["unembed.b_U"]
    return sd


@wrong("ch1_tl_state_dict", "to_tl_state_dict", "transposes W_O to [d_model, d_head]", hint="no transposes")
def sd_W_O_transposed(model):
    sd = model.tl_state_dict()
    for layer in range(model.cfg.n_layers):
        sd[f"blocks.{layer}.attn.W_O"] = sd[f"blocks.{layer}.attn.W_O"].transpose(-1, -2)
    return sd


@wrong("ch1_tl_state_dict", "to_tl_state_dict", "misspells a key (W_pos under embed)", hint="missing key")
def sd_misspelled(model):
    sd = model.tl_state_dict()
    sd["embed.W_pos"] = sd.pop("pos_embed.W_pos")
    return sd


# ---------------------------------------------------------- bridge_logits_and_patterns
def _cache(bridge, tokens):
    return bridge.run_with_cache(tokens)


# (Stacking ``hook_attn_scores`` would be the natural mistake here, but in TransformerLens 4.3's
# native bridge that hook fires with the post-softmax pattern, so it is not wrong there.)
@wrong("ch1_bridge_run", "bridge_logits_and_patterns", "stacks layers on dim 1 ([batch, n_layers, ...])")
def bridge_stack_dim1(bridge, tokens):
    logits, cache = _cache(bridge, tokens)
    return logits, torch.stack([cache[hook_name("pattern", l)] for l in range(bridge.cfg.n_layers)], dim=1)


@wrong("ch1_bridge_run", "bridge_logits_and_patterns", "returns a list, not a stacked tensor", hint="torch.stack")
def bridge_list(bridge, tokens):
    logits, cache = _cache(bridge, tokens)
    return logits, [cache[hook_name("pattern", l)] for l in range(bridge.cfg.n_layers)]


@wrong("ch1_bridge_run", "bridge_logits_and_patterns", "returns layer 0 only", hint="all* layers")
def bridge_layer0(bridge, tokens):
    logits, cache = _cache(bridge, tokens)
    return logits, cache[hook_name("pattern", 0)]


@wrong("ch1_bridge_run", "bridge_logits_and_patterns", "layers in reverse order", hint="reverse order")
def bridge_reversed(bridge, tokens):
    logits, cache = _cache(bridge, tokens)
    return logits, torch.stack([cache[hook_name("pattern", l)] for l in reversed(range(bridge.cfg.n_layers))])


@wrong("ch1_bridge_run", "bridge_logits_and_patterns", "returns log-probabilities", hint="logits")
def bridge_log_probs(bridge, tokens):
    logits, patterns = F.bridge_logits_and_patterns(bridge, tokens)
    return logits.log_softmax(-1), patterns


# ------------------------------------------------------------------------- circuits
@wrong("ch1_full_ov", "full_ov_circuit", "uses the QK circuit", hint="QK circuit")
def ov_uses_qk(bridge, layer, head):
    return bridge.W_E @ bridge.QK[layer, head] @ bridge.W_U


@wrong("ch1_full_ov", "full_ov_circuit", "transposes OV", hint="don't transpose")
def ov_transposed(bridge, layer, head):
    return bridge.W_E @ bridge.OV[layer, head].T @ bridge.W_U


@wrong("ch1_full_ov", "full_ov_circuit", "forgets W_E", hint="W_E")
def ov_no_W_E(bridge, layer, head):
    return bridge.OV[layer, head] @ bridge.W_U


@wrong("ch1_full_ov", "full_ov_circuit", "returns a dense tensor", hint="plain tensor")
def ov_dense(bridge, layer, head):
    return (bridge.W_E @ bridge.OV[layer, head] @ bridge.W_U).AB


@wrong("ch1_pos_qk", "pos_qk_circuit", "keys on rows (transposed QK)", hint="rows are queries")
def qk_transposed(bridge, layer, head):
    return bridge.W_pos @ bridge.QK[layer, head].T @ bridge.W_pos.T


@wrong("ch1_pos_qk", "pos_qk_circuit", "uses W_E instead of W_pos", hint="W_pos")
def qk_token(bridge, layer, head):
    return bridge.W_E @ bridge.QK[layer, head] @ bridge.W_E.T


@wrong("ch1_pos_qk", "pos_qk_circuit", "scales by 1/sqrt(d_head)", hint="unscaled")
def qk_scaled(bridge, layer, head):
    return bridge.W_pos @ bridge.QK[layer, head] @ bridge.W_pos.T * (1 / math.sqrt(bridge.cfg.d_head))


@wrong("ch1_pos_qk", "pos_qk_circuit", "uses the OV circuit", hint="that is OV")
def qk_uses_ov(bridge, layer, head):
    return bridge.W_pos @ bridge.OV[layer, head] @ bridge.W_pos.T


@wrong("ch1_ov_copying", "ov_copying_score", "absolute value of the sum", hint="keep the sign")
def copying_abs(ov):
    eig = ov.eigenvalues
    return float(eig.sum().abs() / eig.abs().sum())


@wrong("ch1_ov_copying", "ov_copying_score", "singular values in the denominator", hint="singular values")
def copying_svd(ov):
    eig = ov.eigenvalues
    return float(eig.sum().real / ov.S.sum())


@wrong("ch1_ov_copying", "ov_copying_score", "returns the complex number", hint="complex")
def copying_complex(ov):
    eig = ov.eigenvalues
    return eig.sum() / eig.abs().sum()


@wrong("ch1_ov_copying", "ov_copying_score", "|real part| below instead of the modulus", hint="modulus")
def copying_real_abs(ov):
    eig = ov.eigenvalues
    return float(eig.real.sum() / eig.real.abs().sum())


# ------------------------------------------------------------- the contract (issue 11)
@wrong("ch1_causal_mask", "apply_causal_mask", "masks the scores in place (masked_fill_) and returns them",
       hint="in place")
def mask_in_place(scores):
    return scores.masked_fill_(_future(scores.shape[-1]), float("-inf"))


@wrong("ch1_ov_copying", "ov_copying_score", "returns a 0-d tensor where a Python float is asked for",
       hint="Python number")
def copying_as_tensor(ov):
    return torch.tensor(F.ov_copying_score(ov))


# Contract breaks only the grader's trusted check sees (it calls each function twice, on inputs
# that require grad where training needs a gradient): the kernel's checks cannot.
TRUSTED_ONLY, trusted_only = new_catalogue()
