"""Chapter 1's last five exercises: the TransformerLens state dict and bridge, and the circuits.

Their inputs and comparisons live here (the first nine, the forward pass, in :mod:`.ch01`);
:data:`TL_AND_CIRCUIT_EXERCISES` is registered by :mod:`.ch01` with the rest of the chapter.
"""

from __future__ import annotations

import math

import torch

from induction_course.course.checks.core import (
    Exercise,
    as_tensor,
    compare_tensor,
    fail,
    generator,
    randn,
    random_model,
    random_model_case,
    shape_of,
    tensors_close,
)
from induction_course.model import hook_name

__all__ = ["TL_AND_CIRCUIT_EXERCISES", "model_logits_and_patterns"]


def model_logits_and_patterns(case: dict):
    """The model's own logits and per-layer patterns on ``case["tokens"]`` (the forward reference)."""
    model = case["model"]
    logits, cache = model.run_with_cache(case["tokens"])
    patterns = [cache[hook_name("pattern", l)] for l in range(model.cfg.n_layers)]
    return logits.detach(), patterns


def _cmp_tl_state_dict(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, dict):
        fail(name, f"return a dict from TransformerLens names to tensors, got {type(actual).__name__}.")
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    if missing:
        fail(name, f"missing key(s) {missing[:4]}{' ...' if len(missing) > 4 else ''}.",
              "TransformerLens names: embed.W_E, pos_embed.W_pos, blocks.{layer}.attn.W_Q/W_K/W_V/W_O/"
              "b_Q/b_K/b_V/b_O, unembed.W_U, unembed.b_U — one set of attn.* keys per layer.")
    if extra:
        fail(name, f"unexpected key(s) {extra[:4]}.", "only the keys listed in the exercise, spelled exactly.")
    for key, ref in expected.items():
        val = as_tensor(name, actual[key], f"actual[{key!r}]")
        if shape_of(val) != shape_of(ref):
            hint = None
            if val.dim() == ref.dim() + 1:
                hint = "each blocks.{layer}.* key holds that layer's slice: model.W_Q[layer], not all layers."
            elif shape_of(val) == shape_of(ref)[::-1] or (val.dim() == ref.dim() and shape_of(val)[-2:] == shape_of(ref)[-2:][::-1]):
                hint = "no transposes: the model already stores every weight in TransformerLens's shape."
            fail(name, f"{key!r} has shape {list(val.shape)}, expected {list(ref.shape)}.", hint)
        if not tensors_close(val, ref, 1e-6, 1e-6):
            hint = None
            for other, oref in expected.items():
                if other != key and shape_of(oref) == shape_of(ref) and tensors_close(val, oref, 1e-6, 1e-6):
                    hint = f"it holds the tensor that belongs under {other!r}."
                    break
            fail(name, f"{key!r} has the right shape but not the model's values.", hint)


def _case_bridge(seed, batch=2, n_pos=7, **cfg):
    from induction_course.tl_convert import to_bridge

    case = random_model_case(seed, batch=batch, n_pos=n_pos, **cfg)
    # Keys in the order of the student's signature: (bridge, tokens).
    return {"bridge": to_bridge(case["model"]), "tokens": case["tokens"], "_model": case["model"]}


def _ref_bridge_run(case):
    logits, patterns = model_logits_and_patterns({"model": case["_model"], "tokens": case["tokens"]})
    return logits, torch.stack(patterns)


def _cmp_bridge_run(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, tuple) or len(actual) != 2:
        fail(name, f"return a tuple (logits, patterns), got {type(actual).__name__}.")
    logits, patterns = actual
    exp_logits, exp_patterns = expected
    if isinstance(patterns, (list, tuple)):
        fail(name, "patterns is a list; stack it into one tensor [n_layers, batch, n_heads, q_pos, k_pos].",
              "torch.stack(list_of_patterns) (stacking on a new first dimension).")
    compare_tensor(name, logits, exp_logits, what="the logits", atol=1e-4, rtol=1e-4,
                    shape_doc=" ([batch, pos, d_vocab])")
    L = exp_patterns.shape[0]
    patterns = as_tensor(name, patterns, "the patterns")
    mistakes = [(exp_patterns.transpose(0, 1), "stack the layers on a new *first* dimension: "
                 "torch.stack(patterns) gives [n_layers, batch, ...]; dim=1 gives [batch, n_layers, ...].")]
    if L > 1:
        mistakes.append((exp_patterns.flip(0), "the layers are in reverse order: index 0 is blocks.0."))
    compare_tensor(
        name, patterns, exp_patterns, what="the patterns", atol=1e-5, rtol=1e-4, mistakes=mistakes,
        shape_hints={
            tuple(exp_patterns.shape[1:]): "stack the patterns of *all* layers (one hook_pattern per block).",
            tuple(exp_patterns.transpose(0, 1).shape): "torch.stack(patterns) (dim=0) gives [n_layers, batch, ...].",
        },
        shape_doc=" ([n_layers, batch, n_heads, q_pos, k_pos])",
    )


