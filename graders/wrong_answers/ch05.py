"""Catalogue of plausible wrong answers to chapter 5 (05_ablations). Same contract as ``ch01.py``."""

from __future__ import annotations

import math

import torch

from induction_course.course.checks.catalogue import WrongAnswer, new_catalogue  # noqa: F401

from induction_course import ablation as A
from induction_course.metrics import later_repeat_loss
from induction_course.model import AttnOnlyTransformer, cross_entropy_next_token, hook_name
from induction_course.probes import duplicate_target_mask, induction_target_mask


WRONG_ANSWERS, wrong = new_catalogue()


def _zhook(fn):
    def hook(z, hook):
        z = z.clone()
        fn(z)
        return z

    return hook


# ------------------------------------------------------------------- zero_ablation
@wrong("ch5_zero_ablation", "zero_ablation", "zeroes a position: z[:, head]", hint="third axis")
def zero_wrong_axis(model, tokens, layer, head):
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), _zhook(lambda z: z[:, head].zero_()))])


@wrong("ch5_zero_ablation", "zero_ablation", "zeroes the whole layer", hint="whole layer")
def zero_whole_layer(model, tokens, layer, head):
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), _zhook(lambda z: z.zero_()))])


@wrong("ch5_zero_ablation", "zero_ablation", "zeroes d_head index: z[..., head]", hint="not the last")
def zero_last_axis(model, tokens, layer, head):
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), _zhook(lambda z: z[..., head].zero_()))])


@wrong("ch5_zero_ablation", "zero_ablation", "hooks the wrong layer", hint="own layer")
def zero_wrong_layer(model, tokens, layer, head):
    other = (layer + 1) % model.cfg.n_layers
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", other), _zhook(lambda z: z[:, :, head].zero_()))])


# ------------------------------------------------------------------- mean_ablation
def _mean_with(model, tokens, layer, head, value):
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer),
                                                     _zhook(lambda z: z[:, :, head].copy_(value.expand_as(z[:, :, head]))))])


@wrong("ch5_mean_ablation", "mean_ablation", "mean over batch and positions", hint="not over positions too")
def mean_over_positions(model, tokens, layer, head, reference_tokens):
    _, c = model.run_with_cache(reference_tokens)
    return _mean_with(model, tokens, layer, head, c[hook_name("z", layer)][:, :, head].mean(dim=(0, 1)))


@wrong("ch5_mean_ablation", "mean_ablation", "mean over the ablated tokens themselves", hint="reference_tokens")
def mean_over_tokens(model, tokens, layer, head, reference_tokens):
    _, c = model.run_with_cache(tokens)
    return _mean_with(model, tokens, layer, head, c[hook_name("z", layer)][:, :, head].mean(0))


@wrong("ch5_mean_ablation", "mean_ablation", "mean over all heads", hint="keep the head axis")
def mean_over_heads(model, tokens, layer, head, reference_tokens):
    _, c = model.run_with_cache(reference_tokens)
    return _mean_with(model, tokens, layer, head, c[hook_name("z", layer)].mean(0).mean(1)[None])


@wrong("ch5_mean_ablation", "mean_ablation", "zero instead of the mean", hint="zero ablation")
def mean_is_zero(model, tokens, layer, head, reference_tokens):
    return A.zero_ablation(model, tokens, [(layer, head)])


# ------------------------------------------------------------ pattern preserving
@wrong("ch5_pattern_preserving_ablation", "pattern_preserving_ablation", "forgets to freeze", hint="freeze every layer")
def pp_no_freeze(model, tokens, layer, head):
    return A.zero_ablation(model, tokens, [(layer, head)])


@wrong("ch5_pattern_preserving_ablation", "pattern_preserving_ablation", "freezes only the head's layer", hint="freeze every layer")
def pp_one_layer(model, tokens, layer, head):
    _, c = model.run_with_cache(tokens)
    name = hook_name("pattern", layer)
    return model.run_with_hooks(tokens, fwd_hooks=[(name, lambda p, hook: c[name]),
                                                   (hook_name("z", layer), _zhook(lambda z: z[:, :, head].zero_()))])


@wrong("ch5_pattern_preserving_ablation", "pattern_preserving_ablation", "freezes but never zeroes", hint="zero the head's output")
def pp_no_zero(model, tokens, layer, head):
    _, c = model.run_with_cache(tokens)
    hooks = [(hook_name("pattern", l), lambda p, hook, l=l: c[hook_name("pattern", l)])
             for l in range(model.cfg.n_layers)]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


