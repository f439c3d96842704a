"""Training: seeded, mixes natural text with short repeated segments, saves what it says."""

from __future__ import annotations

import json

import pytest
import torch

from induction_course import checkpoints
from induction_course.data import load_corpus
from induction_course.model import ModelConfig
from induction_course.training import TrainConfig, make_batch, train


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def _tiny(corpus):
    tcfg = TrainConfig(steps=12, batch_size=2, synthetic_fraction=2.0, n_checkpoints=3, eval_probe_examples=2, eval_text_examples=2)
    mcfg = ModelConfig(d_vocab=corpus.d_vocab, n_ctx=112, d_model=16, n_heads=2, d_head=8, normalization="LN")
    return tcfg, mcfg


def test_training_is_reproducible(corpus, tmp_path):
    tcfg, mcfg = _tiny(corpus)
    a = train(tcfg, mcfg, out_dir=tmp_path / "a", progress=False, corpus=corpus)
    b = train(tcfg, ModelConfig(**mcfg.to_dict()), out_dir=tmp_path / "b", progress=False, corpus=corpus)
    assert a.losses == b.losses
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert a.losses[-1] < a.losses[0]


def test_training_writes_checkpoints_metrics_and_losses(corpus, tmp_path):
    tcfg, mcfg = _tiny(corpus)
    train(tcfg, mcfg, out_dir=tmp_path, progress=False, corpus=corpus)
    assert checkpoints.list_steps(tmp_path) == tcfg.checkpoint_steps()
    record = checkpoints.load_history(tmp_path)[-1]
    for key in ("train_loss", "loss_first_repeat", "loss_later_repeats", "previous_token_score",
                "prefix_matching_score", "icl_score", "tokens", "natural_tokens"):
        assert key in record
    assert len(record["previous_token_score"]) == 2 and len(record["previous_token_score"][0]) == 2
    tokens_per_step, losses = checkpoints.load_train_losses(tmp_path)
    assert len(losses) == tcfg.steps
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["natural_tokens"] >= 0.5 * summary["tokens"]
    reloaded = checkpoints.load_model(tmp_path)
    assert reloaded.cfg.d_model == 16


def test_batches_mix_natural_windows_and_short_repeated_segments(corpus):
    tcfg = TrainConfig(batch_size=4, synthetic_fraction=3.5, synthetic_len=32)
    natural, synthetic = make_batch(corpus, corpus.token_pool(), 128, tcfg, torch.Generator().manual_seed(0))
    assert natural.shape == (4, 128) and synthetic.shape == (14, 32)
    assert natural.numel() >= synthetic.numel()  # at least half the tokens are natural text
    # each synthetic row repeats with some period shorter than half its length
    for row in synthetic[:, 1:]:
        assert any(torch.equal(row[p:], row[:-p]) for p in range(3, 16))


def test_default_checkpoint_schedule_is_dense_early():
    steps = TrainConfig().checkpoint_steps()
    assert steps[0] == 0 and steps[-1] == TrainConfig().steps
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert gaps[0] < gaps[-1]


def test_bad_training_config_is_rejected():
    with pytest.raises(ValueError, match="synthetic_fraction"):
        TrainConfig(synthetic_fraction=-1)


def test_evaluating_more_often_does_not_change_the_training_trajectory(corpus):
    """Evaluation touches no random generator and no weight: the losses of a seeded run are the
    same bit for bit whether it is measured twice or at every step."""
    tcfg, mcfg = _tiny(corpus)
    rare = TrainConfig(**{**tcfg.__dict__, "n_checkpoints": 2, "probe_every": 0})
    often = TrainConfig(**{**tcfg.__dict__, "n_checkpoints": 6, "probe_every": 1, "probe_text_windows": 1})
    a = train(rare, mcfg, progress=False, corpus=corpus, threads=1)
    b = train(often, ModelConfig(**mcfg.to_dict()), progress=False, corpus=corpus, threads=1)
    assert a.losses == b.losses
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert len(a.probes) == 0 and len(b.probes) + len(b.history) == often.steps + 1


def test_light_records_between_checkpoints_are_saved(corpus, tmp_path):
    tcfg, mcfg = _tiny(corpus)
    tcfg.probe_every, tcfg.probe_text_windows = 5, 1
    result = train(tcfg, mcfg, out_dir=tmp_path, progress=False, corpus=corpus)
    saved = json.loads((tmp_path / checkpoints.PROBES_FILE).read_text())
    assert saved == json.loads(json.dumps(result.probes))
    assert [r["step"] for r in saved] == [s for s in range(0, tcfg.steps + 1, 5) if s not in tcfg.checkpoint_steps()]
    assert all(r["text_windows"] == 1 and "loss_later_repeats" in r for r in saved)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 0 < summary["eval_seconds"] < summary["seconds"] and summary["threads"] >= 1


def test_training_restores_the_thread_count():
    before = torch.get_num_threads()
    corpus = load_corpus()
    tcfg, mcfg = _tiny(corpus)
    tcfg.steps = 1
    train(tcfg, mcfg, progress=False, corpus=corpus, threads=1)
    assert torch.get_num_threads() == before
