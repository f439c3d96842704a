"""binder/: what mybinder.org (repo2docker) builds, installed here into a fresh virtual environment.

repo2docker installs ``binder/requirements.txt`` and then runs ``binder/postBuild``; this test
does the same two steps with a new venv's pip, from a copy of the tracked files, then checks the
result: CPU torch, the course and its notebook extras import, the widgets extension is enabled in
JupyterLab, JupyterLab serves the chapters, and a chapter executes with the venv's own kernel.
What cannot be tested here: PyTorch's CPU index (unreachable from this machine; pip takes the
same ``+cpu`` wheel from the local wheel folder) and the Docker image itself.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def test_binder_files_ask_for_a_supported_python_and_the_cpu_torch():
    version = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", version), version
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version.removeprefix("python-") + ".0" in SpecifierSet(requires)

    lines = [l.strip() for l in (BINDER / "requirements.txt").read_text().splitlines()]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    torch_req = next(Requirement(l) for l in lines if l.startswith("torch"))
    (spec,) = torch_req.specifier
    assert spec.operator == "==" and spec.version.endswith("+cpu")  # never PyPI's CUDA build
    assert os.access(BINDER / "postBuild", os.X_OK)
    assert '".[course]"' in (BINDER / "postBuild").read_text()


def _tracked_copy(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    (dest / "binder" / "postBuild").chmod(0o755)
    return dest


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("binder")
    repo = _tracked_copy(base / "repo")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           # PyTorch's index is unreachable here: fail over to the other sources at once.
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "10", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           # no bytecode precompiled at install (most of pip's time here): the same files
           # installed; imports compile what they use
           "PIP_NO_COMPILE": "1"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    log = base / "install.log"
    with open(log, "w") as fh:
        for cmd in ([str(venv / "bin" / "pip"), "install", "-r", "binder/requirements.txt"], ["binder/postBuild"]):
            r = subprocess.run(cmd, cwd=repo, env=env, stdout=fh, stderr=subprocess.STDOUT)
            assert r.returncode == 0, f"{' '.join(cmd)} failed; see {log}:\n{log.read_text()[-3000:]}"
    return repo, venv, env


def _py(binder_env, code: str) -> str:
    repo, venv, env = binder_env
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=repo.parent, env=env,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_binder_install_has_cpu_torch_and_the_course(binder_env):
    repo, venv, _ = binder_env
    info = json.loads(_py(binder_env, """
import json, sys, torch, induction_course, circuitsvis, ipywidgets, nbgrader, jupyterlab
from induction_course.paths import data_dir
print(json.dumps({"torch": torch.__version__, "cuda_build": torch.version.cuda, "prefix": sys.prefix,
                  "package": induction_course.__file__, "data": str(data_dir()),
                  "ipywidgets": ipywidgets.__version__}))
"""))
    assert info["torch"].endswith("+cpu") and info["cuda_build"] is None
    assert Path(info["prefix"]) == venv
    # A real install (not the checkout): the shipped checkpoints come from inside the wheel.
    assert info["package"].startswith(str(venv)) and info["data"].startswith(str(venv))
    assert int(info["ipywidgets"].split(".")[0]) >= 8


@pytest.mark.slow
def test_binder_jupyterlab_has_the_widget_manager_enabled(binder_env):
    repo, venv, env = binder_env
    out = subprocess.run([str(venv / "bin" / "jupyter"), "labextension", "list"], cwd=repo, env=env,
                         capture_output=True, text=True, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    line = next((l for l in text.splitlines() if "@jupyter-widgets/jupyterlab-manager" in l), "")
    assert "enabled" in line and "OK" in line, text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_binder_jupyterlab_serves_the_chapters(binder_env, tmp_path):
    repo, venv, env = binder_env
    port = _free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={repo}",
         "--allow-root"],  # CI runs as root; Binder does not, and the flag is then a no-op
        cwd=repo, env={**env, "JUPYTER_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)},
        stdout=open(tmp_path / "lab.log", "w"), stderr=subprocess.STDOUT)
    try:
        listing = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/chapters", timeout=2) as r:
                    listing = json.load(r)
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, f"JupyterLab did not answer within 60 s:\n{(tmp_path / 'lab.log').read_text()[-3000:]}"
        chapters = sorted(c["name"] for c in listing["content"] if c["type"] == "directory")
        assert chapters == sorted(p.name for p in (ROOT / "chapters").iterdir() if p.is_dir())
        # The page a Binder badge opens: JupyterLab on the first chapter.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/tree/chapters/{chapters[0]}/{chapters[0]}.ipynb",
                                    timeout=10) as r:
            assert r.status == 200 and "JupyterLab" in r.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_binder_kernel_runs_a_chapter(binder_env, tmp_path):
    repo, venv, env = binder_env
    nb = repo / "solutions" / "03_finding_heads" / "03_finding_heads.ipynb"
    out = tmp_path / "executed.ipynb"
    subprocess.run([str(venv / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute", str(nb),
                    "--output", str(out), "--ExecutePreprocessor.timeout=300"],
                   cwd=nb.parent, env={**env, "HOME": str(tmp_path)}, check=True, capture_output=True)
    cells = json.loads(out.read_text())["cells"]
    text = "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "local runtime" in text  # the setup cell ran and installed nothing
    widgets = [o for c in cells for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the head explorer should display as a widget"
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
