"""Evaluation during training and the numbers stored beside checkpoints: cheaper, the same numbers."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from induction_course import checkpoints, curves, evaluation, metrics
from induction_course.model import cross_entropy_next_token


@pytest.fixture(scope="module")
def shipped():
    return checkpoints.load_model(step=259), checkpoints.load_eval_set()


def test_probe_metrics_are_the_metrics_functions_numbers_from_one_forward_pass(shipped):
    model, ev = shipped
    rec = evaluation.probe_metrics(model, ev)
    scores = metrics.head_scores(model, ev.probe)
    rep = metrics.repeated_token_losses(model, ev.probe, ev.seg_len)
    assert rec["loss_first_repeat"] == rep.first and rec["loss_later_repeats"] == rep.later
    assert rec["best_prev_token_layer0"] == float(scores["previous_token"][0].max())
    assert rec["best_prefix_matching_layer1"] == float(scores["prefix_matching"][1:].max())
    assert rec["prefix_matching_score"] == [[round(float(x), 5) for x in row] for row in scores["prefix_matching"]]


def test_text_losses_of_every_position_match_the_hooked_forward_in_chunks(shipped):
    model, ev = shipped
    text = ev.text[:40]
    with torch.no_grad():
        full = cross_entropy_next_token(model(text), text, per_token=True)
    fast = evaluation.losses_at_tokens(model, text, chunk=16)  # three chunks, the last one short
    assert fast.shape == full.shape
    assert torch.allclose(fast, full, atol=1e-4)


def test_evaluate_on_a_few_windows_or_the_probe_only(shipped):
    model, ev = shipped
    light = evaluation.evaluate(model, ev, text_windows=8)
    assert light["text_windows"] == 8 and "icl_band_score" in light
    probe_only = evaluation.evaluate(model, ev, text_windows=0)
    assert "text_loss" not in probe_only and "icl_score" not in probe_only
    full = evaluation.evaluate(model, ev)
    assert "text_windows" not in full
    assert full["loss_later_repeats"] == light["loss_later_repeats"] == probe_only["loss_later_repeats"]
    assert model.training is False  # left as it was (checkpoints load in eval mode)


def test_analysis_store_is_keyed_by_the_checkpoints_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("INDUCTION_COURSE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(checkpoints.default_checkpoint_dir(), run)
    (run / checkpoints.ANALYSIS_FILE).unlink(missing_ok=True)
    key = checkpoints.analysis_key(run, "x", torch.arange(3), "part")
    assert checkpoints.load_analysis(run, key) is None
    assert checkpoints.save_analysis(run, key, {"a": [1.5]}) == run / checkpoints.ANALYSIS_FILE
    assert checkpoints.load_analysis(run, key) == {"a": [1.5]}
    assert checkpoints.analysis_key(run, "x", torch.arange(4), "part") != key
    last = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    last.write_bytes(last.read_bytes()[:-1] + b"\x01")  # a changed checkpoint changes the key
    assert checkpoints.analysis_key(run, "x", torch.arange(3), "part") != key
    monkeypatch.setenv("INDUCTION_COURSE_CACHE", "0")
    assert checkpoints.load_analysis(run, key) is None and checkpoints.save_analysis(run, key, 1) is None


def test_analysis_goes_to_the_user_cache_when_the_run_folder_is_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("INDUCTION_COURSE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(checkpoints.default_checkpoint_dir(), run)
    (run / checkpoints.ANALYSIS_FILE).unlink(missing_ok=True)
    (run / checkpoints.ANALYSIS_FILE).mkdir()  # a file that cannot be written (root ignores modes)
    path = checkpoints.save_analysis(run, "k", [1, 2])
    assert path is not None and (tmp_path / "cache") in path.parents
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(checkpoints.ANALYSIS_FILE)) == [checkpoints.ANALYSIS_FILE]
    assert checkpoints.load_analysis(run, "k") == [1, 2]


def test_scores_over_training_are_stored_and_read_back_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("INDUCTION_COURSE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(checkpoints.default_checkpoint_dir(), run)
    (run / checkpoints.ANALYSIS_FILE).unlink(missing_ok=True)
    text = checkpoints.load_eval_set(run).text[:24]  # not the run's default windows: computed here
    first = evaluation.scores_over_training(run, text=text)
    assert (run / checkpoints.ANALYSIS_FILE).is_file()
    last = checkpoints.load_model(run, step=first["step"][-1])
    assert evaluation.icl_band_over_training([last], text)[0].mean == first["icl_band"][-1]

    def no_loading(*args, **kwargs):
        raise AssertionError("a stored series should not load any checkpoint")

    monkeypatch.setattr(checkpoints, "load_model", no_loading)
    again = evaluation.scores_over_training(run, text=text)
    assert again["step"] == first["step"] and again["icl_band"] == first["icl_band"]
    for key in ("ov_top1", "copying_eigen", "kcircuit_top1"):
        assert all(torch.equal(a, b) for a, b in zip(first[key], again[key])), key
    stored = json.loads((run / checkpoints.ANALYSIS_FILE).read_text())
    assert len(stored) == 1


def test_thread_choice_can_be_forced_and_is_restored(monkeypatch):
    monkeypatch.setenv("INDUCTION_COURSE_THREADS", "1")
    assert curves.free_cpu_threads() == 1
    before = torch.get_num_threads()
    with curves.cpu_threads(1) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.delenv("INDUCTION_COURSE_THREADS")
    assert 1 <= curves.free_cpu_threads() <= max(1, len(__import__("os").sched_getaffinity(0)))
