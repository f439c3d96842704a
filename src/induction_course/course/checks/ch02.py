"""Checks of chapter 2 (training and the induction bump).

References: :func:`induction_course.model.cross_entropy_next_token` (the loss),
:func:`induction_course.data.sample_windows` (batching), :mod:`induction_course.probes` (the
repeated-random-token probe), :func:`induction_course.metrics.icl_positions` and
``icl_score_from_losses`` (ICL score), ``repeated_losses_from_per_token`` (repeat losses),
:func:`induction_course.curves.phase_change_index` (the bump). Random functions (batching, the
probe) are checked by their properties, not against one draw: any correct sampler passes.
"""

from __future__ import annotations

import copy
import math

import torch

from induction_course import curves, metrics
from induction_course.course.checks.ch02_localise import loc_find_bump, loc_per_token_loss
from induction_course.course.checks.core import (
    ChapterChecks,
    CheckFailed,
    Exercise,
    ValuesDiffer,
    as_float,
    as_tensor,
    compare_tensor,
    fail,
    generator,
    random_model,
)
from induction_course.data import sample_windows
from induction_course.model import cross_entropy_next_token
from induction_course.probes import repeated_random_tokens
from induction_course.training import train_step

__all__ = ["CheckFailed", "EXERCISES", "REFERENCES", "compare_with_reference", "or_reference", "run_visible_checks"]


# ------------------------------------------------------------------------------ the loss
def _case_loss(seed, batch=2, n_pos=6, d_vocab=11):
    g = generator(seed)
    return {"logits": torch.randn(batch, n_pos, d_vocab, generator=g) * 2,
            "tokens": torch.randint(0, d_vocab, (batch, n_pos), generator=g)}


def _ref_loss(case):
    return cross_entropy_next_token(case["logits"], case["tokens"], per_token=True)


def _cmp_loss(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    logits, tokens = case["logits"], case["tokens"]
    b, n, v = logits.shape
    lp = logits.log_softmax(-1)
    mistakes = [
        (-lp[:, 1:].gather(-1, tokens[:, :-1, None])[..., 0], "shifted the wrong way: the logits at position i "
         "predict the token at i + 1, so pair logits[:, :-1] with tokens[:, 1:]."),
        (-logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0], "take log_softmax of the logits first: the loss is "
         "-log p(token), and logits are not log-probabilities."),
        (-logits[:, :-1].softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0], "the loss is -log p, not -p: use "
         "log_softmax."),
        (-lp[:, :-1].gather(-1, tokens[:, :-1, None])[..., 0], "the target of position i is the *next* token, "
         "tokens[:, i + 1], not tokens[:, i]."),
    ]
    compare_tensor(name, actual, expected, mistakes=mistakes, what="the loss table", atol=1e-4, rtol=1e-4,
                    shape_doc=" ([batch, pos - 1]: one loss per predicted token)",
                    shape_hints={(): "return the per-token table [batch, pos - 1]; the training step takes its mean.",
                                 (b, n): "the last position has no next token: the table has pos - 1 columns "
                                 "(logits[:, :-1] against tokens[:, 1:]).",
                                 (b * (n - 1),): "keep the [batch, pos - 1] shape (no flattening)."})


# ------------------------------------------------------------------------------ batching
def _case_windows(seed, stream_len=40, batch_size=400, n_ctx=8):
    # Distinct ids in the stream, so that a window's position in the stream can be read back.
    return {"stream": torch.arange(1, stream_len + 1), "batch_size": batch_size, "n_ctx": n_ctx, "bos": 0,
            "generator": generator(seed), "_seed": seed}


def _ref_windows(case):
    return None  # checked by its properties


