"""``induction-course doctor``: what this installation can do, in a few lines."""

from __future__ import annotations

import importlib
import platform

from induction_course.paths import data_dir, default_checkpoint_dir


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception as exc:  # a broken optional extra must not stop the doctor
        return f"missing ({type(exc).__name__})"


def run_doctor() -> int:
    import torch

    ok = True
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"torch {torch.__version__}; GPU: {'cuda ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (CPU)'}")
    for mod in ("transformer_lens", "tokenizers", "safetensors", "matplotlib", "nbgrader", "circuitsvis", "ipywidgets", "jupytext"):
        print(f"{mod:17s} {_version(mod)}")
    tok = data_dir() / "tokenizer.json"
    print(f"tokenizer        {'ok' if tok.is_file() else 'MISSING'}: {tok}")
    ok &= tok.is_file()
    ck = default_checkpoint_dir()
    n = len(list((ck / "checkpoints").glob("*.safetensors"))) if ck.is_dir() else 0
    print(f"checkpoints      {n} shipped in {ck}")
    ok &= n > 0
    try:
        from induction_course.data import corpus_files

        print(f"corpus           {len(corpus_files())} standard-library modules")
    except FileNotFoundError as exc:
        print(f"corpus           MISSING: {exc}")
        ok = False
    return 0 if ok else 1
