"""Reference ablations of attention heads, written against the TransformerLens hook API.

Every function here only calls ``model.run_with_hooks`` / ``model.run_with_cache`` with the
hook names ``blocks.{l}.attn.hook_z`` and ``blocks.{l}.attn.hook_pattern``, so it runs the same
on :class:`~induction_course.model.AttnOnlyTransformer` and on a TransformerLens
``TransformerBridge`` (see :func:`induction_course.tl_convert.to_bridge`).

Heads are named ``(layer, head)``. Shapes: ``tokens[batch, pos]``, ``logits[batch, pos,
d_vocab]``, ``hook_z[batch, pos, head, d_head]``, ``hook_pattern[batch, head, q, k]``.

Kinds of ablation (``kind=`` in :func:`ablate` and the tables):

- ``"zero"``: the head's ``z`` is set to 0, so it writes nothing (its ``b_O`` share stays:
  ``b_O`` belongs to the layer, not the head).
- ``"mean"``: ``z`` is replaced by its mean over a reference batch, per position.
- ``"pattern_preserving"``: every layer's attention pattern is frozen to the clean run and the
  head's ``z`` zeroed, so the ablation removes what the head *writes* but cannot change where
  later heads *look*.
- ``"knockout"``: only the head's attention on induction targets is removed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple, Sequence

import torch

from induction_course.metrics import (
    icl_positions,
    icl_score_from_losses,
    repeated_losses_from_per_token,
)
from induction_course.model import cross_entropy_next_token, device_of, hook_name
from induction_course.probes import induction_target_mask

__all__ = [
    "KINDS",
    "zero_ablate_hook",
    "zero_ablation_hooks",
    "zero_ablation",
    "mean_ablation",
    "pattern_preserving_ablation",
    "induction_stripe_knockout",
    "ablate",
    "RandomControl",
    "random_head_control",
    "infer_seg_len",
    "AblationEffect",
    "ablation_effects",
    "single_head_ablation_table",
    "icl_per_window",
    "joint_ablation_table",
]

KINDS = ("zero", "mean", "pattern_preserving", "knockout")

Hook = tuple[str, Callable]


# --------------------------------------------------------------------------- helpers
def _check_tokens(model, tokens: torch.Tensor, name: str = "tokens") -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"{name} must be a 2-D tensor [batch, pos] of token ids, got {shape}; use t[None] for one sequence")
    return tokens.to(device_of(model))


def _check_heads(model, heads: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    """Validated, de-duplicated ``[(layer, head), ...]``, in the order given."""
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    if isinstance(heads, tuple) and len(heads) == 2 and all(isinstance(x, int) for x in heads):
        raise ValueError(f"heads must be a list of (layer, head) pairs; for one head pass [{heads}]")
    out: list[tuple[int, int]] = []
    if heads is None or isinstance(heads, (str, torch.Tensor)):
        raise ValueError(f"heads must be a list of (layer, head) pairs, got {heads!r}")
    for item in heads:
        try:
            layer, head = (int(x) for x in item)
        except (TypeError, ValueError):
            raise ValueError(f"each head must be a (layer, head) pair of ints, got {item!r}") from None
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise ValueError(
                f"head ({layer}, {head}) is out of range: layers are 0..{n_layers - 1}, heads "
                f"0..{n_heads - 1}"
            )
        if (layer, head) not in out:
            out.append((layer, head))
    return out


def _by_layer(heads: list[tuple[int, int]]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for layer, head in heads:
        grouped.setdefault(layer, []).append(head)
    return grouped


def _run(model, tokens: torch.Tensor, hooks: list[Hook]) -> torch.Tensor:
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=hooks)


def _cache(model, tokens: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    """Every layer's ``hook_name(kind, layer)`` activation on ``tokens``."""
    names = {hook_name(kind, layer) for layer in range(int(model.cfg.n_layers))}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    return {k: cache[k] for k in names}


