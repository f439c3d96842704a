"""Checks for chapter 4 (metrics): visible checks with kind hints, hidden-test comparisons.

Same design as :mod:`induction_course.course.checks.ch01` (chapter 1): every exercise is an
:class:`~induction_course.course.checks.ch01.Exercise` with a seeded input maker, the reference answer
(from :mod:`induction_course.metrics`) and a comparison that names known mistakes; the runner
is :class:`induction_course.course.checks.core.ChapterChecks`, as in chapters 2, 3 and 5.
"""

from __future__ import annotations

import math

import torch

from induction_course import metrics as M
from induction_course.course.checks.ch04_localise import (
    loc_composition_score,
    loc_icl_band_score,
    loc_kcircuit_scores,
)
from induction_course.course.checks.core import (
    ChapterChecks,
    CheckFailed,
    Exercise,
    as_tensor,
    compare_scalar,
    compare_tensor,
    fail,
    generator,
    randn,
    random_model,
)
from induction_course.probes import induction_target_mask, repeated_random_tokens

__all__ = ["CheckFailed", "EXERCISES", "PIECES", "compare_with_reference", "run_visible_checks", "yours"]


# ------------------------------------------------------ 4. logit copying score
def _case_logit_copy(seed, n_tokens=8, n_cols=15, strength=2.0):
    g = generator(seed)
    attended = torch.randperm(n_cols, generator=g)[:n_tokens]
    x = randn(g, n_tokens, n_cols) + 3.0  # an offset that mean-centring must remove
    sign = 1.0 if seed % 2 == 0 else -1.0
    x[torch.arange(n_tokens), attended] += sign * strength
    return {"logits": x, "attended": attended}


def _cmp_logit_copy(name, actual, expected, case):
    __tracebackhide__ = True
    x, a = case["logits"].double(), case["attended"]
    idx = a.view(-1, 1)
    xc = x - x.mean(-1, keepdim=True)

    def ratio(v):
        return v.gather(-1, idx).squeeze(-1) / v.sum(-1)

    relu_first = x.clamp_min(0)
    relu_first_c = relu_first - relu_first.mean(-1, keepdim=True)
    up = xc.clamp_min(0)
    mistakes = [
        (float(ratio(relu_first).mean() - ratio((-x).clamp_min(0)).mean()),
         "mean-centre each row *before* the ReLU: a constant shift of all logits changes nothing, "
         "but it changes what survives the ReLU."),
        (float((ratio(relu_first_c.clamp_min(0)) - ratio((-relu_first_c).clamp_min(0))).mean()),
         "ReLU after mean-centring, not before (and only once)."),
        (float(ratio(up).mean()), "subtract the share of the *lowered* mass (r-): the score runs from "
         "-1 (anti-copying) to +1 (copying)."),
        (float((2 * ratio(up) - 1).mean()), "r+ - r-, not 2 r+ - 1: a random head should score about 0."),
    ]
    xc0 = x - x.mean(0, keepdim=True)
    up0, down0 = xc0.clamp_min(0), (-xc0).clamp_min(0)
    mistakes.append((float((ratio(up0) - ratio(down0)).mean()), "mean-centre over the vocabulary (each row, "
                     "dim=-1), not over the tokens."))
    compare_scalar(name, actual, expected, mistakes,
                "per row: centre, p = ReLU(x), n = ReLU(-x), r+ = p[t]/sum(p), r- = n[t]/sum(n); score = mean(r+ - r-).")


# -------------------------------------------------- 5. eigenvalue copying score
def _case_ov_weights(seed, d_vocab=31, d_model=12, d_head=4, copy=None):
    g = generator(seed)
    W_E = randn(g, d_vocab, d_model)
    W_V = randn(g, d_model, d_head, scale=d_model**-0.5)
    W_O = randn(g, d_head, d_model, scale=d_head**-0.5)
    W_U = randn(g, d_model, d_vocab, scale=d_model**-0.5)
    # copy = +1: W_U aligned with W_E and W_O with W_V^T, so the head copies; -1: it
    # suppresses (negative eigenvalues); 0: random. Default: +1 for even seeds, -1 for odd.
    copy = (1 if seed % 2 == 0 else -1) if copy is None else int(copy)
    if copy:
        W_U = W_U + 0.3 * W_E.T / d_vocab**0.5
        W_O = W_O + copy * 0.8 * W_V.T
    return {"W_E": W_E, "W_V": W_V, "W_O": W_O, "W_U": W_U}


