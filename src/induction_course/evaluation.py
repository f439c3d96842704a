"""The measurements taken at every checkpoint during training.

One fixed evaluation set per run (seeded) so that numbers across checkpoints are comparable:
the paper's prefix-matching probe (25 random tokens repeated 4 times after a BOS, 10+
examples) and windows of held-out corpus text for the in-context-learning score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from induction_course import metrics
from induction_course.data import Corpus, sample_windows
from induction_course.model import cross_entropy_next_token
from induction_course.probes import repeated_random_tokens

PROBE_SEG_LEN = 25
PROBE_REPEATS = 4


@dataclass
class EvalSet:
    probe: torch.Tensor  # [n, 1 + seg_len * repeats]
    text: torch.Tensor  # [n, n_ctx] held-out windows
    seg_len: int
    bos: int

    @classmethod
    def build(cls, corpus: Corpus, n_ctx: int, n_probe: int = 16, n_text: int = 512, seed: int = 1) -> "EvalSet":
        seg_len = min(PROBE_SEG_LEN, (n_ctx - 1) // PROBE_REPEATS)
        probe = repeated_random_tokens(n_probe, seg_len, PROBE_REPEATS, corpus.token_pool(), corpus.bos, seed)
        gen = torch.Generator().manual_seed(seed)
        # The ICL score is a difference of two single-position losses; over 64 windows its
        # sampling error was about 0.4 nats (measured), so we use hundreds.
        text = sample_windows(corpus.heldout, n_text, n_ctx, corpus.bos, gen)
        return cls(probe=probe, text=text, seg_len=seg_len, bos=corpus.bos)


@torch.no_grad()
def evaluate(model, eval_set: EvalSet) -> dict:
    """Headline numbers of a model: repeat losses, head scores and the ICL score."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probe = eval_set.probe.to(device)
    text = eval_set.text.to(device)
    rep = metrics.repeated_token_losses(model, probe, eval_set.seg_len)
    first, later = rep.first, rep.later
    scores = metrics.head_scores(model, probe)
    prev = scores["previous_token"]  # [L, H]
    prefix = scores["prefix_matching"]
    # One forward pass over the held-out text gives both the ICL score and the mean loss.
    text_losses = cross_entropy_next_token(model(text), text, per_token=True)
    icl = metrics.icl_score_from_losses(text_losses, *metrics.icl_positions(text.shape[1]))
    band = metrics.icl_band_score(text_losses) if text.shape[0] >= 2 else None
    if was_training:
        model.train()
    return {
        "loss_first_repeat": float(first),
        "loss_later_repeats": float(later),
        "previous_token_score": [[round(float(x), 5) for x in row] for row in prev.cpu()],
        "prefix_matching_score": [[round(float(x), 5) for x in row] for row in prefix.cpu()],
        "best_prev_token_layer0": float(prev[0].max()),
        "best_prefix_matching_layer1": float(prefix[1:].max()) if prefix.shape[0] > 1 else float("nan"),
        "icl_score": float(icl),
        # Late band minus early band (metrics.icl_bands) over every window, and its standard error.
        "icl_band_score": float(band.mean) if band else float("nan"),
        "icl_band_se": float(band.se) if band else float("nan"),
        "text_loss": float(text_losses.mean()),
    }


def induction_formed(record: dict, threshold: float = 0.5) -> bool:
    """The criterion of the speed target: a layer-1 prefix-matching head, a layer-0
    previous-token head, and later repeats predicted at less than half the first's loss."""
    return (
        record["best_prefix_matching_layer1"] >= threshold
        and record["best_prev_token_layer0"] >= threshold
        and record["loss_later_repeats"] < 0.5 * record["loss_first_repeat"]
    )


