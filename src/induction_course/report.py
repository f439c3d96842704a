"""The main job's report: which heads are previous-token and induction heads, the paper's
scores, the ablations that make it causal, plots over training, and one HTML page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from induction_course import ablation, checkpoints, evaluation, metrics, plots
from induction_course.curves import bump_window, cpu_threads
from induction_course.data import load_corpus
from induction_course.evaluation import induction_formed
from induction_course.model import cross_entropy_next_token, device_of, hook_name
from induction_course.probes import repeated_random_tokens

THRESHOLD = 0.4  # score above which a head is called a previous-token / induction head


@dataclass
class Report:
    text: str
    html_path: Path
    data: dict = field(default_factory=dict)


def _fmt_row(cells, widths):
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))


TEXT_CHUNK = 64  # held-out windows per hooked forward pass: the same numbers, bit for bit, about 2x faster


class _Ablations:
    """The report's ablation experiments on one probe and one text batch, with the clean run done
    once (:func:`ablation.ablation_effects` redoes it per call) and the text run ``TEXT_CHUNK``
    windows at a time. Every number is computed by the same operations as
    :func:`ablation.ablation_effects`, so the report's figures do not change."""

    def __init__(self, model, probe: torch.Tensor, text: torch.Tensor, seg_len: int):
        self.model, self.seg_len = model, seg_len
        self.probe = probe.to(device_of(model))
        self.text = text.to(device_of(model))
        self.early, self.late = metrics.icl_positions(text.shape[1])
        self.clean_probe_losses = self._probe_losses(self._clean(self.probe))
        self.clean_text_losses = self._text_losses(self._clean)
        self.clean_probe = metrics.repeated_losses_from_per_token(self.clean_probe_losses, seg_len).later
        self.clean_icl = metrics.icl_score_from_losses(self.clean_text_losses, self.early, self.late)

    @torch.no_grad()
    def _clean(self, tokens):
        return self.model.run_with_hooks(tokens, fwd_hooks=[])

    def _probe_losses(self, logits):
        return cross_entropy_next_token(logits, self.probe.to(logits.device), per_token=True).cpu()

    def _text_losses(self, logits_of) -> torch.Tensor:
        parts = []
        for i in range(0, self.text.shape[0], TEXT_CHUNK):
            chunk = self.text[i:i + TEXT_CHUNK]
            logits = logits_of(chunk)
            parts.append(cross_entropy_next_token(logits, chunk.to(logits.device), per_token=True).cpu())
        return torch.cat(parts)

    def probe_loss(self, heads, kind: str) -> float:
        per_token = self._probe_losses(ablation.ablate(self.model, self.probe, heads, kind))
        return metrics.repeated_losses_from_per_token(per_token, self.seg_len).later

    def effect(self, heads, kind: str) -> ablation.AblationEffect:
        if kind == "mean":  # the mean is over the whole batch: one pass, as ablation_effects does
            logits = ablation.ablate(self.model, self.text, heads, kind)
            text_losses = cross_entropy_next_token(logits, self.text.to(logits.device), per_token=True).cpu()
        else:  # every other kind acts on each window alone
            text_losses = self._text_losses(lambda chunk: ablation.ablate(self.model, chunk, heads, kind))
        icl = metrics.icl_score_from_losses(text_losses, self.early, self.late)
        return ablation.AblationEffect(list(heads), kind, self.clean_probe, self.probe_loss(heads, kind), self.clean_icl, icl)

    def single_head_probe_table(self) -> dict[str, torch.Tensor]:
        """Each head zero-ablated alone, on the probe (what the report's heat map shows)."""
        cfg = self.model.cfg
        probe = torch.empty(cfg.n_layers, cfg.n_heads)
        for layer in range(cfg.n_layers):
            for head in range(cfg.n_heads):
                probe[layer, head] = self.probe_loss([(layer, head)], "zero")
        return {"probe_loss": probe, "delta_probe_loss": probe - self.clean_probe,
                "clean_probe_loss": torch.tensor(self.clean_probe)}


