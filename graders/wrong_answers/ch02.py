"""Catalogue of plausible wrong answers to chapter 2 (02_training).

Same contract as ``ch01.py``: each entry has the student's signature and must make its grade
cell fail (``tests/course/test_chapters.py``); ``hint`` must appear in the visible checks' message.
"""

from __future__ import annotations

import torch

from induction_course.course.checks.catalogue import WrongAnswer, new_catalogue  # noqa: F401
from induction_course.training import train_step


WRONG_ANSWERS, wrong = new_catalogue()


# ------------------------------------------------------------------------------ loss
@wrong("ch2_loss", "per_token_loss", "shift the wrong way", hint="shifted the wrong way")
def loss_shift_wrong_way(logits, tokens):
    return -logits[:, 1:].log_softmax(-1).gather(-1, tokens[:, :-1, None])[..., 0]


@wrong("ch2_loss", "per_token_loss", "no shift: predicts the current token", hint="*next* token")
def loss_no_shift(logits, tokens):
    return -logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, :-1, None])[..., 0]


@wrong("ch2_loss", "per_token_loss", "raw logits instead of log-probabilities", hint="log_softmax")
def loss_raw_logits(logits, tokens):
    return -logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]


@wrong("ch2_loss", "per_token_loss", "returns the mean", hint="per-token table")
def loss_mean(logits, tokens):
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


# ------------------------------------------------------------------------- batching
@wrong("ch2_batch", "sample_batch", "n_ctx tokens plus a BOS", hint="BOS counts towards n_ctx")
def batch_too_long(stream, batch_size, n_ctx, bos, generator):
    starts = torch.randint(0, stream.numel() - n_ctx + 1, (batch_size,), generator=generator)
    w = stream[starts[:, None] + torch.arange(n_ctx)[None, :]]
    return torch.cat([torch.full((batch_size, 1), bos, dtype=torch.long), w], dim=1)


@wrong("ch2_batch", "sample_batch", "draws every token independently", hint="contiguous slice")
def batch_independent_tokens(stream, batch_size, n_ctx, bos, generator):
    idx = torch.randint(0, stream.numel(), (batch_size, n_ctx - 1), generator=generator)
    return torch.cat([torch.full((batch_size, 1), bos, dtype=torch.long), stream[idx]], dim=1)


@wrong("ch2_batch", "sample_batch", "ignores the generator", hint="generator=generator")
def batch_global_rng(stream, batch_size, n_ctx, bos, generator):
    starts = torch.randint(0, stream.numel() - n_ctx + 2, (batch_size,))
    w = stream[starts[:, None] + torch.arange(n_ctx - 1)[None, :]]
    return torch.cat([torch.full((batch_size, 1), bos, dtype=torch.long), w], dim=1)


@wrong("ch2_batch", "sample_batch", "non-overlapping chunks only", hint="not only multiples of n_ctx")
def batch_chunks(stream, batch_size, n_ctx, bos, generator):
    n_chunks = (stream.numel() - n_ctx + 2) // n_ctx
    starts = torch.randint(0, max(1, n_chunks), (batch_size,), generator=generator) * n_ctx
    w = stream[starts[:, None] + torch.arange(n_ctx - 1)[None, :]]
    return torch.cat([torch.full((batch_size, 1), bos, dtype=torch.long), w], dim=1)


@wrong("ch2_batch", "sample_batch", "no BOS", hint="prepend the BOS")
def batch_no_bos(stream, batch_size, n_ctx, bos, generator):
    starts = torch.randint(0, stream.numel() - n_ctx + 2, (batch_size,), generator=generator)
    return stream[starts[:, None] + torch.arange(n_ctx - 1)[None, :]]


# ---------------------------------------------------------------------------- probe
def _bos(n, bos):
    return torch.full((n, 1), bos, dtype=torch.long)


@wrong("ch2_probe", "repeated_random_tokens", "draws from the whole vocabulary", hint="token_pool")
def probe_whole_vocab(n_examples, seg_len, n_repeats, token_pool, bos, generator):
    seg = torch.rand(n_examples, 300, generator=generator).argsort(-1)[:, :seg_len]
    return torch.cat([_bos(n_examples, bos), seg.repeat(1, n_repeats)], dim=1)


@wrong("ch2_probe", "repeated_random_tokens", "draws with replacement", hint="without replacement")
def probe_with_replacement(n_examples, seg_len, n_repeats, token_pool, bos, generator):
    seg = token_pool[torch.randint(0, token_pool.numel(), (n_examples, seg_len), generator=generator)]
    return torch.cat([_bos(n_examples, bos), seg.repeat(1, n_repeats)], dim=1)