def _full_ov(case):
    return case["W_E"].double() @ case["W_V"].double() @ case["W_O"].double() @ case["W_U"].double()


def _ref_eig_copy(case):
    eig = torch.linalg.eigvals(_full_ov(case))
    return float(eig.sum().real / eig.abs().sum())


def _cmp_eig_copy(name, actual, expected, case):
    __tracebackhide__ = True
    full = _full_ov(case)
    eig = torch.linalg.eigvals(full)
    ov = case["W_V"].double() @ case["W_O"].double()
    eov = torch.linalg.eigvals(ov)
    sv = torch.linalg.svdvals(full)
    mistakes = [
        (float(eov.sum().real / eov.abs().sum()), "use the *full* OV circuit W_E W_V W_O W_U (token to logit), "
         "not W_OV = W_V W_O alone: copying is about tokens, and W_E, W_U change the eigenvalues."),
        (float(eig.sum().abs() / eig.abs().sum()), "keep the sign: Re(sum of eigenvalues), not |sum|."),
        (float(eig.sum().real / sv.sum()), "divide by the sum of |eigenvalues|, not of singular values."),
        (float(eig.real.sum() / eig.real.abs().sum()), "below, sum the moduli |lambda| of the complex "
         "eigenvalues, not |Re lambda|."),
    ]
    compare_scalar(name, actual, expected, mistakes,
                "score = Re(sum lambda) / sum |lambda| over the eigenvalues of W_E W_V W_O W_U (or of the "
                "d_head x d_head matrix W_O W_U W_E W_V, which has the same non-zero eigenvalues).", tol=1e-3)


def _ref_top1(case):
    full = _full_ov(case)
    return float((full.argmax(-1) == torch.arange(full.shape[0])).double().mean())


def _case_top1(seed, d_vocab=31, d_model=12, d_head=6):
    case = _case_ov_weights(seed, d_vocab, d_model, d_head, copy=1)
    with torch.no_grad():  # a stronger copier: about half its tokens are top-1
        case["W_U"] = case["W_U"] + 0.6 * case["W_E"].T
        case["W_O"] = case["W_O"] + 1.0 * case["W_V"].T
    return case


def _cmp_top1(name, actual, expected, case):
    __tracebackhide__ = True
    full = _full_ov(case)
    n = full.shape[0]
    ar = torch.arange(n)
    mistakes = [
        (float((full.argmax(0) == ar).double().mean()), "for each *attended* token (a row), look for the largest "
         "logit along that row: argmax(dim=-1)."),
        (float((full.argmin(-1) == ar).double().mean()), "the top-1 token is the argmax, not the argmin."),
        (float((full.argmax(-1) == ar).double().sum()), "return the fraction of tokens (a mean), not the count."),
        (float(((full - full.mean(0)).argmax(-1) == ar).double().mean()), "no centring over tokens: "
         "top-1 of each row of the raw circuit."),
    ]
    compare_scalar(name, actual, expected, mistakes, "mean over rows t of [argmax_j M[t, j] == t], M = W_E W_V W_O W_U.")


# ---------------------------------------------------------- 6. composition score
def _case_comp(seed, m=7, n=9, p=5, batch=()):
    g = generator(seed)
    A = randn(g, *batch, m, n)
    B = randn(g, *batch, n, p) + 0.5 * randn(g, *batch, n, 1) @ randn(g, *batch, 1, p)
    return {"W_A": A, "W_B": B}


def _ref_comp(case):
    score = M.composition_score(case["W_A"].double(), case["W_B"].double())
    return float(score) if score.dim() == 0 else score


