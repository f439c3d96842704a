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

__all__ = ["CheckFailed", "EXERCISES", "compare_with_reference", "run_visible_checks"]


# ------------------------------------------------------------- 1. repeated tokens
def _case_repeat(seed, batch=3, seg_len=5, n_repeats=4, d_vocab=40, bos=0):
    g = generator(seed)
    pool = torch.arange(1, d_vocab)
    idx = torch.rand(batch, pool.numel(), generator=g).argsort(-1)[:, :seg_len]
    return {"segments": pool[idx], "n_repeats": n_repeats, "bos": bos}


def _ref_repeat(case):
    s = case["segments"]
    body = s.repeat(1, case["n_repeats"])
    return torch.cat([torch.full((s.shape[0], 1), case["bos"], dtype=s.dtype), body], 1)


def _cmp_repeat(name, actual, expected, case):
    __tracebackhide__ = True
    s, n, bos = case["segments"], case["n_repeats"], case["bos"]
    b, L = s.shape
    actual = as_tensor(name, actual)
    if actual.dtype.is_floating_point:
        fail(name, "token ids must be integers.", "keep the dtype of `segments` (torch.long).")
    interleaved = torch.cat([torch.full((b, 1), bos, dtype=s.dtype), s.repeat_interleave(n, dim=1)], 1)
    at_end = torch.cat([s.repeat(1, n), torch.full((b, 1), bos, dtype=s.dtype)], 1)
    compare_tensor(name, actual, expected, atol=0, rtol=0, mistakes=[
        (interleaved, "repeat the whole segment (a b c a b c), not each token (a a b b c c): "
         "segments.repeat(1, n_repeats), not repeat_interleave."),
        (at_end, "the BOS token goes first, at position 0."),
    ], shape_hints={
        (b, L * n): "put a BOS token first: the paper's probe is [BOS] + n_repeats copies.",
        (b, L * n + n): "one BOS at the very start, not one per copy.",
        (b * n, L + 1): "concatenate the copies along the position dimension (dim=1), not the batch.",
    }, shape_doc=" ([batch, 1 + seg_len * n_repeats])")


# ----------------------------------------------------- 2. prefix-matching score
def _probe_pattern(seed, batch, n_heads, seg_len, n_repeats, d_vocab, sharp):
    g = generator(seed)
    tokens = repeated_random_tokens(batch, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed)
    n = tokens.shape[1]
    scores = randn(g, batch, n_heads, n, n, scale=1.5)
    # Make half the heads lean on induction targets, so the score is far from 0.
    tgt = induction_target_mask(tokens)[:, None].float()
    scores = scores + sharp * tgt * (torch.arange(n_heads) % 2 == 0).view(1, -1, 1, 1)
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    return pattern, tokens


def _case_pm(seed, batch=2, n_heads=3, seg_len=6, n_repeats=3, d_vocab=30):
    pattern, tokens = _probe_pattern(seed, batch, n_heads, seg_len, n_repeats, d_vocab, sharp=3.0)
    return {"pattern": pattern, "tokens": tokens, "_seg_len": seg_len}


def _pm_variants(pattern, tokens, seg_len):
    """Values that common mistakes give."""
    b, h, n, _ = pattern.shape
    tgt = induction_target_mask(tokens)
    mass = (pattern * tgt[:, None]).sum(-1)  # [b, h, q]
    out = {}
    out["all"] = mass.mean(dim=(0, 2))
    out["from1"] = mass[..., 1:].mean(dim=(0, 2))
    # only the most recent earlier occurrence's successor
    k = torch.arange(n)
    q = torch.arange(n)[:, None]
    recent = (k == q - seg_len + 1) & tgt  # [b, q, k]
    valid = tgt.any(-1)
    m1 = (pattern * recent[:, None]).sum(-1)
    out["recent"] = (m1 * valid[:, None]).sum(dim=(0, 2)) / valid.sum()
    # duplicate token (same token) instead of the one after it
    from induction_course.probes import duplicate_target_mask

    dup = duplicate_target_mask(tokens)
    dvalid = dup.any(-1)
    out["dup"] = ((pattern * dup[:, None]).sum(-1) * dvalid[:, None]).sum(dim=(0, 2)) / dvalid.sum()
    # the token before instead of after (offset -1 instead of +1): key k with tokens[k+1] == tokens[q]
    nxt = torch.full_like(tokens, -1)
    nxt[:, :-1] = tokens[:, 1:]
    before = (nxt[:, None, :] == tokens[:, :, None]) & (k[None, None] < q[None] - 1)
    bvalid = before.any(-1)
    out["before"] = ((pattern * before[:, None]).sum(-1) * bvalid[:, None]).sum(dim=(0, 2)) / bvalid.clamp_min(0).sum()
    # per-example mean then mean (same if every example has equally many valid queries) -- skip
    out["transposed"] = ((pattern.transpose(-1, -2) * tgt[:, None]).sum(-1) * valid[:, None]).sum(dim=(0, 2)) / valid.sum()
    return out


