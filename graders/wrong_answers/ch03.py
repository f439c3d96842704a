"""Catalogue of plausible wrong answers to chapter 3 (03_finding_heads).

Same contract as ``ch01.py``: each entry has the student's signature and must make its grade
cell fail (``tests/course/test_chapters.py``); ``hint`` must appear in the visible checks' message.
"""

from __future__ import annotations

import torch

from induction_course.course.checks.catalogue import WrongAnswer, new_catalogue  # noqa: F401
from induction_course.model import hook_name


WRONG_ANSWERS, wrong = new_catalogue()


def _masked(pattern, mask, all_queries=False, reduce="sum"):
    m = mask[:, None].to(pattern.dtype)
    mass = (pattern * m).sum(-1) if reduce == "sum" else (pattern * m).amax(-1)
    if all_queries:
        return mass.mean(dim=(0, 2))
    valid = mask.any(-1)
    return (mass * valid[:, None]).sum(dim=(0, 2)) / valid.sum()


def _same(tokens):
    return tokens[:, None, :] == tokens[:, :, None]


def _prev_tokens(tokens):
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]
    return prev


# --------------------------------------------------------------------- current token
@wrong("ch3_current_token", "current_token_score", "keeps query 0", hint="leave out query 0")
def current_with_query0(pattern):
    return pattern.diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2))


@wrong("ch3_current_token", "current_token_score", "takes the sub-diagonal", hint="previous-token score")
def current_subdiagonal(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


@wrong("ch3_current_token", "current_token_score", "keeps the batch axis", hint="average over the batch")
def current_per_batch(pattern):
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(-1)


@wrong("ch3_current_token", "current_token_score", "averages everything into one number", hint="per head")
def current_scalar(pattern):
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean()


# -------------------------------------------------------------------- previous token
@wrong("ch3_previous_token", "previous_token_score", "diagonal above instead of below", hint="offset=-1")
def previous_above(pattern):
    return pattern.diagonal(offset=1, dim1=-2, dim2=-1).mean(dim=(0, 2))


@wrong("ch3_previous_token", "previous_token_score", "divides by n instead of n-1", hint="divide by n-1")
def previous_divide_by_n(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1).mean(0) / pattern.shape[-1]


@wrong("ch3_previous_token", "previous_token_score", "averages the whole lower block", hint="sub-diagonal")
def previous_block(pattern):
    return pattern[..., 1:, :-1].mean(dim=(0, 2, 3))


@wrong("ch3_previous_token", "previous_token_score", "averages over the head axis", hint="head axis")
def previous_wrong_axis(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 1))


# ----------------------------------------------------------------------- first token
@wrong("ch3_first_token", "first_token_score", "keeps query 0", hint="leave out query 0")
def first_with_query0(pattern):
    return pattern[..., :, 0].mean(dim=(0, 2))


@wrong("ch3_first_token", "first_token_score", "reads the row of query 0", hint="column")
def first_row(pattern):
    return pattern[..., 0, 1:].mean(dim=(0, 2))


@wrong("ch3_first_token", "first_token_score", "takes the last key", hint="key 0")
def first_last_key(pattern):
    return pattern[..., 1:, -1].mean(dim=(0, 2))


# ------------------------------------------------------------------- duplicate token
@wrong("ch3_duplicate_token", "duplicate_token_score", "counts the query itself as a duplicate", hint="k < q")
def duplicate_with_self(pattern, tokens):
    n = tokens.shape[1]
    return _masked(pattern, _same(tokens) & (torch.arange(n)[None, :] <= torch.arange(n)[:, None]))


@wrong("ch3_duplicate_token", "duplicate_token_score", "averages over all queries", hint="not counted as 0")
def duplicate_all_queries(pattern, tokens):
    n = tokens.shape[1]
    return _masked(pattern, _same(tokens) & (torch.arange(n)[None, :] < torch.arange(n)[:, None]), all_queries=True)


@wrong("ch3_duplicate_token", "duplicate_token_score", "max instead of sum over occurrences", hint="sum the attention")
def duplicate_max(pattern, tokens):
    n = tokens.shape[1]
    return _masked(pattern, _same(tokens) & (torch.arange(n)[None, :] < torch.arange(n)[:, None]), reduce="max")