def _cmp_comp(name, actual, expected, case):
    __tracebackhide__ = True
    if isinstance(expected, torch.Tensor):  # a batch [..., m, n] @ [..., n, p]: one score per matrix pair
        compare_tensor(name, actual, expected, what="the scores", atol=1e-5, rtol=1e-4,
                       shape_doc=" (one score per pair of matrices: the batch dimensions of W_A and W_B)",
                       shape_hints={(): "the docstring promises batches: norm over the last two axes only "
                                    "(torch.linalg.matrix_norm does), not over everything."})
        return
    A, B = case["W_A"].double(), case["W_B"].double()
    fro = torch.linalg.matrix_norm
    spec = lambda X: torch.linalg.matrix_norm(X, ord=2)  # noqa: E731
    mistakes = [
        (float(fro(A @ B)), "divide by ||W_A||_F ||W_B||_F: the score must not depend on the scale of the weights."),
        (float(fro(A @ B) / (spec(A) * spec(B))), "use Frobenius norms (torch.linalg.matrix_norm, the default), "
         "not spectral norms."),
        (float(fro(A @ B) / (fro(A) + fro(B))), "divide by the *product* of the norms, not their sum."),
        (float(fro(A @ B) ** 2 / (fro(A) ** 2 * fro(B) ** 2)), "no squares: ||.||_F is the square root of the "
         "sum of squares."),
    ]
    compare_scalar(name, actual, expected, mistakes, "||W_A W_B||_F / (||W_A||_F ||W_B||_F).")


# ----------------------------------------------------- 7. K, Q, V composition
def _case_kqv(seed, h0=3, h1=2, d=10, dh=3):
    g = generator(seed)

    def lowrank(k):
        return randn(g, k, d, dh) @ randn(g, k, dh, d)

    return {"W_OV0": lowrank(h0), "W_QK1": lowrank(h1), "W_OV1": lowrank(h1)}


def _ref_kqv(case):
    out = M.composition_from_circuits(case["W_OV0"].double(), case["W_QK1"].double(), case["W_OV1"].double())
    return out


def _cmp_kqv(name, actual, expected, case):
    __tracebackhide__ = True
    if not isinstance(actual, dict):
        fail(name, f"return a dict {{'Q': ..., 'K': ..., 'V': ...}}, got {type(actual).__name__}.")
    if set(actual) != {"Q", "K", "V"}:
        fail(name, f"the dict's keys are {sorted(actual)}, expected ['K', 'Q', 'V'].")
    OV0, QK1, OV1 = (case[k].double() for k in ("W_OV0", "W_QK1", "W_OV1"))
    A = OV0[None]
    cs = M.composition_score
    wrong_k = cs(A, QK1[:, None])  # the Q formula
    k_no_t = cs(QK1[:, None], A)  # W_QK1 W_OV0 (no transpose)
    q_swapped = cs(QK1[:, None], A)
    q_t = cs(A, QK1[:, None].transpose(-1, -2))
    v_swapped = cs(OV1[:, None], A)
    h1, h0 = expected["Q"].shape
    shape_hints = {(h0, h1): "index as [later head h1, earlier head h0]: rows are layer-1 heads."}
    compare_tensor(name, actual["Q"], expected["Q"], what="actual['Q']", shape_hints=shape_hints, mistakes=[
        (q_swapped, "Q-composition: the earlier head writes into the *query* side: (x W_OV0) W_QK1, so "
         "W_OV0 @ W_QK1 (row vectors, TransformerLens convention), not W_QK1 @ W_OV0."),
        (q_t, "that is the K-composition formula: for Q, W_OV0 @ W_QK1 with no transpose."),
        (expected["Q"].T, "index as [h1, h0]."),
    ])
    compare_tensor(name, actual["K"], expected["K"], what="actual['K']", shape_hints=shape_hints, mistakes=[
        (wrong_k, "K-composition: the earlier head's output enters the *key*: x_q W_QK1 (x W_OV0)^T, so "
         "the matrix is W_QK1 @ W_OV0.T (or W_OV0 @ W_QK1.T, same norm), not W_OV0 @ W_QK1."),
        (k_no_t, "transpose W_OV0: the key side is x_q W_QK1 (x W_OV0)^T = x_q (W_QK1 W_OV0^T) x^T."),
        (expected["K"].T, "index as [h1, h0]."),
    ])
    compare_tensor(name, actual["V"], expected["V"], what="actual['V']", shape_hints=shape_hints, mistakes=[
        (v_swapped, "V-composition: (x W_OV0) W_OV1, so W_OV0 @ W_OV1, not W_OV1 @ W_OV0."),
        (expected["V"].T, "index as [h1, h0]."),
    ])


