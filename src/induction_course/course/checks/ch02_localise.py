"""Chapter 2's messages for mistakes no catalogue knows: which property of the answer breaks first.

Each ``loc_<exercise>(name, call, case, actual, expected)`` runs only when the answer matches no
known mistake (``core.ValuesDiffer``) and raises a :class:`CheckFailed` naming the first property
that fails: a loss is >= 0, a hand-made uniform prediction costs log(d_vocab), a constant added to
the logits of one position changes nothing, which column differs; the bump of a hand-made series.
Registered by :mod:`.ch02` as each ``Exercise``'s ``localise``.
"""

from __future__ import annotations

import math

import torch

from induction_course import curves
from induction_course.course.checks.core import (
    batch_independence,
    first_differing_slice,
    first_failing_property,
    tensors_close,
)

__all__ = ["loc_find_bump", "loc_per_token_loss"]


def loc_per_token_loss(name, call, case, actual, expected):
    __tracebackhide__ = True
    logits, tokens = case["logits"], case["tokens"]
    b, n, v = logits.shape
    a = actual.detach().double()

    def non_negative():
        if (a >= -1e-6).all():
            return None
        idx = [int(i) for i in (a < -1e-6).nonzero()[0]]
        return (f"the loss -log p(token) is >= 0 (p <= 1), but your entry {idx} is {a[tuple(idx)].item():.4g}: "
                "check the minus sign")

    def uniform_costs_log_vocab():
        out = call(torch.zeros(b, n, v), tokens.clone())
        if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
            return None
        if tensors_close(out, torch.full(expected.shape, math.log(v)), 1e-4, 1e-4):
            return None
        got = float(out.detach().double().flatten()[0])
        return (f"with all logits equal (a uniform prediction over the d_vocab = {v} tokens) every loss should be "
                f"log(d_vocab) = {math.log(v):.4f}; your entry [0, 0] is {got:.4f}: the softmax runs over the "
                "vocabulary, the last axis (log_softmax(dim=-1))")

    def shift_invariant():
        shifted = logits.clone()
        shifted[:, 0] += 5.0  # the same constant on every logit of position 0
        out = call(shifted, tokens.clone())
        if not isinstance(out, torch.Tensor) or tensors_close(out, actual, 1e-4, 1e-4):
            return None
        return ("adding the same constant to every logit of one position changed your losses: a softmax over the "
                "vocabulary ignores it, so normalise each position's logits on their own (dim=-1)")

    first_failing_property(name, "your loss table", [
        ("every loss is >= 0", non_negative),
        ("a uniform prediction costs log(d_vocab)", uniform_costs_log_vocab),
        ("a constant added to one position's logits changes nothing", shift_invariant),
        ("sequences do not mix", lambda: batch_independence(call, [logits, tokens], 0)),
        ("each column is right", lambda: first_differing_slice(actual, expected, 1, "column")),
    ], hint="loss[b, i] = -log_softmax(logits[b, i])[tokens[b, i + 1]]; compute one entry by hand and compare.")


def _bump_case(steps, values, rising, call):
    want = steps[curves.phase_change_index(values, rising=rising)]
    got = call(list(steps), list(values), rising)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    return got, want


def loc_find_bump(name, call, case, actual, expected):
    __tracebackhide__ = True
    steps, rising = case["steps"], case["rising"]

    def one_of_the_steps():
        if actual in steps:
            return None
        return f"you returned {actual}, which is not one of the checkpoints' steps: return steps[i], not i"

    def even_spacing():
        s, vals = [0, 100, 200, 300, 400, 500], [0.0, 0.05, 0.1, 1.0, 1.05, 1.1]
        vals = vals if rising else [3.0 - x for x in vals]
        got, want = _bump_case(s, vals, rising, call)
        if got == want:
            return None
        return (f"on a hand-made series with one jump, steps={s}, values={vals} (rising={rising}), the answer is "
                f"{want} (the checkpoint right after the jump); you returned {got}")

    def uneven_spacing():
        s, vals = [0, 10, 20, 1000, 1010, 1020], [0.0, 0.0, 0.0, 1.0, 1.3, 1.3]
        vals = vals if rising else [3.0 - x for x in vals]
        got, want = _bump_case(s, vals, rising, call)
        if got == want:
            return None
        return (f"with unevenly spaced checkpoints, steps={s}, values={vals} (rising={rising}), the largest change "
                f"between consecutive checkpoints is from step 20 to 1000, so the answer is {want}; you returned "
                f"{got}: compare the changes of the values, not the slopes (don't divide by the gap between steps)")

    first_failing_property(name, "your bump", [
        ("it is one of the steps", one_of_the_steps),
        ("one jump, evenly spaced steps", even_spacing),
        ("unevenly spaced steps", uneven_spacing),
    ], hint="i = the index of the largest values[i] - values[i - 1] (the largest drop when rising=False); "
            "return steps[i].")