@torch.no_grad()
def analyse(model, pool: torch.Tensor, bos: int, text: torch.Tensor, seed: int = 0) -> dict:
    """Every number of the report, for one model. ``pool``: token ids the probe draws from;
    ``text``: held-out windows ``[batch, n_ctx]``. Seeded: the same inputs give the same report.
    ``"single_head_table"`` holds the probe columns of :func:`ablation.single_head_ablation_table`
    (the heat map); the experiments hold both the probe and the ICL effects."""
    cfg = model.cfg
    seg_len = min(25, (cfg.n_ctx - 1) // 4)
    # The paper's protocol: 25 random tokens repeated 4 times after a BOS, 10 examples.
    probe = repeated_random_tokens(10, seg_len, 4, pool, bos, seed)
    scores = metrics.head_scores(model, probe)
    scores["copying_eigen"] = metrics.eigenvalue_copying_score(model, pool)
    scores["copying_logit"] = metrics.copying_score(model, pool, seed=seed)
    scores["ov_top1"] = metrics.ov_top1_copying_accuracy(model, pool)
    classes = metrics.classify_heads(scores, threshold=THRESHOLD)
    comp = metrics.composition_scores(model)
    comp_folded = metrics.composition_scores_folded(model)
    kcircuit = metrics.kcircuit_token_scores(model, pool)
    keysplit = metrics.key_score_decomposition(model, probe)
    baseline = metrics.composition_baseline(cfg, n_samples=100, seed=seed)

    induction = classes["induction"]
    previous = classes["previous_token"]
    named = set(induction) | set(previous)
    runs = _Ablations(model, probe, text, seg_len)
    experiments = []

    def run(label, heads, kind="zero"):
        if not heads:
            return
        eff = runs.effect(heads, kind)
        experiments.append({"label": label, "kind": kind, "heads": [list(h) for h in heads],
                            "delta_probe_loss": eff.delta_probe_loss, "delta_icl_score": eff.delta_icl_score,
                            "clean_probe_loss": eff.clean_probe_loss, "clean_icl_score": eff.clean_icl_score})

    run("induction heads, zero-ablated", induction, "zero")
    run("induction heads, mean-ablated", induction, "mean")
    run("induction heads, induction stripe knocked out", induction, "knockout")
    run("previous-token heads, zero-ablated", previous, "zero")
    run("previous-token heads, pattern-preserving", previous, "pattern_preserving")
    # As many random heads as induction heads, drawn from the heads that are neither kind
    # (fewer if not enough are left): the control says what removing *some* heads costs.
    n_control = min(max(1, len(induction)), cfg.n_layers * cfg.n_heads - len(named))
    if n_control > 0:
        control = ablation.random_head_control(model, probe, n_control, exclude=sorted(named), seed=seed)
        run(f"random control ({n_control} head(s) that are neither)", control.heads, "zero")
    rep = metrics.repeated_losses_from_per_token(runs.clean_probe_losses, seg_len)
    return {
        "probe": probe,
        "scores": scores,
        "classes": classes,
        "composition": comp,
        "composition_folded": comp_folded,
        "kcircuit": kcircuit,
        "key_split": keysplit,
        "composition_baseline": (baseline.mean, baseline.std),
        "experiments": experiments,
        "single_head_table": runs.single_head_probe_table(),
        "loss_first_repeat": rep.first,
        "loss_later_repeats": rep.later,
        "icl_score": runs.clean_icl,  # metrics.icl_score(model, text): the clean run's
    }


def _head_table(a: dict, cfg) -> str:
    s = a["scores"]
    cols = [("prev", "previous_token"), ("prefix", "prefix_matching"), ("dup", "duplicate_token"),
            ("curr", "current_token"), ("first", "first_token"), ("copy-eig", "copying_eigen"),
            ("copy-logit", "copying_logit"), ("OV top-1", "ov_top1")]
    widths = [5] + [max(8, len(c[0])) for c in cols] + [16]
    lines = [_fmt_row(["head"] + [c[0] for c in cols] + ["role"], widths)]
    prev, ind = set(a["classes"]["previous_token"]), set(a["classes"]["induction"])
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            role = "induction" if (layer, head) in ind else "previous-token" if (layer, head) in prev else ""
            vals = [f"{float(s[k][layer, head]):.2f}" for _, k in cols]
            lines.append(_fmt_row([f"{layer}.{head}"] + vals + [role], widths))
    return "\n".join(lines)


def _composition_text(a: dict, cfg) -> str:
    mean, std = a["composition_baseline"]
    lines = [f"composition scores, layer-1 head (rows) x layer-0 head (cols); random baseline {mean:.3f} +- {std:.3f}"]
    for kind in ("K", "Q", "V"):
        m = a["composition"][kind]
        lines.append(f"  {kind}: " + " | ".join(" ".join(f"{float(x):.2f}" for x in row) for row in m))
    if cfg.normalization:  # without LayerNorm the folded scores are the plain ones
        m = a["composition_folded"]["K"]
        lines.append("  K, LayerNorm folded: " + " | ".join(" ".join(f"{float(x):.2f}" for x in row) for row in m))
    return "\n".join(lines)


def _ranked(row: torch.Tensor, fmt: str = "{:.2f}", descending: bool = True) -> str:
    order = row.argsort(descending=descending).tolist()
    return " > ".join(f"0.{h} ({fmt.format(float(row[h]))})" for h in order) if descending else \
        " < ".join(f"0.{h} ({fmt.format(float(row[h]))})" for h in order)


def kcircuit_rankings(a: dict) -> dict:
    """For every induction head (and, as context, every last-layer head): layer-0 heads ranked by
    the token-level K-circuit top-1, and whether the previous-token heads come first."""
    prev = [h for l, h in a["classes"]["previous_token"] if l == 0]
    top1 = a["kcircuit"]["top1"]
    out = {}
    for layer, head in a["classes"]["induction"]:
        order = top1[head].argsort(descending=True).tolist()
        out[f"{layer}.{head}"] = {
            "order": order,
            "top1": [round(float(x), 4) for x in top1[head]],
            "mean_rank": [round(float(x), 3) for x in a["kcircuit"]["mean_rank"][head]],
            "key_split": [round(float(x), 4) for x in a["key_split"].scores[head, a["key_split"].head_columns()]],
            "frobenius_order": a["composition"]["K"][head].argsort(descending=True).tolist(),
            "previous_token_heads_first": bool(prev) and set(order[: len(prev)]) == set(prev),
        }
    return out


def _kcircuit_text(a: dict, cfg) -> str:
    prev = [h for l, h in a["classes"]["previous_token"] if l == 0]
    ks = a["key_split"]
    cols = ks.head_columns()
    lines = ["WHICH LAYER-0 HEADS DOES EACH INDUCTION HEAD READ? (previous-token heads: "
             + (", ".join(f"0.{h}" for h in prev) or "none") + ")",
             "  token-level K-circuit top-1 (W_E W_QK^1 (W_E W_OV^0)^T on the training tokens"
             + (", LayerNorm folded" if cfg.normalization else "") + "; chance 1/pool):"]
    ranks = kcircuit_rankings(a)
    for name, r in ranks.items():
        h1 = int(name.split(".")[1])
        verdict = "previous-token heads first" if r["previous_token_heads_first"] else "previous-token heads NOT first"
        lines.append(f"    {name}: {_ranked(a['kcircuit']['top1'][h1])}  [{verdict}]")
    lines.append("  key-score split by source (mean advantage of the induction target over the other keys, "
                 "through each layer-0 head's output; repeated-token probe):")
    for name in ranks:
        h1 = int(name.split(".")[1])
        lines.append(f"    {name}: {_ranked(ks.scores[h1, cols], '{:+.2f}')}  (all sources: {float(ks.total[h1]):+.2f})")
    lines.append("  Frobenius K-composition (the paper's score; ranks by subspace overlap, not by function):")
    for name in ranks:
        h1 = int(name.split(".")[1])
        rel = metrics.relative_to_other_heads(a["composition"]["K"])[h1]
        lines.append(f"    {name}: {_ranked(a['composition']['K'][h1])}; x mean of the other heads: "
                     + " ".join(f"0.{h} {float(rel[h]):.2f}" for h in range(rel.numel())))
    return "\n".join(lines)


def _experiments_text(a: dict) -> str:
    widths = [52, 18, 16]
    lines = [_fmt_row(["ablation", "d loss (repeats)", "d ICL score"], widths)]
    for e in a["experiments"]:
        heads = ",".join(f"{h[0]}.{h[1]}" for h in e["heads"])
        lines.append(_fmt_row([f"{e['label']} [{heads}]"[:52], f"{e['delta_probe_loss']:+.3f}", f"{e['delta_icl_score']:+.3f}"], widths))
    return "\n".join(lines)


def _over_training_text(series: dict, n_ctx: int) -> str:
    e, l = metrics.icl_bands(n_ctx)
    lines = ["OVER TRAINING (every checkpoint)",
             f"  ICL score, late band minus early band (tokens {l[0]}-{l[1]} minus tokens {e[0]}-{e[1]}), "
             "all held-out windows, +- standard error:"]
    row = [f"{st}:{m:+.2f}+-{se:.2f}" for st, m, se in zip(series["step"], series["icl_band"], series["icl_band_se"])]
    for i in range(0, len(row), 6):
        lines.append("    " + "  ".join(row[i:i + 6]))
    top1 = torch.stack(series["ov_top1"])[:, -1]  # [T, H]
    eig = torch.stack(series["copying_eigen"])[:, -1]
    lines.append("  last-layer heads, OV top-1 copying (rises most at the phase change) / eigenvalue copying (saturates early):")
    row = [f"{st}:{float(t.mean()):.2f}/{float(g.mean()):.2f}" for st, t, g in zip(series["step"], top1, eig)]
    for i in range(0, len(row), 6):
        lines.append("    " + "  ".join(row[i:i + 6]))
    return "\n".join(lines)


def build_report(run_dir, out_dir: Path, device: str | None = None, seed: int = 0, threads: int | None = None) -> Report:
    """Analyse the last checkpoint of ``run_dir`` and the run's history; write the figures,
    ``report.txt``, ``report.json`` and ``index.html`` into ``out_dir``. ``threads``: torch CPU
    threads meanwhile (default: the free cores now, :func:`curves.free_cpu_threads`; ``0``
    leaves torch's setting alone)."""
    with cpu_threads(threads):
        return _build_report(run_dir, Path(out_dir), seed)


def _build_report(run_dir, out_dir: Path, seed: int) -> Report:
    run = checkpoints.resolve_run_dir(run_dir)
    config = checkpoints.load_config(run)
    model = checkpoints.load_model(run, device=None)
    history = checkpoints.load_history(run)
    tokens_per_step, losses = checkpoints.load_train_losses(run)
    eval_set = checkpoints.load_eval_set(run)
    pool = torch.tensor(config["token_pool"]) if "token_pool" in config else load_corpus().token_pool()
    a = analyse(model, pool, int(config.get("bos", eval_set.bos)), eval_set.text, seed=seed)
    cfg = model.cfg

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = {}
    figs["loss_curve"] = "loss_curve.png"
    plots.loss_curve(losses, tokens_per_step, history, out_dir / figs["loss_curve"])
    figs["scores_over_training"] = "scores_over_training.png"
    series = evaluation.scores_over_training(run, pool, eval_set.text)
    plots.scores_over_training(history, out_dir / figs["scores_over_training"], icl=series)
    _, cache = model.run_with_cache(a["probe"][:1])
    s = a["scores"]
    prev_head = int(s["previous_token"][0].argmax())
    ind_head = int(s["prefix_matching"][-1].argmax())
    n_show = min(a["probe"].shape[1], 1 + 2 * min(25, (cfg.n_ctx - 1) // 4))
    pats = torch.stack([
        cache[hook_name("pattern", 0)][0, prev_head, :n_show, :n_show],
        cache[hook_name("pattern", cfg.n_layers - 1)][0, ind_head, :n_show, :n_show],
    ])
    labels = ["BOS"] + [str(int(t)) for t in a["probe"][0, 1:n_show]]
    figs["attention_patterns"] = "attention_patterns.png"
    plots.attention_patterns(pats, labels, [f"head 0.{prev_head} (previous-token)", f"head {cfg.n_layers - 1}.{ind_head} (induction)"],
                             out_dir / figs["attention_patterns"])
    figs["ablation_table"] = "single_head_ablation.png"
    plots.head_heatmap(a["single_head_table"]["delta_probe_loss"], "zero-ablating one head: change in loss on repeated tokens",
                       out_dir / figs["ablation_table"])
    figs["k_composition"] = "k_composition.png"
    plots.head_heatmap(a["composition"]["K"], "K-composition (rows: layer-1 heads, cols: layer-0 heads)",
                       out_dir / figs["k_composition"], xlabel="layer-0 head", ylabel="layer-1 head")

    figs["icl_over_training"] = "icl_over_training.png"
    plots.icl_over_training(series, history, out_dir / figs["icl_over_training"])
    figs["copying_over_training"] = "copying_over_training.png"
    plots.copying_over_training(series, history, out_dir / figs["copying_over_training"],
                                prev_heads=[h for l, h in a["classes"]["previous_token"] if l == 0])

    formed = next((h for h in history if induction_formed(h)), None)
    lo, hi = bump_window(history) if len(history) >= 2 else (0, 0)
    summary = [
        f"model: {cfg.n_layers} layers x {cfg.n_heads} heads, d_model={cfg.d_model}, d_head={cfg.d_head}, "
        f"n_ctx={cfg.n_ctx}, vocab={cfg.d_vocab}, normalization={cfg.normalization}",
        f"checkpoints: {run} ({len(history)} checkpoints, {history[-1]['tokens']:,} training tokens)",
        f"induction bump: between step {lo} and {hi} "
        f"({lo * tokens_per_step:,}-{hi * tokens_per_step:,} tokens)",
        ("induction formed (prefix-matching >= 0.5, previous-token >= 0.5, later-repeat loss < half the first) "
         f"at step {formed['step']} ({formed['tokens']:,} tokens, {formed['seconds']:.0f} s into training)")
        if formed else "induction criterion not met at any checkpoint",
        f"loss on repeated random tokens: first copy {a['loss_first_repeat']:.2f}, later copies {a['loss_later_repeats']:.2f}",
        f"in-context-learning score (held-out text, loss at token {metrics.icl_positions(cfg.n_ctx)[1]} minus token "
        f"{metrics.icl_positions(cfg.n_ctx)[0]}; the paper uses 500 and 50 on longer contexts): {a['icl_score']:+.3f}",
        f"previous-token heads: {', '.join(f'{l}.{h}' for l, h in a['classes']['previous_token']) or 'none'}; "
        f"induction heads: {', '.join(f'{l}.{h}' for l, h in a['classes']['induction']) or 'none'} (threshold {THRESHOLD})",
    ]
    text = "\n".join(summary + ["", "HEADS (paper's probe: 25 random tokens x 4 repeats after BOS, 10 examples)",
                                _head_table(a, cfg), "", _composition_text(a, cfg), "", _kcircuit_text(a, cfg), "",
                                _over_training_text(series, cfg.n_ctx), "", "ABLATIONS", _experiments_text(a)])
    data = {
        "scores": {k: v.tolist() for k, v in s.items()},
        "classes": {k: [list(h) for h in v] for k, v in a["classes"].items()},
        "composition": {k: v.tolist() for k, v in a["composition"].items()},
        "composition_baseline": list(a["composition_baseline"]),
        "experiments": a["experiments"],
        "icl_score": a["icl_score"],
        "kcircuit": {k: v.tolist() for k, v in a["kcircuit"].items()},
        "kcircuit_rankings": kcircuit_rankings(a),
        "key_split": {"sources": a["key_split"].sources, "scores": a["key_split"].scores.tolist()},
        "composition_folded": {k: v.tolist() for k, v in a["composition_folded"].items()},
        "over_training": {"step": series["step"], "icl_band": series["icl_band"], "icl_band_se": series["icl_band_se"],
                          "ov_top1": [x.tolist() for x in series["ov_top1"]],
                          "copying_eigen": [x.tolist() for x in series["copying_eigen"]],
                          "kcircuit_top1": [x.tolist() for x in series["kcircuit_top1"]]},
        "loss_first_repeat": a["loss_first_repeat"],
        "loss_later_repeats": a["loss_later_repeats"],
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=1))
    (out_dir / "report.txt").write_text(text + "\n")
    html_path = out_dir / "index.html"
    html_path.write_text(_html(text, figs))
    return Report(text=text, html_path=html_path, data=data)


def _html(text: str, figs: dict) -> str:
    captions = {
        "loss_curve": "Training loss and the losses on random repeated tokens; the shaded band is the bump.",
        "scores_over_training": "Head scores and the in-context-learning score over training.",
        "attention_patterns": "Attention on a repeated random sequence: the previous-token head's off-diagonal and the induction head's stripe.",
        "ablation_table": "Effect of zero-ablating each head alone on the loss on repeated tokens.",
        "k_composition": "K-composition between layer-1 and layer-0 heads (the paper's Frobenius score: subspace overlap, to be read against the random baseline; the K-circuit ranking above says which paths are used).",
        "icl_over_training": "ICL score (late band minus early band, all held-out windows) over training; the shaded band is +- one standard error, the grey band the induction bump.",
        "copying_over_training": "Copying over training: OV top-1 accuracy (rises most at the phase change), the eigenvalue score (saturates early), and the token-level K-circuit top-1 through each layer-0 head.",
    }
    imgs = "\n".join(
        f'<figure><img src="{html.escape(f)}" alt="{html.escape(k)}"><figcaption>{html.escape(captions.get(k, k))}</figcaption></figure>'
        for k, f in figs.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Induction heads report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}} img{{max-width:100%}}
figure{{margin:1.5em 0}} figcaption{{color:#555;font-size:14px}}</style></head>
<body><h1>Induction heads in a two-layer attention-only transformer</h1>
<pre>{html.escape(text)}</pre>
{imgs}
</body></html>
"""
