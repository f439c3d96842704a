"""The functional counterpart of K-composition: an attention score split by the source of the key.

On a repeated-token probe, the key a later head reads at each position is a sum of parts (token
embedding, positional embedding, each earlier head's output, biases); with LayerNorm's
per-position scale frozen at its value in the run, the split is exact. How much of an induction
head's preference for its induction targets comes through each earlier head says which heads
the circuit really uses. :mod:`induction_course.metrics` re-exports the public names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from induction_course.model import device_of, hook_name, weight_f64

__all__ = ["KeyScoreDecomposition", "key_score_from_parts", "key_score_decomposition"]


def _has_ln(model) -> bool:
    return getattr(model.cfg, "normalization", None) == "LN" and isinstance(getattr(model, "ln1_w", None), torch.Tensor)


# ------------------------------------------------- key scores split by source head
@dataclass
class KeyScoreDecomposition:
    """Mean attention-score contribution of each source on induction targets.

    ``sources``: names (``"embed"``, ``"pos"``, ``"0.0"`` ... one per earlier head, ``"bias"``);
    ``scores [n_heads (dst_layer), n_sources]``: for each head of ``dst_layer``, the mean over
    (query, induction-target key) pairs of how much higher the target's score is than the mean
    score of the query's other visible keys, through that source's part of the key (see
    :func:`key_score_from_parts`); the columns sum to the head's whole advantage (``total``).
    """

    sources: list[str]
    scores: torch.Tensor
    total: torch.Tensor

    def head_columns(self) -> list[int]:
        return [i for i, s in enumerate(self.sources) if "." in s]


def key_score_from_parts(q: torch.Tensor, k_parts: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Split one head's preference for its target keys by the source of the key.

    ``q [batch, pos, d_head]`` (the head's queries), ``k_parts [batch, n_src, pos, d_head]``
    (its keys split into additive parts that sum to the key), ``target [batch, q, k]`` (bool,
    only keys ``k <= q``) -> ``[n_src]``.

    Part ``s`` gives the score ``S_s[b, q, k] = q[b, q] . k_parts[b, s, k] / sqrt(d_head)``.
    A softmax ignores what is added to every key of a row alike, so what counts is how much
    higher a target scores than the row's other keys: for each target pair ``(b, q, k)``,
    ``S_s[b, q, k]`` minus the mean of ``S_s[b, q, k']`` over the visible non-target keys
    ``k' <= q`` of the same query; then the mean over target pairs. The parts add up to the
    head's whole score advantage on its targets.
    """
    if not target.any():
        raise ValueError("no target pair: use tokens with repeats (probes.repeated_random_tokens)")
    n = target.shape[-1]
    d_head = q.shape[-1]
    s = torch.einsum("bqe,bske->bsqk", q.double(), k_parts.double()) / math.sqrt(d_head)  # [b, src, q, k]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    others = (causal & ~target)[:, None].to(s.dtype)  # [b, 1, q, k]
    other_mean = (s * others).sum(-1) / others.sum(-1).clamp_min(1)  # [b, src, q]
    adv = s - other_mean[..., None]
    t = target[:, None].to(s.dtype)
    return (adv * t).sum(dim=(0, 2, 3)) / target.sum()


@torch.no_grad()
def key_score_decomposition(model, tokens: torch.Tensor, dst_layer: int = 1) -> KeyScoreDecomposition:
    """How much of each ``dst_layer`` head's attention score on its induction targets comes
    through each earlier head (the functional counterpart of K-composition).

    One cached run on ``tokens [batch, pos]`` (a repeated random probe). The residual stream
    that layer ``dst_layer`` reads is a sum of parts: token embedding, positional embedding,
    each earlier head's output (``hook_result``) and the output biases. Its LayerNorm is linear
    once the per-position scale is frozen at its value in the run, so the key splits exactly
    into one part per source (LN's bias and ``b_K`` go to ``"bias"``). The query is the head's
    real query (``hook_q``). For each head, :func:`key_score_from_parts` on the induction-target
    mask.
    """
    from induction_course.probes import induction_target_mask

    tokens = tokens.cpu()
    n_heads = int(model.cfg.n_heads)
    names = {hook_name("embed"), hook_name("pos_embed"), hook_name("resid_pre", dst_layer), hook_name("q", dst_layer)}
    names |= {hook_name("result", l) for l in range(dst_layer)}
    _, cache = model.run_with_cache(tokens.to(device_of(model)), names_filter=lambda n: n in names)
    c = {n: cache[n].detach().to("cpu", torch.float64) for n in names}
    parts = [c[hook_name("embed")], c[hook_name("pos_embed")].expand_as(c[hook_name("embed")])]
    sources = ["embed", "pos"]
    for l in range(dst_layer):
        r = c[hook_name("result", l)]  # [b, p, h, d]
        parts += [r[:, :, h] for h in range(r.shape[2])]
        sources += [f"{l}.{h}" for h in range(r.shape[2])]
    b_O = weight_f64(model, "b_O")[:dst_layer].sum(0)
    parts.append(b_O.expand_as(parts[0]))
    sources.append("bias")
    P = torch.stack(parts, 1)  # [b, src, p, d]
    W_K = weight_f64(model, "W_K")[dst_layer]  # [h, d, e]
    b_K = weight_f64(model, "b_K")[dst_layer]  # [h, e]
    if _has_ln(model):
        resid = c[hook_name("resid_pre", dst_layer)]
        centred = resid - resid.mean(-1, keepdim=True)
        scale = (centred.pow(2).mean(-1, keepdim=True) + float(model.cfg.eps)).sqrt()  # [b, p, 1]
        w, b_ln = weight_f64(model, "ln1_w")[dst_layer], weight_f64(model, "ln1_b")[dst_layer]
        P = (P - P.mean(-1, keepdim=True)) / scale[:, None] * w
        bias_k = b_ln @ W_K + b_K  # [h, e]
    else:
        bias_k = b_K
    k_parts = torch.einsum("bspd,hde->hbspe", P, W_K)  # [h, b, src, p, e]
    k_parts[:, :, -1] = k_parts[:, :, -1] + bias_k[:, None, None, :]
    q = c[hook_name("q", dst_layer)]  # [b, p, h, e]
    target = induction_target_mask(tokens)
    scores = torch.stack([key_score_from_parts(q[:, :, h], k_parts[h], target) for h in range(n_heads)])
    return KeyScoreDecomposition(sources=sources, scores=scores.float(), total=scores.sum(-1).float())
