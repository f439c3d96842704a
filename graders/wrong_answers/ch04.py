"""Catalogue of plausible wrong answers to chapter 4 (04_metrics).

Same contract as ``ch01.py``: each entry must make its grade cell fail (visible and hidden parts,
and the hidden part alone); ``hint`` must appear in the visible checks' message.
"""

from __future__ import annotations

import torch

from induction_course.course.checks.catalogue import WrongAnswer, new_catalogue  # noqa: F401

from induction_course import metrics as M


WRONG_ANSWERS, wrong = new_catalogue()


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


# ---------------------------------------------------------------------- fold_layer_norm
@wrong("ch4_fold_layer_norm", "fold_layer_norm", "forgets the centring", hint="centre the folded matrix")
def fold_no_centre(w, b, W, b_W):
    return w[:, None] * W, b @ W + b_W


@wrong("ch4_fold_layer_norm", "fold_layer_norm", "centres but never scales by w", hint="w[:, None] * W")
def fold_no_weight(w, b, W, b_W):
    return W - W.mean(-2, keepdim=True), b @ W + b_W


@wrong("ch4_fold_layer_norm", "fold_layer_norm", "centres over d_head", hint="not over d_head")
def fold_centre_wrong_dim(w, b, W, b_W):
    Ww = w[:, None] * W
    return Ww - Ww.mean(-1, keepdim=True), b @ W + b_W


@wrong("ch4_fold_layer_norm", "fold_layer_norm", "drops the LayerNorm bias", hint="b_folded = b @ W + b_W")
def fold_no_bias(w, b, W, b_W):
    Ww = w[:, None] * W
    return Ww - Ww.mean(-2, keepdim=True), b_W


# ---------------------------------------------------------------------- kcircuit_scores
def _rank_stats(C):
    diag = C.diagonal(dim1=-2, dim2=-1)
    rank = (C > diag[..., None]).sum(-1).double()
    return (rank == 0).double().mean(-1), rank.mean(-1)


@wrong("ch4_kcircuit_scores", "kcircuit_scores", "no earlier head on the key side: E W_QK E^T", hint="route the key")
def kc_no_ov(E, W_QK1, W_OV0):
    C = (E @ W_QK1 @ E.T)[:, None].expand(W_QK1.shape[0], W_OV0.shape[0], -1, -1)
    return _rank_stats(C)


@wrong("ch4_kcircuit_scores", "kcircuit_scores", "argmax down the columns", hint="along the row")
def kc_columns(E, W_QK1, W_OV0):
    C = (E @ W_QK1[:, None]) @ (E @ W_OV0[None]).transpose(-1, -2)
    return _rank_stats(C.transpose(-1, -2))


@wrong("ch4_kcircuit_scores", "kcircuit_scores", "ranks from 1", hint="strictly larger")
def kc_rank_from_one(E, W_QK1, W_OV0):
    C = (E @ W_QK1[:, None]) @ (E @ W_OV0[None]).transpose(-1, -2)
    top1, rank = _rank_stats(C)
    return top1, rank + 1


@wrong("ch4_kcircuit_scores", "kcircuit_scores", "returns [h0, h1]", hint="later head h1")
def kc_transposed(E, W_QK1, W_OV0):
    C = (E @ W_QK1[:, None]) @ (E @ W_OV0[None]).transpose(-1, -2)
    top1, rank = _rank_stats(C)
    return top1.T, rank.T


# ------------------------------------------------------------------ key_score_by_source
def _scores(q, k_parts):
    return torch.einsum("bqe,bske->bsqk", q, k_parts) / q.shape[-1] ** 0.5


@wrong("ch4_key_score_by_source", "key_score_by_source", "raw score on targets, no comparison with the other keys",
       hint="mean score of its other visible keys")
def ks_raw(q, k_parts, target):
    t = target[:, None].to(q.dtype)
    return (_scores(q, k_parts) * t).sum((0, 2, 3)) / target.sum()