# ------------------------------------------------------- 8. random baseline
def _case_baseline(seed, d_model=16, d_head=4, n_samples=400):
    return {"d_model": d_model, "d_head": d_head, "n_samples": n_samples, "seed": seed}


def _ref_baseline(case):
    b = M.composition_baseline(type("C", (), {"d_model": case["d_model"], "d_head": case["d_head"]}),
                               n_samples=4000, seed=10_000 + case["seed"])
    return b


def _cmp_baseline(name, actual, expected, case):
    __tracebackhide__ = True
    n = case["n_samples"]
    actual = as_tensor(name, actual, "the scores")
    if actual.shape != (n,):
        fail(name, f"the scores have shape {list(actual.shape)}, expected [{n}] (one score per random pair).",
              "draw n_samples pairs of heads in one batch ([n_samples, d_model, d_head] ...) and return every score.")
    mean, std = float(actual.double().mean()), float(actual.double().std())
    tol = 4 * expected.std / math.sqrt(n) + 0.003
    dh = case["d_head"]
    if abs(mean - expected.mean) <= tol and 0.5 * expected.std <= std <= 2.0 * expected.std:
        return
    hint = None
    if abs(mean - 1 / math.sqrt(dh)) < 0.03 and abs(1 / math.sqrt(dh) - expected.mean) > 0.03:
        hint = ("that looks like random d_head x d_head matrices: the circuits W_OV = W_V W_O and "
                "W_QK = W_Q W_K^T are d_model x d_model (of rank d_head).")
    elif mean > 0.6:
        hint = ("random weights should have mean 0: use torch.randn, not torch.rand (uniform in [0, 1) "
                "makes every matrix nearly rank one and the score close to 1).")
    elif std < 0.5 * expected.std:
        hint = "the scores barely vary: draw fresh random weights for every sample."
    fail(name, f"your scores have mean {mean:.4f} (std {std:.4f}); random heads with these shapes have "
          f"mean {expected.mean:.4f} (std {expected.std:.4f}).",
          hint or "W_A = W_V W_O and W_B = W_Q W_K^T with i.i.d. Gaussian W_Q, W_K, W_V [d_model, d_head], "
          "W_O [d_head, d_model]; score each pair with composition_score.")


# ------------------------------------------------------------- 7. folding LayerNorm
def _case_fold(seed, d_model=8, n_heads=2, d_head=3):
    g = generator(seed)
    return {"w": 1.0 + 0.5 * randn(g, d_model), "b": randn(g, d_model, scale=0.5),
            "W": randn(g, n_heads, d_model, d_head), "b_W": randn(g, n_heads, d_head, scale=0.3)}


def _ref_fold(case):
    return M.fold_layer_norm(case["w"].double(), case["b"].double(), case["W"].double(), case["b_W"].double())


