"""Checks for chapter 5 (ablations): visible checks with kind hints, hidden-test comparisons.

References come from :mod:`induction_course.ablation`; the runner is
:class:`induction_course.course.checks.core.ChapterChecks`. Every ablation exercise is checked on small
random models (:func:`induction_course.course.checks.core.random_model`) and repeated-token inputs, and the
comparison computes the logits that typical mistakes give (wrong axis of ``hook_z``, the mean
over the wrong dims, a renormalised knockout ...) to name them.
"""

from __future__ import annotations

import torch

from induction_course import ablation as A
from induction_course import metrics as M
from induction_course.course.checks.ch05_localise import loc_mean_ablation, loc_single_head_table, loc_zero_ablation
from induction_course.course.checks.core import (
    ChapterChecks,
    CheckFailed,
    Exercise,
    compare_scalar,
    compare_tensor,
    fail,
    generator,
    random_model,
)
from induction_course.model import AttnOnlyTransformer, ModelConfig, cross_entropy_next_token, hook_name
from induction_course.probes import duplicate_target_mask, induction_target_mask, repeated_random_tokens

__all__ = ["CheckFailed", "EXERCISES", "REFERENCES", "compare_with_reference", "on_its_own", "or_reference", "run_visible_checks"]


def _run(model, tokens, hooks):
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=hooks)


def _setter(fn):
    def hook(x, hook=None):
        x = x.clone()
        fn(x)
        return x

    return hook


# ------------------------------------------------------------------- cases
def _case_ablate(seed, layer=0, head=1, batch=3, seg_len=5, n_repeats=3, n_heads=3, d_vocab=23, n_layers=2):
    n_pos = 1 + seg_len * n_repeats
    model = random_model(seed, d_vocab=d_vocab, n_ctx=n_pos + 2, n_heads=n_heads, n_layers=n_layers)
    tokens = repeated_random_tokens(batch, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed + 1)
    return {"model": model, "tokens": tokens, "layer": layer, "head": head}


def _case_mean(seed, **kw):
    case = _case_ablate(seed, **kw)
    g = generator(seed + 2)
    b, n = case["tokens"].shape
    case["reference_tokens"] = torch.randint(0, case["model"].cfg.d_vocab, (b + 3, n), generator=g)
    return case


def _cmp_logits(name, actual, expected, case, mistakes):
    __tracebackhide__ = True
    b, n = case["tokens"].shape
    compare_tensor(name, actual, expected, mistakes=mistakes, atol=1e-4, rtol=1e-4, what="the logits",
                    shape_doc=" ([batch, pos, d_vocab])", shape_hints={
                        (b, n): "return the logits of the ablated run, not the loss or the tokens.",
                    })


# ------------------------------------------------------------------ 1. zero
def _ref_zero(c):
    return A.zero_ablation(c["model"], c["tokens"], [(c["layer"], c["head"])])


def _cmp_zero(name, actual, expected, case):
    __tracebackhide__ = True
    m, t, l, h = case["model"], case["tokens"], case["layer"], case["head"]
    L = m.cfg.n_layers
    mistakes = [
        (_run(m, t, [(hook_name("z", l), _setter(lambda z: z[:, h].zero_()))]),
         "hook_z is [batch, pos, head, d_head]: the head is the third axis, z[:, :, head] = 0 (z[:, head] zeroes a position)."),
        (_run(m, t, [(hook_name("z", l), _setter(lambda z: z.zero_()))]), "zero only the one head, not the whole layer."),
        (_run(m, t, [(hook_name("z", (l + 1) % L), _setter(lambda z: z[:, :, h].zero_()))]),
         "hook the head's own layer: blocks.{layer}.attn.hook_z."),
        (_run(m, t, [(hook_name("z", l), _setter(lambda z: z[..., h].zero_()))]),
         "the head is the third axis of hook_z, not the last (that one is d_head)."),
    ]
    _cmp_logits(name, actual, expected, case, mistakes)


# ------------------------------------------------------------------ 2. mean
def _ref_mean(c):
    return A.mean_ablation(c["model"], c["tokens"], [(c["layer"], c["head"])], c["reference_tokens"])