def _cmp_pm(name, actual, expected, case):
    __tracebackhide__ = True
    v = _pm_variants(case["pattern"], case["tokens"], case["_seg_len"])
    b, h, n, _ = case["pattern"].shape
    compare_tensor(name, actual, expected, mistakes=[
        (v["all"], "average only over the queries that *have* an earlier occurrence (the later repeats): "
         "the first copy can't show induction, counting it as 0 pulls the score down."),
        (v["from1"], "average only over the queries in the later repeats, not over every position."),
        (v["recent"], "sum the attention on *every* earlier occurrence's successor (from the 3rd copy on "
         "there are several), not only the most recent one."),
        (v["dup"], "attend to the token *after* the earlier occurrence (key k with tokens[k-1] == tokens[q]), "
         "not to the earlier occurrence itself (that is a duplicate-token head)."),
        (v["before"], "the target is the token right *after* the earlier occurrence, not before it."),
        (v["transposed"], "rows of the pattern are queries, columns keys: pattern[b, h, q, k]."),
    ], shape_hints={
        (b, h): "average over the batch too: one number per head.",
        (h, n): "average over the query positions too: one number per head.",
        (b, h, n): "average over the batch and the query positions: one number per head.",
    }, shape_doc=" ([n_heads])")


# ------------------------------------------------------ 3. all heads of a model
def _case_pm_model(seed, d_vocab=30, n_ctx=40, n_heads=3, seg_len=7, n_repeats=4, batch=3):
    model = random_model(seed, d_vocab=d_vocab, n_ctx=n_ctx, n_heads=n_heads)
    tokens = repeated_random_tokens(batch, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed + 1)
    return {"model": model, "tokens": tokens[:, :n_ctx]}


def _ref_pm_model(case):
    pats = M.layer_patterns(case["model"], case["tokens"])
    return torch.stack([M.prefix_matching_score(p, case["tokens"]) for p in pats])


def _cmp_pm_model(name, actual, expected, case):
    __tracebackhide__ = True
    L, H = expected.shape
    mistakes = [(expected.T, "index as [layer, head]: stack the per-layer scores on a new first dimension.")]
    if L > 1:
        mistakes.append((expected.flip(0), "the layers are reversed: row 0 is blocks.0."))
        mistakes.append((expected[0:1].expand(L, H), "use each layer's own pattern "
                         "(blocks.{layer}.attn.hook_pattern), not layer 0's every time."))
    compare_tensor(name, actual, expected, mistakes=mistakes, atol=1e-5, shape_hints={
        (H, L): "return [n_layers, n_heads], layers first.",
        (H,): "score every layer: stack one [n_heads] row per layer.",
        (L * H,): "keep layers and heads apart: shape [n_layers, n_heads].",
    }, shape_doc=" ([n_layers, n_heads])")


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
def _case_comp(seed, m=7, n=9, p=5):
    g = generator(seed)
    A = randn(g, m, n)
    B = randn(g, n, p) + 0.5 * randn(g, n, 1) @ randn(g, 1, p)
    return {"W_A": A, "W_B": B}


def _ref_comp(case):
    return float(M.composition_score(case["W_A"].double(), case["W_B"].double()))


def _cmp_comp(name, actual, expected, case):
    __tracebackhide__ = True
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


# ------------------------------------------------------------------ 9. ICL score
def _case_icl(seed, batch=6, n_ctx=64):
    g = generator(seed)
    pos = torch.arange(1, n_ctx).double()
    base = 2.0 + 3.0 / pos.sqrt()  # loss falls along the context, as in-context learning does
    return {"per_token_loss": (base + 0.3 * randn(g, batch, n_ctx - 1).double()).float()}


