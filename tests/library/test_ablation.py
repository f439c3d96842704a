"""Ablations: exact identities on a random model, agreement with a TransformerLens bridge, and a
hand-built induction circuit whose ablations have known outcomes."""

from __future__ import annotations

import math

import pytest
import torch

from induction_course import ablation as A
from induction_course import metrics as M
from induction_course.model import AttnOnlyTransformer, ModelConfig
from induction_course.probes import repeated_random_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")

POOL = torch.arange(1, 30)
BOS = 0


@pytest.fixture(scope="module")
def model() -> AttnOnlyTransformer:
    cfg = ModelConfig(d_vocab=30, n_ctx=32, d_model=16, n_heads=3, d_head=4, normalization=None, seed=2, init_std=0.05)
    m = AttnOnlyTransformer(cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in ("W_Q", "W_K", "W_V", "W_O", "W_E", "W_U", "W_pos"):
            getattr(m, name).mul_(20)
        # non-zero biases so that the identities below are not true by accident
        for name in ("b_Q", "b_K", "b_V", "b_O", "b_U"):
            p = getattr(m, name)
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return m.eval()


@pytest.fixture(scope="module")
def bridge(model):
    from induction_course.tl_convert import to_bridge

    return to_bridge(model)


@pytest.fixture(scope="module")
def probe() -> torch.Tensor:
    return repeated_random_tokens(3, 6, 3, POOL, BOS, seed=0)  # [3, 19]


@pytest.fixture(scope="module")
def text() -> torch.Tensor:
    return torch.randint(1, 30, (3, 32), generator=torch.Generator().manual_seed(5))


def clean(model, tokens):
    with torch.no_grad():
        return model(tokens)


# ------------------------------------------------------------------ identities
def test_zero_ablating_every_head_leaves_the_direct_path(model, probe):
    heads = [(l, h) for l in range(2) for h in range(3)]
    logits = A.zero_ablation(model, probe, heads)
    resid = model.W_E[probe] + model.W_pos[: probe.shape[1]] + model.b_O.sum(0)
    expected = resid @ model.W_U + model.b_U
    assert torch.allclose(logits, expected.detach(), atol=1e-4)


def test_ablating_no_head_changes_nothing(model, probe):
    ref = clean(model, probe)
    for kind in A.KINDS:
        assert torch.allclose(A.ablate(model, probe, [], kind), ref, atol=1e-5), kind


def test_zero_ablation_changes_logits(model, probe):
    assert not torch.allclose(A.zero_ablation(model, probe, [(0, 1)]), clean(model, probe), atol=1e-3)


def test_pattern_preserving_equals_zero_ablation_in_last_layer(model, probe):
    for head in range(3):
        pp = A.pattern_preserving_ablation(model, probe, [(1, head)])
        zero = A.zero_ablation(model, probe, [(1, head)])
        assert torch.allclose(pp, zero, atol=1e-5)
    # in layer 0 they differ: zeroing a layer-0 head moves layer-1 attention, freezing does not
    pp0 = A.pattern_preserving_ablation(model, probe, [(0, 0)])
    assert not torch.allclose(pp0, A.zero_ablation(model, probe, [(0, 0)]), atol=1e-4)


def test_knockout_with_empty_stripe_changes_nothing(model):
    distinct = torch.arange(1, 21)[None]  # no token repeats: no induction targets
    out = A.induction_stripe_knockout(model, distinct, [(1, 0), (1, 2)])
    assert torch.allclose(out, clean(model, distinct), atol=1e-6)


def test_knockout_on_probe_changes_logits_only_after_first_copy(model, probe):
    out = A.induction_stripe_knockout(model, probe, [(1, 0)])
    ref = clean(model, probe)
    first = 1 + 6  # BOS + first copy: no query there has a target
    assert torch.allclose(out[:, :first], ref[:, :first], atol=1e-6)
    assert not torch.allclose(out[:, first:], ref[:, first:], atol=1e-4)


def test_mean_ablation_against_itself_with_batch_one_is_identity(model, probe):
    one = probe[:1]
    out = A.mean_ablation(model, one, [(0, 0), (1, 2)], reference_tokens=one)
    assert torch.allclose(out, clean(model, one), atol=1e-5)
    # with a different reference the output changes
    other = A.mean_ablation(model, one, [(0, 0), (1, 2)], reference_tokens=probe[1:])
    assert not torch.allclose(other, clean(model, one), atol=1e-4)
    with pytest.raises(ValueError, match="at least as long"):
        A.mean_ablation(model, probe, [(0, 0)], reference_tokens=probe[:, :5])


def test_random_head_control(model, probe):
    exclude = [(1, 0), (1, 1)]
    a = A.random_head_control(model, probe, 2, exclude=exclude, seed=3)
    b = A.random_head_control(model, probe, 2, exclude=exclude, seed=3)
    assert a.heads == b.heads and torch.equal(a.logits, b.logits)
    assert len(a.heads) == 2 and not set(a.heads) & set(exclude)
    assert torch.allclose(a.logits, A.zero_ablation(model, probe, a.heads))
    picks = {tuple(A.random_head_control(model, probe, 2, exclude=exclude, seed=s).heads) for s in range(10)}
    assert len(picks) > 1
    with pytest.raises(ValueError, match="heads are left"):
        A.random_head_control(model, probe, 5, exclude=exclude)


@pytest.mark.parametrize(
    "heads, match",
    [([(2, 0)], "out of range"), ([(0, 3)], "out of range"), ((0, 1), "pairs"), ([(0,)], "pair")],
)
def test_bad_heads_raise(model, probe, heads, match):
    with pytest.raises(ValueError, match=match):
        A.zero_ablation(model, probe, heads)


def test_bad_kind_and_rank_raise(model, probe, text):
    with pytest.raises(ValueError, match="unknown ablation kind"):
        A.ablate(model, probe, [(0, 0)], kind="resample")
    with pytest.raises(ValueError, match="unknown ablation kind"):
        A.single_head_ablation_table(model, probe, text, kind="nope")
    with pytest.raises(ValueError, match="2-D"):
        A.zero_ablation(model, probe[0], [(0, 0)])


# -------------------------------------------------------------- bridge agreement
@pytest.mark.parametrize("kind", A.KINDS)
def test_ablations_agree_with_transformer_lens_bridge(model, bridge, probe, kind):
    heads = [(0, 1), (1, 0), (1, 2)]
    ours = A.ablate(model, probe, heads, kind)
    theirs = A.ablate(bridge, probe, heads, kind)
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert not torch.allclose(ours, clean(model, probe), atol=1e-4)


def test_random_control_and_effects_agree_with_bridge(model, bridge, probe, text):
    a = A.random_head_control(model, probe, 3, seed=1)
    b = A.random_head_control(bridge, probe, 3, seed=1)
    assert a.heads == b.heads and torch.allclose(a.logits, b.logits, atol=1e-4)
    ea = A.ablation_effects(model, [(0, 0)], probe, text, kind="mean")
    eb = A.ablation_effects(bridge, [(0, 0)], probe, text, kind="mean")
    assert ea.delta_probe_loss == pytest.approx(eb.delta_probe_loss, abs=1e-4)
    assert ea.delta_icl_score == pytest.approx(eb.delta_icl_score, abs=1e-4)


# ------------------------------------------------------------------ effect tables
def test_ablation_effects_fields(model, probe, text):
    eff = A.ablation_effects(model, [(0, 0), (1, 1)], probe, text)
    assert eff.heads == [(0, 0), (1, 1)] and eff.kind == "zero"
    assert eff.clean_probe_loss == pytest.approx(M.repeated_token_losses(model, probe, seg_len=6).later, rel=1e-5)
    assert eff.clean_icl_score == pytest.approx(M.icl_score(model, text), rel=1e-5)
    assert eff.delta_probe_loss == pytest.approx(eff.ablated_probe_loss - eff.clean_probe_loss)
    assert eff.delta_probe_loss != 0 and eff.delta_icl_score != 0
    assert A.infer_seg_len(probe) == 6
    with pytest.raises(ValueError, match="probe"):
        A.infer_seg_len(text)


def test_single_head_table_matches_effects(model, probe, text):
    table = A.single_head_ablation_table(model, probe, text, kind="pattern_preserving")
    for key in ("probe_loss", "icl_score", "delta_probe_loss", "delta_icl_score"):
        assert table[key].shape == (2, 3)
    eff = A.ablation_effects(model, [(1, 2)], probe, text, kind="pattern_preserving")
    assert table["delta_probe_loss"][1, 2].item() == pytest.approx(eff.delta_probe_loss, abs=1e-5)
    assert table["delta_icl_score"][1, 2].item() == pytest.approx(eff.delta_icl_score, abs=1e-5)


def test_joint_ablation_table_matches_effects_and_its_standard_error(model, probe, text):
    groups = {"one": [(1, 2)], "together": [(0, 0), (1, 1)]}
    for kind in ("zero", "mean"):
        rows = {r["label"]: r for r in A.joint_ablation_table(model, groups, probe, text, kind=kind)}
        for label, heads in groups.items():
            eff = A.ablation_effects(model, heads, probe, text, kind=kind)
            r = rows[label]
            assert r["heads"] == eff.heads and r["kind"] == kind
            assert r["delta_probe_loss"] == pytest.approx(eff.delta_probe_loss, abs=1e-5)
            assert r["delta_icl_score"] == pytest.approx(eff.delta_icl_score, abs=1e-5)
            assert r["clean_icl_score"] == pytest.approx(eff.clean_icl_score, abs=1e-5)
            w = r["delta_icl_per_window"]
            assert w.shape == (text.shape[0],) and float(w.mean()) == pytest.approx(r["delta_icl_score"], abs=1e-5)
            assert r["delta_icl_se"] == pytest.approx(float(w.std() / len(w) ** 0.5), rel=1e-5)
            by_pos = r["delta_loss_by_position"]
            assert by_pos.shape == (text.shape[1] - 1,)
            assert float(by_pos.mean()) == pytest.approx(r["delta_text_loss"], abs=1e-5)
    with pytest.raises(ValueError, match="kind"):
        A.joint_ablation_table(model, groups, probe, text, kind="nope")


def test_icl_per_window_is_the_icl_score_per_window():
    loss = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 9)
    w = A.icl_per_window(loss, early=2, late=7)
    assert w.tolist() == [5.0, 5.0]
    assert float(w.mean()) == pytest.approx(M.icl_score_from_losses(loss, 2, 7))