def _cmp_mean(name, actual, expected, case):
    __tracebackhide__ = True
    m, t, l, h, ref = case["model"], case["tokens"], case["layer"], case["head"], case["reference_tokens"]
    with torch.no_grad():
        _, cache = m.run_with_cache(ref)
        _, own = m.run_with_cache(t)
    zr, zt = cache[hook_name("z", l)], own[hook_name("z", l)]

    def put(value):
        return _run(m, t, [(hook_name("z", l), _setter(lambda z: z[:, :, h].copy_(value.expand_as(z[:, :, h]))))])

    mistakes = [
        (put(zr[:, :, h].mean(dim=(0, 1))), "average over the batch only, separately for each position: "
         "mean over dim 0, not over positions too."),
        (put(zt[:, :, h].mean(0)), "take the mean over reference_tokens, not over the tokens you ablate."),
        (_run(m, t, [(hook_name("z", l), _setter(lambda z: z[:, :, h].copy_(zr.mean(0).mean(1)[None])))]),
         "keep the head axis: the mean of *this* head's z, not of all heads."),
        (_ref_zero(case), "replace z with its mean, not with zero (that is zero ablation)."),
    ]
    _cmp_logits(name, actual, expected, case, mistakes)


# ------------------------------------------------------ 3. pattern preserving
def _ref_pp(c):
    return A.pattern_preserving_ablation(c["model"], c["tokens"], [(c["layer"], c["head"])])


def _cmp_pp(name, actual, expected, case):
    __tracebackhide__ = True
    m, t, l, h = case["model"], case["tokens"], case["layer"], case["head"]
    with torch.no_grad():
        _, cache = m.run_with_cache(t)
    freeze = [(hook_name("pattern", k), (lambda p, hook=None, k=k: cache[hook_name("pattern", k)])) for k in range(m.cfg.n_layers)]
    mistakes = [
        (_ref_zero(case), "freeze every layer's attention pattern to the clean run's (hook_pattern of each "
         "layer); without it this is plain zero ablation."),
        (_run(m, t, freeze + [(hook_name("z", l), _setter(lambda z: z[:, h].zero_()))]),
         "hook_z is [batch, pos, head, d_head]: zero z[:, :, head]."),
        (_run(m, t, freeze), "the patterns are frozen, now zero the head's output (hook_z) too."),
        (_run(m, t, [(hook_name("pattern", l), (lambda p, hook=None: cache[hook_name("pattern", l)])), (hook_name("z", l), _setter(lambda z: z[:, :, h].zero_()))]),
         "freeze the patterns of *all* layers, not only the ablated head's layer: the point is that "
         "later heads keep looking where they looked."),
    ]
    _cmp_logits(name, actual, expected, case, mistakes)


# ------------------------------------------------------------- 4. knockout
def _ref_ko(c):
    return A.induction_stripe_knockout(c["model"], c["tokens"], [(c["layer"], c["head"])])


def _cmp_ko(name, actual, expected, case):
    __tracebackhide__ = True
    m, t, l, h = case["model"], case["tokens"], case["layer"], case["head"]
    tgt = induction_target_mask(t)
    dup = duplicate_target_mask(t)

    def drop(mask, renorm=False, heads=(h,)):
        def f(p):
            for hh in heads:
                sub = p[:, hh] * (~mask).to(p.dtype)
                if renorm:
                    sub = sub / sub.sum(-1, keepdim=True).clamp_min(1e-30)
                p[:, hh] = sub
        return _run(m, t, [(hook_name("pattern", l), _setter(f))])

    mistakes = [
        (A.induction_stripe_knockout(m, t, [(l, h)], renormalize=True),
         "don't renormalise the rows: that hands the removed attention to other keys, so the head would "
         "start moving information it did not move before."),
        (drop(dup), "the induction stripe is the token *after* the earlier occurrence (tokens[k-1] == tokens[q]), "
         "not the earlier occurrence itself."),
        (drop(tgt.transpose(-1, -2)), "the mask is [batch, q, k]: rows are queries."),
        (drop(tgt, heads=range(m.cfg.n_heads)), "knock out the stripe of the one head only."),
        (_ref_zero(case), "remove only the stripe, keep the rest of the head's pattern."),
    ]
    _cmp_logits(name, actual, expected, case, mistakes)


# ------------------------------------------------------------- 5. table
def _case_table(seed, seg_len=5, n_repeats=3, batch=4, n_heads=3, n_layers=2, d_vocab=23):
    n_pos = 1 + seg_len * n_repeats
    model = random_model(seed, d_vocab=d_vocab, n_ctx=n_pos, n_heads=n_heads, n_layers=n_layers)
    probe = repeated_random_tokens(batch, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed + 1)
    return {"model": model, "probe": probe, "seg_len": seg_len}