def _cmp_windows(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    stream, bsz, n_ctx, bos = case["stream"], case["batch_size"], case["n_ctx"], case["bos"]
    actual = as_tensor(name, actual, "the batch")
    if actual.shape != (bsz, n_ctx):
        hint = None
        if actual.shape == (bsz, n_ctx + 1):
            hint = "the BOS counts towards n_ctx: take n_ctx - 1 tokens from the stream, then prepend BOS."
        elif actual.shape == (bsz, n_ctx - 1):
            hint = "prepend the BOS: torch.cat([bos column, windows], dim=1)."
        fail(name, f"the batch has shape {list(actual.shape)}, expected [batch_size, n_ctx] = {[bsz, n_ctx]}.", hint)
    if actual.dtype != torch.long:
        fail(name, f"token ids must be integers (torch.long), got {actual.dtype}.")
    if not (actual[:, 0] == bos).all():
        fail(name, "not every window starts with BOS.", "column 0 of every window is the BOS id; the text follows.")
    body = actual[:, 1:]
    starts = body[:, 0] - 1  # the stream is 1..len, so the id is the index + 1
    idx = starts[:, None] + torch.arange(n_ctx - 1)[None, :]
    if ((idx < 0) | (idx >= stream.numel())).any() or not (stream[idx.clamp(0, stream.numel() - 1)] == body).all():
        fail(name, "a window is not a contiguous slice of the stream.", "draw one random *start* per window, "
              "then take stream[start : start + n_ctx - 1] (don't draw every token separately).")
    max_start = stream.numel() - (n_ctx - 1)
    got = set(starts.tolist())
    if len(got) == 1:
        fail(name, "every window starts at the same place in the stream.", "draw a random start per window "
              "(torch.randint(..., (batch_size,), generator=generator)).")
    if bsz >= 20 * (max_start + 1) and (min(got) != 0 or max(got) != max_start):  # every start drawn, surely
        fail(name, f"the windows start at {min(got)} … {max(got)} in the stream, but every start from 0 to "
             f"len(stream) - (n_ctx - 1) = {max_start} must be possible.",
             "torch.randint's upper bound is exclusive: draw starts from range(len(stream) - (n_ctx - 1) + 1).")
    if len(got) < 0.5 * min(max_start + 1, bsz) or min(got) > 0.2 * max_start or max(got) < 0.8 * max_start:
        fail(name, f"the windows start at only {len(got)} different places ({sorted(got)[:8]} ...).",
              "every start from 0 to len(stream) - (n_ctx - 1) must be possible (not only multiples of n_ctx).")


def _props_windows(name, call, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    args = lambda s: [case["stream"], case["batch_size"], case["n_ctx"], case["bos"], generator(s)]  # noqa: E731
    torch.manual_seed(1234)
    a = call(*args(case["_seed"] + 1))
    torch.manual_seed(4321)
    b = call(*args(case["_seed"] + 1))
    if not torch.equal(a, b):
        fail(name, "two calls with identically seeded generators gave different batches.",
              "pass generator=generator to torch.randint, so that training is reproducible.")


# --------------------------------------------------------------------------------- probe
def _case_probe(seed, n_examples=6, seg_len=5, n_repeats=3, pool_size=9, bos=0):
    g = generator(seed)
    pool = torch.randperm(40, generator=g)[:pool_size] + 1
    return {"n_examples": n_examples, "seg_len": seg_len, "n_repeats": n_repeats, "token_pool": pool, "bos": bos,
            "generator": g, "_seed": seed}


def _cmp_probe(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    n, L, r, pool, bos = case["n_examples"], case["seg_len"], case["n_repeats"], case["token_pool"], case["bos"]
    actual = as_tensor(name, actual, "the probe")
    if actual.shape != (n, 1 + L * r):
        hint = "BOS first, then the segment repeated n_repeats times." if actual.shape == (n, L * r) else None
        fail(name, f"the probe has shape {list(actual.shape)}, expected [n_examples, 1 + seg_len * n_repeats] = "
              f"{[n, 1 + L * r]}.", hint)
    if not (actual[:, 0] == bos).all():
        fail(name, "column 0 must be the BOS token in every example.")
    body = actual[:, 1:]
    if not torch.isin(body, pool).all():
        fail(name, "some tokens are not from token_pool.", "draw from token_pool (tokens seen in training), not "
              "from the whole vocabulary: an untrained embedding would measure something else than induction.")
    segs = body.reshape(n, r, L)
    if not (segs == segs[:, :1]).all():
        hint = None
        if (body.reshape(n, L, r) == body.reshape(n, L, r)[..., :1]).all():
            hint = "that is every token repeated in place (a a b b ...), repeat_interleave; repeat the *whole* " \
                   "segment: segment.repeat(1, n_repeats)."
        fail(name, "the copies of the segment are not identical.", hint or "build one segment per example, "
              "then concatenate n_repeats copies of it.")
    seg = segs[:, 0]
    if any(row.unique().numel() != L for row in seg):
        fail(name, "a segment contains the same token twice.", "draw without replacement (a random permutation of "
              "the pool, e.g. torch.randperm or argsort of torch.rand), so the token after each earlier "
              "occurrence is unique.")
    if n > 1 and (seg == seg[:1]).all():
        fail(name, "every example has the same segment.", "draw a fresh permutation for each example.")


def _props_probe(name, call, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    args = lambda s: [case["n_examples"], case["seg_len"], case["n_repeats"], case["token_pool"], case["bos"], generator(s)]  # noqa
    torch.manual_seed(1)
    a = call(*args(case["_seed"] + 5))
    torch.manual_seed(2)
    b = call(*args(case["_seed"] + 5))
    if not torch.equal(a, b):
        fail(name, "two calls with identically seeded generators gave different probes.",
              "pass generator=generator to every random call.")
    # Over many draws every token of the pool shows up (no favourite tokens).
    many = call(50, case["seg_len"], 1, case["token_pool"], case["bos"], generator(case["_seed"] + 9))
    seen = set(many[:, 1:].flatten().tolist())
    if seen != set(case["token_pool"].tolist()):
        fail(name, f"over 50 examples only {len(seen)} of the {case['token_pool'].numel()} pool tokens occur.",
              "draw uniformly from the whole pool.")


# ------------------------------------------------------------------------------ ICL score
def _case_icl(seed, batch=5, n_ctx=128):
    g = generator(seed)
    base = torch.linspace(4.0, 2.0, n_ctx - 1)
    return {"per_token_loss": base + torch.rand(batch, n_ctx - 1, generator=g)}


def _ref_icl(case):
    loss = case["per_token_loss"]
    early, late = metrics.icl_positions(loss.shape[1] + 1)
    return metrics.icl_score_from_losses(loss, early, late)


def _cmp_icl(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    loss = case["per_token_loss"]
    actual = as_float(name, actual, "the score")
    if math.isclose(actual, expected, rel_tol=1e-4, abs_tol=1e-5):
        return
    n_ctx = loss.shape[1] + 1
    e, l = metrics.icl_positions(n_ctx)
    m = loss.mean(0)
    wrong = [
        (-expected, "late minus early: the score is loss(late token) - loss(early token), negative when the model "
         "learns in context."),
        (float(m[l] - m[e]), "off by one: column i of the table is the loss of predicting token i + 1, so 'the loss "
         "at token n' is column n - 1."),
        (float(m[-1] - m[e - 1]), f"the late position is the scaled token 500 (here {l}), not the last column."),
        (float(m[min(l, int(500 * n_ctx / 512)) - 1] - m[max(1, int(50 * n_ctx / 512)) - 1]),
         "round the scaled positions to the nearest integer (round(), not int())."),
    ]
    for value, hint in wrong:
        if math.isclose(actual, value, rel_tol=1e-4, abs_tol=1e-5):
            fail(name, f"your score is {actual:.4f}, the reference is {expected:.4f}.", hint)
    fail(name, f"your score is {actual:.4f}, the reference is {expected:.4f}.",
          f"for a context of {n_ctx} tokens the positions are early={e}, late={l} (50 and 500 scaled by "
          f"n_ctx / 512): mean of column late - 1 minus mean of column early - 1.")


# ------------------------------------------------------------------------- repeat losses
def _case_repeat(seed, batch=3, seg_len=5, n_repeats=3):
    g = generator(seed)
    return {"per_token_loss": torch.rand(batch, seg_len * n_repeats, generator=g) * 4, "seg_len": seg_len}


def _ref_repeat(case):
    r = metrics.repeated_losses_from_per_token(case["per_token_loss"], case["seg_len"], bos=True)
    return (r.first, r.later)


def _cmp_repeat(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        fail(name, f"return a pair (first, later), got {type(actual).__name__}.")
    first, later = (as_float(name, a, w) for a, w in zip(actual, ("first", "later")))
    loss, L = case["per_token_loss"], case["seg_len"]
    m = loss.mean(0)
    if math.isclose(first, expected[0], rel_tol=1e-4, abs_tol=1e-5) and math.isclose(later, expected[1], rel_tol=1e-4, abs_tol=1e-5):
        return
    if math.isclose(first, expected[1], rel_tol=1e-4) and math.isclose(later, expected[0], rel_tol=1e-4):
        fail(name, "first and later are swapped.", "return (first, later).")
    if math.isclose(first, float(m[:L].mean()), rel_tol=1e-4) and not math.isclose(first, expected[0], rel_tol=1e-4):
        fail(name, f"first is {first:.4f}, the reference is {expected[0]:.4f}.", "the BOS shifts everything by one: "
              "column i is the prediction made at position i, which lies in copy (i - 1) // seg_len; the first "
              "copy is columns 0 .. seg_len (BOS included).")
    fail(name, f"(first, later) = ({first:.4f}, {later:.4f}), the reference is ({expected[0]:.4f}, {expected[1]:.4f}).",
          "group column i by copy (max(i - 1, 0)) // seg_len; first = mean of copy 0, later = mean of copies >= 1.")


# ------------------------------------------------------------------------------ the bump
def _case_bump(seed, n=12, rising=True, decoy=False):
    g = generator(seed)
    steps = sorted(set((torch.rand(n, generator=g) * 2000).long().tolist()) | {0})
    n = len(steps)
    jump = int(torch.randint(2, n - 2, (1,), generator=g))
    values = torch.rand(n, generator=g) * 0.05 + torch.linspace(0, 0.2, n)
    values[jump:] += 0.5
    values[jump + 1:] += 0.1  # a smaller second rise after the big one
    if decoy:  # a larger step the *other* way: an answer that ignores the direction picks it
        values[jump + 2:] -= 0.8
    if not rising:
        values = 3.0 - values
    return {"steps": steps, "values": values.tolist(), "rising": rising}


def _ref_bump(case):
    return case["steps"][curves.phase_change_index(case["values"], rising=case["rising"])]


def _cmp_bump(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    if not isinstance(actual, int) or isinstance(actual, bool):
        fail(name, f"return a step (an int), got {type(actual).__name__}.", "int(...) around a tensor index.")
    if actual == expected:
        return
    steps, values = case["steps"], torch.tensor(case["values"])
    i = steps.index(expected)
    hints = {
        i: "return the *step* (steps[i]), not the index i.",
        steps[i - 1]: "return the checkpoint *after* the jump (between steps[i-1] and steps[i], the value is "
                      "reached at steps[i]).",
        steps[int(values.argmax())]: "not where the series is largest, where it *changes* most between two "
                                     "consecutive checkpoints (diff).",
        steps[int(values.argmin())]: "not where the series is smallest, where it *changes* most between two "
                                     "consecutive checkpoints (diff).",
        steps[curves.phase_change_index(case["values"], rising=not case["rising"])]:
            "rising=False means the largest *drop* (a loss falls); rising=True the largest rise.",
    }
    if actual in hints:
        fail(name, f"you found step {actual}, the reference finds step {expected}.", hints[actual])
    raise ValuesDiffer(f"{name}: you found step {actual}, the reference finds step {expected}.\n  Hint: the bump is "
                       "where the series changes most between two consecutive checkpoints.")


# ---------------------------------------------------------------------- training step
def _case_step(seed, batch=2, n_pos=7, lr=0.1, **cfg):
    model = random_model(seed, n_ctx=max(12, n_pos), **cfg).train()
    g = generator(seed + 1)
    tokens = torch.randint(0, model.cfg.d_vocab, (batch, n_pos), generator=g)
    for p in model.parameters():  # stale gradients from an earlier step: zero_grad must clear them
        p.grad = torch.randn(p.shape, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return {"model": model, "optimizer": opt, "tokens": tokens, "_lr": lr}


def _ref_step(case):
    model = copy.deepcopy(case["model"])
    opt = torch.optim.SGD(model.parameters(), lr=case["_lr"])
    loss = train_step(model, opt, case["tokens"])
    return {"loss": loss, "params": {n: p.detach().clone() for n, p in model.named_parameters()}}


def _cmp_step(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    loss = as_float(name, actual, "the returned loss")
    model = case["model"]
    before = _ref_before(case)
    params = dict(model.named_parameters())
    if all(torch.equal(params[n].detach(), before[n]) for n in params):
        fail(name, "the parameters did not change.", "call optimizer.step() after loss.backward().")
    ok_params = all(torch.allclose(params[n].detach(), expected["params"][n], atol=1e-5, rtol=1e-4) for n in params)
    if not ok_params:
        fail(name, "the parameters after your step differ from one SGD step on the batch's mean loss.",
              "optimizer.zero_grad() first (gradients accumulate across steps), then loss.backward(), then "
              "optimizer.step().")
    if not math.isclose(loss, expected["loss"], rel_tol=1e-4, abs_tol=1e-5):
        fail(name, f"you returned {loss:.5f}, the loss of this batch before the update is {expected['loss']:.5f}.",
              "return the loss computed in this step's forward pass (loss.item()), before the update.")


def _ref_before(case):
    return case["_before"]


def _make_step_case(seed, **kw):
    case = _case_step(seed, **kw)
    case["_before"] = {n: p.detach().clone() for n, p in case["model"].named_parameters()}
    return case


# ------------------------------------------------------------------------- training loop
def _case_loop(seed, n_steps=4, batch=2, n_pos=7, lr=0.05, **cfg):
    model = random_model(seed, n_ctx=max(12, n_pos), **cfg).train()
    d_vocab = model.cfg.d_vocab

    def get_batch(step: int) -> torch.Tensor:
        return torch.randint(0, d_vocab, (batch, n_pos), generator=generator(seed * 1000 + step))

    return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=lr), "get_batch": get_batch,
            "n_steps": n_steps, "_lr": lr}


def _ref_loop(case):
    model = copy.deepcopy(case["model"])
    opt = torch.optim.SGD(model.parameters(), lr=case["_lr"])
    return [train_step(model, opt, case["get_batch"](s)) for s in range(case["n_steps"])]


def _cmp_loop(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, (list, tuple)):
        fail(name, f"return the list of losses, one per step, got {type(actual).__name__}.")
    if len(actual) != len(expected):
        fail(name, f"you returned {len(actual)} losses for n_steps={len(expected)}.",
              "one step (and one loss) per step index 0 .. n_steps - 1.")
    got = [as_float(name, a, f"loss {i}") for i, a in enumerate(actual)]
    if all(math.isclose(a, e, rel_tol=1e-4, abs_tol=1e-5) for a, e in zip(got, expected)):
        return
    if math.isclose(got[0], expected[0], rel_tol=1e-4) and len(set(round(x, 6) for x in got)) == len(got):
        fail(name, f"your losses {[round(x, 4) for x in got]} drift from the reference "
              f"{[round(x, 4) for x in expected]}.", "a new batch each step: get_batch(step) for step in "
              "range(n_steps), and one train_step per batch.")
    fail(name, f"your losses {[round(x, 4) for x in got]}, the reference {[round(x, 4) for x in expected]}.",
          "call get_batch(step) for step in range(n_steps) (a fresh batch each step) and train_step(model, "
          "optimizer, batch) on it; collect the returned losses.")


# ------------------------------------------------------------------------ registry
_PIECES = {"per_token_loss": lambda logits, tokens: cross_entropy_next_token(logits, tokens, per_token=True),
           "train_step": train_step}


def _ref_probe_fn(n_examples, seg_len, n_repeats, token_pool, bos, generator):
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return repeated_random_tokens(n_examples, seg_len, n_repeats, token_pool, bos, seed=seed)


def _ref_repeat_fn(per_token_loss, seg_len):
    r = metrics.repeated_losses_from_per_token(per_token_loss, seg_len, bos=True)
    return (r.first, r.later)


# What a demo cell uses in place of an exercise that is not answered yet (student signatures).
REFERENCES = dict(_PIECES, **{
    "sample_batch": sample_windows,
    "repeated_random_tokens": _ref_probe_fn,
    "train_loop": lambda model, optimizer, get_batch, n_steps: [train_step(model, optimizer, get_batch(s))
                                                               for s in range(n_steps)],
    "repeat_losses": _ref_repeat_fn,
    "icl_score": lambda loss: metrics.icl_score_from_losses(loss, *metrics.icl_positions(loss.shape[1] + 1)),
    "find_bump": lambda steps, values, rising=True: int(steps[curves.phase_change_index(values, rising=rising)]),
})
_NUMBERS = {"per_token_loss": 1, "sample_batch": 2, "repeated_random_tokens": 3, "train_step": 4, "train_loop": 5,
            "repeat_losses": 6, "icl_score": 7, "find_bump": 8}


_CHECKS = ChapterChecks([
    Exercise("per_token_loss", _case_loss, _ref_loss, _cmp_loss, [dict(seed=0), dict(seed=1, batch=1, n_pos=3)],
             localise=loc_per_token_loss),
    Exercise("sample_batch", _case_windows, _ref_windows, _cmp_windows, [dict(seed=0)], _props_windows),
    Exercise("repeated_random_tokens", _case_probe, lambda c: None, _cmp_probe,
             [dict(seed=0), dict(seed=1, n_examples=3, seg_len=4, n_repeats=2, pool_size=4)], _props_probe),
    Exercise("icl_score", _case_icl, _ref_icl, _cmp_icl, [dict(seed=0), dict(seed=1, n_ctx=100)]),
    Exercise("repeat_losses", _case_repeat, _ref_repeat, _cmp_repeat, [dict(seed=0), dict(seed=1, seg_len=3)]),
    Exercise("find_bump", _case_bump, _ref_bump, _cmp_bump, [dict(seed=0), dict(seed=1, rising=False)],
             localise=loc_find_bump),
    Exercise("train_step", _make_step_case, _ref_step, _cmp_step, [dict(seed=0)]),
    Exercise("train_loop", _case_loop, _ref_loop, _cmp_loop, [dict(seed=0)]),
], pieces=_PIECES, references=REFERENCES, numbers=_NUMBERS)
CHECKS = _CHECKS  # the grader's trusted check reads the exercises from here
or_reference = _CHECKS.or_reference

EXERCISES = _CHECKS.exercises
compare_with_reference = _CHECKS.compare_with_reference
run_visible_checks = _CHECKS.run_visible_checks

check_per_token_loss = _CHECKS.make_check("per_token_loss")
check_sample_batch = _CHECKS.make_check("sample_batch")
check_repeated_random_tokens = _CHECKS.make_check("repeated_random_tokens")
check_icl_score = _CHECKS.make_check("icl_score")
check_repeat_losses = _CHECKS.make_check("repeat_losses")
check_find_bump = _CHECKS.make_check("find_bump")
check_train_step = _CHECKS.make_check("train_step")
check_train_loop = _CHECKS.make_check("train_loop")
