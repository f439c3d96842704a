"""Static figures (matplotlib, Agg backend): loss curve with the bump, scores over training,
attention patterns. Each function returns the figure and, given a path, saves a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from induction_course.curves import bump_window, smooth  # noqa: E402


def _save(fig, path: Path | str | None):
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return fig


def loss_curve(losses: Sequence[float], tokens_per_step: int, history: Sequence[dict], path=None):
    """Training loss against tokens (log x), with the repeated-token losses of every
    checkpoint and the bump window shaded."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    steps = torch.arange(1, len(losses) + 1)
    ax.plot(steps * tokens_per_step, losses, color="0.8", lw=0.6, label="training loss (per step)")
    ax.plot(steps * tokens_per_step, smooth(losses, 25), color="C0", lw=1.8, label="training loss (smoothed)")
    ck_tokens = [max(h["tokens"], tokens_per_step) for h in history]
    ax.plot(ck_tokens, [h["loss_first_repeat"] for h in history], "o--", color="C3", ms=3, label="random tokens, first copy")
    ax.plot(ck_tokens, [h["loss_later_repeats"] for h in history], "o-", color="C2", ms=3, label="random tokens, later copies")
    ax.plot(ck_tokens, [h["text_loss"] for h in history], "s-", color="C1", ms=3, label="held-out text")
    if len(history) >= 2:
        lo, hi = bump_window(history)
        ax.axvspan(max(lo, 1) * tokens_per_step, hi * tokens_per_step, color="C4", alpha=0.15, label="induction bump")
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("loss (nats)")
    ax.set_title("Loss over training: the bump is where induction heads form")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def scores_over_training(history: Sequence[dict], path=None, icl: dict | None = None):
    """Per-head previous-token (layer 0) and prefix-matching (layer 1) scores, and the ICL
    score, against training tokens: the course's version of the paper's central figure.

    The ICL panel draws the banded score with its standard-error band: from ``icl`` (a
    :func:`evaluation.scores_over_training` result) when given, else from the history's
    ``icl_band_score`` / ``icl_band_se`` when it has them, else the single-token score
    (no band: that history did not record an error)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    # Step 0 has no tokens; put it half a checkpoint before the first so the log axis stays tight.
    floor = next((h["tokens"] for h in history if h["tokens"] > 0), 2) / 2
    tokens = [max(h["tokens"], floor) for h in history]
    prev = torch.tensor([h["previous_token_score"] for h in history])  # [T, L, H]
    prefix = torch.tensor([h["prefix_matching_score"] for h in history])
    for head in range(prev.shape[2]):
        axes[0].plot(tokens, prev[:, 0, head], marker=".", label=f"0.{head}")
        axes[1].plot(tokens, prefix[:, -1, head], marker=".", label=f"{prefix.shape[1] - 1}.{head}")
    if icl is None and all("icl_band_score" in h and "icl_band_se" in h for h in history):
        icl = {"icl_band": [h["icl_band_score"] for h in history], "icl_band_se": [h["icl_band_se"] for h in history]}
    if icl is not None:
        m, se = torch.tensor(icl["icl_band"]), torch.tensor(icl["icl_band_se"])
        axes[2].plot(tokens, m.tolist(), marker=".", color="k")
        axes[2].fill_between(tokens, (m - se).tolist(), (m + se).tolist(), color="k", alpha=0.2)
    else:
        axes[2].plot(tokens, [h["icl_score"] for h in history], marker=".", color="k")
    titles = ("layer-0 previous-token score", "layer-1 prefix-matching score", "in-context-learning score")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("training tokens")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if len(history) >= 2:
            lo, hi = bump_window(history)
            per_step = tokens[-1] / max(history[-1]["step"], 1)
            ax.axvspan(max(lo * per_step, floor), hi * per_step, color="C4", alpha=0.15)
    axes[0].legend(fontsize=7, title="head", title_fontsize=7)
    axes[1].legend(fontsize=7, title="head", title_fontsize=7)
    axes[2].set_ylabel("loss(late) - loss(early)")
    fig.tight_layout()
    return _save(fig, path)


def attention_patterns(patterns: torch.Tensor, labels: Sequence[str], titles: Sequence[str], path=None):
    """Heat maps of attention patterns ``[n, q, k]`` (one panel each) on one sequence."""
    n = patterns.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(patterns[i].cpu(), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(titles[i], fontsize=10)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    if len(labels) <= 40:
        for ax in axes[0]:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
    fig.tight_layout()
    return _save(fig, path)


def head_heatmap(values: torch.Tensor, title: str, path=None, fmt: str = "{:.2f}", xlabel="head", ylabel="layer"):
    """A small annotated heat map, e.g. a ``[layer, head]`` table of scores or ablation effects."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * values.shape[1], 0.8 + 0.7 * values.shape[0]))
    im = ax.imshow(values.cpu(), cmap="RdBu_r", vmin=-float(values.abs().max()), vmax=float(values.abs().max()))
    for (i, j), v in zip(torch.cartesian_prod(torch.arange(values.shape[0]), torch.arange(values.shape[1])).tolist(), values.flatten().tolist()):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def _bump_span(ax, history, tokens, floor):
    if len(history) >= 2:
        lo, hi = bump_window(history)
        per_step = tokens[-1] / max(history[-1]["step"], 1)
        ax.axvspan(max(lo * per_step, floor), hi * per_step, color="C4", alpha=0.15, label="induction bump")


