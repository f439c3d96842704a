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

from dataclasses import dataclass
from typing import Mapping

import torch

from induction_course.model import cross_entropy_next_token
from induction_course.probes import duplicate_target_mask, induction_target_mask, repeated_random_tokens

__all__ = [
    "previous_token_score",
    "current_token_score",
    "first_token_score",
    "duplicate_token_score",
    "induction_score",
    "prefix_matching_score",
    "head_scores",
    "prefix_matching_scores",
    "eigenvalue_copying_score",
    "copying_score",
    "activation_copying_ratio",
    "ov_top1_copying_accuracy",
    "composition_score",
    "composition_scores",
    "all_composition_scores",
    "CompositionBaseline",
    "composition_baseline",
    "icl_positions",
    "icl_score_from_losses",
    "icl_score",
    "RepeatedLosses",
    "repeated_token_losses",
    "classify_heads",
]


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


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _weight(model, name: str) -> torch.Tensor:
    """A weight as a detached float64 CPU tensor: eigen-decompositions and norms of products
    of several small matrices lose digits quickly in float32."""
    return getattr(model, name).detach().to("cpu", torch.float64)


def _pool(token_pool, d_vocab: int) -> torch.Tensor:
    """The pool as a 1-D long tensor of distinct ids (all of the vocab when ``None``)."""
    if token_pool is None:
        return torch.arange(d_vocab)
    pool = torch.as_tensor(token_pool, dtype=torch.long).flatten().cpu()
    if pool.numel() == 0:
        raise ValueError("token_pool is empty; pass the ids of tokens seen in training")
    if pool.min() < 0 or pool.max() >= d_vocab:
        raise ValueError(f"token_pool ids must lie in [0, {d_vocab}), got [{int(pool.min())}, {int(pool.max())}]")
    if pool.unique().numel() != pool.numel():
        raise ValueError("token_pool contains repeated ids; pass each id once (e.g. pool.unique())")
    return pool


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
def _patterns(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """One ``[batch, head, q, k]`` pattern per layer from a single cached run."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        raise ValueError("tokens must be a 2-D tensor [batch, pos]")
    n_layers, _ = _n_layers_heads(model)
    with torch.no_grad():
        _, cache = model.run_with_cache(
            tokens.to(_device(model)), names_filter=lambda name: name.endswith("attn.hook_pattern")
        )
    return [cache[f"blocks.{layer}.attn.hook_pattern"].detach().float().cpu() for layer in range(n_layers)]


def head_scores(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """All pattern scores of every head from one ``run_with_cache`` on ``tokens[batch, pos]``.

    Returns ``{"previous_token", "current_token", "first_token", "duplicate_token",
    "prefix_matching"}``, each ``[n_layers, n_heads]``. A token-dependent score that is undefined
    on these tokens (no token repeats) is filled with NaN instead of raising.
    """
    tokens = tokens.cpu()
    patterns = _patterns(model, tokens)
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
    return torch.stack([prefix_matching_score(p, tokens) for p in _patterns(model, tokens)])


# -------------------------------------------------------------------- copying scores
def eigenvalue_copying_score(model, token_pool=None) -> torch.Tensor:
    """Elhage et al.'s eigenvalue copying score of every head, ``[n_layers, n_heads]``.

    For the full OV circuit ``M = W_E W_V W_O W_U`` (``[d_vocab, d_vocab]``; with a pool,
    ``W_E[pool] W_V W_O W_U[:, pool]``) the score is ``Re(sum(lambda)) / sum(|lambda|)`` over
    the eigenvalues ``lambda`` of ``M``: +1 when every eigenvalue is positive (the head copies:
    attending to token t raises the logit of t), -1 when every one is negative (anti-copying).
    Returns NaN for a head whose OV circuit is zero.

    LayerNorm, if the model has it, is ignored (plain matrices), as in the paper's
    no-LayerNorm analysis.
    """
    W_E, W_V, W_O, W_U = (_weight(model, n) for n in ("W_E", "W_V", "W_O", "W_U"))
    pool = _pool(token_pool, W_E.shape[0])
    W_E, W_U = W_E[pool], W_U[:, pool]
    # For A [m, n] and B [n, m], AB and BA have the same non-zero eigenvalues with the same
    # multiplicities (det(lambda I - AB) = lambda^(m-n) det(lambda I - BA)); the extra eigenvalues
    # of the larger product are all 0 and add nothing to sum(lambda) or sum(|lambda|). Cycling
    # the four factors of M until the small d_head dimension is on the outside,
    # W_O (W_U W_E) W_V, turns a [d_vocab, d_vocab] problem into a [d_head, d_head] one.
    small = W_O @ (W_U @ W_E) @ W_V  # [layer, head, d_head, d_head]
    eig = torch.linalg.eigvals(small)
    total_abs = eig.abs().sum(-1)
    score = eig.real.sum(-1) / total_abs
    return torch.where(total_abs > 0, score, torch.full_like(score, float("nan"))).float()


def _full_ov_rows(model, layer: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Direct logit effect of each head of ``layer`` when it attends to each token in ``rows``:
    ``W_E[rows] W_V W_O W_U[:, cols]`` -> ``[head, len(rows), len(cols)]``."""
    W_E = _weight(model, "W_E")[rows]
    W_V = _weight(model, "W_V")[layer]
    W_O = _weight(model, "W_O")[layer]
    W_U = _weight(model, "W_U")[:, cols]
    return ((W_E @ W_V) @ W_O) @ W_U


def copying_score(model, token_pool=None, n_tokens: int | None = None, seed: int = 0) -> torch.Tensor:
    """A weight-based logit copying score of every head, ``[n_layers, n_heads]``, in -1..1.

    The course's own score, modelled on Olsson et al.'s head-activation evaluator (see
    :func:`activation_copying_ratio` for that one) but computed from weights only. For each head:

    1. For each token ``t`` (all of ``token_pool``, or ``n_tokens`` of them drawn with ``seed``),
       the head's direct effect on the logits when it attends to ``t`` with all its attention:
       ``x = W_E[t] W_V W_O W_U`` restricted to the pool's columns (``[len(pool)]``).
    2. Mean-centre ``x`` over those columns (a constant shift of all logits does nothing).
    3. ``p = ReLU(x)`` and ``n = ReLU(-x)``; ``r+ = p[t] / sum(p)`` is the share of the raised
       logit mass that goes to ``t`` itself, ``r- = n[t] / sum(n)`` the share of the lowered mass.
    4. The score of the token is ``r+ - r-``; the head's score is its mean over tokens.

    Properties: +1 for a head that raises only ``t`` (identity OV), -1 for one that lowers only
    ``t``, about 0 for a random head (both shares are ~2 / len(pool)) and for a zero head.
    Because the share is taken over the whole pool, a head that raises ``t`` most but also raises
    many other tokens a little scores low: the trained induction heads of the shipped run score
    ~0.05 while their eigenvalue score is ~1.0 and ``t`` is their top logit for ~65 % of tokens.
    Differences from the paper's evaluator: weights instead of a forward pass, the whole pool
    instead of a 25-token sample as the denominator, the ``r-`` term, and no rescaling.

    LayerNorm (the shipped run has it) is left out: the plain matrices are used.
    """
    n_layers, _ = _n_layers_heads(model)
    d_vocab = _weight(model, "W_E").shape[0]
    pool = _pool(token_pool, d_vocab)
    rows = torch.arange(pool.numel())
    if n_tokens is not None:
        if n_tokens < 1:
            raise ValueError(f"n_tokens must be positive or None, got {n_tokens}")
        gen = torch.Generator().manual_seed(seed)
        rows = torch.randperm(pool.numel(), generator=gen)[: min(n_tokens, pool.numel())]
    scores = []
    for layer in range(n_layers):
        x = _full_ov_rows(model, layer, pool[rows], pool)  # [head, n_rows, n_pool]
        x = x - x.mean(dim=-1, keepdim=True)
        up, down = x.clamp_min(0), (-x).clamp_min(0)
        idx = rows.view(1, -1, 1).expand(x.shape[0], -1, 1)  # column of the attended token
        r_up = up.gather(-1, idx).squeeze(-1) / up.sum(-1).clamp_min(1e-300)
        r_down = down.gather(-1, idx).squeeze(-1) / down.sum(-1).clamp_min(1e-300)
        scores.append((r_up - r_down).mean(-1))
    return torch.stack(scores).float()


def _ln_final_weight(model) -> torch.Tensor | None:
    """The final LayerNorm's weight (ours or a TransformerLens bridge's), None without LN."""
    ln = getattr(model, "ln_final", None)
    for w in (getattr(model, "ln_final_w", None), getattr(ln, "w", None), getattr(ln, "weight", None)):
        if isinstance(w, torch.Tensor):
            return w.detach().double()
    return None


def activation_copying_ratio(model, token_pool=None, n_examples: int = 10, seq_len: int = 25,
                             seed: int = 0) -> torch.Tensor:
    """Olsson et al.'s head-activation copying evaluator, read literally: ``r`` per head, 0..1.

    The paper (appendix, head activation evaluators): generate 25 random tokens, excluding the
    most and least common; compute the head's contribution to the residual stream and convert
    it with the unembedding (the direct path) into logits; subtract the mean of the logits and
    apply a ReLU; take the ratio of what it raises the logit of the attended token to what it
    raises the logits of all tokens in the sample; average over 10 examples. Here:

    - tokens: ``seq_len`` distinct ids from ``token_pool`` (the ids seen in training), no BOS
      (the evaluator does not mention one): ``repeated_random_tokens(n_examples, seq_len, 1,
      pool, None, seed)``;
    - contribution: ``hook_z`` of a real forward pass times ``W_O``; with LayerNorm it
      goes through ``ln_final``'s centring and weight (its per-position scale cancels in a ratio);
    - the attended token: each key weighted by its attention,
      ``r_q = sum_k A[q, k] ReLU(lg_q)[tok_k] / sum_k ReLU(lg_q)[tok_k]``; ``r`` is the mean over
      queries and examples. A query whose head raises no sample token counts 0 (the paper:
      "0 (only raises other tokens)").

    The paper then says the value "ranges from 0 to 0.5" and is scaled to -1..1, i.e.
    ``4 r - 1``. Read literally the ratio reaches 1 (a head that raises only the attended token),
    and a random head gets about ``1 / seq_len``, i.e. ``4 r - 1`` near -0.84, not 0: the text is
    ambiguous here, so this returns ``r`` unscaled and the chapter compares it with a random head.
    """
    n_layers, n_heads = _n_layers_heads(model)
    W_U = _weight(model, "W_U").double()
    pool = _pool(token_pool, W_U.shape[1])
    toks = repeated_random_tokens(n_examples, seq_len, 1, pool, None, seed).to(_device(model))
    names = {f"blocks.{l}.attn.{h}" for l in range(n_layers) for h in ("hook_pattern", "hook_z")}
    with torch.no_grad():
        _, cache = model.run_with_cache(toks, names_filter=lambda n: n in names)
    ln_w = _ln_final_weight(model)
    W_O = _weight(model, "W_O").double()
    out = []
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"].double()
        z = z.reshape(*z.shape[:2], n_heads, -1)  # [b, q, h, d_head]
        res = torch.einsum("bqhe,hed->bqhd", z, W_O[layer])  # the head's contribution
        if ln_w is not None:
            res = (res - res.mean(-1, keepdim=True)) * ln_w
        lg = res @ W_U  # [b, q, h, vocab]
        raised = (lg - lg.mean(-1, keepdim=True)).clamp_min(0)
        idx = toks.view(n_examples, 1, 1, seq_len).expand(-1, seq_len, n_heads, -1)
        on_sample = raised.gather(-1, idx)  # [b, q, h, k]: raise of each sample token
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"].double().permute(0, 2, 1, 3)  # [b, q, h, k]
        ratio = (pattern * on_sample).sum(-1) / on_sample.sum(-1).clamp_min(1e-300)
        out.append(ratio.mean(dim=(0, 1)))
    return torch.stack(out).float().cpu()


def ov_top1_copying_accuracy(model, token_pool=None) -> torch.Tensor:
    """Fraction of pool tokens ``t`` whose top logit under the head's full OV circuit
    ``W_E[pool] W_V W_O W_U[:, pool]`` is ``t`` itself, ``[n_layers, n_heads]``."""
    n_layers, _ = _n_layers_heads(model)
    pool = _pool(token_pool, _weight(model, "W_E").shape[0])
    rows = torch.arange(pool.numel())
    out = []
    for layer in range(n_layers):
        x = _full_ov_rows(model, layer, pool, pool)
        out.append((x.argmax(dim=-1) == rows).double().mean(-1))
    return torch.stack(out).float()


# ---------------------------------------------------------------- composition scores
def composition_score(W_A: torch.Tensor, W_B: torch.Tensor) -> torch.Tensor:
    """``||W_A W_B||_F / (||W_A||_F ||W_B||_F)`` (Elhage et al.), broadcast over leading dims.

    ``W_A[..., m, n]``, ``W_B[..., n, p]`` -> ``score[...]`` in [0, 1] (sub-multiplicativity of the
    Frobenius norm). NaN where either matrix is zero.
    """
    if W_A.dim() < 2 or W_B.dim() < 2 or W_A.shape[-1] != W_B.shape[-2]:
        raise ValueError(
            f"composition_score needs W_A [..., m, n] and W_B [..., n, p], got {tuple(W_A.shape)} "
            f"and {tuple(W_B.shape)}"
        )
    num = torch.linalg.matrix_norm(W_A @ W_B)
    den = torch.linalg.matrix_norm(W_A) * torch.linalg.matrix_norm(W_B)
    return torch.where(den > 0, num / den, torch.full_like(num, float("nan")))


def _circuits(model) -> tuple[torch.Tensor, torch.Tensor]:
    """``W_OV = W_V W_O`` and ``W_QK = W_Q W_K^T``, each ``[layer, head, d_model, d_model]``."""
    W_Q, W_K, W_V, W_O = (_weight(model, n) for n in ("W_Q", "W_K", "W_V", "W_O"))
    return W_V @ W_O, W_Q @ W_K.transpose(-1, -2)


def _composition(W_OV0: torch.Tensor, W_QK1: torch.Tensor, W_OV1: torch.Tensor) -> dict[str, torch.Tensor]:
    """Q/K/V scores of every (later head, earlier head) pair: inputs ``[h0, d, d]`` (earlier) and
    ``[h1, d, d]`` (later) -> ``[h1, h0]``.

    Row-vector convention (TransformerLens): a residual vector ``x`` is a row, the earlier head
    writes ``x W_OV0``, and the later head's attention score between a query residual ``x_q``
    and a key residual ``x_k`` is ``x_q W_QK1 x_k^T``.

    - Q-composition: the earlier head's output enters the *query*: ``(x W_OV0) W_QK1 x_k^T``,
      so the matrix that matters is ``W_OV0 W_QK1``.
    - K-composition: it enters the *key*: ``x_q W_QK1 (x W_OV0)^T = x_q (W_QK1 W_OV0^T) x^T``;
      ``W_QK1 W_OV0^T`` is the transpose of ``W_OV0 W_QK1^T`` and has the same norm.
    - V-composition: it enters the *value*: ``(x W_OV0) W_OV1``, so ``W_OV0 W_OV1``.
    """
    A = W_OV0[None]  # [1, h0, d, d]
    return {
        "Q": composition_score(A, W_QK1[:, None]),
        "K": composition_score(A, W_QK1[:, None].transpose(-1, -2)),
        "V": composition_score(A, W_OV1[:, None]),
    }


def composition_scores(model, src_layer: int = 0, dst_layer: int = 1) -> dict[str, torch.Tensor]:
    """Q-, K- and V-composition of every head of ``dst_layer`` with every head of ``src_layer``.

    Returns ``{"Q", "K", "V"}``, each ``[n_heads (dst_layer), n_heads (src_layer)]``: entry
    ``[h1, h0]`` says how much head ``dst_layer.h1`` reads, through its query / key / value,
    the subspace head ``src_layer.h0`` writes. For a two-layer model the defaults give the
    usual layer-1-on-layer-0 view. See :func:`_composition` for the conventions.
    """
    n_layers, _ = _n_layers_heads(model)
    if not (0 <= src_layer < dst_layer < n_layers):
        raise ValueError(
            f"need 0 <= src_layer < dst_layer < n_layers={n_layers}, got src_layer={src_layer}, "
            f"dst_layer={dst_layer}: a head can only compose with heads of earlier layers"
        )
    W_OV, W_QK = _circuits(model)
    out = _composition(W_OV[src_layer], W_QK[dst_layer], W_OV[dst_layer])
    return {k: v.float() for k, v in out.items()}


def all_composition_scores(model) -> dict[str, torch.Tensor]:
    """Composition scores of all layer pairs: ``{"Q", "K", "V"}`` each
    ``[n_layers, n_heads, n_layers, n_heads]`` indexed ``[l1, h1, l0, h0]`` (head ``l1.h1``
    reading from head ``l0.h0``), NaN where ``l1 <= l0``."""
    n_layers, n_heads = _n_layers_heads(model)
    W_OV, W_QK = _circuits(model)
    out = {k: torch.full((n_layers, n_heads, n_layers, n_heads), float("nan"), dtype=torch.float64) for k in "QKV"}
    for l1 in range(n_layers):
        for l0 in range(l1):
            for k, v in _composition(W_OV[l0], W_QK[l1], W_OV[l1]).items():
                out[k][l1, :, l0] = v
    return {k: v.float() for k, v in out.items()}


@dataclass
class CompositionBaseline:
    """Mean and standard deviation of the composition score of random heads."""

    mean: float
    std: float
    n_samples: int


def composition_baseline(cfg, n_samples: int = 200, seed: int = 0) -> CompositionBaseline:
    """Expected composition score of two *random* heads with the model's shapes.

    ``W_Q, W_K, W_V, W_O`` are drawn i.i.d. Gaussian (``[d_model, d_head]`` / ``[d_head,
    d_model]``), so ``W_OV`` and ``W_QK`` are random ``d_model x d_model`` matrices of rank
    ``d_head``, as in the model. Q-, K- and V-composition have the same distribution under
    this null (``W_Q W_K^T``, its transpose and ``W_V W_O`` are identically distributed), so one
    baseline serves all three; it is about ``1 / sqrt(d_model)`` whatever ``d_head``.
    Deterministic for a given ``seed``; the scale of the Gaussians does not matter (the score is
    scale-free).
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 to estimate a std, got {n_samples}")
    d, dh = int(cfg.d_model), int(cfg.d_head)
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(n_samples, *shape, generator=gen, dtype=torch.float64)

    W_OV0 = randn(d, dh) @ randn(dh, d)
    W_QK1 = randn(d, dh) @ randn(d, dh).transpose(-1, -2)
    scores = composition_score(W_OV0, W_QK1)
    return CompositionBaseline(mean=float(scores.mean()), std=float(scores.std()), n_samples=n_samples)


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
        logits = model.run_with_hooks(tokens.to(_device(model)), fwd_hooks=list(fwd_hooks))
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
