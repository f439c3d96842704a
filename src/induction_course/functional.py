"""The transformer of :mod:`induction_course.model`, taken apart into pure functions of its weights.

One function per exercise of chapter 1 ("build a transformer"), in TransformerLens shapes.
These are the *reference implementations* the chapter's hidden tests compare a student's answer
with, and what later chapters import, so that nobody's chapter 4 depends on their chapter 1.
Every function here is tested against :class:`~induction_course.model.AttnOnlyTransformer`
(``tests/course/test_chapter01.py``), so the pieces and the whole agree to float precision.

Shape names: ``batch``, ``pos`` (``q_pos`` / ``k_pos`` for query and key positions),
``d_model``, ``d_head``, ``n_heads``, ``d_vocab``, ``n_ctx``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from induction_course.model import AttnOnlyTransformer, ModelConfig, hook_name

if TYPE_CHECKING:  # pragma: no cover
    from transformer_lens import FactoredMatrix
    from transformer_lens.model_bridge import TransformerBridge


def embed(tokens: torch.Tensor, W_E: torch.Tensor) -> torch.Tensor:
    """``tokens [batch, pos]`` (int), ``W_E [d_vocab, d_model]`` -> ``[batch, pos, d_model]``."""
    return W_E[tokens]


def pos_embed(tokens: torch.Tensor, W_pos: torch.Tensor) -> torch.Tensor:
    """``tokens [batch, pos]``, ``W_pos [n_ctx, d_model]`` -> ``[batch, pos, d_model]``.

    Row ``p`` of ``W_pos`` is added at position ``p`` whatever the token is.
    """
    batch, n_pos = tokens.shape
    return W_pos[:n_pos].unsqueeze(0).expand(batch, n_pos, W_pos.shape[-1])


def head_attn_scores(
    x: torch.Tensor, W_Q: torch.Tensor, b_Q: torch.Tensor, W_K: torch.Tensor, b_K: torch.Tensor
) -> torch.Tensor:
    """One head's scaled attention scores, before the mask.

    ``x [batch, pos, d_model]``, ``W_Q, W_K [d_model, d_head]``, ``b_Q, b_K [d_head]``
    -> ``[batch, q_pos, k_pos]`` = ``q . k / sqrt(d_head)``.
    """
    q = x @ W_Q + b_Q
    k = x @ W_K + b_K
    return q @ k.transpose(-1, -2) / math.sqrt(W_Q.shape[-1])


def apply_causal_mask(scores: torch.Tensor) -> torch.Tensor:
    """``scores [..., q_pos, k_pos]`` with every key after its query set to ``-inf``."""
    n_q, n_k = scores.shape[-2:]
    future = torch.ones(n_q, n_k, dtype=torch.bool, device=scores.device).triu(diagonal=1)
    return scores.masked_fill(future, float("-inf"))


def attention_pattern(scores: torch.Tensor) -> torch.Tensor:
    """Causal attention pattern: mask, then softmax over keys. ``[..., q_pos, k_pos]``."""
    return apply_causal_mask(scores).softmax(dim=-1)


def head_output(
    pattern: torch.Tensor, x: torch.Tensor, W_V: torch.Tensor, b_V: torch.Tensor, W_O: torch.Tensor
) -> torch.Tensor:
    """What one head writes into the residual stream (without ``b_O``).

    ``pattern [batch, q_pos, k_pos]``, ``x [batch, pos, d_model]``, ``W_V [d_model, d_head]``,
    ``b_V [d_head]``, ``W_O [d_head, d_model]`` -> ``[batch, q_pos, d_model]``.
    """
    v = x @ W_V + b_V  # [batch, k_pos, d_head]
    z = pattern @ v  # [batch, q_pos, d_head]
    return z @ W_O


def attention_layer(
    x: torch.Tensor,
    W_Q: torch.Tensor,
    b_Q: torch.Tensor,
    W_K: torch.Tensor,
    b_K: torch.Tensor,
    W_V: torch.Tensor,
    b_V: torch.Tensor,
    W_O: torch.Tensor,
    b_O: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole multi-head attention layer.

    ``W_Q, W_K, W_V [n_heads, d_model, d_head]``, ``b_Q, b_K, b_V [n_heads, d_head]``,
    ``W_O [n_heads, d_head, d_model]``, ``b_O [d_model]``.
    Returns ``attn_out [batch, pos, d_model]`` (sum of the heads' outputs plus ``b_O``) and
    ``pattern [batch, n_heads, q_pos, k_pos]`` (TransformerLens's ``hook_pattern``).
    """
    q = torch.einsum("bpd,hde->bhpe", x, W_Q) + b_Q[:, None, :]
    k = torch.einsum("bpd,hde->bhpe", x, W_K) + b_K[:, None, :]
    v = torch.einsum("bpd,hde->bhpe", x, W_V) + b_V[:, None, :]
    scores = q @ k.transpose(-1, -2) / math.sqrt(W_Q.shape[-1])  # [batch, head, q, k]
    pattern = attention_pattern(scores)
    z = pattern @ v  # [batch, head, q_pos, d_head]
    out = torch.einsum("bhpe,hed->bpd", z, W_O) + b_O
    return out, pattern


