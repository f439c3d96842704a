"""Chapter 3's messages for mistakes no catalogue knows: hand-made patterns with known scores.

A detector is run on patterns whose scores need no computing (a head that always does the
behaviour scores 1, one that never does scores 0); a score table is checked layer by layer.
Each ``loc_<kind>(name, call, case, actual, expected)`` runs only when the answer matches no
known mistake (``core.ValuesDiffer``) and raises a :class:`CheckFailed` naming the first
property that fails. Registered by :mod:`.ch03`.
"""

from __future__ import annotations

import torch

from induction_course.course.checks.core import first_differing_slice, first_failing_property, out_of_range, tensors_close

__all__ = ["loc_pattern_detector", "loc_token_detector", "loc_collect"]

BOS = 0  # as in ch03's inputs


# the behaviour scores 1, a head that never does it scores 0.
def _ideal_pattern(n_pos: int, key_of) -> torch.Tensor:
    """[n_pos, n_pos]: query q puts all its weight on key_of(q) (or spreads evenly over a list)."""
    p = torch.zeros(n_pos, n_pos)
    for q in range(n_pos):
        keys = key_of(q)
        keys = keys if isinstance(keys, list) else [keys]
        p[q, keys] = 1.0 / len(keys)
    return p


_BEHAVIOUR = {
    "current_token_score": ("attends to the current token", lambda q: q),
    "previous_token_score": ("attends to the previous token", lambda q: max(q - 1, 0)),
    "first_token_score": ("attends to the first token (position 0)", lambda q: 0),
}


def _hand_made_heads(name: str, n_pos: int = 6) -> torch.Tensor:
    """[batch=2, head=3, q, k]: head 0 does the behaviour, head 1 does something else, head 2 half of each."""
    _, key_of = _BEHAVIOUR[name]
    other = {"current_token_score": lambda q: 0, "previous_token_score": lambda q: q,
             "first_token_score": lambda q: q}[name]
    yes, no = _ideal_pattern(n_pos, key_of), _ideal_pattern(n_pos, other)
    heads = torch.stack([yes, no, (yes + no) / 2])
    return torch.stack([heads, heads])


def loc_pattern_detector(name, call, case, actual, expected):
    __tracebackhide__ = True
    behaviour, _ = _BEHAVIOUR[name]
    heads = _hand_made_heads(name)

    def ideal():
        got = call(heads.clone())
        if not isinstance(got, torch.Tensor) or got.shape != (3,):
            return None
        want = torch.tensor([1.0, 0.0, 0.5])
        if tensors_close(got, want, 1e-5, 1e-4):
            return None
        h = int(((got - want).abs() > 1e-4).nonzero()[0])
        return (f"on a hand-made pattern where head 0 always {behaviour}, head 1 never does and head 2 does half "
                f"the time, your scores are {[round(v, 3) for v in got.tolist()]}; they should be [1, 0, 0.5] "
                f"(head {h} is the first that differs)")

    def batch_mean():
        got1 = call(heads[:1].clone())
        got2 = call(heads.clone())
        if isinstance(got1, torch.Tensor) and isinstance(got2, torch.Tensor) and got1.shape == got2.shape \
                and not tensors_close(got1, got2, 1e-5, 1e-4):
            return ("a batch of two identical sequences must score the same as one of them: average over the "
                    "batch, don't sum")
        return None

    first_failing_property(name, "your score", [
        ("scores lie in [0, 1]", lambda: out_of_range(actual, 0, 1, "your scores (a mean of attention weights)")),
        ("the batch is averaged", batch_mean),
        ("a hand-made pattern scores as expected", ideal),
    ])


def loc_token_detector(name, call, case, actual, expected):
    __tracebackhide__ = True
    # BOS a b a b a: query 3 (a) has earlier a at 1; query 5 (a) has earlier a at 1 and 3.
    tokens = torch.tensor([[BOS, 1, 2, 1, 2, 1]])
    if name == "duplicate_token_score":
        targets = {3: [1], 4: [2], 5: [1, 3]}
        what = "attends to the earlier copies of its own token"
    else:
        targets = {3: [2], 4: [3], 5: [2, 4]}
        what = "attends to the token after each earlier copy of its own token"
    good = _ideal_pattern(6, lambda q: targets.get(q, q))
    pattern = good[None, None]

    def ideal():
        got = call(pattern.clone(), tokens.clone())
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return None
        if abs(float(got.flatten()[0]) - 1) < 1e-4:
            return None
        return (f"on tokens [BOS, 1, 2, 1, 2, 1] with a head that always {what} (spread evenly when there are "
                f"several: query 5 puts 1/2 on keys {targets[5]}), your score is {float(got.flatten()[0]):.4g}, it should be 1: "
                f"sum the weights over all targets of a query, then average over the queries that have a target")

    first_failing_property(name, "your score", [
        ("scores lie in [0, 1]", lambda: out_of_range(actual, 0, 1, "your scores (a mean of attention masses)")),
        ("a hand-made pattern scores 1", ideal),
    ])


def loc_collect(name, call, case, actual, expected):
    __tracebackhide__ = True
    first_failing_property(name, "your table", [
        ("one row per layer", lambda: first_differing_slice(actual, expected, 0, "layer")),
    ], hint="row l is detector(pattern of blocks.l): read hook_name('pattern', l) for each layer l.")