@wrong("ch5_pattern_preserving_ablation", "pattern_preserving_ablation", "wrong axis of hook_z", hint="z[:, :, head]")
def pp_wrong_axis(model, tokens, layer, head):
    _, c = model.run_with_cache(tokens)
    hooks = [(hook_name("pattern", l), lambda p, hook, l=l: c[hook_name("pattern", l)])
             for l in range(model.cfg.n_layers)]
    return model.run_with_hooks(tokens, fwd_hooks=hooks + [(hook_name("z", layer), _zhook(lambda z: z[:, head].zero_()))])


# ------------------------------------------------------------------ stripe knockout
def _ko(model, tokens, layer, heads, mask, renorm=False):
    def hook(p, hook):
        p = p.clone()
        for h in heads:
            sub = p[:, h] * (~mask).float()
            if renorm:
                sub = sub / sub.sum(-1, keepdim=True).clamp_min(1e-30)
            p[:, h] = sub
        return p

    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("pattern", layer), hook)])


@wrong("ch5_stripe_knockout", "stripe_knockout", "renormalises the knocked-out rows", hint="don't renormalise")
def ko_renormalised(model, tokens, layer, head):
    return _ko(model, tokens, layer, [head], induction_target_mask(tokens), renorm=True)


@wrong("ch5_stripe_knockout", "stripe_knockout", "knocks out the duplicate-token stripe", hint="*after* the earlier occurrence")
def ko_duplicate(model, tokens, layer, head):
    return _ko(model, tokens, layer, [head], duplicate_target_mask(tokens))


@wrong("ch5_stripe_knockout", "stripe_knockout", "knocks out every head of the layer", hint="one head only")
def ko_all_heads(model, tokens, layer, head):
    return _ko(model, tokens, layer, range(model.cfg.n_heads), induction_target_mask(tokens))


@wrong("ch5_stripe_knockout", "stripe_knockout", "zeroes the head's whole pattern", hint="keep the rest")
def ko_whole(model, tokens, layer, head):
    return _ko(model, tokens, layer, [head], torch.ones_like(induction_target_mask(tokens)))


# ---------------------------------------------------------------- single_head_table
def _table(model, probe, seg_len, loss, delta=True):
    clean = loss(model(probe))
    t = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for l in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            t[l, h] = loss(A.zero_ablation(model, probe, [(l, h)])) - (clean if delta else 0.0)
    return t


@wrong("ch5_single_head_table", "single_head_table", "reports the ablated loss, not the change", hint="ablated loss minus clean")
def table_raw(model, probe, seg_len):
    return _table(model, probe, seg_len, lambda lg: later_repeat_loss(lg, probe, seg_len), delta=False)


@wrong("ch5_single_head_table", "single_head_table", "loss over all positions", hint="later repeats only")
def table_all_positions(model, probe, seg_len):
    return _table(model, probe, seg_len, lambda lg: float(cross_entropy_next_token(lg, probe)))


@wrong("ch5_single_head_table", "single_head_table", "[n_heads, n_layers]", hint="rows are layers")
def table_transposed(model, probe, seg_len):
    return _table(model, probe, seg_len, lambda lg: later_repeat_loss(lg, probe, seg_len)).T


@wrong("ch5_single_head_table", "single_head_table", "clean minus ablated", hint="not clean minus ablated")
def table_sign(model, probe, seg_len):
    return -_table(model, probe, seg_len, lambda lg: later_repeat_loss(lg, probe, seg_len))


# ------------------------------------------------------------------- ablation_sweep
@wrong("ch5_ablation_sweep", "ablation_sweep", "sums single-head effects", hint="*together*")
def sweep_sum(models, probe, heads, seg_len):
    out = []
    for m in models:
        clean = later_repeat_loss(m(probe), probe, seg_len)
        out.append(sum(later_repeat_loss(A.zero_ablation(m, probe, [h]), probe, seg_len) - clean for h in heads))
    return torch.tensor(out)


@wrong("ch5_ablation_sweep", "ablation_sweep", "no clean subtraction", hint="its own clean loss")
def sweep_raw(models, probe, heads, seg_len):
    return torch.tensor([later_repeat_loss(A.zero_ablation(m, probe, heads), probe, seg_len) for m in models])