def unembed(resid: torch.Tensor, W_U: torch.Tensor, b_U: torch.Tensor) -> torch.Tensor:
    """``resid [batch, pos, d_model]`` -> logits ``[batch, pos, d_vocab]``."""
    return resid @ W_U + b_U


def transformer_forward(
    tokens: torch.Tensor, model: AttnOnlyTransformer
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits ``[batch, pos, d_vocab]`` and one pattern ``[batch, n_heads, q, k]`` per layer.

    Reads the weights of ``model`` (no LayerNorm) and builds the residual stream by hand.
    """
    if model.cfg.normalization is not None:
        raise ValueError("transformer_forward handles models without LayerNorm only")
    resid = embed(tokens, model.W_E) + pos_embed(tokens, model.W_pos)
    patterns = []
    for layer in range(model.cfg.n_layers):
        attn_out, pattern = attention_layer(
            resid,
            model.W_Q[layer], model.b_Q[layer],
            model.W_K[layer], model.b_K[layer],
            model.W_V[layer], model.b_V[layer],
            model.W_O[layer], model.b_O[layer],
        )
        resid = resid + attn_out
        patterns.append(pattern)
    return unembed(resid, model.W_U, model.b_U), patterns


def to_tl_state_dict(model: AttnOnlyTransformer) -> dict[str, torch.Tensor]:
    """The weights under TransformerLens's names and per-layer shapes (``blocks.{l}.attn.W_Q``...)."""
    return model.tl_state_dict()


def bridge_from_tl_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> "TransformerBridge":
    """Boot a native TransformerLens 4 bridge for ``cfg`` and load ``sd`` (TL names) into it.

    Raises a ``ValueError`` naming the key when ``sd`` is not a complete, well-shaped
    TransformerLens state dict for ``cfg``.
    """
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    from induction_course.tl_convert import bridge_config

    if not isinstance(sd, dict):
        raise ValueError(f"expected a dict of TransformerLens names to tensors, got {type(sd).__name__}")
    # Validates names and shapes with a readable message before TransformerLens sees them.
    AttnOnlyTransformer.from_tl_state_dict(cfg, sd)
    bridge = TransformerBridge.boot_native(bridge_config(cfg))
    converted = convert_tl_checkpoint({k: v.detach().cpu() for k, v in sd.items()}, bridge.cfg)
    bridge.load_state_dict(converted, strict=True)
    bridge.eval()
    return bridge


def bridge_logits_and_patterns(
    bridge: "TransformerBridge", tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a bridge with a cache: logits and the stacked patterns ``[n_layers, batch, n_heads, q, k]``."""
    logits, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    patterns = torch.stack([cache[hook_name("pattern", layer)] for layer in range(bridge.cfg.n_layers)])
    return logits, patterns


def full_ov_circuit(bridge: "TransformerBridge", layer: int, head: int) -> "FactoredMatrix":
    """``W_E W_V W_O W_U`` of one head as a ``FactoredMatrix`` ``[d_vocab, d_vocab]``.

    Row ``i`` is what the head adds to the logits when it attends to token ``i``.
    """
    return bridge.W_E @ bridge.OV[layer, head] @ bridge.W_U


def pos_qk_circuit(bridge: "TransformerBridge", layer: int, head: int) -> "FactoredMatrix":
    """``W_pos W_Q W_K^T W_pos^T`` as a ``FactoredMatrix`` ``[n_ctx (query), n_ctx (key)]``.

    Entry ``[i, j]`` is the (unscaled) score that position ``i`` gives position ``j`` through
    positional embeddings alone: a previous-token head lights up the sub-diagonal.
    """
    return bridge.W_pos @ bridge.QK[layer, head] @ bridge.W_pos.T


def ov_copying_score(ov: "FactoredMatrix") -> float:
    """Eigenvalue copying score ``Re(sum lambda) / sum |lambda|`` of a square circuit, in [-1, 1]."""
    eig = ov.eigenvalues
    return float((eig.sum() / eig.abs().sum()).real)
