"""Chapter 4's messages for mistakes no catalogue knows: hand-made inputs with known scores.

A score is run on inputs whose answer needs no computing (identity matrices, a circuit whose
diagonal wins every row, a loss table with a single non-zero column) and checked for the
invariances it must have (the scale of the weights). Each ``loc_<exercise>(name, call, case,
actual, expected)`` runs only when the answer matches no known mistake (``core.ValuesDiffer``) and
raises a :class:`CheckFailed` naming the first property that fails. Registered by :mod:`.ch04`.
"""

from __future__ import annotations

import torch

from induction_course.course.checks.core import first_differing_slice, first_failing_property, out_of_range, tensors_close

__all__ = ["loc_composition_score", "loc_icl_band_score", "loc_kcircuit_scores"]


def _number(x) -> float | None:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return float(x.detach().double())
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def loc_composition_score(name, call, case, actual, expected):
    __tracebackhide__ = True
    A, B = case["W_A"], case["W_B"]
    score = _number(actual)

    def scale_free(which, factor):
        def check():
            args = [A.clone(), B.clone()]
            args[which] = args[which] * factor
            got = _number(call(*args))
            if got is None or abs(got - score) <= 1e-4 * max(1.0, abs(score)):
                return None
            label = "W_A" if which == 0 else "W_B"
            return (f"multiplying {label} by {factor:g} changed your score from {score:.5g} to {got:.5g} "
                    f"{f'({got / score:.4g} times)' if score else ''}: the score divides by ||W_A||_F ||W_B||_F, so it must not depend on "
                    "the scale of either matrix (check the brackets: a / (b * c), not a / b * c)")
        return check

    def identity():
        got = _number(call(torch.eye(4), torch.eye(4)))
        if got is None or abs(got - 0.5) <= 1e-4:
            return None
        return (f"with the hand-made W_A = W_B = I (4 x 4) the score is ||I||_F / (||I||_F ||I||_F) = 2 / (2 * 2) = "
                f"0.5, yours is {got:.5g}: use the Frobenius norm (the square root of the sum of squares) for all "
                "three matrices")

    def in_unit_range():
        if -1e-6 <= score <= 1 + 1e-6:
            return None
        return (f"your score is {score:.5g}, but ||W_A W_B||_F <= ||W_A||_F ||W_B||_F puts the score in [0, 1]")

    first_failing_property(name, "your composition score", [
        ("scaling W_A changes nothing", scale_free(0, 2.0)),
        ("scaling W_B changes nothing", scale_free(1, 3.0)),
        ("it lies in [0, 1]", in_unit_range),
        ("W_A = W_B = I gives 1/2", identity),
    ], hint="||W_A W_B||_F / (||W_A||_F ||W_B||_F).")


def loc_kcircuit_scores(name, call, case, actual, expected):
    __tracebackhide__ = True
    h1, h0 = case["W_QK1"].shape[0], case["W_OV0"].shape[0]
    n = d = 5
    eye = torch.eye(d)

    def hand_made(sign):
        def check():
            got = call(torch.eye(n, d), eye.expand(h1, d, d).clone(), (sign * eye).expand(h0, d, d).clone())
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                return None
            top1, rank = (torch.as_tensor(g).detach().double() for g in got)
            want_top1, want_rank = (1.0, 0.0) if sign > 0 else (0.0, float(n - 1))
            if tensors_close(top1, torch.full((h1, h0), want_top1), 1e-5, 1e-4) and \
                    tensors_close(rank, torch.full((h1, h0), want_rank), 1e-5, 1e-4):
                return None
            where = "the diagonal is the largest entry of every row" if sign > 0 else \
                "the diagonal is the smallest entry of every row"
            return (f"on a hand-made circuit where {where} (E = I ({n} tokens), W_QK1 = I, W_OV0 = {'' if sign > 0 else '-'}I, "
                    f"so every [h1, h0] circuit is {'' if sign > 0 else '-'}I), top1 should be {want_top1:g} and "
                    f"mean_rank {want_rank:g} (the number of entries of the row strictly larger than the diagonal "
                    f"one); yours are top1 {top1.flatten()[0].item():.4g}, mean_rank {rank.flatten()[0].item():.4g}")
        return check

    top1, rank = actual
    first_failing_property(name, "your K-circuit scores", [
        ("top1 lies in [0, 1]", lambda: out_of_range(torch.as_tensor(top1), 0.0, 1.0, "top1")),
        ("mean_rank lies in [0, n_tokens - 1]", lambda: out_of_range(
            torch.as_tensor(rank), 0.0, case["E"].shape[0] - 1, "mean_rank")),
        ("a winning diagonal scores top1 1, rank 0", hand_made(1)),
        ("a losing diagonal scores top1 0, rank n - 1", hand_made(-1)),
        ("each later head is right", lambda: first_differing_slice(torch.as_tensor(rank), expected[1], 0, "later head")),
    ], hint="C = E W_QK1[h1] (E W_OV0[h0])^T; top1 = mean over rows of [argmax of the row == its token]; "
            "rank = number of entries of the row > the diagonal one, averaged over rows.")


def _band_columns(call, x, early, late):
    """The columns whose loss raises (late) or lowers (early) the student's mean, one at a time."""
    batch, n_cols = x.shape
    plus, minus = [], []
    for j in range(n_cols):
        probe = torch.zeros(batch, n_cols, dtype=x.dtype)
        probe[:, j] = 1.0
        got = call(probe, early, late)
        mean = _number(got[0]) if isinstance(got, (tuple, list)) and len(got) == 2 else None
        if mean is None:
            return None
        if mean > 1e-9:
            plus.append(j)
        elif mean < -1e-9:
            minus.append(j)
    return plus, minus


def _span(cols) -> str:
    if not cols:
        return "no column"
    if cols == list(range(cols[0], cols[-1] + 1)):
        return f"columns {cols[0]}..{cols[-1]}"
    return f"columns {cols}"


def loc_icl_band_score(name, call, case, actual, expected):
    __tracebackhide__ = True
    x, (e0, e1), (l0, l1) = case["per_token_loss"], case["early"], case["late"]
    found = _band_columns(call, x, (e0, e1), (l0, l1))

    def band(which):
        def check():
            if found is None:
                return None
            cols = found[1] if which == "early" else found[0]
            a, b = (e0, e1) if which == "early" else (l0, l1)
            want = list(range(a - 1, b))
            if cols == want:
                return None
            return (f"the {which} band {which}=({a}, {b}) is tokens {a}..{b}, both included, i.e. columns "
                    f"{a - 1}..{b - 1} of the loss table (the loss at token n is column n - 1); putting a loss of "
                    f"1 in one column at a time shows that your {which} band is {_span(cols)}")
        return check

    first_failing_property(name, "your banded ICL score", [
        ("the early band", band("early")), ("the late band", band("late")),
    ], hint="per window: mean of columns late[0]-1 .. late[1]-1 minus mean of columns early[0]-1 .. early[1]-1; "
            "then the mean (and standard error) over windows.")
