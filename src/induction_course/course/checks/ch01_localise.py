"""Chapter 1's messages for mistakes no catalogue knows: which intermediate property breaks first.

Each ``loc_<exercise>(name, call, case, actual, expected)`` runs only when the answer has the
right shape, wrong values and matches no known mistake (``core.ValuesDiffer``); it raises a
:class:`CheckFailed` naming the first property that fails (sequences mix, a scale, symmetry,
rows that do not sum to 1, the future, which head or layer differs ...). Registered by
:mod:`.ch01` as each ``Exercise``'s ``localise``.
"""

from __future__ import annotations

import itertools

import torch

from induction_course import functional as F
from induction_course.course.checks.core import (
    as_tensor,
    batch_independence,
    causal_violation,
    first_differing_slice,
    first_failing_property,
    rows_sum_to_one,
    scale_factor,
    symmetric_but_should_not_be,
    tensors_close,
)

__all__ = ["loc_attention_layer", "loc_embed", "loc_forward", "loc_head_attn_scores", "loc_head_output", "loc_pattern",
           "loc_pos_embed", "loc_unembed", "per_head_outputs"]


def per_head_outputs(case):
    """Reference per-head outputs [n_heads, batch, pos, d_model] and patterns."""
    outs, pats = [], []
    for h in range(case["W_Q"].shape[0]):
        sc = F.head_attn_scores(case["x"], case["W_Q"][h], case["b_Q"][h], case["W_K"][h], case["b_K"][h])
        pat = F.attention_pattern(sc)
        outs.append(F.head_output(pat, case["x"], case["W_V"][h], case["b_V"][h], case["W_O"][h]))
        pats.append(pat)
    return torch.stack(outs), torch.stack(pats, dim=1)


def _scale_check(actual, expected, what, hint):
    def check():
        c = scale_factor(actual, expected)
        return None if c is None else f"{what} {'are' if what.endswith('s') else 'is'} {c:.4g} times the reference ({hint})"
    return check


def loc_embed(name, call, case, actual, expected):
    __tracebackhide__ = True
    tokens, W_E = case["tokens"], case["W_E"]
    flat = actual.detach().double().reshape(-1, actual.shape[-1])
    dist = torch.cdist(flat, W_E.double())
    rows = dist.argmin(-1).reshape(tokens.shape)
    is_row = (dist.min(-1).values < 1e-4).reshape(tokens.shape)

    def every_vector_is_a_row():
        if is_row.all():
            return None
        b, p = (int(i) for i in (~is_row).nonzero()[0])
        return f"the vector at position [{b}, {p}] is not a row of W_E (each output vector must be W_E[token], unchanged)"

    def right_row():
        bad = rows != tokens
        if not bad.any():
            return None
        b, p = (int(i) for i in bad.nonzero()[0])
        r = int(rows[b, p])
        where = [(int(i), int(j)) for i, j in (tokens == r).nonzero().tolist()]
        also = f", the token of position {list(where[0])}" if where else ""
        return (f"position [{b}, {p}] holds row {r} of W_E{also}, but its own token is {int(tokens[b, p])}: "
                f"the vector at [b, p] must be W_E[tokens[b, p]]")

    first_failing_property(name, "your embeddings", [
        ("every vector is a row of W_E", every_vector_is_a_row), ("each row is its own token's", right_row)])


def loc_pos_embed(name, call, case, actual, expected):
    __tracebackhide__ = True
    W_pos = case["W_pos"]
    a = actual.detach()

    def same_for_every_sequence():
        diff = (a - a[:1]).abs().amax(dim=(1, 2))
        if (diff < 1e-6).all():
            return None
        return (f"sequence {int((diff >= 1e-6).nonzero()[0])} differs from sequence 0: the positional embedding "
                "depends on the position only, so every sequence of the batch gets the same rows")

    def row_p_is_W_pos_p():
        for p in range(a.shape[1]):
            if not tensors_close(a[0, p], W_pos[p], 1e-6, 1e-6):
                same = [r for r in range(W_pos.shape[0]) if tensors_close(a[0, p], W_pos[r], 1e-6, 1e-6)]
                tail = f" it is W_pos[{same[0]}]" if same else " it is no row of W_pos"
                return f"position {p} should get W_pos[{p}], but{tail}"
        return None

    first_failing_property(name, "your positional embeddings", [
        ("every sequence gets the same rows", same_for_every_sequence), ("position p gets W_pos[p]", row_p_is_W_pos_p)])


