"""Chapter 5's messages for mistakes no catalogue knows: which head (or which mean) was ablated.

An ablation's logits are compared with the clean run and with the same ablation of every other
head of the model (and, for a mean ablation, with the mean of every other head's ``z`` put in the
ablated head's place); an effect table is checked layer by layer and head by head. Each
``loc_<exercise>(name, call, case, actual, expected)`` runs only when the answer matches no known
mistake (``core.ValuesDiffer``) and raises a :class:`CheckFailed` naming the first property that
fails. Registered by :mod:`.ch05`.
"""

from __future__ import annotations

import torch

from induction_course import ablation as A
from induction_course.course.checks.core import first_differing_slice, first_failing_property
from induction_course.course.checks.properties import matching_candidate
from induction_course.model import hook_name

__all__ = ["loc_mean_ablation", "loc_single_head_table", "loc_zero_ablation"]


def _heads(model):
    return [(l, h) for l in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]


def _not_clean(model, tokens, actual, layer):
    def check():
        with torch.no_grad():
            clean = model(tokens)
        if matching_candidate(actual, [("clean", clean)], 1e-4, 1e-4) is None:
            return None
        return (f"your logits equal the clean run's: the ablation changed nothing (hook blocks.{layer}.attn.hook_z, "
                "and make the hook return the edited tensor)")
    return check


def _which_head(actual, layer, head, candidates, verb):
    def check():
        got = matching_candidate(actual, candidates, 1e-4, 1e-4)
        if got is None:
            return None
        l2, h2 = got
        return (f"your logits are those of {verb} layer {l2}, head {h2}, but the exercise asks for layer {layer}, "
                f"head {head}: index hook_z of layer `layer` as z[:, :, head] with the given numbers (no +1/-1)")
    return check


def loc_zero_ablation(name, call, case, actual, expected):
    __tracebackhide__ = True
    m, t, l, h = case["model"], case["tokens"], case["layer"], case["head"]
    others = (((l2, h2), A.zero_ablation(m, t, [(l2, h2)])) for l2, h2 in _heads(m) if (l2, h2) != (l, h))
    first_failing_property(name, "your ablated logits", [
        ("the ablation changes the logits", _not_clean(m, t, actual, l)),
        (f"the ablated head is layer {l}, head {h}", _which_head(actual, l, h, others, "zero-ablating")),
    ], hint="run the model with a hook on blocks.{layer}.attn.hook_z that sets z[:, :, head] = 0.")


def _put_mean(model, tokens, layer, head, value):
    def hook(z, hook=None):
        z = z.clone()
        z[:, :, head] = value.expand_as(z[:, :, head])
        return z

    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), hook)])


def loc_mean_ablation(name, call, case, actual, expected):
    __tracebackhide__ = True
    m, t, l, h, ref = case["model"], case["tokens"], case["layer"], case["head"], case["reference_tokens"]
    others = [(l2, h2) for l2, h2 in _heads(m) if (l2, h2) != (l, h)]
    with torch.no_grad():
        _, cache = m.run_with_cache(ref)
    other_heads = ((hd, A.mean_ablation(m, t, [hd], ref)) for hd in others)
    other_means = ((hd, _put_mean(m, t, l, h, cache[hook_name("z", hd[0])][:, :, hd[1]].mean(0))) for hd in others)

    def right_mean():
        got = matching_candidate(actual, other_means, 1e-4, 1e-4)
        if got is None:
            return None
        return (f"you put the mean of layer {got[0]}, head {got[1]}'s z in the place of layer {l}, head {h}: average "
                f"the ablated head's own z (cache of blocks.{l}.attn.hook_z, [:, :, {h}]) over reference_tokens")

    first_failing_property(name, "your ablated logits", [
        ("the ablation changes the logits", _not_clean(m, t, actual, l)),
        (f"the ablated head is layer {l}, head {h}", _which_head(actual, l, h, other_heads, "mean-ablating")),
        ("the mean is the ablated head's own", right_mean),
    ], hint="z[:, :, head] of blocks.{layer}.attn.hook_z := the mean over the batch of reference_tokens of the "
            "same head's z (one vector per position).")


def loc_single_head_table(name, call, case, actual, expected):
    __tracebackhide__ = True

    def swapped(dim, unit):
        def check():
            msg = first_differing_slice(actual, expected, dim, unit, 1e-4, 1e-4)
            return msg if msg and "equals the reference's" in msg else None
        return check

    first_failing_property(name, "your effect table", [
        ("each row is its own layer", swapped(0, "layer")),
        ("each column is its own head", swapped(1, "head")),
        ("each layer is right", lambda: first_differing_slice(actual, expected, 0, "layer", 1e-4, 1e-4)),
    ], hint="table[l, h] = loss with head (l, h) zero-ablated - clean loss, both on the later repeats.")
