"""Checkpoints on disk: safetensors in TransformerLens property format, JSON beside them.

A run folder holds::

    config.json                 model config, TransformerLens bridge config, training config
    tokenizer.json              the tokenizer the run used
    checkpoints/step_000120.safetensors   weights: embed.W_E, pos_embed.W_pos,
                                blocks.{l}.attn.W_Q [n_heads, d_model, d_head], ..., unembed.W_U
    checkpoints/step_000120.json          metrics measured at that checkpoint
    train_losses.json           the training loss of every step
    summary.json                wall-clock time, tokens, device

The weights load into TransformerLens with its own converter::

    cfg = TransformerBridgeConfig.from_dict(json.load(open("config.json"))["transformer_lens"])
    bridge = TransformerBridge.boot_native(cfg)
    bridge.load_state_dict(convert_tl_checkpoint(safetensors.torch.load_file(path), bridge.cfg))
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from induction_course.model import AttnOnlyTransformer, ModelConfig
from induction_course.paths import data_dir, default_checkpoint_dir

STEP_RE = re.compile(r"step_(\d+)\.safetensors$")


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be used; the message says why."""


def transformer_lens_config(cfg: ModelConfig) -> dict:
    """The fields a ``TransformerBridgeConfig`` needs to rebuild this architecture."""
    return {
        "d_model": cfg.d_model,
        "d_head": cfg.d_head,
        "n_heads": cfg.n_heads,
        "n_layers": cfg.n_layers,
        "n_ctx": cfg.n_ctx,
        "d_vocab": cfg.d_vocab,
        "attn_only": True,
        "normalization_type": cfg.normalization,
        "positional_embedding_type": "standard",
        "eps": cfg.eps,
    }


def prepare_run_dir(out: Path, mcfg: ModelConfig, tcfg, corpus, eval_set=None) -> None:
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for old in (out / "checkpoints").glob("step_*"):
        old.unlink()
    config = {
        "model": mcfg.to_dict(),
        "transformer_lens": transformer_lens_config(mcfg),
        "training": asdict(tcfg),
        "corpus_fingerprint": corpus.fingerprint,
        "bos": corpus.bos,
        # Stored so analysis of a run never depends on the interpreter's corpus again.
        "token_pool": corpus.token_pool().tolist(),
        "format": "induction-course checkpoint v1 (TransformerLens property names)",
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    if eval_set is not None:
        save_file({"probe": eval_set.probe.contiguous(), "text": eval_set.text.contiguous()}, str(out / "eval_set.safetensors"),
                  metadata={"seg_len": str(eval_set.seg_len), "bos": str(eval_set.bos)})
    tok = data_dir() / "tokenizer.json"
    if tok.is_file() and tok.resolve() != (out / "tokenizer.json").resolve():
        shutil.copyfile(tok, out / "tokenizer.json")


def save_checkpoint(out: Path, model: AttnOnlyTransformer, step: int, record: dict) -> Path:
    path = out / "checkpoints" / f"step_{step:06d}.safetensors"
    tensors = {k: v.cpu() for k, v in model.tl_state_dict().items()}
    save_file(tensors, str(path), metadata={"step": str(step)})
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return path


def resolve_run_dir(run_dir: Path | str | None) -> Path:
    run = Path(run_dir) if run_dir is not None else default_checkpoint_dir()
    if not run.is_dir():
        raise CheckpointError(f"checkpoint folder {run} does not exist (train one with `induction-course train --out {run}`)")
    if not (run / "config.json").is_file():
        raise CheckpointError(f"{run} has no config.json: it is not a checkpoint folder written by `induction-course train`")
    return run


def load_config(run_dir: Path | str | None = None) -> dict:
    run = resolve_run_dir(run_dir)
    try:
        config = json.loads((run / "config.json").read_text())
        ModelConfig.from_dict(config["model"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{run / 'config.json'} is not a valid run config: {exc}") from None
    return config


def list_steps(run_dir: Path | str | None = None) -> list[int]:
    run = resolve_run_dir(run_dir)
    steps = sorted(int(m.group(1)) for p in (run / "checkpoints").glob("step_*.safetensors") if (m := STEP_RE.search(p.name)))
    if not steps:
        raise CheckpointError(f"{run / 'checkpoints'} holds no step_*.safetensors files")
    return steps


def load_model(run_dir: Path | str | None = None, step: int | None = None, device: str | None = None) -> AttnOnlyTransformer:
    """The model at ``step`` (default: the last checkpoint) of a run folder."""
    run = resolve_run_dir(run_dir)
    mcfg = ModelConfig.from_dict(load_config(run)["model"])
    steps = list_steps(run)
    step = steps[-1] if step is None else step
    if step not in steps:
        raise CheckpointError(f"no checkpoint for step {step} in {run}; available: {steps}")
    path = run / "checkpoints" / f"step_{step:06d}.safetensors"
    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    try:
        model = AttnOnlyTransformer.from_tl_state_dict(mcfg, sd)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if device:
        model = model.to(device)
    return model.eval()


def load_eval_set(run_dir: Path | str | None = None):
    """The fixed evaluation set a run was measured on (probe and held-out text windows)."""
    from safetensors import safe_open

    from induction_course.evaluation import EvalSet

    run = resolve_run_dir(run_dir)
    path = run / "eval_set.safetensors"
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        return EvalSet(probe=tensors["probe"], text=tensors["text"], seg_len=int(meta["seg_len"]), bos=int(meta["bos"]))
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is missing or not a valid evaluation set ({exc})") from None


def load_history(run_dir: Path | str | None = None) -> list[dict]:
    """The metrics record of every checkpoint, in step order."""
    run = resolve_run_dir(run_dir)
    history = []
    for step in list_steps(run):
        path = run / "checkpoints" / f"step_{step:06d}.json"
        try:
            history.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"metrics file {path} is missing or not JSON ({exc})") from None
    return history


def load_train_losses(run_dir: Path | str | None = None) -> tuple[int, list[float]]:
    run = resolve_run_dir(run_dir)
    try:
        d = json.loads((run / "train_losses.json").read_text())
        return int(d["tokens_per_step"]), [float(x) for x in d["loss"]]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise CheckpointError(f"{run / 'train_losses.json'} is missing or malformed ({exc})") from None


__all__ = [
    "CheckpointError",
    "load_config",
    "load_history",
    "load_model",
    "load_train_losses",
    "list_steps",
    "save_checkpoint",
]
