"""Checkpoints on disk: safetensors in TransformerLens property format, JSON beside them.

A run folder holds::

    config.json                 model config, TransformerLens bridge config, training config
    tokenizer.json              the tokenizer the run used
    checkpoints/step_000120.safetensors   weights: embed.W_E, pos_embed.W_pos,
                                blocks.{l}.attn.W_Q [n_heads, d_model, d_head], ..., unembed.W_U
    checkpoints/step_000120.json          metrics measured at that checkpoint
    train_losses.json           the training loss of every step
    summary.json                wall-clock time, tokens, device
    probes.json                 the light evaluations between checkpoints (probe, a few windows)
    analysis.json               numbers derived from the checkpoints, stored so that the report
                                does not recompute them (see :func:`load_analysis`)

The weights load into TransformerLens with its own converter::

    cfg = TransformerBridgeConfig.from_dict(json.load(open("config.json"))["transformer_lens"])
    bridge = TransformerBridge.boot_native(cfg)
    bridge.load_state_dict(convert_tl_checkpoint(safetensors.torch.load_file(path), bridge.cfg))
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from induction_course.model import AttnOnlyTransformer, ModelConfig
from induction_course.paths import data_dir, default_checkpoint_dir

STEP_RE = re.compile(r"step_(\d+)\.safetensors$")
PROBES_FILE = "probes.json"  # light evaluations between checkpoints
ANALYSIS_FILE = "analysis.json"  # numbers derived from the checkpoints (load_analysis)


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
    for old in [*(out / "checkpoints").glob("step_*"), out / ANALYSIS_FILE, out / PROBES_FILE]:
        old.unlink(missing_ok=True)
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
        _save_tensors({"probe": eval_set.probe.contiguous(), "text": eval_set.text.contiguous()}, out / "eval_set.safetensors",
                      metadata={"seg_len": str(eval_set.seg_len), "bos": str(eval_set.bos)})
    tok = data_dir() / "tokenizer.json"
    if tok.is_file() and tok.resolve() != (out / "tokenizer.json").resolve():
        shutil.copyfile(tok, out / "tokenizer.json")


def save_checkpoint(out: Path, model: AttnOnlyTransformer, step: int, record: dict) -> Path:
    path = out / "checkpoints" / f"step_{step:06d}.safetensors"
    tensors = {k: v.cpu() for k, v in model.tl_state_dict().items()}
    _save_tensors(tensors, path, metadata={"step": str(step)})
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return path


def _save_tensors(tensors: dict, path: Path, metadata: dict) -> None:
    """``save_file`` with the permissions of any other file written here: safetensors creates its
    files readable by their owner only, so a sandboxed grading kernel (another user) could not
    load a run an instructor regenerated."""
    save_file(tensors, str(path), metadata=metadata)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


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


# ------------------------------------------------------------ derived numbers, stored
ANALYSIS_ENTRIES = 4  # keys kept per file (e.g. the default windows and one other set)


def analysis_key(run_dir, name: str, *parts, sources=()) -> str:
    """A fingerprint of everything a derived number depends on: ``name``, the bytes of every
    checkpoint of the run, ``parts`` (tensors by value, anything else by ``repr``) and the source
    files ``sources`` of the code that computes it (edit that code and the stored value is
    recomputed, never reused stale)."""
    import hashlib

    import torch

    run = resolve_run_dir(run_dir)
    h = hashlib.sha1(name.encode())
    for step in list_steps(run):
        h.update((run / "checkpoints" / f"step_{step:06d}.safetensors").read_bytes())
    for part in parts:
        if isinstance(part, torch.Tensor):
            h.update(repr((tuple(part.shape), str(part.dtype))).encode())
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(part).encode())
    for path in sources:
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def _analysis_paths(run: Path) -> list[Path]:
    """Beside the checkpoints first, then (for a folder that cannot be written, e.g. an installed
    package) the user's cache; ``INDUCTION_COURSE_CACHE=0`` turns both off, ``=DIR`` moves the
    second."""
    import hashlib

    where = os.environ.get("INDUCTION_COURSE_CACHE")
    if where == "0":
        return []
    base = Path(where) if where else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "induction_course"
    return [run / ANALYSIS_FILE, base / "analysis" / f"{hashlib.sha1(str(run.resolve()).encode()).hexdigest()}.json"]


def load_analysis(run_dir, key: str):
    """The value stored under ``key`` (from :func:`analysis_key`) beside the run, or ``None``."""
    for path in _analysis_paths(resolve_run_dir(run_dir)):
        try:
            entries = json.loads(path.read_text())
            if key in entries:
                return entries[key]
        except (OSError, ValueError, TypeError):
            continue
    return None


def save_analysis(run_dir, key: str, value) -> Path | None:
    """Store a JSON-able ``value`` under ``key``: in the run folder when it can be written, else
    in the user's cache. Returns the file, or ``None`` when nothing could be written."""
    for path in _analysis_paths(resolve_run_dir(run_dir)):
        try:
            entries = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            entries = {}
        if not isinstance(entries, dict):
            entries = {}
        entries.pop(key, None)
        entries[key] = value
        entries = dict(list(entries.items())[-ANALYSIS_ENTRIES:])
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(entries))
            tmp.replace(path)
            return path
        except OSError:
            if tmp.parent.is_dir():
                tmp.unlink(missing_ok=True)
            continue
    return None


__all__ = [
    "CheckpointError",
    "analysis_key",
    "load_analysis",
    "save_analysis",
    "load_config",
    "load_history",
    "load_model",
    "load_train_losses",
    "list_steps",
    "save_checkpoint",
]
