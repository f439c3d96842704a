"""The model: shapes, the fused training path, hooks, and exact TransformerLens conversion."""

from __future__ import annotations

import pytest
import torch

from induction_course.model import AttnOnlyTransformer, HookPoint, ModelConfig, cross_entropy_next_token, hook_name, hook_names


def _perturbed(norm, seed=1, scale=0.2):
    cfg = ModelConfig(d_vocab=97, n_ctx=24, d_model=32, n_heads=4, d_head=8, normalization=norm, seed=seed)
    model = AttnOnlyTransformer(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # biases and LN weights start trivial; make every parameter matter
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return model


@pytest.fixture(scope="module")
def tl_bridges():
    from induction_course.tl_convert import to_bridge

    models = {norm: _perturbed(norm, scale=0.05) for norm in (None, "LN")}
    return {norm: (m, to_bridge(m)) for norm, m in models.items()}


def test_weights_have_transformer_lens_shapes():
    cfg = ModelConfig(d_vocab=50, n_ctx=16, d_model=24, n_heads=3, d_head=8, normalization=None)
    m = AttnOnlyTransformer(cfg)
    assert m.W_E.shape == (50, 24) and m.W_pos.shape == (16, 24)
    assert m.W_Q.shape == m.W_K.shape == m.W_V.shape == (2, 3, 24, 8)
    assert m.W_O.shape == (2, 3, 8, 24) and m.b_O.shape == (2, 24)
    assert m.W_U.shape == (24, 50) and m.b_U.shape == (50,)
    assert m.W_OV.shape == m.W_QK.shape == (2, 3, 24, 24)


@pytest.mark.parametrize("norm", [None, "LN"])
def test_fused_training_path_equals_hooked_path(norm):
    m = _perturbed(norm)
    x = torch.randint(0, 97, (3, 20))
    fast = m.forward_fused(x)
    hooked, _ = m.run_with_cache(x)
    torch.testing.assert_close(fast, hooked, atol=2e-4, rtol=1e-4)  # fused kernels sum in another order
    # pos_offset shifts which positional rows are used, in both paths
    torch.testing.assert_close(m.forward_fused(x, pos_offset=4), m(x, pos_offset=4), atol=2e-4, rtol=1e-4)
    assert not torch.allclose(m(x, pos_offset=4), m(x))


def test_attention_is_causal_and_normalised():
    m = _perturbed(None)
    _, cache = m.run_with_cache(torch.randint(0, 97, (2, 12)))
    pattern = cache[hook_name("pattern", 0)]
    assert pattern.shape == (2, 4, 12, 12)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 4, 12))
    assert pattern.triu(diagonal=1).abs().max() == 0


def test_changing_a_future_token_does_not_change_past_logits():
    m = _perturbed("LN")
    x = torch.randint(0, 97, (1, 10))
    y = x.clone()
    y[0, 7] = (y[0, 7] + 1) % 97
    torch.testing.assert_close(m(x)[0, :7], m(y)[0, :7])
    assert not torch.allclose(m(x)[0, 7:], m(y)[0, 7:])


def test_hooks_can_replace_activations():
    m = _perturbed(None)
    x = torch.randint(0, 97, (2, 10))

    def kill_all(z, hook):
        return torch.zeros_like(z)

    logits = m.run_with_hooks(x, fwd_hooks=[(lambda n: n.endswith("hook_z"), kill_all)])
    direct = (m.W_E[x] + m.W_pos[:10] + m.b_O.sum(0)) @ m.W_U + m.b_U
    torch.testing.assert_close(logits, direct, atol=1e-5, rtol=1e-5)


