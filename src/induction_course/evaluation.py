"""The measurements taken at every checkpoint during training.

One fixed evaluation set per run (seeded) so that numbers across checkpoints are comparable:
the paper's prefix-matching probe (25 random tokens repeated 4 times after a BOS, 10+
examples) and windows of held-out corpus text for the in-context-learning score.

What an evaluation costs (measured with cProfile on a 2-core CPU, see README "Training recipe"):
almost all of it is the forward pass over the held-out windows (512 x 128 tokens); the probe
is 16 short sequences. So :func:`evaluate` runs the probe once (one cached forward gives the
repeat losses and both head scores) and the held-out text through :func:`losses_at_tokens`
(fused kernels, chunks that stay in cache, the loss straight from the logits), and training
runs the full set only at the checkpoints it saves; the light records between them use a few
windows (``text_windows``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from induction_course import circuits, metrics
from induction_course import model as model_module
from induction_course.data import Corpus, sample_windows
from induction_course.model import cross_entropy_next_token, device_of, hook_name
from induction_course.probes import repeated_random_tokens

PROBE_SEG_LEN = 25
PROBE_REPEATS = 4
TEXT_CHUNK = 128  # held-out windows per forward pass: the logits of a chunk stay small


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
def probe_metrics(model, eval_set: EvalSet) -> dict:
    """Repeat losses and the previous-token / prefix-matching scores of every head, from one
    cached forward pass over the probe (the same numbers as ``metrics.repeated_token_losses``
    and ``metrics.head_scores``, which run it twice)."""
    probe = eval_set.probe.cpu()
    names = [hook_name("pattern", layer) for layer in range(int(model.cfg.n_layers))]
    logits, cache = model.run_with_cache(probe.to(device_of(model)), names_filter=names)
    per_token = cross_entropy_next_token(logits, probe.to(logits.device), per_token=True).cpu()
    rep = metrics.repeated_losses_from_per_token(per_token, eval_set.seg_len)
    patterns = [cache[name].detach().float().cpu() for name in names]
    prev = torch.stack([metrics.previous_token_score(p) for p in patterns])  # [L, H]
    prefix = torch.stack([metrics.prefix_matching_score(p, probe) for p in patterns])
    return {
        "loss_first_repeat": float(rep.first),
        "loss_later_repeats": float(rep.later),
        "previous_token_score": [[round(float(x), 5) for x in row] for row in prev],
        "prefix_matching_score": [[round(float(x), 5) for x in row] for row in prefix],
        "best_prev_token_layer0": float(prev[0].max()),
        "best_prefix_matching_layer1": float(prefix[1:].max()) if prefix.shape[0] > 1 else float("nan"),
    }


@torch.no_grad()
def text_metrics(model, text: torch.Tensor) -> dict:
    """ICL score, banded ICL score with its standard error, and mean loss on held-out windows
    ``text [n, n_ctx]``, from one pass of :func:`losses_at_tokens` over every position."""
    losses = losses_at_tokens(model, text)  # [n, n_ctx - 1]
    icl = metrics.icl_score_from_losses(losses, *metrics.icl_positions(text.shape[1]))
    band = metrics.icl_band_score(losses) if text.shape[0] >= 2 else None
    return {
        "icl_score": float(icl),
        # Late band minus early band (metrics.icl_bands) over every window, and its standard error.
        "icl_band_score": float(band.mean) if band else float("nan"),
        "icl_band_se": float(band.se) if band else float("nan"),
        "text_loss": float(losses.mean()),
    }


@torch.no_grad()
def evaluate(model, eval_set: EvalSet, text_windows: int | None = None) -> dict:
    """Headline numbers of a model: repeat losses, head scores and the ICL score.

    ``text_windows``: how many of the held-out windows to use (default: all of them; the
    numbers the report plots). ``0`` measures the probe only. The model is left in the mode it
    was in, and no random number generator is touched: evaluating never changes training."""
    was_training = model.training
    model.eval()
    try:
        record = probe_metrics(model, eval_set)
        n = eval_set.text.shape[0] if text_windows is None else min(int(text_windows), eval_set.text.shape[0])
        if n:
            record.update(text_metrics(model, eval_set.text[:n]))
            if n < eval_set.text.shape[0]:
                record["text_windows"] = n
    finally:
        if was_training:
            model.train()
    return record


def induction_formed(record: dict, threshold: float = 0.5) -> bool:
    """The criterion of the speed target: a layer-1 prefix-matching head, a layer-0
    previous-token head, and later repeats predicted at less than half the first's loss."""
    return (
        record["best_prefix_matching_layer1"] >= threshold
        and record["best_prev_token_layer0"] >= threshold
        and record["loss_later_repeats"] < 0.5 * record["loss_first_repeat"]
    )


