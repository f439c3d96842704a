"""Reference implementations of the head metrics of Olsson et al. (2022) and Elhage et al. (2021).

Three families live here:

- **Pattern scores** (pure functions of an attention pattern ``[batch, head, q, k]`` and, where
  needed, the tokens): previous-token, current-token, first-token, duplicate-token and
  prefix-matching (induction) scores. Each returns one number per head, ``[head]``, so a
  notebook can grade them on hand-built patterns. :func:`head_scores` and
  :func:`prefix_matching_scores` run a model once and return ``[n_layers, n_heads]`` tensors.
- **Weight scores**: the copying score (eigenvalue form and a weight-based logit form), top-1 OV
  copying accuracy, and Q/K/V-composition scores with a random-matrix baseline.
- **Loss scores**: the in-context-learning score and losses on repeated-token probes.

Model-level functions only use ``run_with_cache`` / ``run_with_hooks`` with TransformerLens hook
names, ``model.cfg`` and the weight attributes ``W_E, W_Q, W_K, W_V, W_O, W_U``, so they work
unchanged on :class:`~induction_course.model.AttnOnlyTransformer` and on a TransformerLens
``TransformerBridge``.

Shapes are written in the jaxtyping style ``pattern[batch, head, q, k]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from induction_course import attribution, circuits
# metrics.X covers every score: the weight scores and the key-score split are re-exported whole,
# their names listed once, in their own modules' __all__.
from induction_course.attribution import *  # noqa: E402,F401,F403
from induction_course.circuits import *  # noqa: E402,F401,F403
from induction_course.model import cross_entropy_next_token, device_of, hook_name
from induction_course.probes import duplicate_target_mask, induction_target_mask, repeated_random_tokens

__all__ = [
    "previous_token_score",
    "current_token_score",
    "first_token_score",
    "duplicate_token_score",
    "induction_score",
    "prefix_matching_score",
    "head_scores",
    "layer_patterns",
    "prefix_matching_scores",
    "icl_positions",
    "icl_score_from_losses",
    "icl_score",
    "ICLBandScore",
    "icl_bands",
    "icl_band_score",
    "RepeatedLosses",
    "repeated_token_losses",
    "repeated_losses_from_per_token",
    "later_repeat_loss",
    "classify_heads",
] + circuits.__all__ + attribution.__all__


# --------------------------------------------------------------------------- helpers
def _check_pattern(pattern: torch.Tensor) -> None:
    if not isinstance(pattern, torch.Tensor) or pattern.dim() != 4:
        shape = tuple(pattern.shape) if isinstance(pattern, torch.Tensor) else type(pattern).__name__
        raise ValueError(
            f"pattern must be a 4-D tensor [batch, head, q, k], got {shape}; for a single "
            "example use pattern.unsqueeze(0), for one head pattern[:, None]"
        )
    if pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(
            f"pattern must be square in its last two dims (q == k), got {tuple(pattern.shape)}"
        )


def _check_tokens(pattern: torch.Tensor, tokens: torch.Tensor) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be a 2-D tensor [batch, pos], got {shape}")
    b, _, q, _ = pattern.shape
    if tuple(tokens.shape) != (b, q):
        raise ValueError(
            f"tokens {tuple(tokens.shape)} do not match pattern {tuple(pattern.shape)}: "
            "tokens must be [batch, pos] with the pattern's batch and q sizes"
        )


def _n_layers_heads(model) -> tuple[int, int]:
    return int(model.cfg.n_layers), int(model.cfg.n_heads)


# ------------------------------------------------------------------ pattern scores
def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query ``q >= 1`` to the key ``q - 1``.

    ``pattern[batch, head, q, k]`` -> ``score[head]``. A pure previous-token head scores 1.
    """
    _check_pattern(pattern)
    if pattern.shape[-1] < 2:
        raise ValueError("previous_token_score needs at least 2 positions")
    # The first sub-diagonal holds A[q, q-1] for q = 1 .. n-1.
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def current_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query ``q >= 1`` to itself (key ``q``).

    ``pattern[batch, head, q, k]`` -> ``score[head]``. Query 0 is left out: under a causal mask
    it can only attend to itself, so it would add a constant 1 that says nothing about the head.
    """
    _check_pattern(pattern)
    if pattern.shape[-1] < 2:
        raise ValueError("current_token_score needs at least 2 positions")
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, 2))


def first_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query ``q >= 1`` to position 0 (the BOS token in a probe).

    ``pattern[batch, head, q, k]`` -> ``score[head]``. Query 0 is left out for the same reason
    as in :func:`current_token_score`. Heads that "rest" on BOS when they have nothing to do
    score high here.
    """
    _check_pattern(pattern)
    if pattern.shape[-1] < 2:
        raise ValueError("first_token_score needs at least 2 positions")
    return pattern[..., 1:, 0].mean(dim=(0, 2))


