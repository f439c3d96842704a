"""Weight-based scores of heads: copying, composition, token-level circuits (Elhage et al. 2021).

The eigenvalue and logit copying scores, top-1 OV copying accuracy, Q/K/V-composition scores
with their random-matrix baseline, the paper's head-activation copying evaluator, and the
token-level K-circuit of an induction head. :mod:`induction_course.metrics` re-exports every
public name here, so ``metrics.copying_score`` and friends keep working.

Like the rest of the metrics, these only read ``model.cfg`` and the TransformerLens weight
attributes (``W_E, W_Q, W_K, W_V, W_O, W_U``), so they work on the course model and on a
``TransformerBridge``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from induction_course.model import device_of, weight_f64, hook_name
from induction_course.probes import repeated_random_tokens

__all__ = [
    "eigenvalue_copying_score",
    "copying_score",
    "activation_copying_ratio",
    "ov_top1_copying_accuracy",
    "composition_score",
    "composition_scores",
    "all_composition_scores",
    "CompositionBaseline",
    "composition_baseline",
    "composition_from_circuits",
    "kcomp_token_circuit",
    "logit_copying_score_from_logits",
    "fold_layer_norm",
    "folded_weights",
    "folded_circuits",
    "composition_scores_folded",
    "relative_to_other_heads",
    "diagonal_rank_scores",
    "kcircuit_token_matrices",
    "kcircuit_token_scores",
    "rank_sources",
]


def _n_layers_heads(model) -> tuple[int, int]:
    return int(model.cfg.n_layers), int(model.cfg.n_heads)


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
    W_E, W_V, W_O, W_U = (weight_f64(model, n) for n in ("W_E", "W_V", "W_O", "W_U"))
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
    W_E = weight_f64(model, "W_E")[rows]
    W_V = weight_f64(model, "W_V")[layer]
    W_O = weight_f64(model, "W_O")[layer]
    W_U = weight_f64(model, "W_U")[:, cols]
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
    ~0.06 while their eigenvalue score is ~1.0 and ``t`` is their top logit for 83-97 % of tokens.
    Differences from the paper's evaluator: weights instead of a forward pass, the whole pool
    instead of a 25-token sample as the denominator, the ``r-`` term, and no rescaling.

    LayerNorm, if the model has it (the shipped run has none), is left out: the plain matrices are used.
    """
    n_layers, _ = _n_layers_heads(model)
    d_vocab = weight_f64(model, "W_E").shape[0]
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
    W_U = weight_f64(model, "W_U").double()
    pool = _pool(token_pool, W_U.shape[1])
    toks = repeated_random_tokens(n_examples, seq_len, 1, pool, None, seed).to(device_of(model))
    names = {hook_name(kind, l) for l in range(n_layers) for kind in ("pattern", "z")}
    with torch.no_grad():
        _, cache = model.run_with_cache(toks, names_filter=lambda n: n in names)
    ln_w = _ln_final_weight(model)
    W_O = weight_f64(model, "W_O").double()
    out = []
    for layer in range(n_layers):
        z = cache[hook_name("z", layer)].double()
        z = z.reshape(*z.shape[:2], n_heads, -1)  # [b, q, h, d_head]
        res = torch.einsum("bqhe,hed->bqhd", z, W_O[layer])  # the head's contribution
        if ln_w is not None:
            res = (res - res.mean(-1, keepdim=True)) * ln_w
        lg = res @ W_U  # [b, q, h, vocab]
        raised = (lg - lg.mean(-1, keepdim=True)).clamp_min(0)
        idx = toks.view(n_examples, 1, 1, seq_len).expand(-1, seq_len, n_heads, -1)
        on_sample = raised.gather(-1, idx)  # [b, q, h, k]: raise of each sample token
        pattern = cache[hook_name("pattern", layer)].double().permute(0, 2, 1, 3)  # [b, q, h, k]
        ratio = (pattern * on_sample).sum(-1) / on_sample.sum(-1).clamp_min(1e-300)
        out.append(ratio.mean(dim=(0, 1)))
    return torch.stack(out).float().cpu()


