"""Generic properties of an answer, for the message of a mistake no catalogue knows.

Each helper returns ``None`` when the property holds, or a sentence saying how it fails ("the
rows of your pattern do not sum to 1: row 3 ...", "position 3 attends to position 5 (the
future) ..."). :func:`induction_course.course.checks.core.first_failing_property` runs them in
order and reports the first that fails; :mod:`.core` re-exports them, so a chapter imports them
from there. Nothing here knows about a chapter.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["batch_independence", "causal_violation", "first_differing_slice", "matching_candidate", "out_of_range",
           "rows_sum_to_one", "scale_factor", "symmetric_but_should_not_be"]


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    from induction_course.course.checks.core import tensors_close  # core imports this module

    return tensors_close(a, b, atol, rtol)


def _fmt_idx(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def rows_sum_to_one(t: torch.Tensor, what: str = "your pattern", atol: float = 1e-4) -> str | None:
    """Every row (last axis) of ``t`` sums to 1, and no entry is negative."""
    a = t.detach().double()
    if (a < -atol).any():
        idx = (a < -atol).nonzero()[0].tolist()
        return f"{what} has a negative weight at index {_fmt_idx(idx)} ({a[tuple(idx)].item():.3g}): attention weights are >= 0"
    sums = a.sum(-1)
    bad = (sums - 1).abs() > atol
    if bad.any():
        idx = bad.nonzero()[0].tolist()
        return (f"the rows of {what} do not sum to 1: row {idx[-1]} (index {_fmt_idx(idx)}) sums to "
                f"{sums[tuple(idx)].item():.4g}")
    return None


def causal_violation(pattern: torch.Tensor, what: str = "your pattern", atol: float = 1e-6) -> str | None:
    """No query attends to a later key: ``pattern[..., q, k] == 0`` for every ``k > q``."""
    a = pattern.detach().double()
    n_q, n_k = a.shape[-2:]
    future = torch.ones(n_q, n_k, dtype=torch.bool).triu(1)
    bad = (a.abs() > atol) & future
    if not bad.any():
        return None
    idx = bad.nonzero()[0].tolist()
    q, k = idx[-2], idx[-1]
    where = f" (index {_fmt_idx(idx)})" if len(idx) > 2 else ""
    return (f"position {q} attends to position {k} (the future) with weight {a[tuple(idx)].item():.3g}{where}: "
            f"every entry with key > query must be 0")


def out_of_range(t: torch.Tensor, lo: float, hi: float, what: str = "your result", atol: float = 1e-6) -> str | None:
    """Every value of ``t`` lies in ``[lo, hi]``."""
    a = t.detach().double()
    bad = (a < lo - atol) | (a > hi + atol)
    if not bad.any():
        return None
    idx = bad.nonzero()[0].tolist()
    return f"{what} should lie in [{lo:g}, {hi:g}], but index {_fmt_idx(idx)} is {a[tuple(idx)].item():.4g}"


def scale_factor(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4) -> float | None:
    """``c`` when ``actual == c * expected`` (c not 1), else ``None``: a wrong constant factor."""
    a, e = actual.detach().double().flatten(), expected.detach().double().flatten()
    if not (torch.isfinite(a).all() and torch.isfinite(e).all()) or float(e.norm()) == 0:
        return None
    c = float(a @ e / (e @ e))
    if abs(c - 1) < 1e-3 or abs(c) < 1e-9:
        return None
    if torch.allclose(a, c * e, rtol=rtol, atol=1e-6 * float(e.abs().max())):
        return c
    return None


def symmetric_but_should_not_be(actual: torch.Tensor, expected: torch.Tensor, what: str = "your result",
                                atol: float = 1e-5) -> str | None:
    """``actual`` is symmetric in its last two axes while ``expected`` is not."""
    a, e = actual.detach().double(), expected.detach().double()
    if a.shape[-1] != a.shape[-2] or a.shape[-1] < 2:
        return None
    if torch.allclose(a, a.transpose(-1, -2), atol=atol) and not torch.allclose(e, e.transpose(-1, -2), atol=atol):
        return f"{what} is symmetric ([i, j] equals [j, i]) but the reference is not"
    return None


def matching_candidate(actual: Any, candidates, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """The label of the first ``(label, tensor)`` in ``candidates`` that ``actual`` equals (same
    shape, close values), else ``None``: "your answer is what doing X gives"."""
    if not isinstance(actual, torch.Tensor):
        return None
    for label, value in candidates:
        if isinstance(value, torch.Tensor) and _close(actual, value, atol, rtol):
            return label
    return None


def first_differing_slice(actual: torch.Tensor, expected: torch.Tensor, dim: int, unit: str,
                          atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """Which slice along ``dim`` (a sequence, a head, a layer ...) is the first that differs, and
    whether it equals another slice of the reference (e.g. "layer 1 equals layer 0")."""
    n = expected.shape[dim]
    if actual.shape != expected.shape or n < 2:
        return None
    right = []
    for i in range(n):
        a, e = actual.select(dim, i), expected.select(dim, i)
        if _close(a, e, atol, rtol):
            right.append(i)
            continue
        same_as = [j for j in range(n) if j != i and _close(a, expected.select(dim, j), atol, rtol)]
        ok = f"{unit} {', '.join(map(str, right))} {'is' if len(right) == 1 else 'are'} right but " if right else ""
        tail = f": it equals the reference's {unit} {same_as[0]}" if same_as else ""
        return f"{ok}{unit} {i} differs{tail}"
    return None


def batch_independence(call: Callable, args: list, batch_arg: int, out_of: Callable[[Any], torch.Tensor] = lambda r: r,
                       batch_dim: int = 0) -> str | None:
    """Changing sequence 1 of the batch must not change the output for sequence 0.

    ``call(*args)`` runs the student's function, ``args[batch_arg]`` is the batched input and
    ``out_of`` picks the batched output from the result.
    """
    x = args[batch_arg]
    if not isinstance(x, torch.Tensor) or x.shape[batch_dim] < 2:
        return None
    changed = x.clone()
    other = changed.select(batch_dim, 1)
    if changed.is_floating_point():
        other.mul_(-1.5).add_(0.7)
    else:
        other.copy_(other.flip(-1))
    new_args = list(args)
    new_args[batch_arg] = changed
    try:
        before = out_of(call(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args]))
        after = out_of(call(*new_args))
    except Exception:
        return None
    if not (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)) or before.shape != after.shape:
        return None
    if not _close(before.select(batch_dim, 0), after.select(batch_dim, 0), 1e-5, 1e-4):
        return ("changing sequence 1 of the batch changed your output for sequence 0: sequences must not "
                "mix (check the batch index of your einsum or matmul)")
    return None