@torch.no_grad()
def losses_at_tokens(model, tokens: torch.Tensor, token_idx: torch.Tensor) -> torch.Tensor:
    """Next-token losses at the chosen token indices only: ``[batch, len(token_idx)]``.

    Column ``j`` is the loss *at token* ``token_idx[j]`` (predicting it from the tokens before),
    i.e. column ``token_idx[j] - 1`` of ``cross_entropy_next_token(model(tokens), tokens,
    per_token=True)``. For the course model the residual stream is computed for every
    position (keys need it) but the last layer's queries, the final LayerNorm, the unembedding
    and the softmax only at the positions that predict those tokens: the ICL score over
    training needs a few dozen of 127 positions, and this is where a forward pass spends its
    time. Any other model (e.g. a TransformerLens bridge) runs its full forward pass.
    """
    import torch.nn.functional as F

    token_idx = torch.as_tensor(token_idx, dtype=torch.long).cpu()
    pred = token_idx - 1  # the positions that make those predictions
    if not hasattr(model, "forward_fused") or not hasattr(model, "ln1_w") and getattr(model.cfg, "normalization", None) == "LN":
        logits = model(tokens)
        return cross_entropy_next_token(logits, tokens, per_token=True)[:, pred]
    cfg = model.cfg
    B, P = tokens.shape
    L, H, D, Dh = cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head
    ln = cfg.normalization == "LN"
    dev = model.W_E.device
    tokens = tokens.to(dev)
    resid = model.W_E[tokens] + model.W_pos[:P]
    mask = torch.ones(P, P, dtype=torch.bool, device=dev).tril()
    pred_d = pred.to(dev)
    for layer in range(L):
        x = F.layer_norm(resid, (D,), model.ln1_w[layer], model.ln1_b[layer], cfg.eps) if ln else resid
        W_qkv = torch.cat([model.W_Q[layer], model.W_K[layer], model.W_V[layer]], dim=0)  # [3H, D, Dh]
        b_qkv = torch.cat([model.b_Q[layer], model.b_K[layer], model.b_V[layer]], dim=0)
        qkv = (x @ W_qkv.permute(1, 0, 2).reshape(D, 3 * H * Dh) + b_qkv.reshape(-1)).view(B, P, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, P, Dh]
        if layer == L - 1:  # the last layer: only the queries that make the wanted predictions
            z = F.scaled_dot_product_attention(q[:, :, pred_d], k, v, attn_mask=mask[pred_d])
            resid = resid[:, pred_d]
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        z = z.transpose(1, 2).reshape(B, -1, H * Dh)
        resid = resid + z @ model.W_O[layer].reshape(H * Dh, D) + model.b_O[layer]
    if ln:
        resid = F.layer_norm(resid, (D,), model.ln_final_w, model.ln_final_b, cfg.eps)
    logits = resid @ model.W_U + model.b_U
    target = tokens[:, token_idx.to(dev)]
    return -F.log_softmax(logits.float(), -1).gather(-1, target[..., None]).squeeze(-1).cpu()


@torch.no_grad()
def icl_band_over_training(models, text: torch.Tensor, early=None, late=None) -> list[metrics.ICLBandScore]:
    """:func:`metrics.icl_band_score` of each model in ``models`` (an iterable, e.g. one model
    per checkpoint) on the same held-out windows ``text [n, n_ctx]``; only the band positions
    are unembedded (:func:`losses_at_tokens`)."""
    n_ctx = text.shape[1]
    e, l = metrics.icl_bands(n_ctx)
    early, late = early or e, late or l
    idx = torch.cat([torch.arange(early[0], early[1] + 1), torch.arange(late[0], late[1] + 1)])
    n_e = early[1] - early[0] + 1
    out = []
    for model in models:
        losses = losses_at_tokens(model, text, idx)
        # Re-index into a [n, n_ctx - 1] table's bands: pass the two bands as columns 1.. of a small table.
        small = torch.zeros(losses.shape[0], idx.numel())
        small[:] = losses
        out.append(metrics.icl_band_score(small, early=(1, n_e), late=(n_e + 1, idx.numel())))
    for r in out:
        r.early, r.late = tuple(early), tuple(late)
    return out