def ov_top1_copying_accuracy(model, token_pool=None) -> torch.Tensor:
    """Fraction of pool tokens ``t`` whose top logit under the head's full OV circuit
    ``W_E[pool] W_V W_O W_U[:, pool]`` is ``t`` itself, ``[n_layers, n_heads]``."""
    n_layers, _ = _n_layers_heads(model)
    pool = _pool(token_pool, weight_f64(model, "W_E").shape[0])
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
    W_Q, W_K, W_V, W_O = (weight_f64(model, n) for n in ("W_Q", "W_K", "W_V", "W_O"))
    return W_V @ W_O, W_Q @ W_K.transpose(-1, -2)


def composition_from_circuits(W_OV0: torch.Tensor, W_QK1: torch.Tensor, W_OV1: torch.Tensor) -> dict[str, torch.Tensor]:
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
    out = composition_from_circuits(W_OV[src_layer], W_QK[dst_layer], W_OV[dst_layer])
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
            for k, v in composition_from_circuits(W_OV[l0], W_QK[l1], W_OV[l1]).items():
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


# --------------------------------------------------------------- token-level circuits
def kcomp_token_circuit(model, prev_head: int, ind_head: int) -> torch.Tensor:
    """``[d_vocab, d_vocab]``: ``W_E W_QK^{1,ind} (W_E W_OV^{0,prev})^T``.

    Row = the query's token, column = the token that layer-0 head ``prev_head`` copies into
    the key position (the key's *previous* token). An induction head built by K-composition has
    large diagonal entries: the query attends to keys whose previous token equals its own token.
    (LayerNorm and positional terms are left out: this is the token-only path.)"""
    with torch.no_grad():
        key_side = model.W_E @ model.W_OV[0, prev_head]  # [d_vocab, d_model]
        return model.W_E @ model.W_QK[1, ind_head] @ key_side.T


def logit_copying_score_from_logits(logits: torch.Tensor, attended: torch.Tensor) -> float:
    """The course's weight-based logit copying score of one head from its direct logit effects.

    ``logits[n_tokens, n_cols]``: row ``i`` is the head's direct effect on the logits when it
    attends to token ``i`` (``W_E[t_i] W_V W_O W_U``); ``attended[n_tokens]``: the column of
    token ``t_i`` itself. Mean-centre each row, ReLU both ways, ``r+ - r-`` per row, mean.
    Same maths as :func:`induction_course.metrics.copying_score`.
    """
    x = logits.double()
    x = x - x.mean(-1, keepdim=True)
    up, down = x.clamp_min(0), (-x).clamp_min(0)
    idx = attended.view(-1, 1).long()
    r_up = up.gather(-1, idx).squeeze(-1) / up.sum(-1).clamp_min(1e-300)
    r_down = down.gather(-1, idx).squeeze(-1) / down.sum(-1).clamp_min(1e-300)
    return float((r_up - r_down).mean())