# ------------------------------------------------------------------------ zero
def zero_ablate_hook(heads_in_layer: Sequence[int]) -> Callable:
    """A ``hook_z`` hook that zeroes the given heads of its layer: ``z[:, :, heads] = 0``."""
    heads_in_layer = [int(h) for h in heads_in_layer]

    def hook(z: torch.Tensor, hook=None) -> torch.Tensor:
        if z.dim() != 4 or max(heads_in_layer, default=-1) >= z.shape[2]:
            raise ValueError(
                f"zero_ablate_hook expects hook_z [batch, pos, head, d_head] with heads "
                f"{heads_in_layer}, got shape {tuple(z.shape)}"
            )
        z = z.clone()  # never write into a tensor the caller (or a cache) may hold
        z[:, :, heads_in_layer] = 0.0
        return z

    return hook


def zero_ablation_hooks(heads: list[tuple[int, int]]) -> list[Hook]:
    """``(hook_z name, hook)`` pairs zeroing ``heads``, one per layer involved."""
    return [(hook_name("z", layer), zero_ablate_hook(hs)) for layer, hs in _by_layer(heads).items()]


def zero_ablation(model, tokens: torch.Tensor, heads: Iterable[Sequence[int]]) -> torch.Tensor:
    """Logits with the given heads' ``hook_z`` set to zero."""
    tokens = _check_tokens(model, tokens)
    return _run(model, tokens, zero_ablation_hooks(_check_heads(model, heads)))


# ------------------------------------------------------------------------ mean
def mean_ablation(
    model, tokens: torch.Tensor, heads: Iterable[Sequence[int]], reference_tokens: torch.Tensor
) -> torch.Tensor:
    """Logits with the given heads' ``hook_z`` replaced by its mean over ``reference_tokens``.

    The mean is over the reference batch, separately for each position (``[pos, d_head]`` per
    head). Position matters in these models: position 0 can only attend to itself, a
    previous-token head's output is special near the start, and the positional embedding is
    part of every value; a mean over positions would replace an early position's output with
    something the model never sees there, and the "ablation" would partly measure that
    mismatch. ``reference_tokens`` must be at least as long as ``tokens``.
    """
    tokens = _check_tokens(model, tokens)
    reference_tokens = _check_tokens(model, reference_tokens, "reference_tokens")
    heads = _check_heads(model, heads)
    n_pos = tokens.shape[1]
    if reference_tokens.shape[1] < n_pos:
        raise ValueError(
            f"reference_tokens have {reference_tokens.shape[1]} positions but tokens have {n_pos}; "
            "the per-position mean needs a reference at least as long"
        )
    cache = _cache(model, reference_tokens, "z")
    hooks: list[Hook] = []
    for layer, hs in _by_layer(heads).items():
        mean_z = cache[hook_name("z", layer)][:, :n_pos].mean(dim=0)  # [pos, head, d_head]

        def hook(z: torch.Tensor, hook=None, hs=hs, mean_z=mean_z) -> torch.Tensor:
            z = z.clone()
            z[:, :, hs] = mean_z[None, :, hs].to(z.dtype)
            return z

        hooks.append((hook_name("z", layer), hook))
    return _run(model, tokens, hooks)


# ------------------------------------------------------------- pattern preserving
def _freeze_pattern_hook(clean: torch.Tensor) -> Callable:
    def hook(pattern: torch.Tensor, hook=None) -> torch.Tensor:
        return clean.to(pattern.dtype)

    return hook


def pattern_preserving_ablation(model, tokens: torch.Tensor, heads: Iterable[Sequence[int]]) -> torch.Tensor:
    """Logits with every layer's attention pattern frozen to the clean run's and the given
    heads' ``hook_z`` zeroed.

    With the patterns frozen, removing a layer-0 head cannot change where layer-1 heads attend
    (no Q/K-composition effect), only the values they move (V-composition and the direct path).
    Comparing this with :func:`zero_ablation` separates "the head told a later head where to
    look" from "the head wrote something useful".
    """
    tokens = _check_tokens(model, tokens)
    heads = _check_heads(model, heads)
    cache = _cache(model, tokens, "pattern")
    hooks: list[Hook] = [
        (hook_name("pattern", layer), _freeze_pattern_hook(cache[hook_name("pattern", layer)]))
        for layer in range(int(model.cfg.n_layers))
    ]
    return _run(model, tokens, hooks + zero_ablation_hooks(heads))