def _masked_mass_score(pattern: torch.Tensor, mask: torch.Tensor, what: str) -> torch.Tensor:
    """Attention mass on ``mask[batch, q, k]``, averaged over the queries with >= 1 target.

    Queries without a target are left out rather than counted as 0: they cannot show the
    behaviour, so counting them would make the score depend on how many such queries a probe
    happens to have.
    """
    mask = mask.to(pattern.device)
    mass = (pattern * mask[:, None].to(pattern.dtype)).sum(dim=-1)  # [batch, head, q]
    valid = mask.any(dim=-1)  # [batch, q]
    n_valid = valid.sum()
    if n_valid == 0:
        raise ValueError(
            f"no query position has {what}, so the score is undefined; use tokens with repeats, "
            "e.g. probes.repeated_random_tokens"
        )
    return (mass * valid[:, None].to(mass.dtype)).sum(dim=(0, 2)) / n_valid


def duplicate_token_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Attention mass on earlier occurrences of the query's own token.

    ``pattern[batch, head, q, k]``, ``tokens[batch, q]`` -> ``score[head]``: for each query with
    at least one earlier occurrence of its token (``probes.duplicate_target_mask``), the summed
    attention on those occurrences; averaged over such queries and the batch.
    """
    _check_pattern(pattern)
    _check_tokens(pattern, tokens)
    return _masked_mass_score(pattern, duplicate_target_mask(tokens.cpu()), "an earlier duplicate")


def prefix_matching_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Attention mass on induction targets: keys right after an earlier occurrence of the
    query's token (``probes.induction_target_mask``).

    ``pattern[batch, head, q, k]``, ``tokens[batch, q]`` -> ``score[head]``: summed attention on
    the targets, averaged over the queries that have at least one target and over the batch.
    An ideal induction head scores 1. This is Olsson et al.'s prefix-matching score when the
    tokens are a repeated random sequence.
    """
    _check_pattern(pattern)
    _check_tokens(pattern, tokens)
    return _masked_mass_score(pattern, induction_target_mask(tokens.cpu()), "an induction target")


induction_score = prefix_matching_score