# ------------------------------------------------------------------- LayerNorm folding
def fold_layer_norm(w: torch.Tensor, b: torch.Tensor, W: torch.Tensor, b_W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold a LayerNorm's weight, bias and centring into the matrix that reads its output.

    LayerNorm maps a residual row ``x`` to ``(x - mean(x)) / s * w + b`` (``s`` > 0, one number
    per vector). A head reads it through ``W [..., d_model, d_out]`` plus ``b_W [..., d_out]``:
    ``LN(x) W + b_W = (x / s) W' + b'`` with

    - ``W' = C diag(w) W``: each input row of ``W`` scaled by ``w``, then every column
      centred over ``d_model`` (``C = I - 11^T/d`` does the centring of ``x``, and
      ``x C diag(w) W = x (C diag(w) W)``; ``C`` is symmetric);
    - ``b' = b W + b_W``.

    What is left is the division by ``s``, which depends on the input vector (TransformerLens's
    ``fold_ln`` leaves it the same way). Shapes broadcast over leading dims of ``W`` and ``b_W``.
    """
    Ww = w[..., :, None] * W
    W_f = Ww - Ww.mean(dim=-2, keepdim=True)
    b_f = torch.einsum("d,...de->...e", b, W) + b_W
    return W_f, b_f


def _has_ln(model) -> bool:
    return getattr(model.cfg, "normalization", None) == "LN" and isinstance(getattr(model, "ln1_w", None), torch.Tensor)


def folded_weights(model, fold_ln: bool = True) -> dict[str, torch.Tensor]:
    """``W_Q, W_K, W_V [L, H, d_model, d_head]`` with each layer's ``ln1`` folded in (when the
    model has LayerNorm and ``fold_ln``), ``W_O``, and ``W_E`` / ``W_U`` as float64. The
    embedding rows are *not* normalised here; see :func:`kcircuit_token_scores`."""
    W = {n: weight_f64(model, n) for n in ("W_E", "W_Q", "W_K", "W_V", "W_O", "W_U")}
    if fold_ln and _has_ln(model):
        ln_w, ln_b = weight_f64(model, "ln1_w"), weight_f64(model, "ln1_b")
        for n in ("W_Q", "W_K", "W_V"):
            W[n] = torch.stack([fold_layer_norm(ln_w[l], ln_b[l], W[n][l], torch.zeros(W[n].shape[1], W[n].shape[-1],
                                                                                         dtype=W[n].dtype))[0]
                                for l in range(W[n].shape[0])])
    return W


def folded_circuits(model, fold_ln: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``W_OV`` and ``W_QK`` (``[L, H, d_model, d_model]``) with each layer's LayerNorm folded
    in (its weight and centring; the per-vector scale cannot be folded)."""
    W = folded_weights(model, fold_ln)
    return W["W_V"] @ W["W_O"], W["W_Q"] @ W["W_K"].transpose(-1, -2)


def composition_scores_folded(model, src_layer: int = 0, dst_layer: int = 1) -> dict[str, torch.Tensor]:
    """:func:`composition_scores` with each layer's LayerNorm folded into its heads' weights
    (a model without LayerNorm gives the plain scores)."""
    W_OV, W_QK = folded_circuits(model, fold_ln=True)
    out = composition_from_circuits(W_OV[src_layer], W_QK[dst_layer], W_OV[dst_layer])
    return {k: v.float() for k, v in out.items()}


def relative_to_other_heads(scores: torch.Tensor) -> torch.Tensor:
    """Each entry of ``scores[h1, h0]`` divided by the mean of the *other* entries of its row:
    how much more head ``h1`` reads from ``h0`` than from the other heads of the same layer
    (1 = no preference). Compares trained heads with trained heads, not with random matrices."""
    n = scores.shape[-1]
    if n < 2:
        raise ValueError("need at least two source heads to compare a head with the others")
    others = (scores.sum(-1, keepdim=True) - scores) / (n - 1)
    return scores / others


