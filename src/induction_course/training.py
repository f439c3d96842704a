"""Training the two-layer attention-only model until induction heads form.

What makes induction heads form early on a laptop (measured; see README "Training recipe"):
a share of every batch is made of *repeated random segments* (Singh et al. 2024: the density of
repeated subsequences in the data controls when induction heads appear). On natural code alone
a small model needs far more tokens before its loss shows the bump. The rest of every batch is
natural text (the standard-library corpus), so the model also learns ordinary statistics and the
in-context-learning score on held-out text can be measured.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from induction_course import checkpoints as ckpt
from induction_course.curves import cpu_threads
from induction_course.data import Corpus, load_corpus, repeated_segment_batch, sample_windows
from induction_course.evaluation import EvalSet, evaluate
from induction_course.model import AttnOnlyTransformer, ModelConfig, cross_entropy_next_token


@dataclass
class TrainConfig:
    steps: int = 1500
    batch_size: int = 8
    lr: float = 1e-2
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    # Sequences of repeated random segments added to each batch of ``batch_size`` natural-text
    # windows. They are short (``synthetic_len`` tokens): at initialisation attention is spread
    # uniformly over the context, so the gradient that grows a previous-token/induction pair is
    # diluted by the context length; short sequences make it many times stronger (measured).
    synthetic_fraction: float = 3.5  # synthetic sequences per natural sequence
    synthetic_len: int = 32
    # Place each step's synthetic sequences at a random position offset, so the circuit they
    # grow is learned at every position of the context, not only the first ``synthetic_len``.
    random_offset: bool = True
    min_segment: int = 3
    max_segment: int = 15
    seed: int = 0
    n_checkpoints: int = 30
    eval_probe_examples: int = 16
    eval_text_examples: int = 512
    # Between checkpoints, every ``probe_every`` steps, a light evaluation (the probe and the
    # first ``probe_text_windows`` held-out windows: about one training step's time, so ~4 % of
    # the steps between) says when induction forms to within 25 steps instead of the 60-90
    # between checkpoints there; the full set is measured only at the checkpoints the report
    # plots. 0 turns them off. Evaluating touches no random generator: the run is the same.
    probe_every: int = 25
    probe_text_windows: int = 8

    def __post_init__(self) -> None:
        if self.synthetic_fraction < 0:
            raise ValueError(f"synthetic_fraction must be >= 0, got {self.synthetic_fraction}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.probe_every < 0 or self.probe_text_windows < 0:
            raise ValueError("probe_every and probe_text_windows must be >= 0")

    def checkpoint_steps(self) -> list[int]:
        """Denser early on, where the phase change happens, then evenly spread."""
        n = max(2, self.n_checkpoints)
        steps = {0, self.steps}
        for i in range(1, n - 1):
            frac = i / (n - 1)
            steps.add(int(round(self.steps * frac ** 1.5)))
        return sorted(steps)


def default_model_config(d_vocab: int) -> ModelConfig:
    """The shipped run's architecture (``ModelConfig()``'s defaults) for a tokenizer of ``d_vocab`` tokens."""
    return ModelConfig(d_vocab=d_vocab)


_DEFAULT_DEVICE: torch.device | None = None


def set_default_device(device: torch.device | str | None) -> None:
    """Where :func:`train` runs when no device is given (the notebook setup cell sets it)."""
    global _DEFAULT_DEVICE
    _DEFAULT_DEVICE = None if device is None else torch.device(device)


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else the default set by the notebook setup cell, else the GPU when
    there is one."""
    if prefer:
        return torch.device(prefer)
    if _DEFAULT_DEVICE is not None:
        return _DEFAULT_DEVICE
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_batch(
    corpus: Corpus, pool: torch.Tensor, n_ctx: int, tcfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two token tensors of one step, ``(natural, synthetic)``.

    ``natural`` is ``[batch_size, n_ctx]`` windows of training text; ``synthetic`` is
    ``[n_syn, min(synthetic_len, n_ctx)]`` sequences of repeated random segments, with
    ``n_syn = round(batch_size * synthetic_fraction)`` (zero rows when that is 0).
    """
    natural = sample_windows(corpus.train, tcfg.batch_size, n_ctx, corpus.bos, gen)
    n_syn = int(round(tcfg.batch_size * tcfg.synthetic_fraction))
    syn_len = min(tcfg.synthetic_len, n_ctx)
    max_seg = min(tcfg.max_segment, (syn_len - 1) // 2)
    if n_syn:
        synthetic = repeated_segment_batch(pool, n_syn, syn_len, corpus.bos, gen, min(tcfg.min_segment, max_seg), max_seg)
    else:
        synthetic = torch.empty(0, syn_len, dtype=torch.long)
    return natural, synthetic


def lr_at(step: int, tcfg: TrainConfig) -> float:
    if step < tcfg.warmup_steps:
        return tcfg.lr * (step + 1) / tcfg.warmup_steps
    progress = (step - tcfg.warmup_steps) / max(1, tcfg.steps - tcfg.warmup_steps)
    return tcfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class TrainResult:
    model: AttnOnlyTransformer
    out_dir: Path | None
    history: list[dict] = field(default_factory=list)  # one record per checkpoint
    probes: list[dict] = field(default_factory=list)  # light records between checkpoints
    losses: list[float] = field(default_factory=list)  # training loss of every step
    tokens_per_step: int = 0
    natural_tokens: int = 0
    seconds: float = 0.0
    eval_seconds: float = 0.0  # of ``seconds``, spent evaluating (checkpoints and light probes)


def train_step(model, optimizer, tokens: torch.Tensor) -> float:
    """One optimiser step on the next-token loss of ``tokens``; returns the loss before the step."""
    optimizer.zero_grad()
    loss = cross_entropy_next_token(model(tokens), tokens)
    loss.backward()
    optimizer.step()
    return loss.item()


def train(
    tcfg: TrainConfig,
    mcfg: ModelConfig | None = None,
    out_dir: Path | str | None = None,
    device: str | None = None,
    progress: bool = True,
    corpus: Corpus | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train from scratch; evaluate and (if ``out_dir``) save a checkpoint at each
    ``tcfg.checkpoint_steps()``, and a light record every ``tcfg.probe_every`` steps between.

    ``threads``: torch CPU threads while training on a CPU; by default as many as there are free
    cores now (:func:`curves.free_cpu_threads`), ``0`` leaves torch's setting alone. Seeded: the
    same configs give the same weights on CPU, bit for bit with one thread (with more, the
    order of parallel sums varies from run to run)."""
    dev = pick_device(device)
    with cpu_threads(threads if dev.type == "cpu" else 0):
        return _train(tcfg, mcfg, out_dir, dev, progress, corpus, on_checkpoint)


def _train(tcfg, mcfg, out_dir, dev, progress, corpus, on_checkpoint) -> TrainResult:
    from tqdm.auto import tqdm

    corpus = corpus or load_corpus()
    mcfg = mcfg or default_model_config(corpus.d_vocab)
    mcfg.seed = tcfg.seed
    if mcfg.d_vocab != corpus.d_vocab:
        raise ValueError(f"model d_vocab={mcfg.d_vocab} but the tokenizer has {corpus.d_vocab} tokens")
    if progress:
        where = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else f" ({torch.get_num_threads()} thread(s))"
        print(f"training on {dev}{where}")
    torch.manual_seed(tcfg.seed)
    gen = torch.Generator().manual_seed(tcfg.seed)
    pool = corpus.token_pool()
    eval_set = EvalSet.build(corpus, mcfg.n_ctx, tcfg.eval_probe_examples, tcfg.eval_text_examples, seed=tcfg.seed + 1)

    model = AttnOnlyTransformer(mcfg).to(dev)
    decay = [p for n, p in model.named_parameters() if n.startswith("W_")]
    no_decay = [p for n, p in model.named_parameters() if not n.startswith("W_")]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=tcfg.lr,
        betas=(0.9, 0.98),
    )
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        ckpt.prepare_run_dir(out, mcfg, tcfg, corpus, eval_set)

    n_syn = int(round(tcfg.batch_size * tcfg.synthetic_fraction))
    tokens_per_step = tcfg.batch_size * mcfg.n_ctx + n_syn * min(tcfg.synthetic_len, mcfg.n_ctx)
    result = TrainResult(model=model, out_dir=out, tokens_per_step=tokens_per_step)
    save_at = set(tcfg.checkpoint_steps())
    start = time.perf_counter()

    def measure(step: int, text_windows: int | None) -> dict:
        t0 = time.perf_counter()
        record = evaluate(model, eval_set, text_windows=text_windows)
        result.eval_seconds += time.perf_counter() - t0
        recent = result.losses[-20:]
        record.update(step=step, tokens=step * tokens_per_step, natural_tokens=result.natural_tokens,
                      train_loss=sum(recent) / len(recent) if recent else None,
                      seconds=time.perf_counter() - start)
        return record

    bar = tqdm(range(tcfg.steps + 1), desc="training", disable=not progress, unit="step")
    for step in bar:
        if step in save_at:  # the full evaluation set: the numbers the report plots
            record = measure(step, None)
            result.history.append(record)
            if out is not None:
                ckpt.save_checkpoint(out, model, step, record)
            if on_checkpoint:
                on_checkpoint(record)
        elif tcfg.probe_every and step % tcfg.probe_every == 0:
            result.probes.append(measure(step, tcfg.probe_text_windows))
        if step == tcfg.steps:
            break
        loss = _step_loss(model, corpus, pool, mcfg, tcfg, gen, dev, step, opt)
        result.losses.append(loss)
        result.natural_tokens += tcfg.batch_size * mcfg.n_ctx
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")
    result.seconds = time.perf_counter() - start
    if out is not None:
        _write_run_files(out, result, tcfg, dev)
    return result


