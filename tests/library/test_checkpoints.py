"""Shipped checkpoints: readable by us and by TransformerLens's own converter, and their
recorded metrics are reproducible from the weights."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from induction_course import checkpoints
from induction_course.evaluation import evaluate, induction_formed
from induction_course.paths import default_checkpoint_dir

RUN = default_checkpoint_dir()


def test_shipped_run_has_config_tokenizer_and_checkpoints():
    config = checkpoints.load_config(RUN)
    assert config["transformer_lens"]["attn_only"] is True
    assert (RUN / "tokenizer.json").is_file()
    steps = checkpoints.list_steps(RUN)
    assert steps[0] == 0 and len(steps) >= 10
    history = checkpoints.load_history(RUN)
    assert [h["step"] for h in history] == steps


def test_safetensors_keys_follow_transformer_lens_property_names():
    sd = load_file(str(RUN / "checkpoints" / f"step_{checkpoints.list_steps(RUN)[-1]:06d}.safetensors"))
    cfg = checkpoints.load_config(RUN)["model"]
    H, D, Dh = cfg["n_heads"], cfg["d_model"], cfg["d_head"]
    assert sd["embed.W_E"].shape == (cfg["d_vocab"], D)
    assert sd["pos_embed.W_pos"].shape == (cfg["n_ctx"], D)
    assert sd["blocks.1.attn.W_Q"].shape == (H, D, Dh)
    assert sd["blocks.0.attn.W_O"].shape == (H, Dh, D)
    assert sd["unembed.W_U"].shape == (D, cfg["d_vocab"])


def test_transformer_lens_converter_loads_the_checkpoint_into_a_bridge():
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    config = json.loads((RUN / "config.json").read_text())
    bridge = TransformerBridge.boot_native(TransformerBridgeConfig.from_dict(config["transformer_lens"]))
    step = checkpoints.list_steps(RUN)[-1]
    sd = load_file(str(RUN / "checkpoints" / f"step_{step:06d}.safetensors"))
    bridge.load_state_dict(convert_tl_checkpoint(sd, bridge.cfg), strict=True)
    ours = checkpoints.load_model(RUN, step)
    x = checkpoints.load_eval_set(RUN).probe[:2]
    assert (bridge(x) - ours(x)).abs().max() < 1e-4


def test_headline_metrics_recomputed_from_the_weights_match_the_recorded_ones():
    eval_set = checkpoints.load_eval_set(RUN)
    history = checkpoints.load_history(RUN)
    for record in (history[len(history) // 2], history[-1]):
        model = checkpoints.load_model(RUN, record["step"])
        again = evaluate(model, eval_set)
        for key in ("loss_first_repeat", "loss_later_repeats", "best_prev_token_layer0",
                    "best_prefix_matching_layer1", "icl_score", "text_loss"):
            assert again[key] == pytest.approx(record[key], abs=1e-3), key


def test_shipped_run_formed_induction_heads_with_a_bump():
    history = checkpoints.load_history(RUN)
    first, last = history[0], history[-1]
    assert not induction_formed(first)
    assert induction_formed(last)
    # the ICL score improves (drops) over training
    assert last["icl_score"] < first["icl_score"] - 0.1
    assert last["natural_tokens"] >= 0.5 * last["tokens"]


def test_data_folder_stays_small():
    from induction_course.paths import data_dir

    total = sum(p.stat().st_size for p in data_dir().rglob("*") if p.is_file())
    assert total < 30 * 2**20


def _copy_run(tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(RUN, dst)
    return dst


def test_missing_folder_and_missing_config_are_explained(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
        checkpoints.load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(checkpoints.CheckpointError, match="no config.json"):
        checkpoints.load_model(tmp_path / "empty")


def test_corrupt_and_wrongly_shaped_checkpoints_are_explained(tmp_path):
    run = _copy_run(tmp_path)
    last = checkpoints.list_steps(run)[-1]
    path = run / "checkpoints" / f"step_{last:06d}.safetensors"
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(checkpoints.CheckpointError, match="not a readable safetensors"):
        checkpoints.load_model(run, last)
    sd = load_file(str(run / "checkpoints" / "step_000000.safetensors"))
    sd["blocks.0.attn.W_Q"] = sd["blocks.0.attn.W_Q"][:, :, :3].contiguous()
    save_file(sd, str(path))
    with pytest.raises(checkpoints.CheckpointError, match="shape"):
        checkpoints.load_model(run, last)
    with pytest.raises(checkpoints.CheckpointError, match="no checkpoint for step 7"):
        checkpoints.load_model(run, 7)
    (run / "config.json").write_text("{")
    with pytest.raises(checkpoints.CheckpointError, match="not a valid run config"):
        checkpoints.load_config(run)


def test_saved_weights_follow_the_umask_like_every_other_file(tmp_path):
    # safetensors alone writes 0600: a sandboxed grading kernel (another user) could not read them
    from induction_course.model import AttnOnlyTransformer, ModelConfig

    (tmp_path / "checkpoints").mkdir()
    old = os.umask(0o022)
    try:
        path = checkpoints.save_checkpoint(tmp_path, AttnOnlyTransformer(ModelConfig(d_vocab=20, n_ctx=8, d_model=8, d_head=2)), 3, {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert load_file(str(path))["embed.W_E"].shape == (20, 8)