def _table(model, probe, seg_len, loss=None):
    loss = loss or (lambda lg: M.later_repeat_loss(lg, probe, seg_len))
    L, H = model.cfg.n_layers, model.cfg.n_heads
    clean = loss(_run(model, probe, []))
    out = torch.empty(L, H, dtype=torch.float64)
    for l in range(L):
        for h in range(H):
            out[l, h] = loss(A.zero_ablation(model, probe, [(l, h)]))
    return out, clean


def _ref_table(c):
    t, clean = _table(c["model"], c["probe"], c["seg_len"])
    return t - clean


def _cmp_table(name, actual, expected, case):
    __tracebackhide__ = True
    m, p, s = case["model"], case["probe"], case["seg_len"]
    L, H = expected.shape
    raw, clean = _table(m, p, s)
    allpos, clean_all = _table(m, p, s, lambda lg: float(cross_entropy_next_token(lg, p)))
    mistakes = [
        (raw, "report the *effect*: ablated loss minus clean loss."),
        (-expected, "ablated minus clean (positive = the ablation hurt), not clean minus ablated."),
        (allpos - clean_all, "measure the loss on the later repeats only (where induction can help): "
         "ablation.repeated_losses_from_per_token(...).later, or later_repeat_loss."),
    ]
    compare_tensor(name, actual, expected, mistakes=mistakes, atol=1e-4, rtol=1e-4, shape_doc=" ([n_layers, n_heads])",
                    shape_hints={(H, L): "rows are layers, columns heads."})


# ------------------------------------------------------------- 5b. ICL effect
def _case_icl_effect(seed, layer=1, head=0, batch=4, n_pos=100, n_heads=2, d_vocab=23, n_layers=2):
    model = random_model(seed, d_vocab=d_vocab, n_ctx=n_pos, n_heads=n_heads, n_layers=n_layers)
    text = torch.randint(0, d_vocab, (batch, n_pos), generator=generator(seed + 3))
    return {"model": model, "text": text, "layer": layer, "head": head}


def _icl(logits, text, shift=0, sign=1):
    per_token = cross_entropy_next_token(logits, text, per_token=True)
    e, l = M.icl_positions(text.shape[1])
    return sign * float(per_token[:, l - 1 + shift].mean() - per_token[:, e - 1 + shift].mean())


def _ref_icl_effect(c, **kw):
    m, t = c["model"], c["text"]
    return _icl(A.zero_ablation(m, t, [(c["layer"], c["head"])]), t, **kw) - _icl(_run(m, t, []), t, **kw)


def _cmp_icl_effect(name, actual, expected, case):
    __tracebackhide__ = True
    
    m, t = case["model"], case["text"]
    mistakes = [
        (-expected, "ablated minus clean: positive means the ablation reduced in-context learning."),
        (_icl(A.zero_ablation(m, t, [(case["layer"], case["head"])]), t), "subtract the clean model's ICL score."),
        (_ref_icl_effect(case, shift=1) if M.icl_positions(t.shape[1])[1] < t.shape[1] - 1 else None,
         "off by one: the loss at token n is column n - 1 of the per-token loss."),
    ]
    compare_scalar(name, actual, expected, mistakes, "ICL score (ablated) - ICL score (clean), ICL positions from "
                "metrics.icl_positions(n_ctx).", tol=1e-4, what="the change of the ICL score")


# ------------------------------------------------------------- 6. sweep
def _case_sweep(seed, n_models=3, seg_len=5, n_repeats=3, batch=3, n_heads=3, d_vocab=23):
    n_pos = 1 + seg_len * n_repeats
    models = [random_model(seed * 10 + i, d_vocab=d_vocab, n_ctx=n_pos, n_heads=n_heads) for i in range(n_models)]
    probe = repeated_random_tokens(batch, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed + 1)
    heads = [(1, 0), (1, n_heads - 1)]
    return {"models": models, "probe": probe, "heads": heads, "seg_len": seg_len}