def _step_loss(model, corpus, pool, mcfg, tcfg, gen, dev, step, opt) -> float:
    """One optimiser step of the recipe; returns its (token-weighted) training loss."""
    natural, synthetic = make_batch(corpus, pool, mcfg.n_ctx, tcfg, gen)
    natural, synthetic = natural.to(dev), synthetic.to(dev)
    for group in opt.param_groups:
        group["lr"] = lr_at(step, tcfg)
    # Token-weighted mean over both kinds of sequence (they differ in length).
    n_nat_pred = natural[:, 1:].numel()
    loss = cross_entropy_next_token(model.forward_fused(natural), natural) * n_nat_pred
    if synthetic.shape[0]:
        # Offsets are whole multiples of the sequence length, so every position is covered
        # equally often: with any offset in [0, n_ctx - len] late positions would see more
        # random tokens than early ones, and the model would learn to trust its context less
        # there, which shows up as a worse in-context-learning score on natural text.
        n_slots = mcfg.n_ctx // synthetic.shape[1]
        offset = synthetic.shape[1] * int(torch.randint(0, n_slots, (1,), generator=gen)) if tcfg.random_offset else 0
        loss = loss + cross_entropy_next_token(model.forward_fused(synthetic, pos_offset=offset), synthetic) * synthetic[:, 1:].numel()
    loss = loss / (n_nat_pred + (synthetic[:, 1:].numel() if synthetic.shape[0] else 0))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
    opt.step()
    return loss.item()


def _write_run_files(out: Path, result: TrainResult, tcfg: TrainConfig, dev: torch.device) -> None:
    (out / "train_losses.json").write_text(json.dumps({"tokens_per_step": result.tokens_per_step, "loss": result.losses}))
    (out / ckpt.PROBES_FILE).write_text(json.dumps(result.probes))
    summary = {
        "seconds": result.seconds,
        "eval_seconds": result.eval_seconds,
        "tokens": tcfg.steps * result.tokens_per_step,
        "natural_tokens": result.natural_tokens,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


__all__ = ["TrainConfig", "TrainResult", "train", "train_step", "default_model_config", "pick_device", "set_default_device"]