def _case_circuit(seed, layer=1, head=1, **cfg):
    case = _case_bridge(seed, **cfg)
    case.pop("tokens")
    case["layer"], case["head"] = layer, head
    return case


def _cmp_factored(name, actual, expected, case, mistakes, shape_doc, shape_hints=None):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    from transformer_lens import FactoredMatrix

    if isinstance(actual, torch.Tensor):
        fail(name, "you returned a plain tensor.", "keep it factored: multiplying tensors by a "
              "FactoredMatrix (bridge.OV[layer, head], bridge.QK[layer, head]) gives a FactoredMatrix.")
    if not isinstance(actual, FactoredMatrix):
        fail(name, f"return a transformer_lens.FactoredMatrix, got {type(actual).__name__}.")
    compare_tensor(name, actual.AB, expected, mistakes=mistakes, shape_doc=shape_doc,
                    shape_hints=shape_hints, atol=1e-5, rtol=1e-3, what="the circuit (its .AB)")


def _ref_full_ov(case):
    m = case["_model"]
    with torch.no_grad():
        return m.W_E @ m.W_OV[case["layer"], case["head"]] @ m.W_U


def _cmp_full_ov(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    m, l, h = case["_model"], case["layer"], case["head"]
    d_vocab, d_model = m.W_E.shape
    with torch.no_grad():
        mistakes = [
            (m.W_E @ m.W_QK[l, h] @ m.W_U, "that is the QK circuit: the OV circuit is bridge.OV (W_V W_O)."),
            (m.W_E @ m.W_OV[l, h].T @ m.W_U, "don't transpose OV: bridge.OV[layer, head] is already "
             "[d_model (read), d_model (write)]."),
            (m.W_E @ m.W_OV[l, (h + 1) % m.cfg.n_heads] @ m.W_U, "check the head index: bridge.OV[layer, head]."),
            (m.W_E @ m.W_OV[(l + 1) % m.cfg.n_layers, h] @ m.W_U, "check the layer index: bridge.OV[layer, head]."),
        ]
    _cmp_factored(name, actual, expected, case, mistakes, " ([d_vocab, d_vocab])", {
        (d_model, d_vocab): "start from the tokens: multiply by W_E on the left.",
        (d_vocab, d_model): "end at the logits: multiply by W_U on the right.",
        (d_model, d_model): "that is W_OV alone: the full circuit is W_E @ OV @ W_U.",
    })


def _ref_pos_qk(case):
    m = case["_model"]
    with torch.no_grad():
        return m.W_pos @ m.W_QK[case["layer"], case["head"]] @ m.W_pos.T


def _cmp_pos_qk(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    m, l, h = case["_model"], case["layer"], case["head"]
    n_ctx, d_model = m.W_pos.shape
    with torch.no_grad():
        mistakes = [
            (expected.T, "rows are queries, columns keys: W_pos @ QK @ W_pos.T, without transposing QK."),
            (expected / math.sqrt(m.cfg.d_head), "leave the circuit unscaled (bridge.QK has no 1/sqrt(d_head))."),
            (m.W_pos @ m.W_OV[l, h] @ m.W_pos.T, "that is OV: the QK circuit is bridge.QK (W_Q W_K^T)."),
        ]
    _cmp_factored(name, actual, expected, case, mistakes, " ([n_ctx, n_ctx])", {
        (m.cfg.d_vocab, m.cfg.d_vocab): "this circuit is about positions: use W_pos, not W_E.",
        (d_model, d_model): "that is QK alone: sandwich it between W_pos and W_pos.T.",
    })


def _case_copying(seed, d_vocab=17, d_head=4):
    """A random low-rank circuit whose eigenvalues we choose: one complex pair and real ones,
    copying (positive sum) for even seeds, suppressing (negative sum) for odd ones."""
    from transformer_lens import FactoredMatrix

    if d_head < 3:
        raise ValueError("d_head must be at least 3 (one complex pair and a real eigenvalue)")
    g = generator(seed)
    sign = 1.0 if seed % 2 == 0 else -1.0
    a, b = 0.5 + torch.rand(2, generator=g)
    C = torch.zeros(d_head, d_head)
    C[:2, :2] = torch.tensor([[a, -b], [b, a]]) * sign  # eigenvalues sign * (a +- ib)
    reals = torch.rand(d_head - 2, generator=g) * 1.5 - 0.5  # in [-0.5, 1.0)
    C[2:, 2:] = torch.diag(reals * sign)
    P = randn(g, d_head, d_head) + 2 * torch.eye(d_head)
    C = P @ C @ torch.linalg.inv(P)  # same eigenvalues, no visible structure
    A, _ = torch.linalg.qr(randn(g, d_vocab, d_head))  # orthonormal columns: (C A^T) A = C
    R = randn(g, d_head, d_head) + 2 * torch.eye(d_head)
    return {"ov": FactoredMatrix(A @ R, torch.linalg.inv(R) @ C @ A.T)}


def _ref_copying(case):
    eig = torch.linalg.eigvals(case["ov"].AB.double())
    return float(eig.sum().real / eig.abs().sum())


def _cmp_copying(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            fail(name, f"return one number, got a tensor of shape {list(actual.shape)}.")
        if actual.is_complex():
            fail(name, "the score is complex.", "eigenvalues are complex: take the real part of the sum.")
        actual = actual.item()
    if isinstance(actual, complex):
        fail(name, "the score is complex.", "eigenvalues are complex: take the real part of the sum.")
    if not isinstance(actual, (int, float)):
        fail(name, f"return a float, got {type(actual).__name__}.")
    if math.isclose(actual, expected, rel_tol=1e-3, abs_tol=1e-4):
        return
    AB = case["ov"].AB.double()
    eig = torch.linalg.eigvals(AB)
    sv = torch.linalg.svdvals(AB)
    wrong = [
        (float(eig.sum().abs() / eig.abs().sum()), "keep the sign: a head that copies has a positive score, "
         "one that suppresses a negative one. Use Re(sum of eigenvalues), not its absolute value."),
        (float(eig.sum().real / sv.sum()), "divide by the sum of |eigenvalues|, not of singular values."),
        (float(eig.abs().sum() / eig.abs().sum()), "sum the eigenvalues themselves on top, their absolute values below."),
        (float(eig.real.sum() / eig.real.abs().sum()), "take the absolute value (modulus) of the complex "
         "eigenvalues below, not of their real parts."),
    ]
    for value, hint in wrong:
        if math.isclose(actual, value, rel_tol=1e-3, abs_tol=1e-4):
            fail(name, f"your score is {actual:.4f}, the reference is {expected:.4f}.", hint)
    fail(name, f"your score is {actual:.4f}, the reference is {expected:.4f}.",
          "score = Re(sum of eigenvalues) / sum of |eigenvalues| (ov.eigenvalues gives the eigenvalues).")


TL_AND_CIRCUIT_EXERCISES: list[Exercise] = [
    Exercise("to_tl_state_dict", lambda seed, **cfg: {"model": random_model(seed, **cfg)},
             lambda c: c["model"].tl_state_dict(), _cmp_tl_state_dict, [dict(seed=0)]),
    Exercise("bridge_logits_and_patterns", _case_bridge, _ref_bridge_run, _cmp_bridge_run, [dict(seed=0)]),
    Exercise("full_ov_circuit", _case_circuit, _ref_full_ov, _cmp_full_ov, [dict(seed=0)]),
    Exercise("pos_qk_circuit", _case_circuit, _ref_pos_qk, _cmp_pos_qk, [dict(seed=0, layer=0, head=1)]),
    Exercise("ov_copying_score", _case_copying, _ref_copying, _cmp_copying, [dict(seed=0), dict(seed=1)]),
]
