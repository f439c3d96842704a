"""The setup cell that opens every notebook, run under a simulated Google Colab.

What is simulated: the ``google.colab`` module (its widget-manager switch records the call) and
the pip install (recorded, not run). What is real: the cell's own code as it stands in each
notebook, the package import, and the device selection (``torch.cuda.is_available()``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

from induction_course import training
from induction_course.course.notebook import links, runtime

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("chapters/[0-9][0-9]_*/[0-9][0-9]_*.ipynb")) + sorted(
    ROOT.glob("solutions/[0-9][0-9]_*/[0-9][0-9]_*.ipynb"))
REAL_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_chapter_has_a_notebook_in_both_folders():
    assert len(NOTEBOOKS) == 10, [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_starts_with_the_setup_cell_and_carries_its_badges(path):
    cells = _cells(path)
    assert cells[0]["cell_type"] == "code"
    assert _source(cells[0]) == links.setup_cell_source()
    assert cells[0]["metadata"]["nbgrader"]["locked"] is True
    title = next(c for c in cells if c["cell_type"] == "markdown")
    chapter = path.parent.name
    badge = links.badges_markdown(f"chapters/{chapter}/{chapter}.ipynb")
    assert badge in _source(title)
    assert links.colab_url(f"chapters/{chapter}/{chapter}.ipynb").startswith("https://colab.research.google.com/github/")


def test_readme_badges_and_scripts_are_up_to_date():
    assert links.sync(ROOT, check=True) == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert links.binder_url("chapters") in readme
    for nb in NOTEBOOKS[:5]:
        assert links.colab_url(str(nb.relative_to(ROOT))) in readme


def test_moving_the_repository_rewrites_every_generated_link(tmp_path, monkeypatch):
    for rel in ["README.md", *[str(p.relative_to(ROOT)) for p in ROOT.glob("solutions/*/[0-9][0-9]_*.py")]]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    before = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    old = links.REPOSITORY.removeprefix("https://github.com/")

    monkeypatch.setattr(links, "REPOSITORY", "https://github.com/some-university/ih-course")
    changed = links.sync(tmp_path)
    assert len(changed) == len(before) == 6
    for p in before:
        text = p.read_text()
        assert old not in text, p
        assert "some-university/ih-course" in text
    assert links.sync(tmp_path) == []  # idempotent

    monkeypatch.undo()
    links.sync(tmp_path)
    assert {p: p.read_text() for p in before} == before


def test_a_repository_address_that_colab_cannot_open_is_refused(monkeypatch):
    monkeypatch.setattr(links, "REPOSITORY", "https://gitlab.com/x/y")
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        links.colab_url("chapters/x.ipynb")


def test_the_colab_requirement_names_an_extra_that_exists():
    req = Requirement(links.pip_requirement())
    assert req.name == "induction-course" and req.extras == {"colab"}
    assert req.url.startswith("git+https://github.com/") and req.url.endswith(f"@{links.BRANCH}")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"circuitsvis", "ipywidgets"} <= {Requirement(r).name for r in extras["colab"]}


class _FakeColab:
    """``google.colab`` as far as the setup cell can tell, plus a record of what it was asked."""

    def __init__(self, monkeypatch, package_installed: bool):
        self.widget_calls = 0
        self.installs: list[list[str]] = []
        self.envs: list[dict] = []
        colab = types.ModuleType("google.colab")
        colab.output = types.SimpleNamespace(enable_custom_widget_manager=self._enable)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        monkeypatch.setattr(subprocess, "run", self._run)
        real_find_spec = importlib.util.find_spec
        if not package_installed:  # a fresh Colab runtime: the package is not there yet
            monkeypatch.setattr(importlib.util, "find_spec",
                                lambda name, *a: None if name == "induction_course" else real_find_spec(name, *a))

    def _enable(self):
        self.widget_calls += 1

    def _run(self, cmd, check=False, env=None, **kw):
        self.installs.append(list(cmd))
        self.envs.append(dict(env or {}))
        return subprocess.CompletedProcess(cmd, 0)


def _run_setup_cell(path: Path) -> dict:
    ns: dict = {}
    exec(compile(_source(_cells(path)[0]), str(path), "exec"), ns)
    return ns


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_setup_cell_in_a_fresh_colab_without_a_published_address_says_what_to_do(path, monkeypatch, tmp_path):
    """Until links.REPOSITORY is a real address, no git install (it would ask for a password):
    one line that says to upload the wheel or publish the course."""
    assert not links.published(), "the committed address is the placeholder; update this test when publishing"
    colab = _FakeColab(monkeypatch, package_installed=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no published address yet.*upload the course wheel"):
        _run_setup_cell(path)
    assert colab.installs == []


def test_setup_cell_in_a_fresh_colab_installs_an_uploaded_wheel(monkeypatch, tmp_path, capsys):
    colab = _FakeColab(monkeypatch, package_installed=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "induction_course-0.2.0-py3-none-any.whl").write_bytes(b"")
    ns = _run_setup_cell(NOTEBOOKS[0])
    assert colab.installs == [[sys.executable, "-m", "pip", "install", "--quiet",
                               "induction_course-0.2.0-py3-none-any.whl[colab]"]]
    assert colab.widget_calls == 1 and ns["DEVICE"] == REAL_DEVICE


def test_setup_cell_in_a_fresh_colab_installs_the_published_course(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(links, "REPOSITORY", "https://github.com/some-university/induction-heads")
    colab = _FakeColab(monkeypatch, package_installed=False)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(links.setup_cell_source(), "setup", "exec"), ns)
    assert colab.installs == [[sys.executable, "-m", "pip", "install", "--quiet", links.pip_requirement()]]
    assert colab.envs[-1]["GIT_TERMINAL_PROMPT"] == "0"  # a private repository fails, never prompts
    assert colab.widget_calls == 1
    assert ns["DEVICE"] == REAL_DEVICE
    out = capsys.readouterr().out
    assert "Google Colab" in out
    assert ("GPU" in out and "cuda" in out) if REAL_DEVICE.type == "cuda" else "no GPU" in out
    # Training and the sweeps take the device the cell printed.
    assert training.pick_device() == ns["DEVICE"] == runtime.current_device()


def test_setup_cell_in_colab_with_the_package_present_does_not_reinstall(monkeypatch, capsys):
    colab = _FakeColab(monkeypatch, package_installed=True)
    ns = _run_setup_cell(NOTEBOOKS[0])
    assert colab.installs == [] and colab.widget_calls == 1
    assert ns["DEVICE"] == REAL_DEVICE


def test_setup_cell_elsewhere_does_nothing_but_pick_the_device(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    ns = _run_setup_cell(NOTEBOOKS[0])
    assert calls == []
    assert ns["DEVICE"] == REAL_DEVICE
    assert "local runtime" in capsys.readouterr().out


def test_runtime_setup_imports_the_output_submodule_when_it_is_not_an_attribute(monkeypatch, capsys):
    # `import google.colab` in a real Colab does not always bind `.output`; setup must import it.
    calls = []
    colab = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("on")
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    assert runtime.setup_runtime() == REAL_DEVICE
    assert calls == ["on"]


def test_training_says_which_device_it_uses(capsys):
    from induction_course.data import load_corpus
    from induction_course.model import ModelConfig

    corpus = load_corpus()
    tcfg = training.TrainConfig(steps=2, batch_size=2, synthetic_fraction=2.0, n_checkpoints=2,
                                eval_probe_examples=2, eval_text_examples=2)
    mcfg = ModelConfig(d_vocab=corpus.d_vocab, n_ctx=112, d_model=16, n_heads=2, d_head=8)
    result = training.train(tcfg, mcfg, progress=True, corpus=corpus)
    assert f"training on {runtime.current_device()}" in capsys.readouterr().out
    assert next(result.model.parameters()).device.type == runtime.current_device().type