@wrong("ch3_duplicate_token", "duplicate_token_score", "measures the induction target", hint="induction score")
def duplicate_is_induction(pattern, tokens):
    n = tokens.shape[1]
    k, q = torch.arange(n)[None, :], torch.arange(n)[:, None]
    return _masked(pattern, (_prev_tokens(tokens)[:, None, :] == tokens[:, :, None]) & (k - 1 < q) & (k >= 1))


# ------------------------------------------------------------------------- induction
@wrong("ch3_induction", "induction_score", "attends to the duplicate itself", hint="duplicate-token score")
def induction_is_duplicate(pattern, tokens):
    n = tokens.shape[1]
    return _masked(pattern, _same(tokens) & (torch.arange(n)[None, :] < torch.arange(n)[:, None]))


@wrong("ch3_induction", "induction_score", "the token before the earlier occurrence", hint="not the one before")
def induction_token_before(pattern, tokens):
    n = tokens.shape[1]
    nxt = torch.full_like(tokens, -1)
    nxt[:, :-1] = tokens[:, 1:]
    k, q = torch.arange(n)[None, :], torch.arange(n)[:, None]
    return _masked(pattern, (nxt[:, None, :] == tokens[:, :, None]) & (k + 1 < q))


@wrong("ch3_induction", "induction_score", "averages over all queries", hint="at least one induction target")
def induction_all_queries(pattern, tokens):
    n = tokens.shape[1]
    k, q = torch.arange(n)[None, :], torch.arange(n)[:, None]
    mask = (_prev_tokens(tokens)[:, None, :] == tokens[:, :, None]) & (k - 1 < q) & (k >= 1)
    return _masked(pattern, mask, all_queries=True)


@wrong("ch3_induction", "induction_score", "k - 1 <= q counts the query's own next position", hint="strictly before")
def induction_loose(pattern, tokens):
    n = tokens.shape[1]
    k, q = torch.arange(n)[None, :], torch.arange(n)[:, None]
    return _masked(pattern, (_prev_tokens(tokens)[:, None, :] == tokens[:, :, None]) & (k - 1 <= q) & (k >= 1))


# ------------------------------------------------------------------ scores with cache
@wrong("ch3_scores_with_cache", "scores_with_cache", "scores only layer 0", hint="every* layer")
def cache_layer0_only(model, tokens, detector):
    _, cache = model.run_with_cache(tokens)
    return detector(cache[hook_name("pattern", 0)])


@wrong("ch3_scores_with_cache", "scores_with_cache", "layers in reverse order", hint="reverse order")
def cache_reversed(model, tokens, detector):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([detector(cache[hook_name("pattern", l)]) for l in reversed(range(model.cfg.n_layers))])


@wrong("ch3_scores_with_cache", "scores_with_cache", "reads hook_attn_scores", hint="hook_pattern")
def cache_attn_scores(model, tokens, detector):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([detector(cache[hook_name("attn_scores", l)]) for l in range(model.cfg.n_layers)])


@wrong("ch3_scores_with_cache", "scores_with_cache", "returns a list", hint="torch.stack")
def cache_list(model, tokens, detector):
    _, cache = model.run_with_cache(tokens)
    return [detector(cache[hook_name("pattern", l)]) for l in range(model.cfg.n_layers)]


# ------------------------------------------------------------------ scores with hooks
@wrong("ch3_scores_with_hooks", "scores_with_hooks", "uses run_with_cache", hint="run_with_hooks")
def hooks_via_cache(model, tokens, detector):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([detector(cache[hook_name("pattern", l)]) for l in range(model.cfg.n_layers)])


@wrong("ch3_scores_with_hooks", "scores_with_hooks", "late binding: every hook writes the last layer's row",
       hint="only the last layer")
def hooks_late_binding(model, tokens, detector):
    L, H = model.cfg.n_layers, model.cfg.n_heads
    out = torch.zeros(L, H)
    hooks = []
    for l in range(L):
        def fn(pattern, hook):
            out[l] = detector(pattern)  # `l` is read when the hook runs: always the last layer
        hooks.append((hook_name("pattern", l), fn))
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    return out


@wrong("ch3_scores_with_hooks", "scores_with_hooks", "hooks the pre-softmax scores", hint="hook_pattern")
def hooks_attn_scores(model, tokens, detector):
    rows = []
    hooks = [(hook_name("attn_scores", l), lambda s, hook: rows.append(detector(s))) for l in range(model.cfg.n_layers)]
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    return torch.stack(rows)