def _ref_icl(case):
    ptl = case["per_token_loss"]
    early, late = M.icl_positions(ptl.shape[1] + 1)
    return M.icl_score_from_losses(ptl, early, late)


def _cmp_icl(name, actual, expected, case):
    __tracebackhide__ = True
    ptl = case["per_token_loss"].double()
    n_ctx = ptl.shape[1] + 1
    e, l = M.icl_positions(n_ctx)
    col = ptl.mean(0)
    mistakes = [
        (float(col[l] - col[e]), "off by one: column i of the per-token loss is the loss *at token i+1* "
         "(predicting token i+1), so the loss at token n is column n - 1."),
        (float(col[e - 1] - col[l - 1]), "late minus early: the score is negative when the model learns in context."),
        (float(col[min(499, len(col) - 1)] - col[49]) if len(col) > 49 else None,
         "scale the paper's token 50 and 500 to this context: round(50 n_ctx / 512) and round(500 n_ctx / 512)."),
        (float(col[l - 1] / col[e - 1]), "a difference, not a ratio."),
        (float(ptl[:, l - 1:].mean() - ptl[:, : e].mean()), "compare the two tokens, not averages over ranges."),
    ]
    compare_scalar(name, actual, expected, mistakes,
                "score = mean loss at token late - mean loss at token early, (early, late) = (round(50 n_ctx/512), "
                "round(500 n_ctx/512)), n_ctx = per_token_loss.shape[1] + 1.")


def _case_icl_wrap(seed, batch=6, n_ctx=64):
    return _case_icl(seed, batch, n_ctx)


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in [
        Exercise("repeated_tokens", _case_repeat, _ref_repeat, _cmp_repeat, [dict(seed=0), dict(seed=1, n_repeats=2)]),
        Exercise("prefix_matching_score", _case_pm, lambda c: M.prefix_matching_score(c["pattern"], c["tokens"]),
                 _cmp_pm, [dict(seed=0), dict(seed=1, n_repeats=4, seg_len=4)]),
        Exercise("prefix_matching_all_heads", _case_pm_model, _ref_pm_model, _cmp_pm_model, [dict(seed=0)]),
        Exercise("logit_copying_score", _case_logit_copy,
                 lambda c: M.logit_copying_score_from_logits(c["logits"], c["attended"]), _cmp_logit_copy,
                 [dict(seed=0), dict(seed=1)]),
        Exercise("eigen_copying_score", _case_ov_weights, _ref_eig_copy, _cmp_eig_copy, [dict(seed=2), dict(seed=3)]),
        Exercise("ov_top1_accuracy", _case_top1, _ref_top1, _cmp_top1, [dict(seed=1), dict(seed=3)]),
        Exercise("composition_score", _case_comp, _ref_comp, _cmp_comp, [dict(seed=0)]),
        Exercise("kqv_composition", _case_kqv, _ref_kqv, _cmp_kqv, [dict(seed=0)]),
        Exercise("random_composition_scores", _case_baseline, _ref_baseline, _cmp_baseline, [dict(seed=0)]),
        Exercise("icl_score", _case_icl_wrap, _ref_icl, _cmp_icl, [dict(seed=0), dict(seed=1, n_ctx=128)]),
    ]
}

_CHECKS = ChapterChecks(list(EXERCISES.values()), no_grad=True)
compare_with_reference = _CHECKS.compare_with_reference
run_visible_checks = _CHECKS.run_visible_checks
_make_check = _CHECKS.make_check

check_repeated_tokens = _make_check("repeated_tokens")
check_prefix_matching_score = _make_check("prefix_matching_score")
check_prefix_matching_all_heads = _make_check("prefix_matching_all_heads")
check_logit_copying_score = _make_check("logit_copying_score")
check_eigen_copying_score = _make_check("eigen_copying_score")
check_ov_top1_accuracy = _make_check("ov_top1_accuracy")
check_composition_score = _make_check("composition_score")
check_kqv_composition = _make_check("kqv_composition")
check_random_composition_scores = _make_check("random_composition_scores")
check_icl_score = _make_check("icl_score")