# ------------------------------------------------------------------ stripe knockout
def induction_stripe_knockout(
    model, tokens: torch.Tensor, heads: Iterable[Sequence[int]], renormalize: bool = False
) -> torch.Tensor:
    """Logits with the given heads' attention on induction targets set to zero.

    Only the entries ``pattern[:, head, q, k]`` with ``induction_target_mask(tokens)[:, q, k]``
    (the token right after an earlier occurrence of the query's token) are zeroed; the rest of
    the pattern is kept as it was.

    By default the pattern is **not renormalised**: the head's output ``z_q = sum_k A_qk v_k``
    then loses exactly the terms that flowed along the induction stripe and nothing else, which
    is what "knock out the stripe" should mean. Renormalising (``renormalize=True``) would hand
    the removed mass to the other keys (typically BOS or the current token), so the head would
    start moving information it did not move before, and the effect would mix removal with
    rerouting. A query whose whole row was on the stripe keeps a zero row either way.
    """
    tokens = _check_tokens(model, tokens)
    heads = _check_heads(model, heads)
    keep = (~induction_target_mask(tokens.cpu())).to(tokens.device)  # [batch, q, k]
    hooks: list[Hook] = []
    for layer, hs in _by_layer(heads).items():

        def hook(pattern: torch.Tensor, hook=None, hs=hs) -> torch.Tensor:
            pattern = pattern.clone()
            sub = pattern[:, hs] * keep[:, None].to(pattern.dtype)
            if renormalize:
                total = sub.sum(dim=-1, keepdim=True)
                sub = torch.where(total > 0, sub / total.clamp_min(1e-30), sub)
            pattern[:, hs] = sub
            return pattern

        hooks.append((hook_name("pattern", layer), hook))
    return _run(model, tokens, hooks)