@torch.no_grad()
def scores_over_training(run_dir=None, token_pool=None, text: torch.Tensor | None = None,
                         prev_heads=None) -> dict:
    """Per-checkpoint numbers the report draws, from the checkpoints of a run.

    Returns lists over checkpoints (``"step"``, ``"tokens"``) of: ``"icl_band"`` and
    ``"icl_band_se"`` (from the run's history when it recorded them, else computed on
    ``text``, the run's held-out windows by default, with :func:`losses_at_tokens`),
    ``"ov_top1"`` and ``"copying_eigen"`` (``[n_layers, n_heads]`` each) and ``"kcircuit_top1"``
    (``[h1, h0]``, the token-level K-circuit of the last layer through layer 0). Weight scores
    cost milliseconds per checkpoint; the ICL band costs one forward pass when not recorded.
    """
    from induction_course import checkpoints

    run = checkpoints.resolve_run_dir(run_dir)
    config = checkpoints.load_config(run)
    if token_pool is None:
        token_pool = torch.tensor(config["token_pool"])
    default_text_shape = tuple(checkpoints.load_eval_set(run).text.shape)
    if text is None:
        text = checkpoints.load_eval_set(run).text
    history = checkpoints.load_history(run)
    out: dict[str, list] = {k: [] for k in ("step", "tokens", "icl_band", "icl_band_se", "ov_top1",
                                            "copying_eigen", "kcircuit_top1")}
    e, l = metrics.icl_bands(text.shape[1])
    idx = torch.cat([torch.arange(e[0], e[1] + 1), torch.arange(l[0], l[1] + 1)])
    n_e = e[1] - e[0] + 1
    for rec in history:
        model = checkpoints.load_model(run, step=rec["step"])
        out["step"].append(rec["step"])
        out["tokens"].append(rec["tokens"])
        if "icl_band_score" in rec and "icl_band_se" in rec and tuple(text.shape) == tuple(default_text_shape):
            mean, se = rec["icl_band_score"], rec["icl_band_se"]
        else:
            key = _cache_key(run, rec["step"], text, e, l)
            hit = _cache_get(key)
            if hit is None:
                losses = losses_at_tokens(model, text, idx)
                b = metrics.icl_band_score(losses, early=(1, n_e), late=(n_e + 1, idx.numel()))
                hit = (b.mean, b.se)
                _cache_put(key, hit)
            mean, se = hit
        out["icl_band"].append(float(mean))
        out["icl_band_se"].append(float(se))
        out["ov_top1"].append(metrics.ov_top1_copying_accuracy(model, token_pool))
        out["copying_eigen"].append(metrics.eigenvalue_copying_score(model, token_pool))
        if model.cfg.n_layers >= 2:
            out["kcircuit_top1"].append(metrics.kcircuit_token_scores(model, token_pool, 0, model.cfg.n_layers - 1)["top1"])
    return out


# A small on-disk cache of per-checkpoint ICL band scores for runs whose history predates them
# (the shipped run): one forward pass over 512 windows per checkpoint is most of what the
# report would otherwise add. Keyed by the checkpoint's bytes, the windows and the bands;
# INDUCTION_COURSE_CACHE=0 turns it off, INDUCTION_COURSE_CACHE=DIR moves it.
def _cache_dir():
    import os
    from pathlib import Path

    where = os.environ.get("INDUCTION_COURSE_CACHE")
    if where == "0":
        return None
    if where:
        return Path(where)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "induction_course" / "icl_band"


def _cache_key(run, step: int, text: torch.Tensor, early, late) -> str:
    import hashlib

    h = hashlib.sha1()
    h.update((run / "checkpoints" / f"step_{step:06d}.safetensors").read_bytes())
    h.update(text.to(torch.int64).contiguous().numpy().tobytes())
    h.update(repr((tuple(text.shape), tuple(early), tuple(late), "v1")).encode())
    return h.hexdigest()


def _cache_get(key: str):
    import json

    d = _cache_dir()
    if d is None:
        return None
    try:
        v = json.loads((d / f"{key}.json").read_text())
        return float(v["mean"]), float(v["se"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_put(key: str, value) -> None:
    import json

    d = _cache_dir()
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{key}.json.tmp"
        tmp.write_text(json.dumps({"mean": value[0], "se": value[1]}))
        tmp.replace(d / f"{key}.json")
    except OSError:
        pass