def _tokens_axis(series_tokens):
    floor = next((t for t in series_tokens if t > 0), 2) / 2
    return [max(t, floor) for t in series_tokens], floor


def icl_over_training(series: dict, history: Sequence[dict], path=None, ax=None):
    """The banded ICL score over training with a +- one standard error band."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
    else:
        fig = ax.figure
    tokens, floor = _tokens_axis(series["tokens"])
    m = torch.tensor(series["icl_band"])
    se = torch.tensor(series["icl_band_se"])
    ax.plot(tokens, m.tolist(), marker=".", color="k", label="ICL score (late band - early band)")
    ax.fill_between(tokens, (m - se).tolist(), (m + se).tolist(), color="k", alpha=0.2, label="+- 1 standard error")
    _bump_span(ax, history, tokens, floor)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("loss(late band) - loss(early band)")
    ax.set_title("In-context-learning score over training", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path) if own else fig


def copying_over_training(series: dict, history: Sequence[dict], path=None, prev_heads=()):
    """Copying of the last layer's heads over training (OV top-1 and the eigenvalue score), and
    the token-level K-circuit top-1 through each layer-0 head (mean over last-layer heads)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    tokens, floor = _tokens_axis(series["tokens"])
    top1 = torch.stack(series["ov_top1"])  # [T, L, H]
    eig = torch.stack(series["copying_eigen"])
    L = top1.shape[1]
    for head in range(top1.shape[2]):
        axes[0].plot(tokens, top1[:, -1, head].tolist(), marker=".", label=f"{L - 1}.{head}")
        axes[1].plot(tokens, eig[:, -1, head].tolist(), marker=".", label=f"{L - 1}.{head}")
    axes[0].set_title("OV top-1 copying accuracy (last layer)", fontsize=10)
    axes[1].set_title("eigenvalue copying score (last layer): saturates early", fontsize=10)
    if series.get("kcircuit_top1"):
        kc = torch.stack(series["kcircuit_top1"]).mean(1)  # [T, h0]
        for h0 in range(kc.shape[1]):
            style = "-" if h0 in prev_heads else "--"
            axes[2].plot(tokens, kc[:, h0].tolist(), style, marker=".", label=f"0.{h0}" + (" (prev-token)" if h0 in prev_heads else ""))
        axes[2].set_title("token-level K-circuit top-1 through layer-0 head", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("training tokens")
        ax.grid(alpha=0.3)
        _bump_span(ax, history, tokens, floor)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