# ---------------------------------------------------------- hand-built induction circuit
V, N = 8, 24  # vocabulary (token 0 = BOS) and context
TOK, PREV, OUT, POS = 0, V, 2 * V, 3 * V  # offsets of the residual-stream subspaces


@pytest.fixture(scope="module")
def induction_model() -> AttnOnlyTransformer:
    """Layer-0 head 0 is a previous-token head, layer-1 head 0 an induction head.

    Residual subspaces: TOK (current token), PREV (previous token, written by 0.0), OUT (the
    prediction, written by 1.0 and read by W_U), POS (position). Every other head is zero.
    """
    cfg = ModelConfig(d_vocab=V, n_ctx=N, d_model=3 * V + N, n_heads=2, d_head=N, n_layers=2, normalization=None)
    m = AttnOnlyTransformer(cfg)
    c = 30 * math.sqrt(N)  # attention logits of 30: softmax is one-hot to ~1e-12
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        t, p = torch.arange(V), torch.arange(N)
        m.W_E[t, TOK + t] = 1
        m.W_pos[p, POS + p] = 1
        # 0.0: query at position q matches keys at position q - 1; moves TOK into PREV
        m.W_Q[0, 0, POS + p, p] = c
        m.W_K[0, 0, POS + p[:-1], p[:-1] + 1] = 1
        m.W_V[0, 0, TOK + t, t] = 1
        m.W_O[0, 0, t, PREV + t] = 1
        # 1.0: query's TOK matches keys' PREV; moves the key's TOK into OUT
        m.W_Q[1, 0, TOK + t, t] = c
        m.W_K[1, 0, PREV + t, t] = 1
        m.W_V[1, 0, TOK + t, t] = 1
        m.W_O[1, 0, t, OUT + t] = 1
        m.W_U[OUT + t, t] = 20
    return m.eval()