# ------------------------------------------------------------------------ dispatch
def ablate(
    model,
    tokens: torch.Tensor,
    heads: Iterable[Sequence[int]],
    kind: str = "zero",
    reference_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits under ablation ``kind`` (one of :data:`KINDS`) of ``heads``.

    For ``kind="mean"`` the reference batch defaults to ``tokens`` themselves.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ablation kind {kind!r}; choose one of {KINDS}")
    if kind == "zero":
        return zero_ablation(model, tokens, heads)
    if kind == "mean":
        return mean_ablation(model, tokens, heads, tokens if reference_tokens is None else reference_tokens)
    if kind == "pattern_preserving":
        return pattern_preserving_ablation(model, tokens, heads)
    return induction_stripe_knockout(model, tokens, heads)


class RandomControl(NamedTuple):
    """Logits of a random-head control and the heads that were ablated."""

    logits: torch.Tensor
    heads: list[tuple[int, int]]


def random_head_control(
    model,
    tokens: torch.Tensor,
    n_heads: int,
    exclude: Iterable[Sequence[int]] = (),
    seed: int = 0,
    kind: str = "zero",
    reference_tokens: torch.Tensor | None = None,
) -> RandomControl:
    """Ablate ``n_heads`` heads drawn at random (seeded) from those not in ``exclude``.

    The control for a claim like "ablating the induction heads hurts": ablating as many
    unrelated heads should hurt much less. Deterministic for a given ``seed``.
    """
    exclude = set(_check_heads(model, exclude))
    candidates = [
        (l, h) for l in range(int(model.cfg.n_layers)) for h in range(int(model.cfg.n_heads)) if (l, h) not in exclude
    ]
    if not 0 <= n_heads <= len(candidates):
        raise ValueError(
            f"n_heads={n_heads} but only {len(candidates)} heads are left after excluding "
            f"{sorted(exclude)}; ask for between 0 and {len(candidates)}"
        )
    chosen = sorted(random.Random(seed).sample(candidates, n_heads))
    return RandomControl(ablate(model, tokens, chosen, kind, reference_tokens), chosen)


# -------------------------------------------------------------------- effect tables
def infer_seg_len(tokens: torch.Tensor, bos: bool = True) -> int:
    """The period of a repeated-token probe ``[BOS], seg, seg, ...`` (smallest that fits every
    row); ValueError if the tokens are not such a probe."""
    body = tokens[:, 1:] if bos else tokens
    n = body.shape[1]
    for s in range(1, n // 2 + 1):
        if torch.equal(body[:, s:], body[:, :-s]):
            return s
    raise ValueError("tokens are not a repeated-token probe (no period found); pass seg_len explicitly")


@dataclass
class AblationEffect:
    """Clean vs ablated: loss on the later repeats of a probe and ICL score on text.

    ``delta_*`` = ablated - clean: a positive ``delta_probe_loss`` means the ablation hurt
    induction; a positive ``delta_icl_score`` means less in-context learning (the ICL score is
    negative when the model learns in context).
    """

    heads: list[tuple[int, int]]
    kind: str
    clean_probe_loss: float
    ablated_probe_loss: float
    clean_icl_score: float
    ablated_icl_score: float
    delta_probe_loss: float = field(init=False)
    delta_icl_score: float = field(init=False)

    def __post_init__(self) -> None:
        self.delta_probe_loss = self.ablated_probe_loss - self.clean_probe_loss
        self.delta_icl_score = self.ablated_icl_score - self.clean_icl_score


class _Evaluator:
    """Shared pieces of :func:`ablation_effects` and :func:`single_head_ablation_table`:
    the probe's later-repeat loss and the text's ICL score for one set of logits."""

    def __init__(self, model, probe_tokens, text_tokens, seg_len, bos, icl_early, icl_late):
        self.model = model
        self.probe = _check_tokens(model, probe_tokens, "probe_tokens")
        self.text = _check_tokens(model, text_tokens, "text_tokens")
        self.bos = bos
        self.seg_len = infer_seg_len(self.probe.cpu(), bos) if seg_len is None else int(seg_len)
        early, late = icl_positions(self.text.shape[1])
        self.early = early if icl_early is None else icl_early
        self.late = late if icl_late is None else icl_late

    def probe_loss(self, logits: torch.Tensor) -> float:
        per_token = cross_entropy_next_token(logits, self.probe.to(logits.device), per_token=True).cpu()
        return repeated_losses_from_per_token(per_token, self.seg_len, self.bos).later

    def icl(self, logits: torch.Tensor) -> float:
        per_token = cross_entropy_next_token(logits, self.text.to(logits.device), per_token=True).cpu()
        return icl_score_from_losses(per_token, self.early, self.late)

    def clean(self) -> tuple[float, float]:
        return self.probe_loss(_run(self.model, self.probe, [])), self.icl(_run(self.model, self.text, []))

    def ablated(self, heads, kind, probe_ref, text_ref) -> tuple[float, float]:
        return (
            self.probe_loss(ablate(self.model, self.probe, heads, kind, probe_ref)),
            self.icl(ablate(self.model, self.text, heads, kind, text_ref)),
        )


def ablation_effects(
    model,
    heads: Iterable[Sequence[int]],
    probe_tokens: torch.Tensor,
    text_tokens: torch.Tensor,
    kind: str = "zero",
    seg_len: int | None = None,
    bos: bool = True,
    probe_reference: torch.Tensor | None = None,
    text_reference: torch.Tensor | None = None,
    icl_early: int | None = None,
    icl_late: int | None = None,
) -> AblationEffect:
    """Effect of ablating ``heads`` together on (a) the mean loss on the later repeats of a
    repeated-random-token probe ``probe_tokens`` and (b) the ICL score on natural-text
    ``text_tokens``.

    ``seg_len`` defaults to the probe's period. For ``kind="mean"`` each input is mean-ablated
    against its own reference (default: itself), so a probe is never ablated with text
    statistics. ICL positions default to ``metrics.icl_positions(text length)``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ablation kind {kind!r}; choose one of {KINDS}")
    heads = _check_heads(model, heads)
    ev = _Evaluator(model, probe_tokens, text_tokens, seg_len, bos, icl_early, icl_late)
    clean_probe, clean_icl = ev.clean()
    abl_probe, abl_icl = ev.ablated(heads, kind, probe_reference, text_reference)
    return AblationEffect(heads, kind, clean_probe, abl_probe, clean_icl, abl_icl)


def single_head_ablation_table(
    model,
    probe_tokens: torch.Tensor,
    text_tokens: torch.Tensor,
    kind: str = "zero",
    seg_len: int | None = None,
    bos: bool = True,
    probe_reference: torch.Tensor | None = None,
    text_reference: torch.Tensor | None = None,
    icl_early: int | None = None,
    icl_late: int | None = None,
) -> dict[str, torch.Tensor]:
    """Ablate each head alone; returns ``[n_layers, n_heads]`` tensors ``"probe_loss"``,
    ``"icl_score"`` (ablated values), ``"delta_probe_loss"`` and ``"delta_icl_score"`` (ablated
    minus clean), plus the scalars ``"clean_probe_loss"`` and ``"clean_icl_score"`` as 0-d
    tensors. Arguments as in :func:`ablation_effects`."""
    if kind not in KINDS:
        raise ValueError(f"unknown ablation kind {kind!r}; choose one of {KINDS}")
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    ev = _Evaluator(model, probe_tokens, text_tokens, seg_len, bos, icl_early, icl_late)
    clean_probe, clean_icl = ev.clean()
    probe = torch.empty(n_layers, n_heads)
    icl = torch.empty(n_layers, n_heads)
    for layer in range(n_layers):
        for head in range(n_heads):
            probe[layer, head], icl[layer, head] = ev.ablated([(layer, head)], kind, probe_reference, text_reference)
    return {
        "probe_loss": probe,
        "icl_score": icl,
        "delta_probe_loss": probe - clean_probe,
        "delta_icl_score": icl - clean_icl,
        "clean_probe_loss": torch.tensor(clean_probe),
        "clean_icl_score": torch.tensor(clean_icl),
    }


# ----------------------------------------------------------------- joint vs single heads
def icl_per_window(per_token_loss: torch.Tensor, early: int, late: int) -> torch.Tensor:
    """``[batch]``: each window's loss at token ``late`` minus its loss at token ``early`` (the
    ICL score is their mean; their spread gives its standard error)."""
    return per_token_loss[:, late - 1] - per_token_loss[:, early - 1]


def joint_ablation_table(
    model,
    groups: dict[str, Iterable[Sequence[int]]],
    probe_tokens: torch.Tensor,
    text_tokens: torch.Tensor,
    kind: str = "zero",
    seg_len: int | None = None,
    bos: bool = True,
) -> list[dict]:
    """Ablate each group of heads *together* (one run per group; clean runs done once) and
    return one row per group: ``label``, ``heads``, ``delta_probe_loss`` (later repeats),
    ``delta_icl_score`` with ``delta_icl_se`` (standard error of the mean over text windows,
    paired: the same windows clean and ablated), and ``delta_text_loss`` (mean over every
    position of the text: how much the head matters for prediction in general, in context or
    not), ``clean_icl_score``, and the tensors ``delta_icl_per_window`` ``[batch]`` and
    ``delta_loss_by_position`` ``[pos - 1]`` (mean over windows; column ``i`` predicts token
    ``i + 1``). For ``kind="mean"`` each input is its own reference batch. A group's joint effect is
    not the sum of its heads' single effects: heads that back each other up hide from
    one-at-a-time ablation."""
    if kind not in KINDS:
        raise ValueError(f"unknown ablation kind {kind!r}; choose one of {KINDS}")
    ev = _Evaluator(model, probe_tokens, text_tokens, seg_len, bos, None, None)

    def text_losses(logits: torch.Tensor) -> torch.Tensor:
        return cross_entropy_next_token(logits, ev.text.to(logits.device), per_token=True).cpu()

    clean_probe = ev.probe_loss(_run(model, ev.probe, []))
    clean_text = text_losses(_run(model, ev.text, []))
    clean_windows = icl_per_window(clean_text, ev.early, ev.late)
    rows = []
    for label, heads in groups.items():
        heads = _check_heads(model, heads)
        ablated_text = text_losses(ablate(model, ev.text, heads, kind))
        diff = icl_per_window(ablated_text, ev.early, ev.late) - clean_windows
        rows.append({
            "label": label,
            "heads": heads,
            "kind": kind,
            "delta_probe_loss": ev.probe_loss(ablate(model, ev.probe, heads, kind)) - clean_probe,
            "delta_icl_score": float(diff.mean()),
            "delta_icl_se": float(diff.std() / len(diff) ** 0.5) if len(diff) > 1 else float("nan"),
            "delta_text_loss": float((ablated_text - clean_text).mean()),
            "clean_icl_score": float(clean_windows.mean()),
            "delta_icl_per_window": diff,  # [batch]
            "delta_loss_by_position": (ablated_text - clean_text).mean(0),  # [pos - 1]: column i predicts token i + 1
        })
    return rows
