"""Reading training curves: smoothing, and locating the induction bump.

The "bump" (Olsson et al. 2022, the phase change) is the short stretch of training in which
induction heads form: prefix-matching scores jump, the loss on repeated tokens collapses, the
in-context-learning score drops, and the training loss curve shows a visible kink.
"""

from __future__ import annotations

from typing import Sequence

import torch


def smooth(values: Sequence[float], window: int = 25) -> torch.Tensor:
    """Centred moving average (edges use the available neighbours)."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    if x.numel() == 0:
        raise ValueError("cannot smooth an empty series")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    half = window // 2
    csum = torch.cat([torch.zeros(1, dtype=x.dtype), x.cumsum(0)])
    idx = torch.arange(x.numel())
    lo = (idx - half).clamp(min=0)
    hi = (idx + half + 1).clamp(max=x.numel())
    return (csum[hi] - csum[lo]) / (hi - lo)


def phase_change_index(values: Sequence[float], rising: bool = True) -> int:
    """Index ``i`` such that the jump between points ``i-1`` and ``i`` is the largest (rising)
    or the largest drop (``rising=False``). Works on a checkpoint series of any metric."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    if x.numel() < 2:
        raise ValueError("need at least two points to locate a change")
    diffs = x[1:] - x[:-1]
    if not rising:
        diffs = -diffs
    return int(diffs.argmax()) + 1


def bump_window(history: Sequence[dict], key: str = "best_prefix_matching_layer1") -> tuple[int, int]:
    """``(step_before, step_after)``: the two checkpoints between which ``key`` jumps most."""
    i = phase_change_index([h[key] for h in history], rising=True)
    return int(history[i - 1]["step"]), int(history[i]["step"])


def first_step_reaching(history: Sequence[dict], predicate) -> dict | None:
    """The first checkpoint record for which ``predicate(record)`` holds, else ``None``."""
    for record in history:
        if predicate(record):
            return record
    return None
