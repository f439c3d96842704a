"""Exact conversion between :class:`AttnOnlyTransformer` and a TransformerLens 4 bridge.

TransformerLens 4 dropped ``HookedTransformer``; a model built from a config is now a
``TransformerBridge`` made by ``TransformerBridge.boot_native``. Its native attention-only model
uses standard (not shortformer) positional embeddings, no MLPs, optional LayerNorm, and a
bias on the unembedding: exactly the architecture of :mod:`induction_course.model`.

Going *to* the bridge we use TransformerLens's own ``convert_tl_checkpoint``, so the format we
save checkpoints in (TL property names and per-head shapes) is proved loadable by the tool the
field uses. Importing TransformerLens costs several seconds, hence the lazy imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from induction_course.model import AttnOnlyTransformer, ModelConfig

if TYPE_CHECKING:  # pragma: no cover
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge


def bridge_config(cfg: ModelConfig) -> "TransformerBridgeConfig":
    """The ``TransformerBridgeConfig`` that describes the same architecture as ``cfg``."""
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        n_heads=cfg.n_heads,
        n_layers=cfg.n_layers,
        n_ctx=cfg.n_ctx,
        d_vocab=cfg.d_vocab,
        attn_only=True,
        normalization_type=cfg.normalization,
        eps=cfg.eps,
        positional_embedding_type="standard",
        seed=cfg.seed,
    )


def to_bridge(model: AttnOnlyTransformer, device: str | torch.device | None = None) -> "TransformerBridge":
    """A ``TransformerBridge.boot_native`` model carrying exactly ``model``'s weights."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    tl_cfg = bridge_config(model.cfg)
    bridge = TransformerBridge.boot_native(tl_cfg)
    converted = convert_tl_checkpoint(
        {k: v.cpu() for k, v in model.tl_state_dict().items()}, bridge.cfg
    )
    bridge.load_state_dict(converted, strict=True)
    if device is not None:
        bridge = bridge.to(device)
    bridge.eval()
    return bridge


def config_from_bridge(bridge: "TransformerBridge") -> ModelConfig:
    c = bridge.cfg
    if not c.attn_only:
        raise ValueError("only attention-only bridges (attn_only=True) can be converted")
    if (getattr(c, "positional_embedding_type", "standard") or "standard") != "standard":
        raise ValueError("only bridges with standard positional embeddings can be converted")
    return ModelConfig(
        d_vocab=c.d_vocab,
        n_ctx=c.n_ctx,
        d_model=c.d_model,
        n_heads=c.n_heads,
        d_head=c.d_head,
        n_layers=c.n_layers,
        normalization=c.normalization_type,
        eps=c.eps,
        seed=c.seed if c.seed is not None else 0,
    )


def from_bridge(bridge: "TransformerBridge") -> AttnOnlyTransformer:
    """Read a bridge's weights back through its TransformerLens properties (``W_Q`` ...)."""
    cfg = config_from_bridge(bridge)
    sd: dict[str, torch.Tensor] = {
        "embed.W_E": bridge.W_E,
        "pos_embed.W_pos": bridge.W_pos,
        "unembed.W_U": bridge.W_U,
        "unembed.b_U": bridge.b_U,
    }
    for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
        stacked = getattr(bridge, name)
        for layer in range(cfg.n_layers):
            sd[f"blocks.{layer}.attn.{name}"] = stacked[layer]
    if cfg.normalization == "LN":
        raw = bridge.state_dict()
        for layer in range(cfg.n_layers):
            sd[f"blocks.{layer}.ln1.w"] = raw[f"blocks.{layer}.ln1.weight"]
            sd[f"blocks.{layer}.ln1.b"] = raw[f"blocks.{layer}.ln1.bias"]
        sd["ln_final.w"] = raw["ln_final.weight"]
        sd["ln_final.b"] = raw["ln_final.bias"]
    sd = {k: v.detach().cpu() for k, v in sd.items()}
    return AttnOnlyTransformer.from_tl_state_dict(cfg, sd)