def loc_head_attn_scores(name, call, case, actual, expected):
    __tracebackhide__ = True
    d_head = case["W_Q"].shape[1]
    args = [case[k] for k in ("x", "W_Q", "b_Q", "W_K", "b_K")]
    first_failing_property(name, "your scores", [
        ("sequences do not mix", lambda: batch_independence(call, args, 0)),
        ("the scale is right", _scale_check(actual, expected, "your scores",
                                            f"the only scale is 1/sqrt(d_head) = 1/sqrt({d_head})")),
        ("queries and keys differ", lambda: symmetric_but_should_not_be(
            actual, expected, "your score matrix",) and "your score matrix is symmetric (score[i, j] == "
            "score[j, i]) but the reference is not: keys use W_K and b_K, queries W_Q and b_Q"),
        ("each sequence is right", lambda: first_differing_slice(actual, expected, 0, "sequence")),
    ], hint="score[b, i, j] = (x[b, i] @ W_Q + b_Q) . (x[b, j] @ W_K + b_K) / sqrt(d_head); compute one entry "
            "by hand and compare.")


def loc_pattern(name, call, case, actual, expected):
    __tracebackhide__ = True
    scores = case["scores"].double()
    a = actual.detach().double()
    n = scores.shape[-1]
    past = ~torch.ones(n, n, dtype=torch.bool).triu(1)

    def softmax_of_the_scores():
        # on the visible keys, log p[q, k] - log p[q, 0] must equal scores[q, k] - scores[q, 0]
        if (a[..., past] <= 0).any():
            return "a visible key (k <= q) has weight 0: the softmax never gives exactly 0, so only keys k > q may be 0"
        la = (a.log() - a[..., :1].log())[..., past]
        ls = (scores - scores[..., :1])[..., past]
        if torch.allclose(la, ls, atol=1e-4, rtol=1e-4):
            return None
        c = float((la * ls).sum() / (ls * ls).sum())
        if torch.allclose(la, c * ls, atol=1e-3, rtol=1e-3):
            return (f"each row is softmax(c * scores) with c = {c:.3g}, not softmax(scores): don't rescale the "
                    "scores here")
        return "within a row, the ratios of your weights are not exp(score differences): is it a softmax of these scores?"

    first_failing_property(name, "your pattern", [
        ("rows sum to 1", lambda: rows_sum_to_one(a)),
        ("no query attends to the future", lambda: causal_violation(a)),
        ("each row is the softmax of its visible scores", softmax_of_the_scores),
    ])


def loc_head_output(name, call, case, actual, expected):
    __tracebackhide__ = True
    pattern, x, W_V, b_V, W_O = (case[k] for k in ("pattern", "x", "W_V", "b_V", "W_O"))

    def attends_to_key_0():
        one_hot = torch.zeros_like(pattern)
        one_hot[..., 0] = 1.0
        out = call(one_hot, x.clone(), W_V, b_V, W_O)
        want = ((x[:, :1] @ W_V + b_V) @ W_O).expand_as(expected)
        if not isinstance(out, torch.Tensor) or tensors_close(out, want, 1e-5, 1e-4):
            return None
        return ("with a hand-made pattern in which every query attends only to key 0, every query's output should "
                "be (x[:, 0] @ W_V + b_V) @ W_O, the value of key 0 projected by W_O; yours is not")

    first_failing_property(name, "your head output", [
        ("sequences do not mix", lambda: batch_independence(call, [pattern, x, W_V, b_V, W_O], 1)),
        ("the scale is right", _scale_check(actual, expected, "your outputs", "no extra scale: z @ W_O")),
        ("a one-key pattern gives that key's value", attends_to_key_0),
    ])