@wrong("ch2_probe", "repeated_random_tokens", "repeat_interleave", hint="repeat_interleave")
def probe_interleave(n_examples, seg_len, n_repeats, token_pool, bos, generator):
    seg = token_pool[torch.rand(n_examples, token_pool.numel(), generator=generator).argsort(-1)[:, :seg_len]]
    return torch.cat([_bos(n_examples, bos), seg.repeat_interleave(n_repeats, dim=1)], dim=1)


@wrong("ch2_probe", "repeated_random_tokens", "one segment for every example", hint="fresh permutation")
def probe_same_segment(n_examples, seg_len, n_repeats, token_pool, bos, generator):
    seg = token_pool[torch.randperm(token_pool.numel(), generator=generator)[:seg_len]]
    return torch.cat([_bos(n_examples, bos), seg.repeat(n_examples, n_repeats)], dim=1)


@wrong("ch2_probe", "repeated_random_tokens", "no BOS", hint="BOS first")
def probe_no_bos(n_examples, seg_len, n_repeats, token_pool, bos, generator):
    seg = token_pool[torch.rand(n_examples, token_pool.numel(), generator=generator).argsort(-1)[:, :seg_len]]
    return seg.repeat(1, n_repeats)


# ------------------------------------------------------------------------ train step
def _loss(model, tokens):
    return -model(tokens)[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None]).mean()


@wrong("ch2_train_step", "train_step", "forgets zero_grad", hint="zero_grad")
def step_no_zero_grad(model, optimizer, tokens):
    loss = _loss(model, tokens)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("ch2_train_step", "train_step", "forgets optimizer.step", hint="optimizer.step()")
def step_no_update(model, optimizer, tokens):
    optimizer.zero_grad()
    loss = _loss(model, tokens)
    loss.backward()
    return loss.item()


@wrong("ch2_train_step", "train_step", "returns the loss after the update", hint="before the update")
def step_loss_after(model, optimizer, tokens):
    optimizer.zero_grad()
    _loss(model, tokens).backward()
    optimizer.step()
    with torch.no_grad():
        return _loss(model, tokens).item()


@wrong("ch2_train_step", "train_step", "sums instead of averaging the loss", hint="mean loss")
def step_sum(model, optimizer, tokens):
    optimizer.zero_grad()
    loss = -model(tokens)[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None]).sum()
    loss.backward()
    optimizer.step()
    return loss.item() / tokens[:, 1:].numel()


# ------------------------------------------------------------------------ train loop
@wrong("ch2_train_loop", "train_loop", "one batch for every step", hint="a new batch each step")
def loop_same_batch(model, optimizer, get_batch, n_steps):
    batch = get_batch(0)
    return [train_step(model, optimizer, batch) for _ in range(n_steps)]  # noqa: F821 (notebook name)


@wrong("ch2_train_loop", "train_loop", "one step too many", hint="n_steps")
def loop_off_by_one(model, optimizer, get_batch, n_steps):
    return [train_step(model, optimizer, get_batch(s)) for s in range(n_steps + 1)]  # noqa: F821


@wrong("ch2_train_loop", "train_loop", "returns only the last loss", hint="list of losses")
def loop_last_only(model, optimizer, get_batch, n_steps):
    loss = None
    for s in range(n_steps):
        loss = train_step(model, optimizer, get_batch(s))  # noqa: F821
    return loss


# ---------------------------------------------------------------------- repeat losses
def _copies(loss, seg_len, offset=1):
    i = torch.arange(loss.shape[1])
    return (i - offset).clamp_min(0) // seg_len


@wrong("ch2_repeat_losses", "repeat_losses", "ignores the BOS offset", hint="BOS shifts everything by one")
def repeat_no_offset(per_token_loss, seg_len):
    m = per_token_loss.mean(0)
    c = _copies(per_token_loss, seg_len, offset=0)
    return float(m[c == 0].mean()), float(m[c >= 1].mean())


@wrong("ch2_repeat_losses", "repeat_losses", "swaps first and later", hint="swapped")
def repeat_swapped(per_token_loss, seg_len):
    m = per_token_loss.mean(0)
    c = _copies(per_token_loss, seg_len)
    return float(m[c >= 1].mean()), float(m[c == 0].mean())


@wrong("ch2_repeat_losses", "repeat_losses", "later = last copy only", hint="copies >= 1")
def repeat_last_copy(per_token_loss, seg_len):
    m = per_token_loss.mean(0)
    c = _copies(per_token_loss, seg_len)
    return float(m[c == 0].mean()), float(m[c == c.max()].mean())