def _is_course_model(model) -> bool:
    """The course's own model (fused kernels and its weight layout), not e.g. a TL bridge."""
    if not hasattr(model, "forward_fused"):
        return False
    return hasattr(model, "ln1_w") or getattr(model.cfg, "normalization", None) != "LN"


def _chunk_losses(model, tokens: torch.Tensor, token_idx: torch.Tensor) -> torch.Tensor:
    pred = token_idx - 1  # the positions that make those predictions
    if not _is_course_model(model):
        logits = model(tokens.to(device_of(model)))
        return cross_entropy_next_token(logits, tokens.to(logits.device), per_token=True)[:, pred.to(logits.device)].cpu()
    cfg = model.cfg
    B, P = tokens.shape
    L, H, D, Dh = cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head
    ln = cfg.normalization == "LN"
    dev = model.W_E.device
    tokens = tokens.to(dev)
    every = pred.numel() == P - 1 and bool((pred == torch.arange(P - 1)).all())
    resid = model.W_E[tokens] + model.W_pos[:P]
    pred_d = pred.to(dev)
    for layer in range(L):
        x = F.layer_norm(resid, (D,), model.ln1_w[layer], model.ln1_b[layer], cfg.eps) if ln else resid
        W_qkv = torch.cat([model.W_Q[layer], model.W_K[layer], model.W_V[layer]], dim=0)  # [3H, D, Dh]
        b_qkv = torch.cat([model.b_Q[layer], model.b_K[layer], model.b_V[layer]], dim=0)
        qkv = (x @ W_qkv.permute(1, 0, 2).reshape(D, 3 * H * Dh) + b_qkv.reshape(-1)).view(B, P, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, P, Dh]
        if layer == L - 1 and not every:  # only the queries that make the wanted predictions
            mask = torch.ones(P, P, dtype=torch.bool, device=dev).tril()[pred_d]
            z = F.scaled_dot_product_attention(q[:, :, pred_d], k, v, attn_mask=mask)
            resid = resid[:, pred_d]
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        z = z.transpose(1, 2).reshape(B, -1, H * Dh)
        resid = resid + z @ model.W_O[layer].reshape(H * Dh, D) + model.b_O[layer]
    if every:
        resid = resid[:, :-1]  # the last position predicts nothing
    if ln:
        resid = F.layer_norm(resid, (D,), model.ln_final_w, model.ln_final_b, cfg.eps)
    logits = torch.addmm(model.b_U, resid.reshape(-1, D), model.W_U)  # [B * n, V], bias fused in
    target = tokens[:, token_idx.to(dev)].reshape(-1)
    return F.cross_entropy(logits.float(), target, reduction="none").view(B, -1).cpu()


@torch.no_grad()
def losses_at_tokens(model, tokens: torch.Tensor, token_idx=None, chunk: int = TEXT_CHUNK) -> torch.Tensor:
    """Next-token losses at the chosen token indices only: ``[batch, len(token_idx)]``.

    Column ``j`` is the loss *at token* ``token_idx[j]`` (predicting it from the tokens before),
    i.e. column ``token_idx[j] - 1`` of ``cross_entropy_next_token(model(tokens), tokens,
    per_token=True)``; ``token_idx=None`` means every token ``1 .. pos - 1`` (that whole table).
    For the course model the residual stream is computed for every position (keys need it) but
    the last layer's queries, the final LayerNorm, the unembedding and the softmax only at the
    positions that predict those tokens, with fused kernels, ``chunk`` windows at a time. It
    agrees with the hooked forward pass to float32 rounding (~1e-5), not bit for bit. Any other
    model (e.g. a TransformerLens bridge) runs its full forward pass.
    """
    n_pos = tokens.shape[1]
    token_idx = torch.arange(1, n_pos) if token_idx is None else torch.as_tensor(token_idx, dtype=torch.long).cpu()
    parts = [_chunk_losses(model, tokens[i:i + chunk], token_idx) for i in range(0, tokens.shape[0], max(1, chunk))]
    return torch.cat(parts) if parts else torch.empty(0, token_idx.numel())