# --------------------------------------------------------- model-level pattern scores
def layer_patterns(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """One ``[batch, head, q, k]`` pattern per layer from a single cached run."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        raise ValueError("tokens must be a 2-D tensor [batch, pos]")
    n_layers, _ = _n_layers_heads(model)
    with torch.no_grad():
        _, cache = model.run_with_cache(
            tokens.to(device_of(model)), names_filter=lambda name: name.endswith("attn.hook_pattern")
        )
    return [cache[hook_name("pattern", layer)].detach().float().cpu() for layer in range(n_layers)]


def head_scores(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """All pattern scores of every head from one ``run_with_cache`` on ``tokens[batch, pos]``.

    Returns ``{"previous_token", "current_token", "first_token", "duplicate_token",
    "prefix_matching"}``, each ``[n_layers, n_heads]``. A token-dependent score that is undefined
    on these tokens (no token repeats) is filled with NaN instead of raising.
    """
    tokens = tokens.cpu()
    patterns = layer_patterns(model, tokens)
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("previous_token", "current_token", "first_token", "duplicate_token", "prefix_matching")
    }
    n_heads = patterns[0].shape[1]
    for pattern in patterns:
        out["previous_token"].append(previous_token_score(pattern))
        out["current_token"].append(current_token_score(pattern))
        out["first_token"].append(first_token_score(pattern))
        for key, fn in (("duplicate_token", duplicate_token_score), ("prefix_matching", prefix_matching_score)):
            try:
                out[key].append(fn(pattern, tokens))
            except ValueError:
                out[key].append(torch.full((n_heads,), float("nan")))
    return {k: torch.stack(v) for k, v in out.items()}


def prefix_matching_scores(
    model,
    token_pool,
    bos: int | None,
    seg_len: int = 25,
    n_repeats: int = 4,
    n_examples: int = 10,
    seed: int = 0,
) -> torch.Tensor:
    """Olsson et al.'s prefix-matching score of every head, ``[n_layers, n_heads]``.

    The probe follows the paper: ``n_examples`` sequences of ``seg_len`` random tokens drawn
    from ``token_pool`` (tokens seen in training), repeated ``n_repeats`` times, with ``bos``
    first. A probe longer than ``model.cfg.n_ctx`` is cut to ``n_ctx`` tokens, which is fine as
    long as a second copy starts inside the context; otherwise a ValueError says what to shrink.
    """
    n_ctx = int(model.cfg.n_ctx)
    offset = 0 if bos is None else 1
    if offset + seg_len + 1 > n_ctx:
        raise ValueError(
            f"a probe with seg_len={seg_len} (plus BOS) has no repeated token within n_ctx={n_ctx}; "
            f"use seg_len <= {n_ctx - offset - 1}"
        )
    tokens = repeated_random_tokens(n_examples, seg_len, n_repeats, token_pool, bos, seed=seed)
    tokens = tokens[:, :n_ctx]
    return torch.stack([prefix_matching_score(p, tokens) for p in layer_patterns(model, tokens)])


# ----------------------------------------------------------------------- loss scores
def icl_positions(n_ctx: int) -> tuple[int, int]:
    """The token indices ``(early, late)`` whose losses the ICL score compares.

    Olsson et al. use the loss at token 500 minus the mean loss at token 50, on contexts of at
    least 512 tokens. For a shorter context both are scaled by ``n_ctx / 512`` (rounded), so
    they keep their relative place: ``n_ctx=256 -> (25, 250)``. ``late`` is clipped to
    ``n_ctx - 1``, the last token that has a loss.
    """
    if n_ctx >= 512:
        return 50, 500
    early = max(1, round(50 * n_ctx / 512))
    late = min(n_ctx - 1, round(500 * n_ctx / 512))
    if late <= early:
        raise ValueError(f"n_ctx={n_ctx} is too short for an ICL score; use at least 4 tokens")
    return early, late


def icl_score_from_losses(per_token_loss: torch.Tensor, early: int, late: int) -> float:
    """Mean loss at token ``late`` minus mean loss at token ``early``.

    ``per_token_loss[batch, pos - 1]`` as from ``cross_entropy_next_token(..., per_token=True)``:
    entry ``i`` is the loss of predicting token ``i + 1``. "The loss at token n" is the loss of
    predicting the token at index ``n`` (from tokens ``0 .. n-1``), i.e. column ``n - 1``.
    Negative = later tokens are predicted better = the model learns in context.
    """
    if not isinstance(per_token_loss, torch.Tensor) or per_token_loss.dim() != 2:
        raise ValueError("per_token_loss must be a 2-D tensor [batch, pos - 1]")
    n = per_token_loss.shape[1]
    if not (1 <= early < late <= n):
        raise ValueError(
            f"need 1 <= early < late <= {n} (tokens with a loss in a table of {n} columns), "
            f"got early={early}, late={late}"
        )
    return float(per_token_loss[:, late - 1].mean() - per_token_loss[:, early - 1].mean())


def _per_token_loss(model, tokens: torch.Tensor, fwd_hooks=()) -> torch.Tensor:
    with torch.no_grad():
        logits = model.run_with_hooks(tokens.to(device_of(model)), fwd_hooks=list(fwd_hooks))
    return cross_entropy_next_token(logits, tokens.to(logits.device), per_token=True).cpu()


def icl_score(model, tokens: torch.Tensor, early: int | None = None, late: int | None = None) -> float:
    """ICL score of ``model`` on ``tokens[batch, pos]`` (natural text, ideally many contexts).

    Positions default to :func:`icl_positions` of the context length ``pos`` actually given.
    See :func:`icl_score_from_losses` for the indexing.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        raise ValueError("tokens must be a 2-D tensor [batch, pos]")
    if early is None or late is None:
        e, l = icl_positions(tokens.shape[1])
        early = e if early is None else early
        late = l if late is None else late
    return icl_score_from_losses(_per_token_loss(model, tokens), early, late)


@dataclass
class ICLBandScore:
    """The in-context-learning score over position bands, with its sampling error.

    ``mean``: mean over windows of (mean loss over the late band - mean loss over the early band);
    ``se``: its standard error (std over windows / sqrt(n)); ``per_window [n]``; ``early`` and
    ``late``: the bands as ``(first, last)`` token indices, both included.
    """

    mean: float
    se: float
    per_window: torch.Tensor
    early: tuple[int, int]
    late: tuple[int, int]


def icl_bands(n_ctx: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Default ``(early, late)`` bands of token indices for :func:`icl_band_score`.

    The paper's tokens 50 and 500 of a 512-token context, scaled to ``n_ctx`` and widened into
    bands: early = tokens ``round(40 n/512) .. round(60 n/512)``, late = the last ~20 % of the
    context, ``round(400 n/512) .. n - 1``. ``n_ctx = 128 -> (10, 15), (100, 127)``. Averaging
    over a band instead of one token divides the sampling noise by several (measured in
    chapter 4 and the README).
    """
    e0, e1 = max(1, round(40 * n_ctx / 512)), max(1, round(60 * n_ctx / 512))
    l0, l1 = round(400 * n_ctx / 512), n_ctx - 1
    if not (e1 < l0 <= l1):
        raise ValueError(f"n_ctx={n_ctx} is too short for banded ICL scores; use at least 16 tokens")
    return (e0, e1), (l0, l1)


def icl_band_score(per_token_loss: torch.Tensor, early: tuple[int, int] | None = None,
                   late: tuple[int, int] | None = None) -> ICLBandScore:
    """Late-band minus early-band loss per window, its mean and standard error.

    ``per_token_loss[batch, pos - 1]`` as from ``cross_entropy_next_token(..., per_token=True)``:
    column ``i`` is the loss *at token* ``i + 1``, so the band of tokens ``a .. b`` is columns
    ``a - 1 .. b - 1``. Bands default to :func:`icl_bands` of ``pos``. Needs >= 2 windows.
    """
    if not isinstance(per_token_loss, torch.Tensor) or per_token_loss.dim() != 2:
        raise ValueError("per_token_loss must be a 2-D tensor [batch, pos - 1]")
    n_win, n = per_token_loss.shape
    if n_win < 2:
        raise ValueError("a standard error needs at least 2 windows")
    if early is None or late is None:
        e, l = icl_bands(n + 1)
        early, late = early or e, late or l
    for a, b in (early, late):
        if not (1 <= a <= b <= n):
            raise ValueError(f"bands must satisfy 1 <= first <= last <= {n}, got {early} and {late}")
    x = per_token_loss.double()
    diff = x[:, late[0] - 1: late[1]].mean(-1) - x[:, early[0] - 1: early[1]].mean(-1)
    return ICLBandScore(mean=float(diff.mean()), se=float(diff.std() / math.sqrt(n_win)),
                        per_window=diff.float(), early=tuple(early), late=tuple(late))


@dataclass
class RepeatedLosses:
    """Mean losses on a repeated-token probe: ``first`` copy, ``later`` copies, and ``per_copy``
    (``[n_copies]``)."""

    first: float
    later: float
    per_copy: torch.Tensor


def repeated_losses_from_per_token(per_token_loss: torch.Tensor, seg_len: int, bos: bool = True) -> RepeatedLosses:
    """Split ``per_token_loss[batch, pos - 1]`` of a probe ``[BOS], seg, seg, ...`` by copy.

    Column ``i`` is the prediction *made at* position ``i`` (of token ``i + 1``), and it belongs
    to the copy that position ``i`` is in: ``(i - offset) // seg_len`` with ``offset = 1`` when
    there is a BOS (the BOS's own prediction counts with the first copy). Grouping by the
    predicting position, not the predicted token, makes "later copies" exactly the predictions
    induction can make: at a position in copy ``c >= 1`` the current token occurred before, so
    the next token is the one after that earlier occurrence. (The first token of the second
    copy is predicted from the last position of the first copy, where nothing has repeated
    yet, so it counts as first copy.) A partial last copy counts as a copy.
    """
    if per_token_loss.dim() != 2:
        raise ValueError("per_token_loss must be a 2-D tensor [batch, pos - 1]")
    if seg_len < 1:
        raise ValueError(f"seg_len must be positive, got {seg_len}")
    offset = 1 if bos else 0
    i = torch.arange(per_token_loss.shape[1])
    copy = ((i - offset).clamp_min(0)) // seg_len
    n_copies = int(copy.max()) + 1
    if n_copies < 2:
        raise ValueError(f"the probe holds no second copy of a {seg_len}-token segment; check seg_len")
    per_pos = per_token_loss.mean(0)
    per_copy = torch.stack([per_pos[copy == c].mean() for c in range(n_copies)])
    return RepeatedLosses(first=float(per_copy[0]), later=float(per_pos[copy >= 1].mean()), per_copy=per_copy)


def repeated_token_losses(model, tokens: torch.Tensor, seg_len: int, bos: bool = True) -> RepeatedLosses:
    """Mean loss on the first copy vs the later copies of a repeated-token probe ``tokens[batch,
    pos]`` (``[BOS], seg, seg, ...`` with segments of ``seg_len``). Induction shows as
    ``later << first``."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        raise ValueError("tokens must be a 2-D tensor [batch, pos]")
    return repeated_losses_from_per_token(_per_token_loss(model, tokens), seg_len, bos)


# ------------------------------------------------------------------------ classifier
def classify_heads(
    scores: Mapping[str, torch.Tensor],
    threshold: float = 0.4,
    *,
    prev_threshold: float | None = None,
    induction_threshold: float | None = None,
) -> dict[str, list[tuple[int, int]]]:
    """Name the previous-token heads and the induction heads.

    ``scores`` holds ``"previous_token"`` and ``"prefix_matching"`` tensors ``[n_layers,
    n_heads]`` (as :func:`head_scores` returns; a bare ``prefix_matching_scores`` tensor can be
    passed as ``{"prefix_matching": t, ...}``). Previous-token heads: a layer before the last
    (layer 0 in a two-layer model; a head in the last layer has no later head to feed) with
    ``previous_token > prev_threshold``. Induction heads: layer >= 1 with ``prefix_matching >
    induction_threshold``. Both thresholds default to ``threshold``. Returns ``{"previous_token":
    [(layer, head), ...], "induction": [...]}``.
    """
    missing = {"previous_token", "prefix_matching"} - set(scores)
    if missing:
        raise ValueError(f"scores lacks {sorted(missing)}; pass the dict that head_scores returns")
    prev, pm = scores["previous_token"], scores["prefix_matching"]
    if prev.dim() != 2 or prev.shape != pm.shape:
        raise ValueError(
            f"scores must be [n_layers, n_heads] tensors of one shape, got {tuple(prev.shape)} "
            f"and {tuple(pm.shape)}"
        )
    pt = threshold if prev_threshold is None else prev_threshold
    it = threshold if induction_threshold is None else induction_threshold
    n_layers = prev.shape[0]
    prev_heads = [(int(l), int(h)) for l, h in (prev > pt).nonzero().tolist() if l < n_layers - 1]
    ind_heads = [(int(l), int(h)) for l, h in (pm > it).nonzero().tolist() if l >= 1]
    return {"previous_token": prev_heads, "induction": ind_heads}


def later_repeat_loss(logits: torch.Tensor, tokens: torch.Tensor, seg_len: int) -> float:
    """Mean loss of the predictions made in the later copies of a ``[BOS] seg seg ...`` probe."""
    per_token = cross_entropy_next_token(logits, tokens, per_token=True)
    return repeated_losses_from_per_token(per_token, seg_len, bos=True).later