def test_bad_inputs_are_explained():
    m = AttnOnlyTransformer(ModelConfig(d_vocab=10, n_ctx=8, d_model=8, n_heads=2, d_head=4, normalization=None))
    with pytest.raises(ValueError, match="longer than n_ctx"):
        m(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie"):
        m(torch.full((1, 3), 10))
    with pytest.raises(ValueError, match="normalization"):
        ModelConfig(normalization="RMS")


def test_initialisation_is_seeded():
    a = AttnOnlyTransformer(ModelConfig(d_vocab=20, n_ctx=8, d_model=8, n_heads=2, d_head=4, normalization=None, seed=3))
    b = AttnOnlyTransformer(ModelConfig(d_vocab=20, n_ctx=8, d_model=8, n_heads=2, d_head=4, normalization=None, seed=3))
    c = AttnOnlyTransformer(ModelConfig(d_vocab=20, n_ctx=8, d_model=8, n_heads=2, d_head=4, normalization=None, seed=4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.W_Q, c.W_Q)


def test_next_token_loss_uses_the_shift():
    logits = torch.full((1, 3, 4), -1e4)
    tokens = torch.tensor([[0, 2, 3]])
    logits[0, 0, 2] = 0.0  # position 0 predicts token 1 (= 2)
    logits[0, 1, 3] = 0.0  # position 1 predicts token 2 (= 3)
    assert cross_entropy_next_token(logits, tokens).item() == pytest.approx(0.0, abs=1e-4)
    assert cross_entropy_next_token(logits, tokens, per_token=True).shape == (1, 2)


@pytest.mark.parametrize("norm", [None, "LN"])
def test_transformer_lens_bridge_matches_logits_and_every_pattern(tl_bridges, norm):
    model, bridge = tl_bridges[norm]
    x = torch.randint(0, 97, (4, 24), generator=torch.Generator().manual_seed(7))
    ours, our_cache = model.run_with_cache(x)
    theirs, their_cache = bridge.run_with_cache(x)
    assert (ours - theirs).abs().max() < 1e-5
    for layer in range(2):
        key = hook_name("pattern", layer)
        assert (our_cache[key] - their_cache[key]).abs().max() < 1e-5
        zkey = hook_name("z", layer)
        assert (our_cache[zkey] - their_cache[zkey]).abs().max() < 1e-5


def test_bridge_run_with_hooks_agrees_with_ours(tl_bridges):
    model, bridge = tl_bridges["LN"]
    x = torch.randint(0, 97, (2, 16))

    def zero_head_1(z, hook):
        z = z.clone()
        z[:, :, 1] = 0
        return z

    hooks = [(hook_name("z", 0), zero_head_1)]
    torch.testing.assert_close(model.run_with_hooks(x, fwd_hooks=hooks), bridge.run_with_hooks(x, fwd_hooks=hooks), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(model.run_with_hooks(x, fwd_hooks=hooks), model(x), atol=1e-4)


def test_round_trip_through_the_bridge_is_exact(tl_bridges):
    from induction_course.tl_convert import from_bridge

    for model, bridge in tl_bridges.values():
        back = from_bridge(bridge)
        for key, value in model.tl_state_dict().items():
            assert torch.equal(back.tl_state_dict()[key], value), key


def test_bridge_weight_properties_are_ours(tl_bridges):
    model, bridge = tl_bridges[None]
    for name in ("W_Q", "W_K", "W_V", "W_O", "W_E", "W_pos", "W_U"):
        torch.testing.assert_close(getattr(bridge, name), getattr(model, name))
    torch.testing.assert_close(bridge.OV[1, 2].AB, model.W_OV[1, 2])


# ------------------------------------------------------------- defaults, hook names, hook.layer()
def test_default_config_is_the_shipped_run():
    from induction_course.checkpoints import load_config
    from induction_course.training import default_model_config

    shipped = ModelConfig.from_dict(load_config()["model"])
    assert ModelConfig() == shipped
    assert default_model_config(shipped.d_vocab) == shipped


def test_hook_name_builds_every_hook_point_like_get_act_name():
    assert hook_name("pattern", 1) == "blocks.1.attn.hook_pattern"
    assert hook_name("z", 0) == "blocks.0.attn.hook_z"
    assert hook_name("attn", 0) == hook_name("pattern", 0)  # TransformerLens's short names
    assert hook_name("attn_logits", 1) == "blocks.1.attn.hook_attn_scores"
    assert hook_name("key", 1) == hook_name("k", 1) == "blocks.1.attn.hook_k"
    assert hook_name("z0") == hook_name("z", 0) and hook_name("hook_pattern", 1) == hook_name("pattern", 1)
    assert hook_name("resid_pre", 1) == "blocks.1.hook_resid_pre"
    assert hook_name("resid_post", 0) == "blocks.0.hook_resid_post"
    assert hook_name("embed") == "hook_embed" and hook_name("pos_embed") == "hook_pos_embed"
    assert hook_name("normalized") == hook_name("ln_final.hook_normalized") == "ln_final.hook_normalized"
    assert hook_name("blocks.1.attn.hook_z") == "blocks.1.attn.hook_z"
    cfg = ModelConfig(d_vocab=20, n_ctx=8, d_model=8, n_heads=2, d_head=4, n_layers=3)
    _, cache = AttnOnlyTransformer(cfg).run_with_cache(torch.randint(0, 20, (1, 5)))
    assert list(cache) == hook_names(cfg)  # hook_names is built from hook_name: same points, same order
    for kind in ("q", "k", "v", "attn_scores", "pattern", "z", "result", "attn_out"):
        assert all(hook_name(kind, layer) in cache for layer in range(3))


@pytest.mark.parametrize(
    "args, message",
    [(("mlp_out", 0), "unknown hook kind 'mlp_out'; valid kinds: .*'pattern'"), (("pattern",), "pass its layer"),
     (("embed", 0), "without a layer"), (("z", -1), "non-negative"), (("blocks.0.mlp.hook_post",), "not a hook point")],
)
def test_hook_name_explains_a_wrong_kind(args, message):
    with pytest.raises(ValueError, match=message):
        hook_name(*args)


def test_hook_layer_is_a_method_as_in_transformer_lens():
    m = _perturbed("LN")
    seen = []

    def record(act, hook):
        seen.append((hook.name, hook.layer()))

    m.run_with_hooks(torch.randint(0, 97, (1, 6)), fwd_hooks=[(lambda n: n.startswith("blocks."), record)])
    assert seen == [(n, int(n.split(".")[1])) for n in hook_names(m.cfg) if n.startswith("blocks.")]
    assert HookPoint("blocks.3.attn.hook_z", 3).layer() == 3
    with pytest.raises(ValueError, match="no layer"):
        HookPoint("hook_embed").layer()
    _, cache = m.run_with_cache(torch.randint(0, 97, (1, 6)), names_filter=[hook_name("z", 1), hook_name("embed")])
    assert set(cache) == {hook_name("z", 1), hook_name("embed")}


@pytest.mark.parametrize("norm", [None, "LN"])
def test_one_transformer_lens_style_hook_function_runs_on_ours_and_on_the_bridge(tl_bridges, norm):
    """The ARENA way: hook functions read ``hook.layer()``, names come from ``hook_name``."""
    model, bridge = tl_bridges[norm]
    x = torch.randint(0, 97, (3, 20), generator=torch.Generator().manual_seed(11))
    n_layers = model.cfg.n_layers

    def run(m):
        patterns, zs = {}, {}

        def record_pattern(pattern, hook):
            assert hook.name.endswith("hook_pattern")
            patterns[hook.layer()] = pattern.detach().clone()

        def zero_head_1_of_layer_0(z, hook):
            zs[hook.layer()] = z.detach().clone()
            if hook.layer() == 0:
                z = z.clone()
                z[:, :, 1] = 0.0
                return z
            return None

        hooks = [(hook_name("pattern", l), record_pattern) for l in range(n_layers)]
        hooks += [(hook_name("z", l), zero_head_1_of_layer_0) for l in range(n_layers)]
        with torch.no_grad():
            logits = m.run_with_hooks(x, fwd_hooks=hooks)
            _, cache = m.run_with_cache(x, names_filter=lambda n: n in {hook_name("pattern", l) for l in range(n_layers)})
        return logits, patterns, zs, cache

    ours, theirs = run(model), run(bridge)
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-5)
    for layer in range(n_layers):
        torch.testing.assert_close(ours[1][layer], theirs[1][layer], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours[2][layer], theirs[2][layer], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours[3][hook_name("pattern", layer)], theirs[3][hook_name("pattern", layer)], atol=1e-5, rtol=1e-5)
    assert sorted(ours[1]) == sorted(theirs[1]) == list(range(n_layers))
    # the ablation did something: layer 1 reads layer 0's output, and the logits moved
    assert not torch.allclose(ours[1][1], ours[3][hook_name("pattern", 1)], atol=1e-4)
    assert not torch.allclose(ours[0], model(x), atol=1e-4)
