"""Answers as plain data: what crosses from the student's sandbox to the grader.

The producer (:mod:`.producer`, beside student code) turns each answer into tensors, numbers,
strings, lists and dicts (:func:`to_plain`); the grader loads the file with
``torch.load(weights_only=True)``, which builds nothing else, and turns models back into the
package's own class (:func:`from_plain`). So no object a student made ever reaches the grader's
process: only data, judged by the grader's own code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

_KIND = "__plain__"


def to_plain(x: Any, depth: int = 0) -> Any:
    """``x`` as data ``torch.load(weights_only=True)`` reads back; unknown objects become a marker."""
    if depth > 20:
        return {_KIND: "unknown", "type": "a structure nested too deeply"}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, torch.Tensor):
        return {_KIND: "tensor", "value": x.detach().cpu().clone().contiguous(),
                "requires_grad": bool(x.requires_grad)}
    if isinstance(x, torch.nn.Module):
        return _module(x)
    if type(x).__name__ == "FactoredMatrix" and type(x).__module__.startswith("transformer_lens"):
        return {_KIND: "factored", "A": to_plain(x.A, depth + 1), "B": to_plain(x.B, depth + 1)}
    if isinstance(x, tuple):
        return {_KIND: "tuple", "items": [to_plain(v, depth + 1) for v in x]}
    if isinstance(x, list):
        return [to_plain(v, depth + 1) for v in x]
    if isinstance(x, dict):
        return {_KIND: "dict", "keys": [to_plain(k, depth + 1) for k in x], "values": [to_plain(v, depth + 1) for v in x.values()]}
    return {_KIND: "unknown", "type": type(x).__name__}


def _module(m: torch.nn.Module) -> dict:
    from induction_course.model import AttnOnlyTransformer

    if type(m) is AttnOnlyTransformer:
        return {_KIND: "model", "cfg": dataclasses.asdict(m.cfg),
                "state": {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}}
    return {_KIND: "unknown", "type": type(m).__name__}


class Unknown:
    """An answer the grader cannot rebuild (an object of a class of the student's, a generator ...)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<a {self.type_name} object>"


def from_plain(x: Any) -> Any:
    """The answer rebuilt in the grader: tensors, numbers, tuples, lists, dicts and the package's model."""
    if isinstance(x, list):
        return [from_plain(v) for v in x]
    if not isinstance(x, dict) or _KIND not in x:
        return x
    kind = x[_KIND]
    if kind == "tensor":
        value = x["value"]
        return value.requires_grad_(True) if x.get("requires_grad") and value.is_floating_point() else value
    if kind == "tuple":
        return tuple(from_plain(v) for v in x["items"])
    if kind == "dict":
        return {from_plain(k): from_plain(v) for k, v in zip(x["keys"], x["values"])}
    if kind == "model":
        return _rebuild_model(x)
    if kind == "factored":
        from transformer_lens import FactoredMatrix

        a, b = from_plain(x["A"]), from_plain(x["B"])
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return FactoredMatrix(a, b)
    return Unknown(str(x.get("type")))


def _rebuild_model(x: dict) -> Any:
    from induction_course.model import AttnOnlyTransformer, ModelConfig

    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model = AttnOnlyTransformer(ModelConfig(**{k: v for k, v in x["cfg"].items() if k in fields}))
    model.load_state_dict(x["state"])
    return model.eval()