# -------------------------------------------------------------------------- ICL score
def _pos(n_ctx):
    if n_ctx >= 512:
        return 50, 500
    return max(1, round(50 * n_ctx / 512)), min(n_ctx - 1, round(500 * n_ctx / 512))


@wrong("ch2_icl_score", "icl_score", "early minus late", hint="late minus early")
def icl_sign(per_token_loss):
    e, l = _pos(per_token_loss.shape[1] + 1)
    return float(per_token_loss[:, e - 1].mean() - per_token_loss[:, l - 1].mean())


@wrong("ch2_icl_score", "icl_score", "columns off by one", hint="off by one")
def icl_off_by_one(per_token_loss):
    e, l = _pos(per_token_loss.shape[1] + 1)
    return float(per_token_loss[:, l].mean() - per_token_loss[:, e].mean()) if l < per_token_loss.shape[1] else \
        float(per_token_loss[:, l - 2].mean() - per_token_loss[:, e].mean())


@wrong("ch2_icl_score", "icl_score", "last column as the late token", hint="not the last column")
def icl_last_column(per_token_loss):
    e, _ = _pos(per_token_loss.shape[1] + 1)
    return float(per_token_loss[:, -1].mean() - per_token_loss[:, e - 1].mean())


@wrong("ch2_icl_score", "icl_score", "truncates instead of rounding", hint="round()")
def icl_truncate(per_token_loss):
    n_ctx = per_token_loss.shape[1] + 1
    e, l = (50, 500) if n_ctx >= 512 else (max(1, int(50 * n_ctx / 512)), min(n_ctx - 1, int(500 * n_ctx / 512)))
    return float(per_token_loss[:, l - 1].mean() - per_token_loss[:, e - 1].mean())


# --------------------------------------------------------------------------- the bump
def _diffs(values, rising):
    x = torch.tensor(values, dtype=torch.float64)
    d = x[1:] - x[:-1]
    return d if rising else -d


@wrong("ch2_find_bump", "find_bump", "returns the index", hint="not the index")
def bump_index(steps, values, rising=True):
    return int(_diffs(values, rising).argmax()) + 1


@wrong("ch2_find_bump", "find_bump", "returns the step before the jump", hint="*after* the jump")
def bump_before(steps, values, rising=True):
    return int(steps[int(_diffs(values, rising).argmax())])


@wrong("ch2_find_bump", "find_bump", "where the series is largest", hint="changes* most")
def bump_argmax(steps, values, rising=True):
    return int(steps[int(torch.tensor(values).argmax())])


@wrong("ch2_find_bump", "find_bump", "ignores rising", hint="rising=False")
def bump_ignores_rising(steps, values, rising=True):
    return int(steps[int(_diffs(values, True).argmax()) + 1])


# ------------------------------------------------------------- the contract (issue 11)
@wrong("ch2_find_bump", "find_bump", "ignores `rising`: takes the largest change in either direction")
def bump_any_direction(steps, values, rising=True):
    x = torch.tensor(values, dtype=torch.float64)
    return int(steps[int((x[1:] - x[:-1]).abs().argmax()) + 1])


@wrong("ch2_batch", "sample_batch", "off by one: the last possible start is never drawn (randint's high is exclusive)")
def windows_miss_last_start(stream, batch_size, n_ctx, bos, generator):
    starts = torch.randint(0, stream.numel() - n_ctx + 1, (batch_size,), generator=generator)
    body = stream[starts[:, None] + torch.arange(n_ctx - 1)]
    return torch.cat([torch.full((batch_size, 1), bos, dtype=body.dtype), body], dim=1)


@wrong("ch2_icl_score", "icl_score", "returns a 0-d tensor where a Python float is asked for", hint="Python number")
def icl_as_tensor(per_token_loss):
    n_ctx = per_token_loss.shape[1] + 1
    early, late = max(1, round(50 * n_ctx / 512)), min(n_ctx - 1, round(500 * n_ctx / 512))
    return per_token_loss[:, late - 1].mean() - per_token_loss[:, early - 1].mean()


# Contract breaks only the grader's trusted check sees (see ch01.py).
TRUSTED_ONLY, trusted_only = new_catalogue()


@trusted_only("ch2_loss", "per_token_loss", "computes the loss under torch.no_grad(): training gets no gradient")
def loss_without_gradient(logits, tokens):
    with torch.no_grad():
        return -logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]
