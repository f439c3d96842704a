"""A two-layer attention-only transformer in plain PyTorch.

The shape of the code follows the maths of Elhage et al. (2021): the residual stream is a sum
of the token embedding, the positional embedding and the output of every attention head; the
logits are the residual stream times ``W_U``. Weights are stored exactly as TransformerLens
names and shapes them (``W_Q[layer, head, d_model, d_head]``, ``W_O[layer, head, d_head,
d_model]`` ...), so every formula in the papers and in TransformerLens code reads the same here.

The model carries a minimal hook system with TransformerLens hook names
(``blocks.{l}.attn.hook_pattern``, ``blocks.{l}.attn.hook_z`` ...; build them with
:func:`hook_name`, e.g. ``hook_name("pattern", l)``, as TransformerLens's ``utils.get_act_name``
does) and the two entry points an
interpretability reader expects, :meth:`AttnOnlyTransformer.run_with_cache` and
:meth:`AttnOnlyTransformer.run_with_hooks`. The same hook functions therefore work on this model
and on a TransformerLens ``TransformerBridge`` (see :mod:`induction_course.tl_convert`).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALIZATIONS = (None, "LN")


@dataclass
class ModelConfig:
    """Hyper-parameters of the attention-only transformer.

    The defaults are the shipped run's model (``data/checkpoints/config.json``; a test keeps them
    equal): ``ModelConfig()`` is the model the course analyses.

    ``normalization`` is ``None`` (no LayerNorm, the cleanest object for circuit analysis) or
    ``"LN"`` (pre-LayerNorm before each attention layer and before the unembedding).
    """

    d_vocab: int = 300
    n_ctx: int = 128
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    n_layers: int = 2
    normalization: str | None = None
    eps: float = 1e-5
    init_std: float = 1.0
    # "sinusoidal" starts W_pos as the sin/cos table of Vaswani et al. (then it is learned like
    # any weight); "normal" starts it random. See the README's training recipe for why.
    pos_init: str = "sinusoidal"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )
        if self.pos_init not in ("sinusoidal", "normal"):
            raise ValueError(f"pos_init must be 'sinusoidal' or 'normal', got {self.pos_init!r}")
        for name in ("d_vocab", "n_ctx", "d_model", "n_heads", "d_head", "n_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)


def sinusoidal_positions(n_ctx: int, d_model: int) -> torch.Tensor:
    """``[n_ctx, d_model]`` table of unit-amplitude (sin, cos) pairs.

    Frequencies run geometrically from pi (neighbours in opposite phase) down to pi / n_ctx
    (one half-turn over the context). Vaswani et al.'s base-10000 table has a single pair
    faster than 1 rad/position in 64 dimensions, so neighbouring positions look alike and a
    sharp previous-token head needs large weights; with this spread, "one position back" is a
    low-rank rotation that a 16-dimensional head can express.
    """
    n_freq = (d_model + 1) // 2
    pos = torch.arange(n_ctx, dtype=torch.float32)[:, None]
    ratio = torch.arange(n_freq, dtype=torch.float32) / max(n_freq - 1, 1)
    freqs = math.pi * torch.exp(-math.log(max(n_ctx, 2)) * ratio)
    table = torch.zeros(n_ctx, 2 * n_freq)
    table[:, 0::2] = torch.sin(pos * freqs)
    table[:, 1::2] = torch.cos(pos * freqs)
    return table[:, :d_model]


def device_of(model) -> torch.device:
    """The device of a model's parameters (CPU for a model without any), course model or bridge."""
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def weight_f64(model, name: str) -> torch.Tensor:
    """A weight (course model or bridge) as a detached float64 CPU tensor: eigen-decompositions
    and norms of products of several small matrices lose digits quickly in float32."""
    return getattr(model, name).detach().to("cpu", torch.float64)


HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]


@dataclass
class HookPoint:
    """What a hook function receives as its second argument, shaped like TransformerLens's.

    As in TransformerLens, ``hook.name`` is the hook point's name and ``hook.layer()`` is a
    *method* returning its block index, so an ARENA-style hook function
    ``def fn(act, hook): ... hook.layer() ...`` runs unchanged here and on a
    ``TransformerBridge``. (On the bridge, ``hook.name`` is the bridge's own name for the point,
    e.g. ``blocks.0.attn.o.hook_in`` for ``hook_z``; ``hook.layer()`` agrees on both.)
    """

    name: str
    layer_idx: int | None = None
    ctx: dict = field(default_factory=dict)

    def layer(self) -> int:
        """The block index of a ``blocks.{l}.*`` hook point; a ValueError for the others."""
        if self.layer_idx is None:
            raise ValueError(f"hook point {self.name!r} belongs to no layer (it is outside the blocks)")
        return self.layer_idx


