"""Checks that the notebooks' test cells call: precise, kind messages about what is wrong.

Every exercise of a chapter has an entry in :data:`EXERCISES`: how to make a random input of
given sizes, the reference answer (from :mod:`induction_course.functional` or the model
itself), and a list of *known mistakes* — the answers students really produce (softmax over
the wrong axis, no ``1/sqrt(d_head)``, mask after the softmax ...). When an answer is wrong
and matches a known mistake, the message names the mistake; otherwise it says where the
answer differs and by how much.

Two entry points per exercise:

- ``check_<exercise>(fn)``: the *visible* checks a student runs for instant feedback (small
  seeded inputs; prints one line when everything passes, raises :class:`CheckFailed` otherwise);
- :func:`compare_with_reference`: what the *hidden* tests call, on fresh seeded inputs of other
  sizes.

Both call the student's function with the *reference* versions of the chapter's other
exercises in place (see :func:`reference_pieces`), so a mistake in one exercise costs the
points of that exercise only. The last five exercises (TransformerLens interop and circuits) are
checked in :mod:`.ch01_circuits`, which keeps each module one screenful of ideas.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from induction_course import functional as F
from induction_course.course.checks.ch01_circuits import TL_AND_CIRCUIT_EXERCISES, model_logits_and_patterns
from induction_course.course.checks.ch01_localise import (
    loc_embed,
    loc_pos_embed,
    loc_head_attn_scores,
    loc_pattern,
    loc_head_output,
    loc_attention_layer,
    loc_unembed,
    loc_forward,
    per_head_outputs,
)
from induction_course.course.checks.core import (
    TL_BRIDGE_IMPORTS,
    ChapterChecks,
    CheckFailed,
    Exercise,
    as_tensor,
    causal_violation,
    compare_tensor,
    fail,
    generator,
    randn,
    random_model_case,
    random_scores,
    random_tokens,
    reference_pieces,
    rows_sum_to_one,
    shape_of,
    tensors_close,
)

__all__ = ["CheckFailed", "EXERCISES", "compare_with_reference", "reference_pieces"]


# ------------------------------------------------------------------ reference substitution
PIECES: dict[str, Callable] = {
    "embed": F.embed,
    "pos_embed": F.pos_embed,
    "head_attn_scores": F.head_attn_scores,
    "apply_causal_mask": F.apply_causal_mask,
    "attention_pattern": F.attention_pattern,
    "head_output": F.head_output,
    "attention_layer": F.attention_layer,
    "unembed": F.unembed,
    "transformer_forward": F.transformer_forward,
    "to_tl_state_dict": F.to_tl_state_dict,
    "bridge_logits_and_patterns": F.bridge_logits_and_patterns,
    "full_ov_circuit": F.full_ov_circuit,
    "pos_qk_circuit": F.pos_qk_circuit,
    "ov_copying_score": F.ov_copying_score,
}


# -------------------------------------------------------------------------- exercises
def _cmp_embed(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    tokens, W_E = case["tokens"], case["W_E"]
    d_vocab, d_model = W_E.shape
    b, p = tokens.shape
    compare_tensor(
        name, actual, expected,
        mistakes=[
            (W_E[tokens] * math.sqrt(d_model), "do not scale by sqrt(d_model): TransformerLens "
             "(and GPT-2) use the rows of W_E as they are."),
            (W_E[(tokens + 1) % d_vocab], "off by one: token id t is row t of W_E (rows start at 0)."),
        ],
        shape_hints={
            (b, p, d_vocab): "W_E is [d_vocab, d_model]: pick rows (W_E[tokens]), don't multiply by W_E.T.",
            (p, d_model): "keep the batch dimension: W_E[tokens] works for a [batch, pos] tensor directly.",
        },
        shape_doc=" ([batch, pos, d_model])",
    )


def _case_embed(seed, batch=2, n_pos=5, d_vocab=11, d_model=6):
    g = generator(seed)
    return {"tokens": random_tokens(g, batch, n_pos, d_vocab), "W_E": randn(g, d_vocab, d_model)}


def _cmp_pos_embed(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    tokens, W_pos = case["tokens"], case["W_pos"]
    b, p = tokens.shape
    n_ctx, d_model = W_pos.shape
    mistakes = [
        (W_pos[tokens % n_ctx], "you indexed W_pos with token ids: the positional embedding depends only "
         "on the position (0, 1, 2, ...), never on the token."),
    ]
    if p < n_ctx:
        mistakes.append((W_pos[1 : p + 1].unsqueeze(0).expand(b, p, d_model), "off by one: the first "
                         "position is 0, so use W_pos[:pos], not W_pos[1:pos+1]."))
    compare_tensor(
        name, actual, expected, mistakes=mistakes,
        shape_hints={
            (p, d_model): "repeat it for every sequence of the batch: W_pos[:pos] has no batch "
            "dimension; add one and expand (or einops.repeat) to [batch, pos, d_model].",
            (b, n_ctx, d_model): "use only the first `pos` rows of W_pos (one per position of the input).",
            (n_ctx, d_model): "use only the first `pos` rows of W_pos, and add a batch dimension.",
        },
        shape_doc=" ([batch, pos, d_model])",
    )


def _case_pos_embed(seed, batch=2, n_pos=5, n_ctx=8, d_model=6, d_vocab=11):
    g = generator(seed)
    return {"tokens": random_tokens(g, batch, n_pos, d_vocab), "W_pos": randn(g, n_ctx, d_model)}


def _case_head_attn_scores(seed, batch=2, n_pos=5, d_model=8, d_head=4):
    g = generator(seed)
    return {
        "x": randn(g, batch, n_pos, d_model),
        "W_Q": randn(g, d_model, d_head, scale=d_model**-0.5 * 2),
        "b_Q": randn(g, d_head, scale=0.3),
        "W_K": randn(g, d_model, d_head, scale=d_model**-0.5 * 2),
        "b_K": randn(g, d_head, scale=0.3),
    }


def _cmp_head_attn_scores(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    d_model, d_head = case["W_Q"].shape
    b, p, _ = case["x"].shape
    if isinstance(actual, torch.Tensor) and torch.isinf(actual).any():
        fail(name, "the scores contain -inf.", "return the scores *before* the causal mask; masking is "
              "the next exercise (apply_causal_mask).")
    unscaled = expected * math.sqrt(d_head)
    no_bias = F.head_attn_scores(case["x"], case["W_Q"], torch.zeros(d_head), case["W_K"], torch.zeros(d_head))
    compare_tensor(
        name, actual, expected,
        mistakes=[
            (unscaled, "divide the scores by sqrt(d_head): q.k grows with d_head, and without the "
             "scale the softmax saturates."),
            (unscaled / math.sqrt(d_model), "scale by sqrt(d_head) (the size of q and k), not sqrt(d_model)."),
            (unscaled / d_head, "scale by sqrt(d_head), not d_head."),
            (expected.transpose(-1, -2), "queries and keys are swapped: scores[b, q, k] = q_q . k_k, "
             "so rows are queries (q @ k.transpose(-1, -2)), not k @ q.T."),
            (no_bias, "add the biases: q = x @ W_Q + b_Q and k = x @ W_K + b_K."),
            (unscaled.softmax(-1), "return scores, not a pattern: no softmax here (and divide by sqrt(d_head))."),
            (expected.softmax(-1), "return scores, not a pattern: no softmax here."),
        ],
        shape_hints={
            (b, p, d_head): "that is q (or k), one vector per position: the scores are q @ k^T, one "
            "number per (query, key) pair.",
            (b, d_head, d_head): "multiply over d_head, not over positions: q @ k.transpose(-1, -2).",
        },
        shape_doc=" ([batch, q_pos, k_pos])",
    )


def _case_mask(seed, batch=2, n_pos=5, n_heads=None):
    g = generator(seed)
    shape = (batch, n_pos, n_pos) if n_heads is None else (batch, n_heads, n_pos, n_pos)
    return {"scores": random_scores(g, *shape)}


def _cmp_mask(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    scores = case["scores"]
    actual = as_tensor(name, actual)
    if shape_of(actual) != shape_of(scores):
        fail(name, f"the result has shape {list(actual.shape)}, expected the shape of the scores, "
              f"{list(scores.shape)}.", "masking replaces entries, it does not change the shape.")
    n = scores.shape[-1]
    future = torch.ones(n, n, dtype=torch.bool).triu(1)
    past = ~future
    a = actual.detach()
    if (a == 0)[..., future].all() and not (a[..., past] != scores[..., past]).any():
        fail(name, "future positions are set to 0.", "fill them with -inf (float('-inf')): after "
              "exp(), 0 still gives weight 1, while -inf gives weight 0.")
    if bool((a[..., past.tril(-1)] < -1e4).all()) and bool((a[..., future] > -1e4).all()):
        fail(name, "you masked the past and kept the future.", "the mask is the wrong way round: "
              "a query at position q may see keys k <= q; mask k > q (torch.triu(..., diagonal=1)).")
    diag = torch.eye(n, dtype=torch.bool)
    if bool((a[..., diag] < -1e4).all()):
        fail(name, "the diagonal is masked.", "off by one: a token may attend to itself. Mask only "
              "k > q (torch.triu(ones, diagonal=1)), not k >= q.")
    if not bool((a[..., future] < -1e4).all()):
        q, k = [int(i) for i in future.nonzero()[0]]
        fail(name, f"a query can still see a later key (e.g. query {q}, key {k} is {a[(0,) * (a.dim() - 2) + (q, k)].item():.3g}).",
              "set every entry with k > q to -inf.")
    if not tensors_close(a[..., past], scores[..., past], 1e-6, 1e-6):
        fail(name, "entries with k <= q were changed.", "leave the visible scores exactly as they are; "
              "mask only the future.")


def _cmp_pattern(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    scores = case["scores"]
    actual = as_tensor(name, actual)
    n = scores.shape[-1]
    if shape_of(actual) != shape_of(scores):
        fail(name, f"the pattern has shape {list(actual.shape)}, expected {list(scores.shape)} "
              "(the shape of the scores).")
    a = actual.detach().double()
    if torch.isnan(a).any():
        fail(name, "the pattern contains NaN.", "a row that is entirely -inf gives NaN after the softmax: "
              "keep the diagonal unmasked (each token can attend to itself).")
    future = torch.ones(n, n, dtype=torch.bool).triu(1)
    row_sums = a.sum(-1)
    col_sums = a.sum(-2)
    softmax_q = F.apply_causal_mask(scores).softmax(dim=-2)
    if tensors_close(actual, softmax_q, 1e-5, 1e-4) or (
        torch.allclose(col_sums, torch.ones_like(col_sums), atol=1e-4)
        and not torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-4)
    ):
        fail(name, "the columns of your pattern sum to 1, the rows do not.", "softmax over the wrong axis: "
              "each query (row) distributes its attention over the keys, so use softmax(dim=-1).")
    later = causal_violation(a)
    if later:
        sums_ok = "your pattern rows sum to 1 but " if rows_sum_to_one(a) is None else "in your pattern "
        fail(name, f"{sums_ok}{later}: queries attend to later keys.",
              "apply the causal mask (apply_causal_mask) to the scores before the softmax, and mask "
              "exactly the keys k > q (torch.triu(..., diagonal=1)).")
    bad = (row_sums - 1).abs() > 1e-4
    if bad.any():
        idx = [int(i) for i in bad.nonzero()[0]]
        mask_after = scores.softmax(-1).masked_fill(future, 0.0)
        where = f"row {idx[-1]} (index {idx}) sums to {row_sums[tuple(idx)].item():.3f}"
        if tensors_close(actual, mask_after, 1e-5, 1e-4):
            fail(name, f"the rows of the pattern must sum to 1; {where}.",
                  "you applied the causal mask after the softmax. Mask the scores first (with -inf), "
                  "then take the softmax, so each row is normalised over the keys it can see.")
        fail(name, f"the rows of the pattern must sum to 1; {where}.",
              "take the softmax over the last axis (the keys), after masking the scores with -inf.")
    compare_tensor(
        name, actual, expected,
        mistakes=[
            (F.attention_pattern(scores / math.sqrt(2)), "don't rescale the scores here: they are "
             "already divided by sqrt(d_head)."),
        ],
    )


def _case_head_output(seed, batch=2, n_pos=5, d_model=8, d_head=4):
    g = generator(seed)
    return {
        "pattern": F.attention_pattern(random_scores(g, batch, n_pos, n_pos)),
        "x": randn(g, batch, n_pos, d_model),
        "W_V": randn(g, d_model, d_head, scale=d_model**-0.5),
        "b_V": randn(g, d_head, scale=0.3),
        "W_O": randn(g, d_head, d_model, scale=d_head**-0.5),
    }


def _cmp_head_output(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    pattern, x, W_V, b_V, W_O = (case[k] for k in ("pattern", "x", "W_V", "b_V", "W_O"))
    b, p, d_model = x.shape
    d_head = W_V.shape[1]
    compare_tensor(
        name, actual, expected,
        mistakes=[
            (F.head_output(pattern.transpose(-1, -2), x, W_V, b_V, W_O), "the pattern is indexed "
             "[query, key]: z[q] = sum over k of pattern[q, k] * v[k], i.e. pattern @ v, not pattern.T @ v."),
            (F.head_output(pattern, x, W_V, torch.zeros_like(b_V), W_O), "add the value bias: v = x @ W_V + b_V."),
            (pattern @ x, "weight the *values* v = x @ W_V + b_V, and project them with W_O."),
        ],
        shape_hints={
            (b, p, d_head): "that is z, the weighted values: project it back to the residual stream with "
            "W_O ([d_head, d_model]).",
        },
        shape_doc=" ([batch, q_pos, d_model])",
    )


def _case_attention_layer(seed, batch=2, n_pos=5, d_model=8, n_heads=3, d_head=4):
    g = generator(seed)
    s = d_model**-0.5 * 2
    return {
        "x": randn(g, batch, n_pos, d_model),
        "W_Q": randn(g, n_heads, d_model, d_head, scale=s),
        "b_Q": randn(g, n_heads, d_head, scale=0.3),
        "W_K": randn(g, n_heads, d_model, d_head, scale=s),
        "b_K": randn(g, n_heads, d_head, scale=0.3),
        "W_V": randn(g, n_heads, d_model, d_head, scale=s),
        "b_V": randn(g, n_heads, d_head, scale=0.3),
        "W_O": randn(g, n_heads, d_head, d_model, scale=d_head**-0.5),
        "b_O": randn(g, d_model, scale=0.3),
    }


def _cmp_attention_layer(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, tuple) or len(actual) != 2:
        fail(name, f"return a tuple (attn_out, pattern), got {type(actual).__name__}"
              + (f" of length {len(actual)}" if isinstance(actual, (tuple, list)) else "") + ".")
    out, pattern = actual
    exp_out, exp_pattern = expected
    b, p, d_model = case["x"].shape
    H = case["W_Q"].shape[0]
    heads, _ = per_head_outputs(case)
    unscaled_out, unscaled_pat = [], []
    for h in range(H):
        sc = F.head_attn_scores(case["x"], case["W_Q"][h], case["b_Q"][h], case["W_K"][h], case["b_K"][h])
        pat = F.attention_pattern(sc * math.sqrt(case["W_Q"].shape[-1]))
        unscaled_pat.append(pat)
        unscaled_out.append(F.head_output(pat, case["x"], case["W_V"][h], case["b_V"][h], case["W_O"][h]))
    compare_tensor(
        name, pattern, exp_pattern, what="the pattern (second output)",
        shape_hints={
            (b, p, H, p): "TransformerLens's hook_pattern is [batch, n_heads, q_pos, k_pos]: heads before positions.",
            (H, b, p, p): "TransformerLens's hook_pattern is [batch, n_heads, q_pos, k_pos]: batch first.",
        },
        shape_doc=" ([batch, n_heads, q_pos, k_pos])",
        mistakes=[
            (exp_pattern.transpose(-1, -2), "rows of the pattern are queries, columns keys."),
            (torch.stack(unscaled_pat, dim=1), "divide the scores by sqrt(d_head)."),
        ],
    )
    compare_tensor(
        name, out, exp_out, what="attn_out (first output)",
        mistakes=[
            (heads.sum(0), "add b_O (once per layer) to the sum of the heads."),
            (heads.mean(0) + case["b_O"], "sum the heads' outputs, don't average them."),
            (heads.sum(0) + H * case["b_O"], "b_O is added once per layer, not once per head."),
            (torch.stack(unscaled_out).sum(0) + case["b_O"], "divide the scores by sqrt(d_head)."),
        ],
        shape_hints={
            (b, p, H, d_model): "sum over the heads: attn_out is what the whole layer writes, [batch, pos, d_model].",
            (b, H, p, d_model): "sum over the heads: attn_out is what the whole layer writes, [batch, pos, d_model].",
        },
        shape_doc=" ([batch, pos, d_model])",
    )


def _case_unembed(seed, batch=2, n_pos=5, d_model=8, d_vocab=13):
    g = generator(seed)
    return {
        "resid": randn(g, batch, n_pos, d_model),
        "W_U": randn(g, d_model, d_vocab, scale=d_model**-0.5),
        "b_U": randn(g, d_vocab, scale=0.3),
    }


def _cmp_unembed(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    b, p, d_model = case["resid"].shape
    compare_tensor(
        name, actual, expected,
        mistakes=[
            (case["resid"] @ case["W_U"], "add the unembedding bias b_U."),
            (expected.softmax(-1), "return logits, not probabilities: no softmax."),
            (expected.log_softmax(-1), "return logits, not log-probabilities: no log_softmax."),
        ],
        shape_hints={(b, p, d_model): "multiply by W_U [d_model, d_vocab] to get one logit per vocabulary entry."},
        shape_doc=" ([batch, pos, d_vocab])",
    )


def _forward_variant(case, pos=True, residual=True, b_U=True):
    m, tokens = case["model"], case["tokens"]
    x = F.embed(tokens, m.W_E) + (F.pos_embed(tokens, m.W_pos) if pos else 0)
    for layer in range(m.cfg.n_layers):
        out, _ = F.attention_layer(x, m.W_Q[layer], m.b_Q[layer], m.W_K[layer], m.b_K[layer],
                                   m.W_V[layer], m.b_V[layer], m.W_O[layer], m.b_O[layer])
        x = x + out if residual else out
    return x @ m.W_U + (m.b_U if b_U else 0)


def _cmp_forward(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, tuple) or len(actual) != 2:
        fail(name, "return a tuple (logits, patterns) where patterns is a list with one "
              f"[batch, n_heads, q_pos, k_pos] tensor per layer; got {type(actual).__name__}.")
    logits, patterns = actual
    exp_logits, exp_patterns = expected
    model = case["model"]
    L = model.cfg.n_layers
    if not isinstance(patterns, (list, tuple)) or len(patterns) != L:
        fail(name, f"patterns should be a list of {L} tensors (one per layer), got "
              + (f"{len(patterns)} of them." if isinstance(patterns, (list, tuple)) else f"a {type(patterns).__name__}."),
              "append each layer's pattern inside the loop over layers.")
    with torch.no_grad():
        mistakes = [
            (_forward_variant(case, pos=False), "add the positional embedding to the token embedding "
             "at the start of the residual stream."),
            (_forward_variant(case, residual=False), "add each layer's output to the residual stream "
             "(resid = resid + attn_out); don't replace the stream with it."),
            (_forward_variant(case, b_U=False), "add b_U in the unembedding."),
        ]
    compare_tensor(name, logits, exp_logits, mistakes=mistakes, what="the logits", shape_doc=" ([batch, pos, d_vocab])")
    for layer in range(L):
        compare_tensor(
            name, patterns[layer], exp_patterns[layer], what=f"the pattern of layer {layer}",
            mistakes=[(exp_patterns[l], f"this is the pattern of layer {l}: does layer {layer} read "
                       f"its own weights (model.W_Q[{layer}] ...)?") for l in range(L) if l != layer],
        )


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in [
        Exercise("embed", _case_embed, lambda c: F.embed(c["tokens"], c["W_E"]), _cmp_embed,
                 [dict(seed=0), dict(seed=1, batch=1, n_pos=3)], localise=loc_embed),
        Exercise("pos_embed", _case_pos_embed, lambda c: F.pos_embed(c["tokens"], c["W_pos"]), _cmp_pos_embed,
                 [dict(seed=0), dict(seed=1, batch=3, n_pos=8)], localise=loc_pos_embed),
        Exercise("head_attn_scores", _case_head_attn_scores, lambda c: F.head_attn_scores(**c), _cmp_head_attn_scores,
                 [dict(seed=0), dict(seed=1, batch=1, n_pos=4, d_model=6, d_head=3)], localise=loc_head_attn_scores),
        Exercise("apply_causal_mask", _case_mask, lambda c: F.apply_causal_mask(c["scores"]), _cmp_mask,
                 [dict(seed=0), dict(seed=1, n_pos=6, n_heads=2)]),
        Exercise("attention_pattern", _case_mask, lambda c: F.attention_pattern(c["scores"]), _cmp_pattern,
                 [dict(seed=0), dict(seed=1, n_pos=6, n_heads=2)], localise=loc_pattern),
        Exercise("head_output", _case_head_output, lambda c: F.head_output(**c), _cmp_head_output,
                 [dict(seed=0), dict(seed=1, batch=1, n_pos=4)], localise=loc_head_output),
        Exercise("attention_layer", _case_attention_layer, lambda c: F.attention_layer(**c), _cmp_attention_layer,
                 [dict(seed=0), dict(seed=1, n_heads=2, d_head=3)], localise=loc_attention_layer),
        Exercise("unembed", _case_unembed, lambda c: F.unembed(**c), _cmp_unembed, [dict(seed=0)],
                 localise=loc_unembed),
        Exercise("transformer_forward", random_model_case, model_logits_and_patterns, _cmp_forward,
                 [dict(seed=0), dict(seed=1, n_layers=1)], localise=loc_forward),
    ] + TL_AND_CIRCUIT_EXERCISES
}


CHECKS = ChapterChecks(list(EXERCISES.values()), pieces=PIECES, no_grad=True,
                       heavy_imports=TL_BRIDGE_IMPORTS)  # the TransformerLens bridge exercises
compare_with_reference = CHECKS.compare_with_reference
run_visible_checks = CHECKS.run_visible_checks
mine_or_reference = CHECKS.mine_or_reference
alone = CHECKS.alone
_make_check = CHECKS.make_check

check_embed = _make_check("embed")
check_pos_embed = _make_check("pos_embed")
check_head_attn_scores = _make_check("head_attn_scores")
check_apply_causal_mask = _make_check("apply_causal_mask")
check_attention_pattern = _make_check("attention_pattern")
check_head_output = _make_check("head_output")
check_attention_layer = _make_check("attention_layer")
check_unembed = _make_check("unembed")
check_transformer_forward = _make_check("transformer_forward")
check_to_tl_state_dict = _make_check("to_tl_state_dict")
check_bridge_logits_and_patterns = _make_check("bridge_logits_and_patterns")
check_full_ov_circuit = _make_check("full_ov_circuit")
check_pos_qk_circuit = _make_check("pos_qk_circuit")
check_ov_copying_score = _make_check("ov_copying_score")