@wrong("ch4_key_score_by_source", "key_score_by_source", "forgets 1/sqrt(d_head)", hint="sqrt(d_head)")
def ks_no_scale(q, k_parts, target):
    return M.key_score_from_parts(q, k_parts, target) * q.shape[-1] ** 0.5


@wrong("ch4_key_score_by_source", "key_score_by_source", "compares with the mean over every visible key, targets included",
       hint="*not* targets")
def ks_incl_targets(q, k_parts, target):
    S = _scores(q, k_parts)
    n = target.shape[-1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    m = (S * causal).sum(-1) / causal.sum(-1)
    t = target[:, None].to(q.dtype)
    return ((S - m[..., None]) * t).sum((0, 2, 3)) / target.sum()


@wrong("ch4_key_score_by_source", "key_score_by_source", "mean over the whole row, ignoring the causal mask",
       hint="causal mask")
def ks_full_row(q, k_parts, target):
    S = _scores(q, k_parts)
    t = target[:, None].to(q.dtype)
    return ((S - S.mean(-1, keepdim=True)) * t).sum((0, 2, 3)) / target.sum()


# ----------------------------------------------------------------------- icl_band_score
def _band_diff(x, early, late, shift=0):
    (e0, e1), (l0, l1) = early, late
    return x[:, l0 - 1 + shift:l1 + shift].mean(-1) - x[:, e0 - 1 + shift:e1 + shift].mean(-1)


@wrong("ch4_icl_band_score", "icl_band_score", "std instead of the standard error", hint="divided by sqrt(n_windows)")
def band_std(per_token_loss, early, late):
    d = _band_diff(per_token_loss.double(), early, late)
    return float(d.mean()), float(d.std())


@wrong("ch4_icl_band_score", "icl_band_score", "off by one: token n is column n", hint="off by one")
def band_off_by_one(per_token_loss, early, late):
    x = per_token_loss.double()
    (e0, e1), (l0, l1) = early, late
    d = x[:, l0:min(l1 + 1, x.shape[1])].mean(-1) - x[:, e0:e1 + 1].mean(-1)
    return float(d.mean()), float(d.std() / len(d) ** 0.5)


@wrong("ch4_icl_band_score", "icl_band_score", "early minus late", hint="late minus early")
def band_reversed(per_token_loss, early, late):
    d = -_band_diff(per_token_loss.double(), early, late)
    return float(d.mean()), float(d.std() / len(d) ** 0.5)


@wrong("ch4_icl_band_score", "icl_band_score", "std of the losses, not of the differences", hint="per-window *differences*")
def band_std_of_losses(per_token_loss, early, late):
    x = per_token_loss.double()
    d = _band_diff(x, early, late)
    (l0, l1) = late
    return float(d.mean()), float(x[:, l0 - 1:l1].std() / len(d) ** 0.5)


# ------------------------------------------------------------- the contract (issue 11)
@wrong("ch4_composition_score", "composition_score", "norms over every axis at once: right for one pair of "
       "matrices, wrong for the batches the docstring promises")
def composition_flat_norm(W_A, W_B):
    return torch.norm(W_A @ W_B) / (torch.norm(W_A) * torch.norm(W_B))


TRUSTED_ONLY, trusted_only = new_catalogue()  # contract breaks only the trusted check sees (see ch01.py)


@trusted_only("ch4_random_composition_scores", "random_composition_scores", "ignores its seed: global random state, so the "
              "same seed gives another baseline each time")
def baseline_ignores_seed(d_model, d_head, n_samples, seed):
    def randn(*shape):
        return torch.randn(n_samples, *shape, dtype=torch.float64)

    W_A = randn(d_model, d_head) @ randn(d_head, d_model)
    W_B = randn(d_model, d_head) @ randn(d_model, d_head).transpose(-1, -2)
    return M.composition_score(W_A, W_B)