def _sweep(c, together=True, delta=True):
    out = []
    for m in c["models"]:
        loss = lambda lg: M.later_repeat_loss(lg, c["probe"], c["seg_len"])  # noqa: E731
        clean = loss(_run(m, c["probe"], []))
        if together:
            v = loss(A.zero_ablation(m, c["probe"], c["heads"])) - (clean if delta else 0.0)
        else:
            v = sum(loss(A.zero_ablation(m, c["probe"], [hd])) - clean for hd in c["heads"])
        out.append(v)
    return torch.tensor(out, dtype=torch.float64)


def _cmp_sweep(name, actual, expected, case):
    __tracebackhide__ = True
    n = len(case["models"])
    first = case["heads"][:1]
    only_first = _sweep(dict(case, heads=first))
    mistakes = [
        (_sweep(case, together=False), "ablate the heads *together* in one run: effects of heads that back each "
         "other up do not add."),
        (_sweep(case, delta=False), "report ablated minus clean loss, for each checkpoint its own clean loss."),
        (only_first, "ablate every head in `heads`, not only the first."),
    ]
    compare_tensor(name, actual, expected, mistakes=mistakes, atol=1e-4, rtol=1e-4,
                    shape_doc=f" ([n_checkpoints] = [{n}])")


# ------------------------------------------------------- 7. hand-built head
def hand_built_config(d_vocab: int = 30, n_ctx: int = 48, n_heads: int = 1) -> ModelConfig:
    """The architecture of the hand-built model: one-hot room for tokens, positions and the
    previous token (``d_model = 2 d_vocab + n_ctx``), ``d_head = max(d_vocab, n_ctx)``, no LayerNorm."""
    return ModelConfig(d_vocab=d_vocab, n_ctx=n_ctx, d_model=2 * d_vocab + n_ctx, n_heads=n_heads,
                       d_head=max(d_vocab, n_ctx), n_layers=2, normalization=None)


def _case_hand(seed, d_vocab=30, n_ctx=48, n_heads=1, seg_len=10, n_repeats=4):
    cfg = hand_built_config(d_vocab, n_ctx, n_heads)
    probe = repeated_random_tokens(10, seg_len, n_repeats, torch.arange(1, d_vocab), 0, seed=seed)[:, :n_ctx]
    return {"cfg": cfg, "_probe": probe, "_seg_len": seg_len}


def _cmp_hand(name, actual, expected, case):
    __tracebackhide__ = True
    if actual is None:
        fail(name, "your function returned None.", "return the model.")
    if not isinstance(actual, AttnOnlyTransformer):
        fail(name, f"return an AttnOnlyTransformer, got {type(actual).__name__}.")
    if actual.cfg != case["cfg"]:
        fail(name, "the model's config is not the one you were given.", "build AttnOnlyTransformer(cfg).")
    probe = case["_probe"]
    scores = M.head_scores(actual, probe)
    prev = float(scores["previous_token"][0].max())
    pm = float(scores["prefix_matching"][1].max())
    dup = float(scores["duplicate_token"][1].max())
    if prev < 0.9:
        hint = None
        if float(scores["current_token"][0].max()) > 0.5:
            hint = "your layer-0 head attends to the current token: the key at position k must match the query at k + 1."
        fail(name, f"no layer-0 head is a previous-token head: best previous-token score {prev:.3f} < 0.9.",
              hint or "make the query at position p and the key at position p - 1 match strongly "
              "(W_pos one-hot, W_Q maps position p, W_K position p - 1, to the same direction, times a large factor).")
    if pm < 0.9:
        hint = None
        if dup > 0.5:
            hint = ("your layer-1 head attends to earlier copies of the current token (a duplicate-token head): "
                    "its key must read the *previous* token that layer 0 wrote, not the token itself.")
        fail(name, f"no layer-1 head is an induction head: best prefix-matching score {pm:.3f} < 0.9.",
              hint or "query = current token, key = the previous token written by head 0; scale the QK "
              "match up so the softmax is sharp (the scores are divided by sqrt(d_head)).")
    with torch.no_grad():
        loss = M.repeated_losses_from_per_token(
            cross_entropy_next_token(actual(probe), probe, per_token=True), case["_seg_len"], bos=True)
    if not loss.later < 0.5 * loss.first:
        fail(name, f"the heads attend right, but the later repeats are not predicted (loss {loss.later:.2f} vs "
              f"{loss.first:.2f} on the first copy).",
              "the induction head's OV circuit must copy: W_V reads the attended token, W_O writes it where W_U "
              "reads it as that token's logit, with a large enough factor.")


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in [
        Exercise("zero_ablation", _case_ablate, _ref_zero, _cmp_zero, [dict(seed=0), dict(seed=1, layer=1, head=0)],
                 localise=loc_zero_ablation),
        Exercise("mean_ablation", _case_mean, _ref_mean, _cmp_mean, [dict(seed=0), dict(seed=1, layer=1, head=2)],
                 localise=loc_mean_ablation),
        Exercise("pattern_preserving_ablation", _case_ablate, _ref_pp, _cmp_pp, [dict(seed=0, layer=0, head=1)]),
        Exercise("stripe_knockout", _case_ablate, _ref_ko, _cmp_ko, [dict(seed=0, layer=1, head=1)]),
        Exercise("single_head_table", _case_table, _ref_table, _cmp_table, [dict(seed=0)], localise=loc_single_head_table),
        Exercise("icl_effect", _case_icl_effect, _ref_icl_effect, _cmp_icl_effect, [dict(seed=0), dict(seed=1, layer=0, head=1)]),
        Exercise("ablation_sweep", _case_sweep, lambda c: _sweep(c), _cmp_sweep, [dict(seed=0, n_models=2)]),
        Exercise("build_induction_model", _case_hand, lambda c: None, _cmp_hand, [dict(seed=0)]),
    ]
}

