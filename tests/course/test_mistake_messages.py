"""A mistake that is in no catalogue still gets a message that names what is wrong.

Every entry below is a wrong answer that ``graders/wrong_answers/`` does *not* list (the test
checks that it answers differently from every catalogued mistake of its exercise). Its visible
check must fail with a :class:`CheckFailed` that

- is not the generic "right shape but wrong values: the largest difference is at index ..."
  (``core.ValuesDiffer``), and
- contains ``names``: the property that the check found broken (rows sum to 1, the future, a
  hand-made case, which layer / head / sequence differs ...).

To add a chapter: list its mistakes in :data:`MISTAKES` under its id (``Mistake(exercise, fn,
names)``); the tests pick them up. Chapters without entries are skipped with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from chapter_harness import CHAPTERS
from induction_course import ablation as A
from induction_course import functional as F
from induction_course.course.checks.core import CheckFailed, ValuesDiffer
from induction_course.metrics import later_repeat_loss
from induction_course.model import hook_name


@dataclass(frozen=True)
class Mistake:
    exercise: str  # the function's name, as in the chapter's EXERCISES
    fn: Callable
    names: str  # a substring the message must contain: the property that fails

    def __str__(self) -> str:
        return f"{self.exercise}-{self.fn.__name__}"


# ------------------------------------------------------------------------------ chapter 1
def pattern_mask_off_by_one_the_other_way(scores):
    """triu(diagonal=2): the key right after the query stays visible."""
    n = scores.shape[-1]
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(2), float("-inf")).softmax(-1)


def pattern_with_temperature(scores):
    return F.attention_pattern(2 * scores)


def scores_keys_from_W_Q(x, W_Q, b_Q, W_K, b_K):
    q, k = x @ W_Q + b_Q, x @ W_Q + b_Q
    return q @ k.transpose(-1, -2) / math.sqrt(W_Q.shape[-1])


def scores_einsum_mixes_the_batch(x, W_Q, b_Q, W_K, b_K):
    q, k = x @ W_Q + b_Q, x @ W_K + b_K
    return torch.einsum("bqd,ckd->bqk", q, k) / math.sqrt(W_Q.shape[-1])


def forward_every_layer_reads_the_embeddings(tokens, model):
    x0 = F.embed(tokens, model.W_E) + F.pos_embed(tokens, model.W_pos)
    resid, patterns = x0, []
    for l in range(model.cfg.n_layers):
        out, p = F.attention_layer(x0, model.W_Q[l], model.b_Q[l], model.W_K[l], model.b_K[l],
                                   model.W_V[l], model.b_V[l], model.W_O[l], model.b_O[l])
        resid, patterns = resid + out, patterns + [p]
    return F.unembed(resid, model.W_U, model.b_U), patterns


def layer_loop_misses_the_last_head(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    out, pats = b_O.expand(x.shape[0], x.shape[1], -1).clone(), []
    for h in range(W_Q.shape[0]):
        p = F.attention_pattern(F.head_attn_scores(x, W_Q[h], b_Q[h], W_K[h], b_K[h]))
        pats.append(p)
        if h < W_Q.shape[0] - 1:
            out = out + F.head_output(p, x, W_V[h], b_V[h], W_O[h])
    return out, torch.stack(pats, 1)


def embed_reversed_positions(tokens, W_E):
    return W_E[tokens.flip(-1)]


def unembed_doubled(resid, W_U, b_U):
    return 2 * (resid @ W_U + b_U)


# ------------------------------------------------------------------------------ chapter 2
def loss_without_the_minus(logits, tokens):
    return logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]


def loss_softmax_over_positions(logits, tokens):
    return -logits.log_softmax(1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]


def bump_steepest_slope(steps, values, rising=True):
    s, v = torch.tensor(steps, dtype=torch.float64), torch.tensor(values, dtype=torch.float64)
    d = (v[1:] - v[:-1]) / (s[1:] - s[:-1])
    return int(steps[int((d if rising else -d).argmax()) + 1])


# ------------------------------------------------------------------------------ chapter 3
def previous_token_sum_not_mean(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1).mean(0)


def first_token_key_one(pattern):
    return pattern[..., 1:, 1].mean(dim=(0, 2))


def current_token_sums_the_batch(pattern):
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(-1).sum(0)


def induction_divides_by_targets(pattern, tokens):
    n = tokens.shape[1]
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]
    k, q = torch.arange(n)[None, :], torch.arange(n)[:, None]
    mask = (prev[:, None, :] == tokens[:, :, None]) & (k - 1 < q) & (k >= 1)
    return (pattern * mask[:, None]).sum(-1).sum(dim=(0, 2)) / mask.sum()


def cache_reads_layer_0_for_every_row(model, tokens, detector):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([detector(cache[hook_name("pattern", 0)]) for _ in range(model.cfg.n_layers)])


def hooks_only_on_layer_0(model, tokens, detector):
    rows = []
    model.run_with_hooks(tokens, fwd_hooks=[(hook_name("pattern", 0), lambda p, hook: rows.append(detector(p)))])
    return torch.stack(rows * model.cfg.n_layers)


# ------------------------------------------------------------------------------ chapter 4
def comp_brackets_missing(W_A, W_B):
    return torch.linalg.matrix_norm(W_A @ W_B) / torch.linalg.matrix_norm(W_A) * torch.linalg.matrix_norm(W_B)


def comp_nuclear_norm_above(W_A, W_B):
    fro = torch.linalg.matrix_norm
    return torch.linalg.matrix_norm(W_A @ W_B, ord="nuc") / (fro(W_A) * fro(W_B))


def kc_rank_counts_smaller_entries(E, W_QK1, W_OV0):
    C = (E @ W_QK1[:, None]) @ (E @ W_OV0[None]).transpose(-1, -2)
    diag = C.diagonal(dim1=-2, dim2=-1)
    top1 = (C.argmax(-1) == torch.arange(C.shape[-1])).double().mean(-1)
    return top1, (C < diag[..., None]).sum(-1).double().mean(-1)


def band_late_starts_a_column_late(per_token_loss, early, late):
    (e0, e1), (l0, l1) = early, late
    d = per_token_loss[:, l0:l1].mean(-1) - per_token_loss[:, e0 - 1:e1].mean(-1)
    return float(d.mean()), float(d.std() / math.sqrt(d.shape[0]))


# ------------------------------------------------------------------------------ chapter 5
def _z_hook(fn):
    def hook(z, hook):
        z = z.clone()
        fn(z)
        return z
    return hook


def zero_the_next_head(model, tokens, layer, head):
    h = (head + 1) % model.cfg.n_heads
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), _z_hook(lambda z: z[:, :, h].zero_()))])


def mean_read_from_layer_0(model, tokens, layer, head, reference_tokens):
    _, cache = model.run_with_cache(reference_tokens)
    m = cache[hook_name("z", 0)][:, :, head].mean(0)
    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), _z_hook(
        lambda z: z[:, :, head].copy_(m.expand_as(z[:, :, head]))))])


def mean_ablates_the_next_head(model, tokens, layer, head, reference_tokens):
    return A.mean_ablation(model, tokens, [(layer, (head + 1) % model.cfg.n_heads)], reference_tokens)


def table_heads_off_by_one(model, probe, seg_len):
    L, H = model.cfg.n_layers, model.cfg.n_heads
    clean = later_repeat_loss(model(probe), probe, seg_len)
    out = torch.empty(L, H, dtype=torch.float64)
    for l in range(L):
        for h in range(H):
            out[l, h] = later_repeat_loss(A.zero_ablation(model, probe, [(l, (h + 1) % H)]), probe, seg_len) - clean
    return out


MISTAKES: dict[str, list[Mistake]] = {
    "01_build_transformer": [
        Mistake("attention_pattern", pattern_mask_off_by_one_the_other_way, "(the future)"),
        Mistake("attention_pattern", pattern_with_temperature, "softmax(c * scores) with c = 2"),
        Mistake("head_attn_scores", scores_keys_from_W_Q, "symmetric"),
        Mistake("head_attn_scores", scores_einsum_mixes_the_batch, "changed your output for sequence 0"),
        Mistake("transformer_forward", forward_every_layer_reads_the_embeddings, "layer 1's pattern differs"),
        Mistake("attention_layer", layer_loop_misses_the_last_head, "missing from the sum"),
        Mistake("embed", embed_reversed_positions, "but its own token is"),
        Mistake("unembed", unembed_doubled, "2 times the reference"),
    ],
    "03_finding_heads": [
        Mistake("previous_token_score", previous_token_sum_not_mean, "should lie in [0, 1]"),
        Mistake("first_token_score", first_token_key_one, "hand-made pattern"),
        Mistake("current_token_score", current_token_sums_the_batch, "average over the batch"),
        Mistake("induction_score", induction_divides_by_targets, "should be 1"),
        Mistake("scores_with_cache", cache_reads_layer_0_for_every_row, "layer 1 differs: it equals the reference's layer 0"),
        Mistake("scores_with_hooks", hooks_only_on_layer_0, "layer 1 differs"),
    ],
    "02_training": [
        Mistake("per_token_loss", loss_without_the_minus, "the loss -log p(token) is >= 0"),
        Mistake("per_token_loss", loss_softmax_over_positions, "every loss should be log(d_vocab)"),
        Mistake("find_bump", bump_steepest_slope, "with unevenly spaced checkpoints"),
    ],
    "04_metrics": [
        Mistake("composition_score", comp_brackets_missing, "multiplying W_B by 3 changed your score"),
        Mistake("composition_score", comp_nuclear_norm_above, "W_A = W_B = I (4 x 4)"),
        Mistake("kcircuit_scores", kc_rank_counts_smaller_entries, "the diagonal is the largest entry of every row"),
        Mistake("icl_band_score", band_late_starts_a_column_late, "your late band is columns"),
    ],
    "05_ablations": [
        Mistake("zero_ablation", zero_the_next_head, "those of zero-ablating layer 0, head 2"),
        Mistake("mean_ablation", mean_read_from_layer_0, "you put the mean of layer 0, head 2's z"),
        Mistake("mean_ablation", mean_ablates_the_next_head, "those of mean-ablating layer 0, head 2"),
        Mistake("single_head_table", table_heads_off_by_one, "head 0 differs: it equals the reference's head 1"),
    ],
}

_OWNERS = {"02_training": "chapter 2's owner", "04_metrics": "chapter 4's owner", "05_ablations": "chapter 5's owner"}


def _params():
    out = []
    for ch in CHAPTERS:
        entries = MISTAKES.get(ch.id, [])
        if not entries:
            out.append(pytest.param(ch, None, id=f"{ch.id}-none", marks=pytest.mark.skip(
                reason=f"no non-catalogued mistakes listed yet for {ch.id} (owned by {_OWNERS.get(ch.id, 'its owner')})")))
        out += [pytest.param(ch, m, id=f"{ch.id}-{m}") for m in entries]
    return out


@pytest.mark.parametrize("chapter, mistake", _params())
def test_unknown_mistake_gets_a_message_naming_a_property(chapter, mistake):
    with pytest.raises(CheckFailed) as info:
        chapter.checks.run_visible_checks(mistake.exercise, mistake.fn)
    message = str(info.value)
    assert message.startswith(f"{mistake.exercise}: "), message
    assert not isinstance(info.value, ValuesDiffer), f"only the generic message:\n{message}"
    assert mistake.names in message, f"expected the message to name {mistake.names!r}; it was\n{message}"


def _answers(fn, case):
    with torch.no_grad():
        args = [v.clone() if isinstance(v, torch.Tensor) else v for k, v in case.items() if not k.startswith("_")]
        return fn(*args)


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-4, equal_nan=True)
    return False


@pytest.mark.parametrize("chapter, mistake", _params())
def test_the_mistake_is_not_in_the_catalogue(chapter, mistake):
    catalogued = [w for w in chapter.wrong_answers if w.function == mistake.exercise]
    assert catalogued, f"{mistake.exercise} has no catalogue entries"
    assert mistake.fn.__name__ not in {w.fn.__name__ for w in catalogued}
    ex = chapter.checks.EXERCISES[mistake.exercise]
    case = ex.make_case(**ex.visible_sizes[0])
    mine = _answers(mistake.fn, case)
    for w in catalogued:
        try:
            theirs = _answers(w.fn, case)
        except Exception:
            continue
        assert not _same(mine, theirs), f"{mistake} answers like the catalogued {w.fn.__name__} ({w.why})"


def test_generic_message_agrees_with_a_plural_subject():
    from induction_course.course.checks.core import compare_tensor

    x = torch.arange(6.0).reshape(2, 3)
    with pytest.raises(ValuesDiffer, match="the logits have the right shape but wrong values"):
        compare_tensor("transformer_forward", x + 1, x, what="the logits")
    with pytest.raises(ValuesDiffer, match="the pattern has the right shape"):
        compare_tensor("attention_pattern", x + 1, x, what="the pattern")


def test_property_helpers_name_the_first_broken_property():
    from induction_course.course.checks.core import causal_violation, first_failing_property, rows_sum_to_one

    pattern = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    assert rows_sum_to_one(pattern) is None and causal_violation(pattern) is None
    leaky = pattern.clone()
    leaky[1] = torch.tensor([0.2, 0.3, 0.5])
    assert "position 1 attends to position 2 (the future)" in causal_violation(leaky)
    with pytest.raises(CheckFailed, match=r"✓ rows sum to 1; ✗ position 1 attends to position 2 \(the future\)"):
        first_failing_property("attention_pattern", "your pattern", [
            ("rows sum to 1", lambda: rows_sum_to_one(leaky)), ("causal", lambda: causal_violation(leaky))])
