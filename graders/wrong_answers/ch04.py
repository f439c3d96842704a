"""Catalogue of plausible wrong answers to chapter 4 (04_metrics).

Same contract as ``ch01.py``: each entry must make its grade cell fail (visible and hidden parts,
and the hidden part alone); ``hint`` must appear in the visible checks' message.
"""

from __future__ import annotations

import torch

from induction_course.course.checks.catalogue import WrongAnswer, new_catalogue  # noqa: F401

from induction_course import metrics as M
from induction_course.model import hook_name
from induction_course.probes import duplicate_target_mask, induction_target_mask


WRONG_ANSWERS, wrong = new_catalogue()


# ------------------------------------------------------------------ repeated_tokens
@wrong("ch4_repeated_tokens", "repeated_tokens", "forgets the BOS token", hint="BOS")
def repeated_tokens_no_bos(segments, n_repeats, bos):
    return segments.repeat(1, n_repeats)


@wrong("ch4_repeated_tokens", "repeated_tokens", "repeat_interleave: each token repeated in place", hint="repeat_interleave")
def repeated_tokens_interleave(segments, n_repeats, bos):
    b = torch.full((segments.shape[0], 1), bos, dtype=segments.dtype)
    return torch.cat([b, segments.repeat_interleave(n_repeats, dim=1)], 1)


@wrong("ch4_repeated_tokens", "repeated_tokens", "puts the BOS at the end", hint="first")
def repeated_tokens_bos_last(segments, n_repeats, bos):
    b = torch.full((segments.shape[0], 1), bos, dtype=segments.dtype)
    return torch.cat([segments.repeat(1, n_repeats), b], 1)


@wrong("ch4_repeated_tokens", "repeated_tokens", "a BOS before every copy", hint="one BOS")
def repeated_tokens_bos_each(segments, n_repeats, bos):
    b = torch.full((segments.shape[0], 1), bos, dtype=segments.dtype)
    return torch.cat([b, segments] * n_repeats, 1)


# ------------------------------------------------------------ prefix_matching_score
def _mass(pattern, mask):
    return (pattern * mask[:, None].to(pattern.dtype)).sum(-1)


@wrong("ch4_prefix_matching_score", "prefix_matching_score",
       "averages over all positions instead of the later repeats", hint="later repeats")
def pm_all_positions(pattern, tokens):
    return _mass(pattern, induction_target_mask(tokens)).mean(dim=(0, 2))


@wrong("ch4_prefix_matching_score", "prefix_matching_score",
       "scores attention to the earlier occurrence itself (duplicate token)", hint="duplicate-token")
def pm_duplicate(pattern, tokens):
    mask = duplicate_target_mask(tokens)
    valid = mask.any(-1)
    return (_mass(pattern, mask) * valid[:, None]).sum(dim=(0, 2)) / valid.sum()


@wrong("ch4_prefix_matching_score", "prefix_matching_score",
       "only the most recent earlier occurrence counts", hint="every")
def pm_most_recent(pattern, tokens):
    tgt = induction_target_mask(tokens)
    # keep only the right-most target of each query
    idx = torch.arange(tokens.shape[1]).expand_as(tgt)
    last = torch.where(tgt, idx, torch.full_like(idx, -1)).max(-1, keepdim=True).values
    recent = tgt & (idx == last)
    valid = tgt.any(-1)
    return (_mass(pattern, recent) * valid[:, None]).sum(dim=(0, 2)) / valid.sum()


@wrong("ch4_prefix_matching_score", "prefix_matching_score", "keeps the batch dimension", hint="batch")
def pm_per_example(pattern, tokens):
    tgt = induction_target_mask(tokens)
    valid = tgt.any(-1)
    return (_mass(pattern, tgt) * valid[:, None]).sum(-1) / valid.sum(-1, keepdim=True)