def _cmp_fold(name, actual, expected, case):
    __tracebackhide__ = True
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        fail(name, f"return a pair (W_folded, b_folded), got {type(actual).__name__}.")
    w, b, W, b_W = (case[k].double() for k in ("w", "b", "W", "b_W"))
    W_f, b_f = expected
    Ww = w[:, None] * W
    cols = W * w[None, None, :W.shape[-1]] if W.shape[-1] == w.shape[0] else None
    compare_tensor(name, actual[0], W_f, what="W_folded", shape_doc=" (the shape of W)", mistakes=[
        (Ww, "centre the folded matrix: LayerNorm subtracts the mean of x, so subtract the mean over "
         "d_model (dim=-2) of w[:, None] * W."),
        (W - W.mean(-2, keepdim=True), "scale each input row of W by the LayerNorm weight w first: w[:, None] * W."),
        (Ww - Ww.mean(-1, keepdim=True), "centre over d_model, the input dimension (dim=-2), not over d_head."),
    ] + ([(cols, "w scales the rows of W (the d_model input side), not its columns.")] if cols is not None else []))
    compare_tensor(name, actual[1], b_f, what="b_folded", shape_doc=" (the shape of b_W)", mistakes=[
        (b_W, "the LayerNorm bias passes through W too: b_folded = b @ W + b_W."),
        (torch.einsum("d,...de->...e", b * w, W) + b_W, "the bias is added after the weight: b @ W, not (b * w) @ W."),
        (torch.einsum("d,...de->...e", b, W), "keep the head's own bias: + b_W."),
    ])


# ------------------------------------------------------ 8. the token-level K-circuit
def _case_kcircuit(seed, n_tokens=12, d_model=10, h0=3, h1=2, d_head=3):
    g = generator(seed)
    E = randn(g, n_tokens, d_model)

    def lowrank(k):
        return randn(g, k, d_model, d_head) @ randn(g, k, d_head, d_model) / d_model

    W_QK1, W_OV0 = lowrank(h1), lowrank(h0)
    # make earlier head 0 a clean token-copier into a subspace that head 0 of the later layer matches
    W_OV0[0] = W_OV0[0] + 0.8 * torch.eye(d_model)
    W_QK1[0] = W_QK1[0] + 0.8 * torch.eye(d_model)
    return {"E": E, "W_QK1": W_QK1, "W_OV0": W_OV0}


def _kc_circuit(E, QK, OV):
    return (E @ QK[:, None]) @ (E @ OV[None]).transpose(-1, -2)  # [h1, h0, n, n]


def _ref_kcircuit(case):
    top1, rank = M.diagonal_rank_scores(_kc_circuit(case["E"].double(), case["W_QK1"].double(), case["W_OV0"].double()))
    return top1, rank


def _cmp_kcircuit(name, actual, expected, case):
    __tracebackhide__ = True
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        fail(name, f"return a pair (top1, mean_rank), got {type(actual).__name__}.")
    E, QK, OV = (case[k].double() for k in ("E", "W_QK1", "W_OV0"))
    C = _kc_circuit(E, QK, OV)
    h1, h0 = QK.shape[0], OV.shape[0]
    noT = (E @ QK[:, None]) @ (E @ OV[None].transpose(-1, -2)).transpose(-1, -2)
    colwise = M.diagonal_rank_scores(C.transpose(-1, -2))
    no_ov = M.diagonal_rank_scores((E @ QK @ E.T)[:, None].expand(h1, h0, -1, -1))
    top1, rank = expected
    hints = {(h0, h1): "index as [later head h1, earlier head h0]."}
    compare_tensor(name, actual[0], top1, what="top1", shape_hints=hints, mistakes=[
        (colwise[0], "for each query token (a row), look along the row: argmax over the key-side tokens (dim=-1)."),
        (M.diagonal_rank_scores(noT)[0], "the key side is E W_OV0 (what head h0 writes when it attends to each "
         "token), then transposed as a whole: (E @ W_OV0).transpose(-1, -2), not E @ W_OV0.T."),
        (no_ov[0], "route the key through the earlier head: E W_QK1 (E W_OV0)^T, not E W_QK1 E^T."),
        (top1.T, "index as [h1, h0]."),
    ])
    compare_tensor(name, actual[1], rank, what="mean_rank", shape_hints=hints, mistakes=[
        (rank + 1, "rank 0 means the diagonal is the largest of its row: count the entries strictly larger."),
        (colwise[1], "rank the diagonal entry within its row (dim=-1), not its column."),
        ((C >= C.diagonal(dim1=-2, dim2=-1)[..., None]).sum(-1).double().mean(-1),
         "count only the entries strictly larger than the diagonal one (>), not >=."),
    ])