@wrong("ch3_scores_with_hooks", "scores_with_hooks", "stacks the layers as columns [n_heads, n_layers]")
def hooks_transposed(model, tokens, detector):
    rows = []
    hooks = [(hook_name("pattern", l), lambda p, hook: rows.append(detector(p))) for l in range(model.cfg.n_layers)]
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    return torch.stack(rows, dim=1)


# -------------------------------------------------------------------- identify heads
@wrong("ch3_identify_heads", "identify_heads", "ignores which layer a head is in", hint="last layer")
def identify_any_layer(prev_scores, induction_scores, threshold=0.4):
    return {"previous_token": [tuple(x) for x in (prev_scores > threshold).nonzero().tolist()],
            "induction": [tuple(x) for x in (induction_scores > threshold).nonzero().tolist()]}


@wrong("ch3_identify_heads", "identify_heads", "uses >= threshold", hint="(>, not >=)")
def identify_ge(prev_scores, induction_scores, threshold=0.4):
    L = prev_scores.shape[0]
    return {"previous_token": [(l, h) for l, h in (prev_scores >= threshold).nonzero().tolist() if l < L - 1],
            "induction": [(l, h) for l, h in (induction_scores >= threshold).nonzero().tolist() if l >= 1]}


@wrong("ch3_identify_heads", "identify_heads", "(head, layer) pairs", hint="(layer, head)")
def identify_swapped(prev_scores, induction_scores, threshold=0.4):
    L = prev_scores.shape[0]
    return {"previous_token": [(h, l) for l, h in (prev_scores > threshold).nonzero().tolist() if l < L - 1],
            "induction": [(h, l) for l, h in (induction_scores > threshold).nonzero().tolist() if l >= 1]}


@wrong("ch3_identify_heads", "identify_heads", "wrong keys", hint="'previous_token' and 'induction'")
def identify_wrong_keys(prev_scores, induction_scores, threshold=0.4):
    L = prev_scores.shape[0]
    return {"prev": [(l, h) for l, h in (prev_scores > threshold).nonzero().tolist() if l < L - 1],
            "induction": [(l, h) for l, h in (induction_scores > threshold).nonzero().tolist() if l >= 1]}


# ------------------------------------------------------------------ K-composition circuit
@wrong("ch3_kcomp_circuit", "kcomp_token_circuit", "transposed result", hint="not the transpose")
def kcomp_transposed(model, prev_head, ind_head):
    with torch.no_grad():
        return (model.W_E @ model.W_QK[1, ind_head] @ (model.W_E @ model.W_OV[0, prev_head]).T).T


@wrong("ch3_kcomp_circuit", "kcomp_token_circuit", "transposes OV alone", hint="transpose the key side as a whole")
def kcomp_ov_not_transposed(model, prev_head, ind_head):
    with torch.no_grad():
        return model.W_E @ model.W_QK[1, ind_head] @ model.W_OV[0, prev_head] @ model.W_E.T


@wrong("ch3_kcomp_circuit", "kcomp_token_circuit", "leaves out the previous-token head", hint="direct QK circuit")
def kcomp_direct(model, prev_head, ind_head):
    with torch.no_grad():
        return model.W_E @ model.W_QK[1, ind_head] @ model.W_E.T


@wrong("ch3_kcomp_circuit", "kcomp_token_circuit", "swaps the layers", hint="QK from layer 1")
def kcomp_layers_swapped(model, prev_head, ind_head):
    with torch.no_grad():
        return model.W_E @ model.W_QK[0, ind_head] @ (model.W_E @ model.W_OV[1, prev_head]).T


@wrong("ch3_kcomp_circuit", "kcomp_token_circuit", "swaps the heads", hint="heads are swapped")
def kcomp_heads_swapped(model, prev_head, ind_head):
    with torch.no_grad():
        return model.W_E @ model.W_QK[1, prev_head] @ (model.W_E @ model.W_OV[0, ind_head]).T


# ------------------------------------------------------------- the contract (issue 11)
@wrong("ch3_previous_token", "previous_token_score", "renormalises the pattern in place before reading it",
       hint="in place")
def previous_renormalised_in_place(pattern):
    pattern /= pattern.sum(-1, keepdim=True)
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


TRUSTED_ONLY, trusted_only = new_catalogue()  # contract breaks only the trusted check sees (see ch01.py)