# The reference of each exercise with the student's signature: later exercises that call one
# (single_head_table and icl_effect call zero_ablation) are checked with the reference in its place,
# and demo cells fall back to it while the exercise is unanswered (``or_reference``).
_PIECES = {
    "zero_ablation": lambda model, tokens, layer, head: A.zero_ablation(model, tokens, [(layer, head)]),
    "mean_ablation": lambda model, tokens, layer, head, reference_tokens: A.mean_ablation(
        model, tokens, [(layer, head)], reference_tokens),
    "pattern_preserving_ablation": lambda model, tokens, layer, head: A.pattern_preserving_ablation(
        model, tokens, [(layer, head)]),
    "stripe_knockout": lambda model, tokens, layer, head: A.induction_stripe_knockout(model, tokens, [(layer, head)]),
}
REFERENCES = dict(_PIECES, **{
    "single_head_table": lambda model, probe, seg_len: _ref_table({"model": model, "probe": probe, "seg_len": seg_len}),
    "icl_effect": lambda model, text, layer, head: _ref_icl_effect({"model": model, "text": text, "layer": layer,
                                                                    "head": head}),
    "ablation_sweep": lambda models, probe, heads, seg_len: _sweep({"models": models, "probe": probe, "heads": heads,
                                                                    "seg_len": seg_len}),
})
_NUMBERS = {name: i + 1 for i, name in enumerate(EXERCISES)}


_CHECKS = ChapterChecks(list(EXERCISES.values()), pieces=_PIECES, no_grad=True, references=REFERENCES,
                        numbers=_NUMBERS)
CHECKS = _CHECKS  # the grader's trusted check reads the exercises from here
or_reference = _CHECKS.or_reference


def on_its_own(fn, exercise: str):
    """``fn`` (the student's answer to ``exercise``) for the print line of its grade cell: called
    as it is; if an *earlier* exercise it calls is still blank (``NotImplementedError``), called
    again with the references of the other exercises in place (as the checks do), with a note, so
    the grade cell does not fail for another exercise."""

    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            with _CHECKS.reference_pieces(fn, keep=exercise):
                out = fn(*args, **kwargs)  # still raises if fn itself is blank: its own exercise
            print(f"note: an exercise that `{exercise}` calls is not finished; shown with the package's reference "
                  "in its place (finish exercise 1 (`zero_ablation`) to see your own).")
            return out

    return call
compare_with_reference = _CHECKS.compare_with_reference
run_visible_checks = _CHECKS.run_visible_checks
_make_check = _CHECKS.make_check

check_zero_ablation = _make_check("zero_ablation")
check_mean_ablation = _make_check("mean_ablation")
check_pattern_preserving_ablation = _make_check("pattern_preserving_ablation")
check_stripe_knockout = _make_check("stripe_knockout")
check_single_head_table = _make_check("single_head_table")
check_ablation_sweep = _make_check("ablation_sweep")
check_icl_effect = _make_check("icl_effect")
check_build_induction_model = _make_check("build_induction_model")