@wrong("ch5_ablation_sweep", "ablation_sweep", "only the first head", hint="not only the first")
def sweep_first(models, probe, heads, seg_len):
    return torch.tensor([later_repeat_loss(A.zero_ablation(m, probe, heads[:1]), probe, seg_len)
                         - later_repeat_loss(m(probe), probe, seg_len) for m in models])


@wrong("ch5_ablation_sweep", "ablation_sweep", "the final model's clean loss for every checkpoint", hint=None)
def sweep_one_clean(models, probe, heads, seg_len):
    clean = later_repeat_loss(models[-1](probe), probe, seg_len)
    return torch.tensor([later_repeat_loss(A.zero_ablation(m, probe, heads), probe, seg_len) - clean for m in models])


# ------------------------------------------------------------ build_induction_model
def _build(cfg, key_reads_prev=True, prev_offset=1, big=None, copy=10.0):
    V, N = cfg.d_vocab, cfg.n_ctx
    TOK, POS, PREV = 0, V, V + N
    model = AttnOnlyTransformer(cfg)
    big = 20.0 * math.sqrt(cfg.d_head) if big is None else big
    v, n = torch.arange(V), torch.arange(N)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_E[v, TOK + v] = 1.0
        model.W_pos[n, POS + n] = 1.0
        model.W_Q[0, 0, POS + n, n] = big
        if prev_offset:
            model.W_K[0, 0, POS + n[:-1], n[1:]] = 1.0
        else:
            model.W_K[0, 0, POS + n, n] = 1.0
        model.W_V[0, 0, TOK + v, v] = 1.0
        model.W_O[0, 0, v, PREV + v] = 1.0
        model.W_Q[1, 0, TOK + v, v] = big
        model.W_K[1, 0, (PREV if key_reads_prev else TOK) + v, v] = 1.0
        model.W_V[1, 0, TOK + v, v] = 1.0
        model.W_O[1, 0, v, TOK + v] = copy
        model.W_U[TOK + v, v] = 1.0
    return model.eval()


@wrong("ch5_build_induction_model", "build_induction_model", "key reads the current token (duplicate head)", hint="duplicate-token head")
def hand_duplicate(cfg):
    return _build(cfg, key_reads_prev=False)


@wrong("ch5_build_induction_model", "build_induction_model", "layer-0 key at p instead of p - 1", hint="current token")
def hand_no_offset(cfg):
    return _build(cfg, prev_offset=0)


@wrong("ch5_build_induction_model", "build_induction_model", "no large factor: soft attention", hint="previous-token score")
def hand_no_scale(cfg):
    return _build(cfg, big=1.0)


@wrong("ch5_build_induction_model", "build_induction_model", "OV does not copy", hint="must copy")
def hand_no_copy(cfg):
    return _build(cfg, copy=0.0)


# --------------------------------------------------------------------- icl_effect
def _icl(model, text, logits, shift=0):
    from induction_course import metrics as M

    e, l = M.icl_positions(text.shape[1])
    loss = cross_entropy_next_token(logits, text, per_token=True)
    return float(loss[:, l - 1 + shift].mean() - loss[:, e - 1 + shift].mean())


@wrong("ch5_icl_effect", "icl_effect", "clean minus ablated", hint="ablated minus clean")
def icl_effect_sign(model, text, layer, head):
    return _icl(model, text, model(text)) - _icl(model, text, A.zero_ablation(model, text, [(layer, head)]))


@wrong("ch5_icl_effect", "icl_effect", "forgets the clean score", hint="subtract the clean")
def icl_effect_raw(model, text, layer, head):
    return _icl(model, text, A.zero_ablation(model, text, [(layer, head)]))


@wrong("ch5_icl_effect", "icl_effect", "off by one in the loss columns", hint="off by one")
def icl_effect_off_by_one(model, text, layer, head):
    return (_icl(model, text, A.zero_ablation(model, text, [(layer, head)]), shift=1)
            - _icl(model, text, model(text), shift=1))


# ------------------------------------------------------------- the contract (issue 11)
@wrong("ch5_zero_ablation", "zero_ablation", "zeroes the head's W_O in the model itself instead of hooking",
       hint="in place")
def zero_ablation_edits_weights(model, tokens, layer, head):
    with torch.no_grad():
        model.W_O[layer, head] = 0.0
    return model(tokens)


TRUSTED_ONLY, trusted_only = new_catalogue()  # contract breaks only the trusted check sees (see ch01.py)