# ------------------------------------------------ 9. key scores split by source
def _case_keysplit(seed, batch=2, seg_len=4, n_repeats=3, n_src=3, d_head=4, d_vocab=20):
    g = generator(seed)
    tokens = repeated_random_tokens(batch, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed)
    n = tokens.shape[1]
    target = induction_target_mask(tokens)
    q = randn(g, batch, n, d_head)
    k_parts = randn(g, batch, n_src, n, d_head, scale=0.5)
    # source 0 aligns target keys with their queries, so it carries a positive advantage
    for b_, qi, ki in target.nonzero().tolist():
        k_parts[b_, 0, ki] += 0.5 * q[b_, qi]
    return {"q": q, "k_parts": k_parts, "target": target}


def _ref_keysplit(case):
    return M.key_score_from_parts(case["q"], case["k_parts"], case["target"])


def _cmp_keysplit(name, actual, expected, case):
    __tracebackhide__ = True
    q, K, t = case["q"].double(), case["k_parts"].double(), case["target"]
    n, dh = t.shape[-1], q.shape[-1]
    S = torch.einsum("bqe,bske->bsqk", q, K)
    tt = t[:, None].double()
    raw = (S / dh**0.5 * tt).sum((0, 2, 3)) / t.sum()
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    allmean = ((S / dh**0.5) * causal).sum(-1) / causal.sum(-1)
    incl = ((S / dh**0.5 - allmean[..., None]) * tt).sum((0, 2, 3)) / t.sum()
    fullrow = ((S / dh**0.5 - (S / dh**0.5).mean(-1, keepdim=True)) * tt).sum((0, 2, 3)) / t.sum()
    n_src = K.shape[1]
    compare_tensor(name, actual, expected, mistakes=[
        (raw, "subtract, for each query, the mean score of its other visible keys: a softmax ignores what "
         "is added to every key of a row alike."),
        (expected * dh**0.5,
         "divide the dot products by sqrt(d_head), as the attention scores are."),
        (incl, "the row's mean is over the visible keys that are *not* targets (k <= q and not target)."),
        (fullrow, "only keys k <= q are visible (the causal mask): average the others over k <= q."),
    ], shape_hints={(n_src, 1): "one number per source: shape [n_src]."}, shape_doc=" ([n_src])")


# --------------------------------------------------------------- 10. banded ICL score
def _case_icl_band(seed, batch=8, n_ctx=64):
    g = generator(seed)
    pos = torch.arange(1, n_ctx).double()
    base = 2.0 + 3.0 / pos.sqrt()  # loss falls along the context, as in-context learning does
    e, l = M.icl_bands(n_ctx)
    return {"per_token_loss": (base + 0.5 * randn(g, batch, n_ctx - 1).double()).float(), "early": e, "late": l}


def _ref_icl_band(case):
    r = M.icl_band_score(case["per_token_loss"], case["early"], case["late"])
    return r.mean, r.se


