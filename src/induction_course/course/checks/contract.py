"""The parts of an exercise's contract every exercise shares: the kind of answer, and purity.

Used by the visible checks (:class:`.core.ChapterChecks`, once an answer's values are right)
and by the grader's trusted check (:mod:`induction_course.course.grading.verify`).
"""

from __future__ import annotations

from typing import Any

import torch

# Exercises whose job is to change an input in place (one optimiser step on the model).
MUTATES = {"train_step": {"model", "optimizer"}, "train_loop": {"model", "optimizer"}}
# Exercises whose text allows a 0-d tensor where a number is asked for.
NUMBER_OR_0D = {"composition_score"}


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool:
            return "a bool tensor"
        return "an integer tensor" if not (x.is_floating_point() or x.is_complex()) else "a float tensor"
    if isinstance(x, bool):
        return "a bool"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, (tuple, list)):
        return f"a sequence of {len(x)}"
    if isinstance(x, dict):
        return "a dict"
    return f"a {type(x).__name__}"


def kind_problem(actual: Any, expected: Any) -> str | None:
    """The contract's types: what differs in kind between the answer and the reference's.

    Judged only where the reference is a tensor, a number or a sequence; other answers (a
    ``FactoredMatrix`` for a matrix, a model) are left to the comparison."""
    if type(actual).__name__ == "Unknown":
        return f"returned {actual!r}, which is not one of the kinds the exercise asks for"
    ke = _kind(expected)
    if not isinstance(expected, (torch.Tensor, int, float, tuple, list)) or isinstance(expected, bool):
        return None
    ka = _kind(actual)
    if isinstance(expected, torch.Tensor) and not isinstance(actual, (torch.Tensor, int, float, tuple, list, dict)) \
            and actual is not None:
        return None  # a matrix-like object of a library: the comparison reads it
    if ka == ke or ke == "a number" and ka == "a bool":
        return _items_problem(actual, expected)
    if ke == "a number" and isinstance(actual, torch.Tensor):
        return "returned a tensor where the exercise asks for a Python number (use .item())"
    return f"returned {ka} where the exercise asks for {ke}"


def _items_problem(actual: Any, expected: Any) -> str | None:
    if isinstance(expected, (tuple, list)):
        for a, e in zip(actual, expected):
            problem = kind_problem(a, e)
            if problem:
                return problem
    return None


def answer_kind_problem(exercise: str, actual: Any, expected: Any) -> str | None:
    """:func:`kind_problem`, with the allowances an exercise's text makes (a 0-d tensor for a number)."""
    problem = kind_problem(actual, expected)
    if problem and exercise in NUMBER_OR_0D and isinstance(actual, torch.Tensor) and actual.numel() == 1:
        return None
    return problem


def snapshot(case: dict) -> dict:
    """The tensors and model weights of a case, copied (to see later what a call changed)."""
    out = {}
    for k, v in case.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().clone()
        elif isinstance(v, torch.nn.Module):
            out[k] = {n: p.detach().clone() for n, p in v.state_dict().items()}
    return out


def changed_inputs(before: dict, args: dict, exercise: str) -> list[str]:
    """The inputs a call changed in place that the exercise does not ask it to change."""
    bad = []
    for k, old in before.items():
        if k in MUTATES.get(exercise, set()) or k not in args:
            continue
        new = args[k]
        if not isinstance(new, (torch.Tensor, torch.nn.Module)):
            continue  # an object the grader could not rebuild (a TransformerBridge): nothing to compare
        if isinstance(new, torch.nn.Module):
            new = new.state_dict()
            same = new.keys() == old.keys() and all(torch.equal(new[n].detach(), old[n]) for n in old)
        else:
            same = isinstance(new, torch.Tensor) and new.shape == old.shape and torch.equal(new.detach(), old)
        if not same:
            bad.append(k)
    return bad