# --------------------------------------------------------- the token-level K-circuit
def diagonal_rank_scores(circuit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 accuracy and mean rank of the diagonal of square circuits ``[..., n, n]``.

    Row ``i`` is a query token, column ``j`` a key-side token; a circuit that matches tokens
    has its largest entry of row ``i`` at column ``i``. Returns ``(top1 [...], mean_rank [...])``:
    ``top1`` the fraction of rows whose argmax is the diagonal, ``mean_rank`` the mean over rows
    of the number of entries of the row strictly larger than the diagonal one (0 = top; about
    ``(n - 1) / 2`` for a random circuit). Entries equal to the diagonal one count half, and
    such a row is no top-1 hit, so an all-zero circuit scores top-1 0 and rank ``(n - 1) / 2``.
    """
    if circuit.dim() < 2 or circuit.shape[-1] != circuit.shape[-2]:
        raise ValueError(f"circuit must be square in its last two dims, got {tuple(circuit.shape)}")
    diag = circuit.diagonal(dim1=-2, dim2=-1)  # [..., n]
    larger = (circuit > diag[..., None]).sum(-1).double()  # [..., n]
    # Ties with the diagonal (only in degenerate circuits, e.g. all zero) count half, and a tied
    # row is not a top-1 hit: a circuit that does nothing must not score 1.
    eye = torch.eye(circuit.shape[-1], dtype=torch.bool, device=circuit.device)
    ties = ((circuit == diag[..., None]) & ~eye).sum(-1).double()
    rank = larger + 0.5 * ties
    top1 = ((larger == 0) & (ties == 0)).double().mean(-1)
    return top1, rank.mean(-1)


def _embed_as_ln_sees_it(model, W_E: torch.Tensor, fold_ln: bool) -> torch.Tensor:
    """The token embeddings, centred and scaled to unit RMS as a LayerNorm would see a token
    alone (when the model has LayerNorm and ``fold_ln``); otherwise unchanged."""
    if not (fold_ln and _has_ln(model)):
        return W_E
    x = W_E - W_E.mean(-1, keepdim=True)
    return x / x.pow(2).mean(-1, keepdim=True).add(float(model.cfg.eps)).sqrt()


def kcircuit_token_matrices(model, token_pool=None, src_layer: int = 0, dst_layer: int = 1,
                            fold_ln: bool = True) -> torch.Tensor:
    """The token-level K-circuit of every (later head, earlier head) pair:
    ``E W_QK^{dst,h1} (E W_OV^{src,h0})^T`` -> ``[h1, h0, n_pool, n_pool]`` (float64).

    ``E = W_E[pool]``; row = the query's token, column = the token that head ``src.h0`` copies
    into the key position (for a previous-token head: the key's *previous* token). With
    ``fold_ln`` (the default) and a LayerNorm model, each layer's ``ln1`` weight and centring
    are folded into its heads and ``E`` is normalised as LayerNorm normalises a lone token.
    Positional terms and biases are left out: this is the token-to-token path only.
    """
    W = folded_weights(model, fold_ln)
    pool = _pool(token_pool, W["W_E"].shape[0])
    E = _embed_as_ln_sees_it(model, W["W_E"][pool], fold_ln)
    ov = W["W_V"][src_layer] @ W["W_O"][src_layer]  # [h0, d, d]
    key_side = E @ ov  # [h0, n, d]: what head h0 writes when it attends to each token
    if fold_ln and _has_ln(model):  # the next LayerNorm centres what it reads
        key_side = key_side - key_side.mean(-1, keepdim=True)
    q_side = E @ W["W_Q"][dst_layer]  # [h1, n, d_head]
    k_side = key_side[None] @ W["W_K"][dst_layer][:, None]  # [h1, h0, n, d_head]
    return q_side[:, None] @ k_side.transpose(-1, -2)


def kcircuit_token_scores(model, token_pool=None, src_layer: int = 0, dst_layer: int = 1,
                          fold_ln: bool = True) -> dict[str, torch.Tensor]:
    """The token-level K-circuit score of every (later head, earlier head) pair.

    Returns ``{"top1", "mean_rank"}``, each ``[h1, h0]``: :func:`diagonal_rank_scores` of
    :func:`kcircuit_token_matrices`. An induction head that finds its keys through a
    previous-token head ``h0`` has ``top1`` near 1 in column ``h0``: for most query tokens
    ``t``, the key whose previous token is ``t`` gets the largest score. Unlike the Frobenius
    K-composition score, this asks whether the path *matches tokens*, not whether two
    subspaces overlap.
    """
    top1, rank = diagonal_rank_scores(kcircuit_token_matrices(model, token_pool, src_layer, dst_layer, fold_ln))
    return {"top1": top1.float(), "mean_rank": rank.float()}


def rank_sources(scores: torch.Tensor, descending: bool = True) -> list[list[int]]:
    """For each row ``h1`` of ``scores[h1, h0]``, the source heads ``h0`` best first."""
    return [row.argsort(descending=descending).tolist() for row in scores]