def _cmp_icl_band(name, actual, expected, case):
    __tracebackhide__ = True
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        fail(name, f"return a pair (mean, standard_error), got {type(actual).__name__}.")
    x = case["per_token_loss"].double()
    (e0, e1), (l0, l1) = case["early"], case["late"]
    n = x.shape[0]

    def d(a0, a1, b0, b1):
        return x[:, b0:b1].mean(-1) - x[:, a0:a1].mean(-1)

    right = d(e0 - 1, e1, l0 - 1, l1)
    off = d(e0, e1 + 1, l0, min(l1 + 1, x.shape[1]))
    excl = d(e0 - 1, e1 - 1, l0 - 1, l1 - 1)
    compare_scalar(name, actual[0], expected[0], [
        (float(off.mean()), "off by one: the loss at token n is column n - 1."),
        (float(excl.mean()), "both ends of a band are included: tokens first..last are columns first-1 .. last-1 "
         "(a slice first-1:last)."),
        (float(-right.mean()), "late minus early: negative means the model learns in context."),
    ], "per window: mean loss over the late band minus mean loss over the early band; then the mean over windows.",
        what="the mean")
    compare_scalar(name, actual[1], expected[1], [
        (float(right.std()), "the standard error is the std over windows divided by sqrt(n_windows)."),
        (float(right.std() / n), "divide the std by sqrt(n_windows), not n_windows."),
        (float(right.std(correction=0) / math.sqrt(n)), "use the sample std (torch.std's default, n - 1 below)."),
        (float(x[:, l0 - 1:l1].std() / math.sqrt(n)), "take the std of the per-window *differences*, not of the losses."),
    ], "standard error = per-window differences' std / sqrt(number of windows).", what="the standard error")


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in [
        Exercise("logit_copying_score", _case_logit_copy,
                 lambda c: M.logit_copying_score_from_logits(c["logits"], c["attended"]), _cmp_logit_copy,
                 [dict(seed=0), dict(seed=1)]),
        Exercise("eigen_copying_score", _case_ov_weights, _ref_eig_copy, _cmp_eig_copy, [dict(seed=2), dict(seed=3)]),
        Exercise("ov_top1_accuracy", _case_top1, _ref_top1, _cmp_top1, [dict(seed=1), dict(seed=3)]),
        Exercise("composition_score", _case_comp, _ref_comp, _cmp_comp, [dict(seed=0)],
                 localise=loc_composition_score),
        Exercise("kqv_composition", _case_kqv, _ref_kqv, _cmp_kqv, [dict(seed=0)]),
        Exercise("random_composition_scores", _case_baseline, _ref_baseline, _cmp_baseline, [dict(seed=0)]),
        Exercise("fold_layer_norm", _case_fold, _ref_fold, _cmp_fold, [dict(seed=0), dict(seed=1, n_heads=1)]),
        Exercise("kcircuit_scores", _case_kcircuit, _ref_kcircuit, _cmp_kcircuit, [dict(seed=0), dict(seed=1)],
                 localise=loc_kcircuit_scores),
        Exercise("key_score_by_source", _case_keysplit, _ref_keysplit, _cmp_keysplit, [dict(seed=0), dict(seed=1)]),
        Exercise("icl_band_score", _case_icl_band, _ref_icl_band, _cmp_icl_band, [dict(seed=0), dict(seed=1, n_ctx=128)],
                 localise=loc_icl_band_score),
    ]
}

# Exercises that later ones call: while one exercise is checked, these names resolve to the
# reference, so a wrong composition_score costs exercise 4 only, not 5 and 6 too.
PIECES = {"composition_score": lambda W_A, W_B: M.composition_score(W_A, W_B)}

_CHECKS = ChapterChecks(list(EXERCISES.values()), pieces=PIECES, no_grad=True)
CHECKS = _CHECKS  # the grader's trusted check reads the exercises from here
compare_with_reference = _CHECKS.compare_with_reference
run_visible_checks = _CHECKS.run_visible_checks
_make_check = _CHECKS.make_check

check_logit_copying_score = _make_check("logit_copying_score")
check_eigen_copying_score = _make_check("eigen_copying_score")
check_ov_top1_accuracy = _make_check("ov_top1_accuracy")
check_composition_score = _make_check("composition_score")
check_kqv_composition = _make_check("kqv_composition")
check_random_composition_scores = _make_check("random_composition_scores")
check_fold_layer_norm = _make_check("fold_layer_norm")
check_kcircuit_scores = _make_check("kcircuit_scores")
check_key_score_by_source = _make_check("key_score_by_source")
check_icl_band_score = _make_check("icl_band_score")


def yours(fn, *args, name: str | None = None):
    """Run the student's ``fn`` on the real model's inputs for a printout; a crash or a blank
    answer prints one line and returns None (the cells after it use the library's numbers)."""
    try:
        with _CHECKS.reference_pieces(fn, keep=name or getattr(fn, "__name__", "")), torch.no_grad():
            return fn(*args)
    except Exception as err:  # noqa: BLE001 - the student's function, any failure
        print(f"(your {getattr(fn, '__name__', 'function')} raised {type(err).__name__}; "
              "the cells below use the library's reference numbers)")
        return None