# Hook points inside each block, in the order they fire, and where in the block they sit.
_LAYER_HOOKS = {
    "resid_pre": "hook_resid_pre",
    "q": "attn.hook_q",
    "k": "attn.hook_k",
    "v": "attn.hook_v",
    "attn_scores": "attn.hook_attn_scores",
    "pattern": "attn.hook_pattern",
    "z": "attn.hook_z",
    "result": "attn.hook_result",
    "attn_out": "hook_attn_out",
    "resid_post": "hook_resid_post",
}
# Hook points outside the blocks.
_GLOBAL_HOOKS = {
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    "normalized": "ln_final.hook_normalized",
}
# TransformerLens's short names (``utils.get_act_name``) and a few spellings of our own.
_HOOK_ALIASES = {
    "attn": "pattern",
    "attn_logits": "attn_scores",
    "query": "q",
    "key": "k",
    "value": "v",
    "ln_final": "normalized",
    "ln_final.normalized": "normalized",
    "ln_final.hook_normalized": "normalized",
}


def _hook_kinds_text() -> str:
    aliases = ", ".join(f"{a!r}->{k!r}" for a, k in _HOOK_ALIASES.items())
    return (
        f"per layer (pass layer=...): {', '.join(map(repr, _LAYER_HOOKS))}; "
        f"outside the blocks (layer=None): {', '.join(map(repr, _GLOBAL_HOOKS))}; aliases: {aliases}"
    )


@functools.lru_cache(maxsize=1024)
def hook_name(kind: str, layer: int | None = None) -> str:
    """The full name of one of the model's hook points, like TransformerLens's ``utils.get_act_name``.

    ``hook_name("pattern", 1) == "blocks.1.attn.hook_pattern"``,
    ``hook_name("z", 0) == "blocks.0.attn.hook_z"``, ``hook_name("embed") == "hook_embed"``,
    ``hook_name("normalized") == "ln_final.hook_normalized"``. TransformerLens's short names
    work too (``"attn"`` is the pattern, ``"attn_logits"`` the scores, ``"key"`` is ``"k"`` ...),
    so does its compact form (``hook_name("z0") == hook_name("z", 0)``), a leading ``hook_``
    (``hook_name("hook_z", 0)``), and a full name, which is returned as it is once checked.
    Any other kind is a ValueError that lists the valid ones.
    """
    if not isinstance(kind, str):
        raise TypeError(f"hook kind must be a string, got {type(kind).__name__}")
    if layer is not None:
        try:
            index = None if isinstance(layer, bool) else operator.index(layer)
        except TypeError:
            index = None
        if index is None or index < 0:
            raise ValueError(f"layer must be a non-negative int or None, got {layer!r}")
        layer = index
    key = kind.strip()
    if layer is None:
        full = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
        if full is not None:  # a full name: check it and give it back
            if full.group(2) in _LAYER_HOOKS.values():
                return key
            raise ValueError(f"{kind!r} is not a hook point of this model; valid kinds: {_hook_kinds_text()}")
        if key in _GLOBAL_HOOKS.values():
            return key
        compact = re.fullmatch(r"([a-z_]+?)_?(\d+)", key)  # TransformerLens's "z0", "pattern1"
        if compact is not None:
            return hook_name(compact.group(1), int(compact.group(2)))
    if key.startswith("hook_"):
        key = key[len("hook_"):]
    key = _HOOK_ALIASES.get(key, key)
    if key in _LAYER_HOOKS:
        if layer is None:
            raise ValueError(f"hook kind {kind!r} lives in every block: pass its layer, e.g. hook_name({kind!r}, 0)")
        return f"blocks.{layer}.{_LAYER_HOOKS[key]}"
    if key in _GLOBAL_HOOKS:
        if layer is not None:
            raise ValueError(f"hook kind {kind!r} is outside the blocks: call hook_name({kind!r}) without a layer")
        return _GLOBAL_HOOKS[key]
    raise ValueError(f"unknown hook kind {kind!r}; valid kinds: {_hook_kinds_text()}")


def hook_names(cfg: ModelConfig) -> list[str]:
    """Every hook point of the model, in the order they fire."""
    names = [hook_name("embed"), hook_name("pos_embed")]
    for layer in range(cfg.n_layers):
        names += [hook_name(kind, layer) for kind in _LAYER_HOOKS]
    names.append(hook_name("normalized"))
    return names