@pytest.fixture(scope="module")
def induction_probe() -> torch.Tensor:
    return repeated_random_tokens(4, 5, 4, torch.arange(1, V), BOS, seed=0)  # [4, 21]


def test_hand_built_circuit_scores(induction_model, induction_probe):
    s = M.head_scores(induction_model, induction_probe)
    assert s["previous_token"][0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert s["prefix_matching"][1, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert s["prefix_matching"][0, 0].item() < 0.1
    assert M.classify_heads(s, threshold=0.9) == {"previous_token": [(0, 0)], "induction": [(1, 0)]}
    comp = M.composition_scores(induction_model)
    # 0.0 writes PREV, 1.0's keys read PREV: pure K-composition, W_OV0 W_QK1^T = c I_V
    assert comp["K"][0, 0].item() == pytest.approx(1 / math.sqrt(V), rel=1e-5)
    assert comp["Q"][0, 0].item() == 0 and comp["V"][0, 0].item() == 0
    assert M.eigenvalue_copying_score(induction_model)[1, 0].item() == pytest.approx(1.0)
    assert M.copying_score(induction_model)[1, 0].item() == pytest.approx(1.0)


def test_hand_built_circuit_ablations(induction_model, induction_probe):
    m, tokens = induction_model, induction_probe
    r = M.repeated_token_losses(m, tokens, seg_len=5)
    assert r.later < 1e-3 and r.first > 1.0

    def later_loss(logits):  # predictions made at positions of copies 2..4
        per = torch.nn.functional.cross_entropy(
            logits[:, 6:-1].reshape(-1, V), tokens[:, 7:].reshape(-1), reduction="mean"
        )
        return per.item()

    # removing the previous-token head breaks induction ...
    assert later_loss(A.zero_ablation(m, tokens, [(0, 0)])) > 1.0
    # ... only through where 1.0 looks: with patterns frozen it still copies perfectly
    assert later_loss(A.pattern_preserving_ablation(m, tokens, [(0, 0)])) < 1e-3
    # knocking out 1.0's induction stripe leaves it nothing useful to copy: uniform logits
    assert later_loss(A.induction_stripe_knockout(m, tokens, [(1, 0)])) == pytest.approx(math.log(V), abs=1e-3)
    # the zero head 0.1 does nothing
    assert later_loss(A.zero_ablation(m, tokens, [(0, 1)])) < 1e-3