@torch.no_grad()
def icl_band_over_training(models, text: torch.Tensor, early=None, late=None) -> list[metrics.ICLBandScore]:
    """:func:`metrics.icl_band_score` of each model in ``models`` (an iterable, e.g. one model
    per checkpoint) on the same held-out windows ``text [n, n_ctx]``; only the band positions
    are unembedded (:func:`losses_at_tokens`)."""
    e, l = metrics.icl_bands(text.shape[1])
    early, late = early or e, late or l
    idx = torch.cat([torch.arange(early[0], early[1] + 1), torch.arange(late[0], late[1] + 1)])
    n_e = early[1] - early[0] + 1
    out = []
    for model in models:
        # The two bands become columns 1 .. n_e and n_e + 1 .. of a small table.
        r = metrics.icl_band_score(losses_at_tokens(model, text, idx), early=(1, n_e), late=(n_e + 1, idx.numel()))
        r.early, r.late = tuple(early), tuple(late)
        out.append(r)
    return out


SERIES_KEYS = ("icl_band", "icl_band_se", "ov_top1", "copying_eigen", "kcircuit_top1")


def _checkpoint_series(model, rec: dict, text, pool, use_history: bool) -> dict:
    """The numbers :func:`scores_over_training` draws for one checkpoint."""
    if use_history and "icl_band_score" in rec and "icl_band_se" in rec:
        mean, se = rec["icl_band_score"], rec["icl_band_se"]
    else:
        band = icl_band_over_training([model], text)[0]
        mean, se = band.mean, band.se
    out = {"icl_band": float(mean), "icl_band_se": float(se),
           "ov_top1": metrics.ov_top1_copying_accuracy(model, pool),
           "copying_eigen": metrics.eigenvalue_copying_score(model, pool)}
    if model.cfg.n_layers >= 2:
        out["kcircuit_top1"] = metrics.kcircuit_token_scores(model, pool, 0, model.cfg.n_layers - 1)["top1"]
    return out


@torch.no_grad()
def scores_over_training(run_dir=None, token_pool=None, text: torch.Tensor | None = None,
                         prev_heads=None) -> dict:
    """Per-checkpoint numbers the report draws, from the checkpoints of a run.

    Returns lists over checkpoints (``"step"``, ``"tokens"``) of: ``"icl_band"`` and
    ``"icl_band_se"`` (from the run's history when it recorded them, else computed on
    ``text``, the run's held-out windows by default, with :func:`losses_at_tokens`),
    ``"ov_top1"`` and ``"copying_eigen"`` (``[n_layers, n_heads]`` each) and ``"kcircuit_top1"``
    (``[h1, h0]``, the token-level K-circuit of the last layer through layer 0).

    They are stored beside the checkpoints (``analysis.json``, :func:`checkpoints.load_analysis`,
    keyed by the checkpoints' bytes, the windows, the pool and the code that computes them), so
    only the first call on a run loads every checkpoint; the shipped run comes with the file.
    """
    from induction_course import checkpoints

    run = checkpoints.resolve_run_dir(run_dir)
    config = checkpoints.load_config(run)
    token_pool = torch.as_tensor(config["token_pool"] if token_pool is None else token_pool)
    default_text = checkpoints.load_eval_set(run).text
    text = default_text if text is None else text
    use_history = tuple(text.shape) == tuple(default_text.shape)
    history = checkpoints.load_history(run)
    key = checkpoints.analysis_key(run, "scores_over_training", text, token_pool, use_history,
                                   sources=(__file__, metrics.__file__, circuits.__file__, model_module.__file__))
    cached = checkpoints.load_analysis(run, key)
    if cached is None or [r["step"] for r in cached] != [h["step"] for h in history]:
        cached = []
        for rec in history:
            model = checkpoints.load_model(run, step=rec["step"])
            row = _checkpoint_series(model, rec, text, token_pool, use_history)
            cached.append({"step": rec["step"], **{k: (v.tolist() if torch.is_tensor(v) else v) for k, v in row.items()}})
        checkpoints.save_analysis(run, key, cached)
    out: dict[str, list] = {"step": [h["step"] for h in history], "tokens": [h["tokens"] for h in history]}
    for k in SERIES_KEYS:
        vals = [r[k] for r in cached if k in r]
        out[k] = [torch.tensor(v, dtype=torch.float32) if isinstance(v, list) else v for v in vals]
    return out