# -------------------------------------------------------- prefix_matching_all_heads
@wrong("ch4_prefix_matching_all_heads", "prefix_matching_all_heads", "returns [n_heads, n_layers]", hint="layers first")
def pm_all_transposed(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([M.prefix_matching_score(cache[hook_name("pattern", l)], tokens)
                        for l in range(model.cfg.n_layers)]).T


@wrong("ch4_prefix_matching_all_heads", "prefix_matching_all_heads", "uses layer 0's pattern for every layer",
       hint="each layer's own pattern")
def pm_all_layer0(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([M.prefix_matching_score(cache[hook_name("pattern", 0)], tokens)
                        for _ in range(model.cfg.n_layers)])


@wrong("ch4_prefix_matching_all_heads", "prefix_matching_all_heads", "scores only the last layer", hint="every layer")
def pm_all_last_layer(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return M.prefix_matching_score(cache[hook_name("pattern", model.cfg.n_layers - 1)], tokens)


@wrong("ch4_prefix_matching_all_heads", "prefix_matching_all_heads", "uses the pre-softmax scores", hint=None)
def pm_all_scores(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([M.prefix_matching_score(cache[hook_name("attn_scores", l)].nan_to_num(0, 0, 0).clamp(-50, 50), tokens)
                        for l in range(model.cfg.n_layers)])


# -------------------------------------------------------------- logit_copying_score
def _ratio(v, attended):
    return v[torch.arange(v.shape[0]), attended] / v.sum(-1)


@wrong("ch4_logit_copying_score", "logit_copying_score", "ReLU before mean-centring", hint="*before* the ReLU")
def copy_relu_first(logits, attended):
    return float((_ratio(logits.clamp_min(0), attended) - _ratio((-logits).clamp_min(0), attended)).mean())


@wrong("ch4_logit_copying_score", "logit_copying_score", "only r+, no anti-copying part", hint="r-")
def copy_only_up(logits, attended):
    x = logits - logits.mean(-1, keepdim=True)
    return float(_ratio(x.clamp_min(0), attended).mean())


@wrong("ch4_logit_copying_score", "logit_copying_score", "mean-centres over the tokens (dim 0)", hint="dim=-1")
def copy_centre_wrong_dim(logits, attended):
    x = logits - logits.mean(0, keepdim=True)
    return float((_ratio(x.clamp_min(0), attended) - _ratio((-x).clamp_min(0), attended)).mean())


@wrong("ch4_logit_copying_score", "logit_copying_score", "rescales with 2 r+ - 1", hint="2 r+ - 1")
def copy_two_r_minus_one(logits, attended):
    x = logits - logits.mean(-1, keepdim=True)
    return float((2 * _ratio(x.clamp_min(0), attended) - 1).mean())


# -------------------------------------------------------------- eigen_copying_score
@wrong("ch4_eigen_copying_score", "eigen_copying_score", "eigenvalues of W_OV alone", hint="W_OV = W_V W_O alone")
def eig_ov_only(W_E, W_V, W_O, W_U):
    eig = torch.linalg.eigvals((W_V @ W_O).double())
    return float(eig.sum().real / eig.abs().sum())


@wrong("ch4_eigen_copying_score", "eigen_copying_score", "absolute value of the sum", hint="|sum|")
def eig_abs_sum(W_E, W_V, W_O, W_U):
    eig = torch.linalg.eigvals((W_O @ W_U @ W_E @ W_V).double())
    return float(eig.sum().abs() / eig.abs().sum())


@wrong("ch4_eigen_copying_score", "eigen_copying_score", "singular values below", hint="singular values")
def eig_singular(W_E, W_V, W_O, W_U):
    full = (W_E @ W_V @ W_O @ W_U).double()
    return float(torch.linalg.eigvals(full).sum().real / torch.linalg.svdvals(full).sum())


@wrong("ch4_eigen_copying_score", "eigen_copying_score", "|Re lambda| below", hint="|Re lambda|")
def eig_real_abs(W_E, W_V, W_O, W_U):
    eig = torch.linalg.eigvals((W_O @ W_U @ W_E @ W_V).double())
    return float(eig.real.sum() / eig.real.abs().sum())


# ----------------------------------------------------------------- ov_top1_accuracy
@wrong("ch4_ov_top1_accuracy", "ov_top1_accuracy", "argmax over the wrong axis", hint="argmax(dim=-1)")
def top1_wrong_axis(W_E, W_V, W_O, W_U):
    full = W_E @ W_V @ W_O @ W_U
    return float((full.argmax(0) == torch.arange(full.shape[0])).float().mean())


@wrong("ch4_ov_top1_accuracy", "ov_top1_accuracy", "returns the count", hint="fraction")
def top1_count(W_E, W_V, W_O, W_U):
    full = W_E @ W_V @ W_O @ W_U
    return float((full.argmax(-1) == torch.arange(full.shape[0])).float().sum())


@wrong("ch4_ov_top1_accuracy", "ov_top1_accuracy", "argmin", hint="argmin")
def top1_argmin(W_E, W_V, W_O, W_U):
    full = W_E @ W_V @ W_O @ W_U
    return float((full.argmin(-1) == torch.arange(full.shape[0])).float().mean())


# ---------------------------------------------------------------- composition_score
@wrong("ch4_composition_score", "composition_score", "no normalisation", hint="scale")
def comp_unnormalised(W_A, W_B):
    return torch.linalg.matrix_norm(W_A @ W_B)


@wrong("ch4_composition_score", "composition_score", "spectral norms", hint="spectral")
def comp_spectral(W_A, W_B):
    n = torch.linalg.matrix_norm
    return n(W_A @ W_B) / (n(W_A, ord=2) * n(W_B, ord=2))


@wrong("ch4_composition_score", "composition_score", "sum of norms below", hint="product")
def comp_sum(W_A, W_B):
    n = torch.linalg.matrix_norm
    return n(W_A @ W_B) / (n(W_A) + n(W_B))


@wrong("ch4_composition_score", "composition_score", "squared norms", hint="no squares")
def comp_squared(W_A, W_B):
    n = torch.linalg.matrix_norm
    return n(W_A @ W_B) ** 2 / (n(W_A) ** 2 * n(W_B) ** 2)


# ------------------------------------------------------------------ kqv_composition
def _cs(A, B):
    n = torch.linalg.matrix_norm
    return n(A @ B) / (n(A) * n(B))


@wrong("ch4_kqv_composition", "kqv_composition", "K computed with the Q formula (no transpose)", hint="K-composition")
def kqv_k_as_q(W_OV0, W_QK1, W_OV1):
    A, QK = W_OV0[None], W_QK1[:, None]
    return {"Q": _cs(A, QK), "K": _cs(A, QK), "V": _cs(A, W_OV1[:, None])}


@wrong("ch4_kqv_composition", "kqv_composition", "K as W_QK1 W_OV0 (forgot the transpose)", hint="transpose W_OV0")
def kqv_k_no_transpose(W_OV0, W_QK1, W_OV1):
    A, QK = W_OV0[None], W_QK1[:, None]
    return {"Q": _cs(A, QK), "K": _cs(QK, A), "V": _cs(A, W_OV1[:, None])}


@wrong("ch4_kqv_composition", "kqv_composition", "column-vector order for Q and V", hint="W_OV0 @ W_QK1")
def kqv_column_order(W_OV0, W_QK1, W_OV1):
    A, QK = W_OV0[None], W_QK1[:, None]
    return {"Q": _cs(QK, A), "K": _cs(QK, A.transpose(-1, -2)), "V": _cs(W_OV1[:, None], A)}


@wrong("ch4_kqv_composition", "kqv_composition", "returns [h0, h1]", hint="[later head h1, earlier head h0]")
def kqv_transposed_index(W_OV0, W_QK1, W_OV1):
    A, QK = W_OV0[:, None], W_QK1[None]
    return {"Q": _cs(A, QK), "K": _cs(QK, A.transpose(-1, -2)), "V": _cs(A, W_OV1[None])}


# ------------------------------------------------------------ random_composition_scores
@wrong("ch4_random_composition_scores", "random_composition_scores", "d_head x d_head random matrices", hint="d_model x d_model")
def baseline_small(d_model, d_head, n_samples, seed):
    g = torch.Generator().manual_seed(seed)
    return _cs(torch.randn(n_samples, d_head, d_head, generator=g), torch.randn(n_samples, d_head, d_head, generator=g))


@wrong("ch4_random_composition_scores", "random_composition_scores", "uniform instead of Gaussian", hint="torch.randn")
def baseline_uniform(d_model, d_head, n_samples, seed):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.rand(n_samples, *s, generator=g)

    return _cs(r(d_model, d_head) @ r(d_head, d_model), r(d_model, d_head) @ r(d_model, d_head).transpose(-1, -2))


@wrong("ch4_random_composition_scores", "random_composition_scores", "one random pair repeated", hint="fresh random weights")
def baseline_one_pair(d_model, d_head, n_samples, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d_model, d_head, generator=g) @ torch.randn(d_head, d_model, generator=g)
    B = torch.randn(d_model, d_head, generator=g) @ torch.randn(d_head, d_model, generator=g)
    return _cs(A, B).expand(n_samples)


@wrong("ch4_random_composition_scores", "random_composition_scores", "returns the mean only", hint="one score per random pair")
def baseline_mean_only(d_model, d_head, n_samples, seed):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(n_samples, *s, generator=g)

    return _cs(r(d_model, d_head) @ r(d_head, d_model), r(d_model, d_head) @ r(d_head, d_model)).mean()


# --------------------------------------------------------------------------- icl_score
def _pos(n_ctx):
    return round(50 * n_ctx / 512), round(500 * n_ctx / 512)


@wrong("ch4_icl_score", "icl_score", "off by one: column n instead of n - 1", hint="off by one")
def icl_off_by_one(per_token_loss):
    e, l = _pos(per_token_loss.shape[1] + 1)
    return float(per_token_loss[:, l].mean() - per_token_loss[:, e].mean())


@wrong("ch4_icl_score", "icl_score", "early minus late", hint="late minus early")
def icl_sign(per_token_loss):
    e, l = _pos(per_token_loss.shape[1] + 1)
    return float(per_token_loss[:, e - 1].mean() - per_token_loss[:, l - 1].mean())


@wrong("ch4_icl_score", "icl_score", "a ratio instead of a difference", hint="ratio")
def icl_ratio(per_token_loss):
    e, l = _pos(per_token_loss.shape[1] + 1)
    return float(per_token_loss[:, l - 1].mean() / per_token_loss[:, e - 1].mean())


@wrong("ch4_icl_score", "icl_score", "the paper's tokens 50 and 500 without scaling", hint=None)
def icl_unscaled(per_token_loss):
    return float(per_token_loss[:, 499].mean() - per_token_loss[:, 49].mean())
