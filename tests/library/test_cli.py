"""The command line: the main job's report, and one clear line for bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from induction_course.cli import main
from induction_course.paths import default_checkpoint_dir


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--out", str(out)]) == 0
    return out


def test_report_writes_plots_and_an_html_page(report_dir):
    for name in ("loss_curve.png", "scores_over_training.png", "attention_patterns.png",
                 "single_head_ablation.png", "k_composition.png", "icl_over_training.png",
                 "copying_over_training.png"):
        path = report_dir / name
        assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG", name
    html = (report_dir / "index.html").read_text()
    assert '<img src="loss_curve.png"' in html and "induction heads:" in html


def test_report_names_the_heads_and_shows_causal_ablations(report_dir):
    import json

    data = json.loads((report_dir / "report.json").read_text())
    assert data["classes"]["previous_token"], "the shipped model has a previous-token head"
    assert data["classes"]["induction"], "the shipped model has an induction head"
    effects = {e["label"].split(",")[0] + "/" + e["kind"]: e for e in data["experiments"]}
    ind_zero = effects["induction heads/zero"]["delta_probe_loss"]
    control = next(e for e in data["experiments"] if e["label"].startswith("random control"))
    assert ind_zero > 1.0  # removing induction heads costs the repeated-token loss a lot
    assert control["delta_probe_loss"] < ind_zero / 3  # random heads cost much less
    text = (report_dir / "report.txt").read_text()
    assert "HEADS" in text and "ABLATIONS" in text


def test_report_ranks_the_previous_token_heads_first_by_the_k_circuit(report_dir):
    import json

    data = json.loads((report_dir / "report.json").read_text())
    prev = {h for l, h in data["classes"]["previous_token"] if l == 0}
    ranks = data["kcircuit_rankings"]
    assert set(ranks) == {f"{l}.{h}" for l, h in data["classes"]["induction"]}
    for r in ranks.values():
        assert r["previous_token_heads_first"] and set(r["order"][: len(prev)]) == prev
    text = (report_dir / "report.txt").read_text()
    assert "previous-token heads first" in text and "NOT first" not in text
    over = data["over_training"]
    assert len(over["icl_band"]) == len(over["icl_band_se"]) == len(over["step"]) == 30
    assert all(0 < se < 0.1 for se in over["icl_band_se"])


def test_report_is_deterministic(report_dir, tmp_path):
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.json").read_text() == (report_dir / "report.json").read_text()


def _run(*args):
    return subprocess.run([sys.executable, "-m", "induction_course.cli", *args], capture_output=True, text=True, timeout=300)


def test_missing_checkpoint_folder_is_one_line_of_error(tmp_path):
    res = _run("report", "--checkpoints", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "does not exist" in res.stderr


def test_corrupt_checkpoint_is_one_line_of_error(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(default_checkpoint_dir(), run)
    last = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    last.write_bytes(b"\x00" * 100)
    res = _run("report", "--checkpoints", str(run), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "not a readable safetensors" in res.stderr


def test_unknown_subcommand_is_rejected_by_argparse():
    res = _run("fly")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_doctor_reports_the_shipped_files():
    res = _run("doctor")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "tokenizer        ok" in res.stdout