class AttnOnlyTransformer(nn.Module):
    """Token + positional embedding, ``n_layers`` causal multi-head attention layers, unembedding.

    Shapes follow TransformerLens:

    - ``W_E [d_vocab, d_model]``, ``W_pos [n_ctx, d_model]``
    - ``W_Q, W_K, W_V [n_layers, n_heads, d_model, d_head]``, ``b_Q, b_K, b_V [n_layers, n_heads, d_head]``
    - ``W_O [n_layers, n_heads, d_head, d_model]``, ``b_O [n_layers, d_model]``
    - ``W_U [d_model, d_vocab]``, ``b_U [d_vocab]``
    - with LayerNorm: ``ln1_w, ln1_b [n_layers, d_model]``, ``ln_final_w, ln_final_b [d_model]``
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        L, H, D, Dh, V = cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_vocab
        self.W_E = nn.Parameter(torch.empty(V, D))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, D))
        self.W_Q = nn.Parameter(torch.empty(L, H, D, Dh))
        self.W_K = nn.Parameter(torch.empty(L, H, D, Dh))
        self.W_V = nn.Parameter(torch.empty(L, H, D, Dh))
        self.W_O = nn.Parameter(torch.empty(L, H, Dh, D))
        self.b_Q = nn.Parameter(torch.zeros(L, H, Dh))
        self.b_K = nn.Parameter(torch.zeros(L, H, Dh))
        self.b_V = nn.Parameter(torch.zeros(L, H, Dh))
        self.b_O = nn.Parameter(torch.zeros(L, D))
        self.W_U = nn.Parameter(torch.empty(D, V))
        self.b_U = nn.Parameter(torch.zeros(V))
        if cfg.normalization == "LN":
            self.ln1_w = nn.Parameter(torch.ones(L, D))
            self.ln1_b = nn.Parameter(torch.zeros(L, D))
            self.ln_final_w = nn.Parameter(torch.ones(D))
            self.ln_final_b = nn.Parameter(torch.zeros(D))
        self.register_buffer(
            "causal_mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)), persistent=False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Seeded initialisation (does not touch the global RNG).

        Every matrix gets std ``init_std / sqrt(fan_in)`` (embeddings: std ``init_std``), so
        activations have unit scale whatever the width. GPT-2's fixed std of 0.02 is tuned for
        d_model=768; in a 64-wide model it makes ``W_Q W_K^T`` so small that attention stays
        uniform for hundreds of steps (a saddle), which we measured (README, training recipe).
        """
        gen = torch.Generator().manual_seed(self.cfg.seed)
        c = self.cfg
        s = c.init_std

        def normal(shape, std):
            return torch.randn(shape, generator=gen) * std

        with torch.no_grad():
            self.W_E.copy_(normal(self.W_E.shape, s))
            if c.pos_init == "sinusoidal":
                # A shift by one position is a rotation of each (sin, cos) pair, so a
                # previous-token head needs only a low-rank QK circuit. From random vectors it
                # must first learn such structure, which costs most of a short CPU run.
                self.W_pos.copy_(sinusoidal_positions(c.n_ctx, c.d_model) * s * math.sqrt(2))
            else:
                self.W_pos.copy_(normal(self.W_pos.shape, s))
            for name in ("W_Q", "W_K", "W_V"):
                getattr(self, name).copy_(normal(getattr(self, name).shape, s / math.sqrt(c.d_model)))
            # Output projections write into the residual stream once per layer; the extra
            # 1/sqrt(2 n_layers) keeps the stream's norm independent of depth (GPT-2's trick).
            self.W_O.copy_(normal(self.W_O.shape, s / math.sqrt(c.n_heads * c.d_head * 2 * c.n_layers)))
            self.W_U.copy_(normal(self.W_U.shape, s / math.sqrt(c.d_model)))

    # ------------------------------------------------------------------ forward
    def _layer_norm(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        scale = (x.pow(2).mean(-1, keepdim=True) + self.cfg.eps).sqrt()
        return x / scale * w + b

    def forward(
        self,
        tokens: torch.Tensor,
        hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]] = (),
        cache: dict[str, torch.Tensor] | None = None,
        pos_offset: int = 0,
    ) -> torch.Tensor:
        """Logits ``[batch, pos, d_vocab]`` for ``tokens [batch, pos]``.

        ``pos_offset`` shifts the positions (training places short synthetic sequences at
        random offsets so every row of ``W_pos`` learns from them; analysis leaves it at 0).

        ``hooks`` is a list of ``(name or name-filter, fn)``; ``fn(activation, hook)`` may return
        a replacement. When ``cache`` is a dict, every activation is stored in it (detached).
        """
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
        n_pos = tokens.shape[1]
        if pos_offset < 0 or n_pos + pos_offset > self.cfg.n_ctx:
            raise ValueError(
                f"sequence of {n_pos} tokens (at position offset {pos_offset}) is longer than "
                f"n_ctx={self.cfg.n_ctx}"
            )
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.cfg.d_vocab):
            raise ValueError(
                f"token ids must lie in [0, {self.cfg.d_vocab}); got range "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
        hooks = list(hooks)

        def hp(name: str, x: torch.Tensor, layer: int | None = None) -> torch.Tensor:
            for key, fn in hooks:
                if (key == name) if isinstance(key, str) else key(name):
                    out = fn(x, HookPoint(name, layer))
                    if out is not None:
                        x = out
            if cache is not None:
                cache[name] = x.detach()
            return x

        embed = hp(hook_name("embed"), self.W_E[tokens])
        pos = hp(hook_name("pos_embed"), self.W_pos[pos_offset : pos_offset + n_pos].unsqueeze(0).expand_as(embed))
        resid = embed + pos
        mask = self.causal_mask[:n_pos, :n_pos]
        for layer in range(self.cfg.n_layers):

            def name(kind: str) -> str:
                return hook_name(kind, layer)

            resid = hp(name("resid_pre"), resid, layer)
            x = resid
            if self.cfg.normalization == "LN":
                x = self._layer_norm(x, self.ln1_w[layer], self.ln1_b[layer])
            q = hp(name("q"), torch.einsum("bpd,hde->bphe", x, self.W_Q[layer]) + self.b_Q[layer], layer)
            k = hp(name("k"), torch.einsum("bpd,hde->bphe", x, self.W_K[layer]) + self.b_K[layer], layer)
            v = hp(name("v"), torch.einsum("bpd,hde->bphe", x, self.W_V[layer]) + self.b_V[layer], layer)
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(self.cfg.d_head)
            # Masking before the softmax (with -inf) is what makes the pattern causal *and*
            # normalised over the visible keys only.
            scores = scores.masked_fill(~mask, float("-inf"))
            scores = hp(name("attn_scores"), scores, layer)
            pattern = hp(name("pattern"), scores.softmax(dim=-1), layer)
            z = hp(name("z"), torch.einsum("bhqk,bkhe->bqhe", pattern, v), layer)
            result = hp(name("result"), torch.einsum("bqhe,hed->bqhd", z, self.W_O[layer]), layer)
            attn_out = hp(name("attn_out"), result.sum(dim=2) + self.b_O[layer], layer)
            resid = hp(name("resid_post"), resid + attn_out, layer)
        if self.cfg.normalization == "LN":
            resid = self._layer_norm(resid, self.ln_final_w, self.ln_final_b)
        resid = hp(hook_name("normalized"), resid)
        return resid @ self.W_U + self.b_U

    def forward_fused(self, tokens: torch.Tensor, pos_offset: int = 0) -> torch.Tensor:
        """The same function as :meth:`forward`, with fused kernels and no hook points: this is
        what training runs (about twice as fast on a CPU). It agrees with :meth:`forward` to
        float32 rounding (~1e-5 relative), not bit for bit, so analysis uses :meth:`forward`."""
        if pos_offset < 0 or tokens.shape[1] + pos_offset > self.cfg.n_ctx:
            raise ValueError(f"sequence of {tokens.shape[1]} tokens at offset {pos_offset} exceeds n_ctx={self.cfg.n_ctx}")
        cfg = self.cfg
        B, P = tokens.shape
        L, H, D, Dh = cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head
        resid = self.W_E[tokens] + self.W_pos[pos_offset : pos_offset + P]
        for layer in range(L):
            x = resid
            if cfg.normalization == "LN":
                x = F.layer_norm(x, (D,), self.ln1_w[layer], self.ln1_b[layer], cfg.eps)
            # One matmul for q, k and v of all heads: [D, 3 * H * Dh].
            W_qkv = torch.cat([self.W_Q[layer], self.W_K[layer], self.W_V[layer]], dim=0)  # [3H, D, Dh]
            b_qkv = torch.cat([self.b_Q[layer], self.b_K[layer], self.b_V[layer]], dim=0)  # [3H, Dh]
            qkv = x @ W_qkv.permute(1, 0, 2).reshape(D, 3 * H * Dh) + b_qkv.reshape(-1)
            q, k, v = qkv.view(B, P, 3, H, Dh).permute(2, 0, 3, 1, 4)  # each [B, H, P, Dh]
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, P, Dh]
            z = z.transpose(1, 2).reshape(B, P, H * Dh)
            resid = resid + z @ self.W_O[layer].reshape(H * Dh, D) + self.b_O[layer]
        if cfg.normalization == "LN":
            resid = F.layer_norm(resid, (D,), self.ln_final_w, self.ln_final_b, cfg.eps)
        return resid @ self.W_U + self.b_U

    def run_with_cache(
        self, tokens: torch.Tensor, names_filter: str | Iterable[str] | Callable[[str], bool] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and a dict of activations. ``names_filter`` is, as in TransformerLens, a
        predicate on hook names, one name (``hook_name("pattern", 1)``) or a list of names."""
        cache: dict[str, torch.Tensor] = {}
        logits = self.forward(tokens, cache=cache)
        if names_filter is not None:
            if isinstance(names_filter, str):
                wanted = {names_filter}
                names_filter = wanted.__contains__
            elif not callable(names_filter):
                wanted = set(names_filter)
                names_filter = wanted.__contains__
            cache = {k: v for k, v in cache.items() if names_filter(k)}
        return logits, cache

    def run_with_hooks(
        self, tokens: torch.Tensor, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]] = ()
    ) -> torch.Tensor:
        return self.forward(tokens, hooks=fwd_hooks)

    # ------------------------------------------------------------ circuit views
    @property
    def W_OV(self) -> torch.Tensor:
        """``W_V @ W_O`` per head: ``[n_layers, n_heads, d_model, d_model]``."""
        return self.W_V @ self.W_O

    @property
    def W_QK(self) -> torch.Tensor:
        """``W_Q @ W_K^T`` per head: ``[n_layers, n_heads, d_model, d_model]``."""
        return self.W_Q @ self.W_K.transpose(-1, -2)

    def tl_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under TransformerLens's property names and per-head shapes."""
        sd: dict[str, torch.Tensor] = {
            "embed.W_E": self.W_E,
            "pos_embed.W_pos": self.W_pos,
        }
        for layer in range(self.cfg.n_layers):
            b = f"blocks.{layer}"
            if self.cfg.normalization == "LN":
                sd[f"{b}.ln1.w"] = self.ln1_w[layer]
                sd[f"{b}.ln1.b"] = self.ln1_b[layer]
            for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
                sd[f"{b}.attn.{name}"] = getattr(self, name)[layer]
        if self.cfg.normalization == "LN":
            sd["ln_final.w"] = self.ln_final_w
            sd["ln_final.b"] = self.ln_final_b
        sd["unembed.W_U"] = self.W_U
        sd["unembed.b_U"] = self.b_U
        return {k: v.detach().clone().contiguous() for k, v in sd.items()}

    @classmethod
    def from_tl_state_dict(cls, cfg: ModelConfig, sd: dict[str, torch.Tensor]) -> "AttnOnlyTransformer":
        """Inverse of :meth:`tl_state_dict`; raises a clear error on a missing key or wrong shape."""
        model = cls(cfg)
        expected = model.tl_state_dict()
        missing = sorted(set(expected) - set(sd))
        extra = sorted(set(sd) - set(expected))
        if missing or extra:
            raise ValueError(
                f"checkpoint keys do not match the config: missing {missing[:5]}, unexpected {extra[:5]}"
            )
        for key, ref in expected.items():
            if tuple(sd[key].shape) != tuple(ref.shape):
                raise ValueError(
                    f"checkpoint tensor {key!r} has shape {tuple(sd[key].shape)}, but the config "
                    f"needs {tuple(ref.shape)}"
                )
        with torch.no_grad():
            model.W_E.copy_(sd["embed.W_E"])
            model.W_pos.copy_(sd["pos_embed.W_pos"])
            for layer in range(cfg.n_layers):
                b = f"blocks.{layer}"
                for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
                    getattr(model, name)[layer].copy_(sd[f"{b}.attn.{name}"])
                if cfg.normalization == "LN":
                    model.ln1_w[layer].copy_(sd[f"{b}.ln1.w"])
                    model.ln1_b[layer].copy_(sd[f"{b}.ln1.b"])
            if cfg.normalization == "LN":
                model.ln_final_w.copy_(sd["ln_final.w"])
                model.ln_final_b.copy_(sd["ln_final.b"])
            model.W_U.copy_(sd["unembed.W_U"])
            model.b_U.copy_(sd["unembed.b_U"])
        return model


def cross_entropy_next_token(logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Next-token loss: logits at position ``i`` predict the token at ``i + 1``.

    Returns the mean, or ``[batch, pos - 1]`` losses when ``per_token``.
    """
    log_probs = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)
    return nll if per_token else nll.mean()