def loc_attention_layer(name, call, case, actual, expected):
    __tracebackhide__ = True
    out, pattern = actual
    exp_out, exp_pattern = expected
    heads, _ = per_head_outputs(case)
    H = heads.shape[0]
    if not tensors_close(pattern, exp_pattern, 1e-5, 1e-4):
        first_failing_property(name, "the pattern (second output)", [
            ("rows sum to 1", lambda: rows_sum_to_one(pattern.detach())),
            ("no query attends to the future", lambda: causal_violation(pattern.detach())),
            ("each head is right", lambda: first_differing_slice(pattern, exp_pattern, 1, "head")),
        ], hint="head h uses W_Q[h], b_Q[h], W_K[h], b_K[h]; pattern[:, h] is its pattern.")
        return

    def sum_of_heads():
        rest = out.detach() - case["b_O"]
        for k in range(H - 1, 0, -1):
            for subset in itertools.combinations(range(H), k):
                if tensors_close(rest, heads[list(subset)].sum(0), 1e-5, 1e-4):
                    missing = sorted(set(range(H)) - set(subset))
                    return (f"attn_out equals b_O plus the outputs of heads {list(subset)} only: "
                            f"head(s) {missing} missing from the sum")
        return None

    first_failing_property(name, "attn_out (first output)", [
        ("the pattern is right", lambda: None),
        ("sequences do not mix", lambda: batch_independence(call, [case[k] for k in (
            "x", "W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O")], 0, out_of=lambda r: r[0])),
        ("every head is in the sum", sum_of_heads),
        ("the scale is right", _scale_check(out, exp_out, "your outputs", "sum the heads, then add b_O once")),
        ("each sequence is right", lambda: first_differing_slice(out, exp_out, 0, "sequence")
         or "attn_out differs: check z = pattern @ v and z @ W_O for each head"),
    ], hint="attn_out = sum over heads h of (pattern[:, h] @ (x @ W_V[h] + b_V[h])) @ W_O[h], plus b_O once.")


def loc_unembed(name, call, case, actual, expected):
    __tracebackhide__ = True
    first_failing_property(name, "your logits", [
        ("sequences do not mix", lambda: batch_independence(call, [case["resid"], case["W_U"], case["b_U"]], 0)),
        ("the scale is right", _scale_check(actual, expected, "your logits", "logits = resid @ W_U + b_U, unscaled")),
    ])


def loc_forward(name, call, case, actual, expected):
    __tracebackhide__ = True
    logits, patterns = actual
    exp_logits, exp_patterns = expected
    L = len(exp_patterns)

    def layer_ok(l):
        def check():
            if tensors_close(as_tensor(name, patterns[l], f"the pattern of layer {l}"), exp_patterns[l], 1e-5, 1e-4):
                return None
            if l == 0:
                return ("the pattern of layer 0 differs already: layer 0 reads the embeddings "
                        "W_E[tokens] + W_pos[:pos] with model.W_Q[0], model.b_Q[0], ...")
            return (f"layer {l}'s pattern differs from the model's: layer {l} "
                    f"must read the residual stream after layer {l - 1} (the embeddings plus the outputs of every "
                    f"earlier layer), with its own weights model.W_Q[{l}], ...")
        return check

    first_failing_property(name, "your forward pass", [(f"layer {l}'s pattern matches", layer_ok(l)) for l in range(L)] + [
        ("the logits", lambda: "every layer's pattern matches the model's, but the logits differ: check what the "
         "last layer adds to the stream (resid = resid + attn_out) and the unembedding (resid @ W_U + b_U)"),
    ])
