"""The README's code is run as written: a stale path or API in it fails here."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_checkpoint_snippet_loads_the_shipped_weights_into_transformer_lens(monkeypatch):
    from induction_course import checkpoints

    (snippet,) = [b for b in _python_blocks() if "boot_native" in b]
    monkeypatch.chdir(ROOT)  # the snippet's paths are relative to the repository
    ns: dict = {}
    exec(compile(snippet, "README.md", "exec"), ns)
    step = int(re.search(r"step_(\d+)\.safetensors", snippet).group(1))
    assert step == checkpoints.list_steps()[-1], "the README should load the final checkpoint"
    ours = checkpoints.load_model(step=step)
    tokens = torch.randint(0, ours.cfg.d_vocab, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ns["bridge"](tokens), ours(tokens), atol=1e-4)


def test_readme_setup_commands_are_the_two_documented_ones():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set-up: the two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert commands == ["bash scripts/install.sh && .venv/bin/induction-course report --out report",
                        "bash scripts/install.sh && .venv/bin/python -m pytest -q"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/install.sh" in ci and ".venv/bin/python -m pytest -q" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
