"""Checks of chapter 3 (finding the heads): head detectors, score collection with hooks,
identifying the heads, and the K-composition circuit.

References are the package's own: :mod:`induction_course.metrics` (``current_token_score``,
``previous_token_score``, ``first_token_score``, ``duplicate_token_score``,
``prefix_matching_score``, ``classify_heads``), so what a student writes here is exactly what
later chapters import.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from induction_course import metrics
from induction_course.course.checks.ch03_localise import loc_collect, loc_pattern_detector, loc_token_detector
from induction_course.course.checks.core import (
    TL_BRIDGE_IMPORTS,
    ChapterChecks,
    CheckFailed,
    Exercise,
    as_tensor,
    compare_tensor,
    fail,
    generator,
    random_model,
)
from induction_course.model import hook_name
from induction_course.probes import duplicate_target_mask, induction_target_mask

__all__ = ["CheckFailed", "EXERCISES", "compare_with_reference", "run_visible_checks"]

BOS = 0


# ------------------------------------------------------------------------------ inputs
def random_pattern(g: torch.Generator, batch: int, n_heads: int, n_pos: int) -> torch.Tensor:
    """A causal attention pattern ``[batch, head, q, k]`` (rows sum to 1), far from uniform."""
    scores = torch.randn(batch, n_heads, n_pos, n_pos, generator=g) * 2.0
    future = torch.ones(n_pos, n_pos, dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


def random_tokens_with_repeats(g: torch.Generator, batch: int, n_pos: int, d_vocab: int = 7) -> torch.Tensor:
    """``[batch, n_pos]``: BOS, then tokens from a small vocabulary (so many repeat), with the
    first half of each row copied once so that induction targets exist too."""
    body = torch.randint(1, d_vocab, (batch, n_pos - 1), generator=g)
    half = (n_pos - 1) // 2
    if half >= 2:
        body[:, half: 2 * half] = body[:, :half]
    return torch.cat([torch.full((batch, 1), BOS, dtype=torch.long), body], dim=1)


def _case_pattern(seed, batch=2, n_heads=3, n_pos=6):
    return {"pattern": random_pattern(generator(seed), batch, n_heads, n_pos)}


def _case_pattern_tokens(seed, batch=2, n_heads=3, n_pos=9, d_vocab=5):
    g = generator(seed)
    pattern = random_pattern(g, batch, n_heads, n_pos)
    return {"pattern": pattern, "tokens": random_tokens_with_repeats(g, batch, n_pos, d_vocab)}


# ------------------------------------------------------------------ pattern detectors
_SCORE_SHAPE_DOC = " ([n_heads]: one score per head)"


def _score_shape_hints(pattern: torch.Tensor) -> dict:
    b, h, n, _ = pattern.shape
    return {
        (): "return one score *per head*: average over the batch and the query positions, keep the head axis.",
        (b, h): "average over the batch too: the score is [n_heads].",
        (b,): "the head axis is dim 1 of pattern[batch, head, q, k]: keep it, average over the others.",
        (n - 1,): "the head axis is dim 1 of pattern[batch, head, q, k]: keep it, average over the others.",
        (n,): "the head axis is dim 1 of pattern[batch, head, q, k]: keep it, average over the others.",
        (h, n - 1): "average over the query positions too.",
        (h, n): "average over the query positions too.",
        (b, h, n - 1): "average over the batch and the query positions.",
        (b, h, n): "average over the batch and the query positions.",
    }


def _cmp_score(mistakes_fn: Callable[[dict], list]) -> Callable:
    def compare(name, actual, expected, case):
        __tracebackhide__ = True  # IPython and pytest hide this frame
        actual = as_tensor(name, actual)
        compare_tensor(name, actual, expected, mistakes=mistakes_fn(case), shape_hints=_score_shape_hints(case["pattern"]),
                        shape_doc=_SCORE_SHAPE_DOC, atol=1e-5, rtol=1e-4, what="the score")

    return compare


def _mistakes_current(case):
    p = case["pattern"]
    return [
        (p.diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2)), "leave out query 0: it can only attend to itself, so it "
         "always adds a 1 that says nothing about the head. Average over q = 1 .. n-1."),
        (metrics.previous_token_score(p), "that is the previous-token score (offset -1): the current token is "
         "on the diagonal itself, pattern[..., q, q]."),
        (metrics.first_token_score(p), "that is attention to position 0: the current token is pattern[..., q, q]."),
    ]


def _mistakes_previous(case):
    p = case["pattern"]
    n = p.shape[-1]
    sub = p.diagonal(offset=-1, dim1=-2, dim2=-1)
    return [
        (sub.sum(-1).mean(0) / n, f"there are n-1 = {n - 1} queries with a previous token (q = 1 .. n-1): divide by "
         f"n-1, not n."),
        (torch.zeros(p.shape[1]), "your score is 0 for every head: pattern.diagonal(offset=+1) lies above the "
         "diagonal, where the causal mask put zeros. The previous token is *below* it: offset=-1 (key q-1 in row q)."),
        (metrics.current_token_score(p), "that is the current-token score (the diagonal): the previous token is "
         "key q-1, the first sub-diagonal (offset=-1)."),
        (p[..., 1:, :-1].mean(dim=(0, 2, 3)), "average only the sub-diagonal entries pattern[..., q, q-1], not the "
         "whole block."),
    ]


def _mistakes_first(case):
    p = case["pattern"]
    return [
        (p[..., :, 0].mean(dim=(0, 2)), "leave out query 0: it can only attend to itself (position 0), so it "
         "always adds a 1. Average pattern[..., q, 0] over q = 1 .. n-1."),
        (p[..., 0, 1:].mean(dim=(0, 2)), "pattern[..., 0, :] is the *row* of query 0; attention *to* position 0 "
         "is the column: pattern[..., q, 0] (the key axis is the last one)."),
        (p[..., 1:, -1].mean(dim=(0, 2)), "the first token is key 0, not key -1 (the last position)."),
    ]


def _mask_score(p: torch.Tensor, mask: torch.Tensor, all_queries: bool = False, reduce: str = "sum") -> torch.Tensor:
    m = mask[:, None].to(p.dtype)
    mass = (p * m).sum(-1) if reduce == "sum" else (p * m).amax(-1)
    if all_queries:
        return mass.mean(dim=(0, 2))
    valid = mask.any(-1)
    return (mass * valid[:, None]).sum(dim=(0, 2)) / valid.sum()


def _mistakes_duplicate(case):
    p, t = case["pattern"], case["tokens"]
    dup = duplicate_target_mask(t)
    n = t.shape[1]
    same = t[:, None, :] == t[:, :, None]
    with_self = same & (torch.arange(n)[None, :] <= torch.arange(n)[:, None])
    return [
        (_mask_score(p, with_self), "an earlier duplicate is a key k < q holding the query's token: leave out "
         "the query itself (k = q), or you measure current-token attention too."),
        (_mask_score(p, dup, all_queries=True), "average only over the queries that *have* an earlier "
         "duplicate; a query whose token is new cannot show the behaviour, so it is left out, not counted as 0."),
        (_mask_score(p, dup, reduce="max"), "sum the attention over *all* earlier occurrences of the token "
         "(a token may occur several times before)."),
        (_mask_score(p, induction_target_mask(t)), "that is the induction score (the token *after* an earlier "
         "occurrence); a duplicate-token head attends to the earlier occurrence itself."),
    ]


def _mistakes_induction(case):
    p, t = case["pattern"], case["tokens"]
    ind = induction_target_mask(t)
    n = t.shape[1]
    q_idx, k_idx = torch.arange(n)[:, None], torch.arange(n)[None, :]
    nxt = torch.full_like(t, -1)
    nxt[:, :-1] = t[:, 1:]
    before = (nxt[:, None, :] == t[:, :, None]) & (k_idx + 1 < q_idx)  # tokens[k+1] == tokens[q]
    prev = torch.full_like(t, -1)
    prev[:, 1:] = t[:, :-1]
    loose = (prev[:, None, :] == t[:, :, None]) & (k_idx >= 1) & (k_idx - 1 <= q_idx)
    return [
        (_mask_score(p, duplicate_target_mask(t)), "that is the duplicate-token score: an induction head attends "
         "to the token *after* the earlier occurrence, key k with tokens[k-1] == tokens[q]."),
        (_mask_score(p, before), "the target is the token *after* the earlier occurrence (tokens[k-1] == "
         "tokens[q]), not the one before it."),
        (_mask_score(p, ind, all_queries=True), "average only over the queries that have at least one induction "
         "target (an earlier occurrence strictly before the query: k - 1 < q); the others cannot show the "
         "behaviour and are left out, not counted as 0."),
        (_mask_score(p, loose), "the earlier occurrence must be strictly before the query (k - 1 < q): with "
         "k - 1 <= q every query counts its own next position (k = q + 1) as a target."),
    ]


# ----------------------------------------------------------------- collecting scores
class HooksOnly:
    """A model that refuses ``run_with_cache``: the hooks exercise must use ``run_with_hooks``."""

    def __init__(self, model):
        self._model = model
        self.cfg = model.cfg

    def run_with_cache(self, *args, **kwargs):
        raise CheckFailed("scores_with_hooks: this exercise is about hooks: use model.run_with_hooks(tokens, "
                          "fwd_hooks=[(name, hook_fn), ...]) instead of run_with_cache.\n  Hint: the hook function "
                          "receives (pattern, hook); compute detector(pattern) there and store it.")

    def run_with_hooks(self, *args, **kwargs):
        return self._model.run_with_hooks(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


_DETECTORS = [
    ("previous_token_score", lambda t: metrics.previous_token_score),
    ("first_token_score", lambda t: metrics.first_token_score),
    ("prefix_matching_score", lambda t: (lambda pattern: metrics.prefix_matching_score(pattern, t))),
    ("current_token_score", lambda t: metrics.current_token_score),
]


def _case_collect(seed, batch=2, n_pos=9, bridge=False, hooks_only=False, **cfg):
    model = random_model(seed, n_ctx=max(12, n_pos), **cfg)
    g = generator(seed + 7)
    tokens = random_tokens_with_repeats(g, batch, n_pos, d_vocab=min(9, model.cfg.d_vocab))
    _, make = _DETECTORS[seed % len(_DETECTORS)]
    runner = model
    if bridge:
        from induction_course.tl_convert import to_bridge

        runner = to_bridge(model)
    if hooks_only:
        runner = HooksOnly(runner)
    return {"model": runner, "tokens": tokens, "detector": make(tokens), "_model": model}


def _ref_collect(case):
    model, tokens = case["_model"], case["tokens"]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return torch.stack([case["detector"](cache[hook_name("pattern", l)]) for l in range(model.cfg.n_layers)])


def _cmp_collect(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    model, tokens = case["_model"], case["tokens"]
    L, H = expected.shape
    if isinstance(actual, (list, tuple)):
        fail(name, f"return one tensor [n_layers, n_heads], got a {type(actual).__name__}.",
              "torch.stack(per_layer_scores) stacks the layers on a new first axis.")
    actual = as_tensor(name, actual)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        det = case["detector"]
        mistakes = [(expected.flip(0), "the layers are in reverse order: row 0 is blocks.0.")]
        try:
            mistakes.append((torch.stack([det(cache[hook_name("pattern", l)][:1]) for l in range(L)]),
                             "use the whole batch, not its first sequence."))
        except Exception:
            pass
        try:
            mistakes.append((torch.stack([det(cache[hook_name("attn_scores", l)]) for l in range(L)]),
                             "read blocks.{layer}.attn.hook_pattern (the pattern after the softmax)."))
        except Exception:
            pass
    if not torch.isfinite(actual.detach()).all() and torch.isfinite(expected).all():
        fail(name, "your scores contain inf or NaN.", "read blocks.{layer}.attn.hook_pattern (after the softmax), "
              "not hook_attn_scores (masked with -inf before the softmax).")
    if actual.shape == expected.shape and L > 1 and (actual[: L - 1] == 0).all() and (expected[: L - 1] != 0).any():
        fail(name, "only the last layer has scores.", "one hook per layer, and bind the layer when you create "
              "the hook (a default argument `l=l` or functools.partial): a closure reads `l` when it runs, after "
              "the loop has ended.")
    compare_tensor(name, actual, expected, mistakes=mistakes, shape_doc=" ([n_layers, n_heads])", what="the scores",
                    shape_hints={(H,): "collect the scores of *every* layer: one row per blocks.{layer}.",
                                 (H, L): "rows are layers, columns heads: [n_layers, n_heads]."},
                    atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------ identifying
def _case_identify(seed, n_layers=2, n_heads=4, threshold=0.4):
    g = generator(seed)
    prev = torch.rand(n_layers, n_heads, generator=g)
    ind = torch.rand(n_layers, n_heads, generator=g)
    # A score exactly at the threshold is *not* above it; and strong heads in the "wrong" layers.
    prev[0, 0] = threshold
    ind[-1, -1] = threshold
    prev[-1, 1 % n_heads] = 0.9
    ind[0, 1 % n_heads] = 0.9
    prev[0, -1] = 0.95
    ind[-1, 0] = 0.95
    return {"prev_scores": prev, "induction_scores": ind, "threshold": threshold}


def _ref_identify(case):
    return metrics.classify_heads({"previous_token": case["prev_scores"], "prefix_matching": case["induction_scores"]},
                                  threshold=case["threshold"])


def _as_heads(name: str, key: str, value: Any) -> set:
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    try:
        heads = [tuple(int(x) for x in pair) for pair in value]
    except Exception:
        fail(name, f"result[{key!r}] should be a list of (layer, head) pairs, got {value!r}.")
    if any(len(h) != 2 for h in heads):
        fail(name, f"result[{key!r}] should hold (layer, head) pairs, got {value!r}.")
    return set(heads)


def _cmp_identify(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if not isinstance(actual, dict) or set(actual) != {"previous_token", "induction"}:
        fail(name, "return a dict with exactly the keys 'previous_token' and 'induction'.",
              f"got {type(actual).__name__}" + (f" with keys {sorted(actual)}" if isinstance(actual, dict) else ""))
    t = case["threshold"]
    L = case["prev_scores"].shape[0]
    for key, scores in (("previous_token", case["prev_scores"]), ("induction", case["induction_scores"])):
        got, want = _as_heads(name, key, actual[key]), set(expected[key])
        if got == want:
            continue
        if {(h, l) for l, h in got} == want:
            fail(name, f"result[{key!r}] has (head, layer) pairs.", "each pair is (layer, head), in that order.")
        at_t = {(l, h) for l, h in (scores == t).nonzero().tolist()}
        if got - want and (got - want) <= at_t:
            fail(name, f"result[{key!r}] includes a head whose score equals the threshold.",
                  "a head counts when its score is *above* the threshold (>, not >=).")
        layers = {l for l, _ in got - want}
        if key == "previous_token" and (L - 1) in layers:
            fail(name, "a head of the last layer is listed as a previous-token head.", "previous-token heads "
                  "matter only in layers *before* the last: no later head can read what a last-layer head writes.")
        if key == "induction" and 0 in layers:
            fail(name, "a layer-0 head is listed as an induction head.", "induction needs K-composition with an "
                  "earlier previous-token head, so only layers >= 1 can hold induction heads.")
        label = "previous-token" if key == "previous_token" else "induction"
        for l, h in sorted(got - want):
            fail(name, f"result[{key!r}] lists head ({l}, {h}), whose {label} score is {float(scores[l, h]):.3g}: "
                 + ("not above the threshold " + f"{t}." if float(scores[l, h]) <= t else "but it is in the wrong layer."),
                 f"list a head as {label} only when its {label} score (the "
                 f"{'first' if key == 'previous_token' else 'second'} argument) is above the threshold.")
        for l, h in sorted(want - got):
            fail(name, f"result[{key!r}] misses head ({l}, {h}), whose {label} score {float(scores[l, h]):.3g} is "
                 f"above the threshold {t}.", "check every head of the allowed layers.")
        fail(name, f"result[{key!r}] is {sorted(got)}, expected {sorted(want)}.",
              "previous-token heads: prev_scores above the threshold in layers before the last; induction heads: "
              "induction_scores above it in layers >= 1.")


# --------------------------------------------------------------- K-composition circuit
def _case_kcomp(seed, prev_head=0, ind_head=1, **cfg):
    return {"model": random_model(seed, **cfg), "prev_head": prev_head, "ind_head": ind_head}


def _ref_kcomp(case):
    return metrics.kcomp_token_circuit(case["model"], case["prev_head"], case["ind_head"])


def _cmp_kcomp(name, actual, expected, case):
    __tracebackhide__ = True  # IPython and pytest hide this frame
    m, p, i = case["model"], case["prev_head"], case["ind_head"]
    d_vocab, d_model = m.W_E.shape
    with torch.no_grad():
        mistakes = [
            (expected.T, "rows are query tokens, columns key tokens: W_E @ W_QK @ (W_E @ W_OV).T, not the transpose."),
            (m.W_E @ m.W_QK[1, i] @ m.W_OV[0, p] @ m.W_E.T, "transpose the key side as a whole: (W_E @ W_OV0).T "
             "= W_OV0.T @ W_E.T, not W_OV0 @ W_E.T."),
            (m.W_E @ m.W_QK[1, i] @ m.W_E.T, "the key side goes through the previous-token head: (W_E @ W_OV[0, "
             "prev_head]).T. Without it you get the direct QK circuit of the induction head."),
            (m.W_E @ m.W_QK[0, i] @ (m.W_E @ m.W_OV[1, p]).T, "QK from layer 1 (the induction head), OV from "
             "layer 0 (the previous-token head)."),
            (m.W_E @ m.W_QK[1, p] @ (m.W_E @ m.W_OV[0, i]).T, "prev_head indexes the layer-0 OV, ind_head the "
             "layer-1 QK: the heads are swapped."),
        ]
    compare_tensor(name, as_tensor(name, actual), expected, mistakes=mistakes, what="the circuit",
                    shape_doc=" ([d_vocab, d_vocab])", atol=1e-4, rtol=1e-4,
                    shape_hints={(d_model, d_model): "sandwich the d_model x d_model product between token "
                                 "embeddings: W_E on the left, (W_E @ W_OV).T on the right.",
                                 (d_vocab, d_model): "finish with the key side: @ (W_E @ W_OV[0, prev_head]).T."})


# ------------------------------------------------------------------------ registry
_CHECKS = ChapterChecks([
    Exercise("current_token_score", _case_pattern, lambda c: metrics.current_token_score(c["pattern"]),
             _cmp_score(_mistakes_current), [dict(seed=0), dict(seed=1, batch=1, n_heads=2, n_pos=4)],
             localise=loc_pattern_detector),
    Exercise("previous_token_score", _case_pattern, lambda c: metrics.previous_token_score(c["pattern"]),
             _cmp_score(_mistakes_previous), [dict(seed=0), dict(seed=1, batch=1, n_heads=2, n_pos=4)],
             localise=loc_pattern_detector),
    Exercise("first_token_score", _case_pattern, lambda c: metrics.first_token_score(c["pattern"]),
             _cmp_score(_mistakes_first), [dict(seed=0), dict(seed=1, batch=1, n_heads=2, n_pos=4)],
             localise=loc_pattern_detector),
    Exercise("duplicate_token_score", _case_pattern_tokens,
             lambda c: metrics.duplicate_token_score(c["pattern"], c["tokens"]),
             _cmp_score(_mistakes_duplicate), [dict(seed=0), dict(seed=1, batch=3, n_pos=11, d_vocab=4)],
             localise=loc_token_detector),
    Exercise("induction_score", _case_pattern_tokens,
             lambda c: metrics.prefix_matching_score(c["pattern"], c["tokens"]),
             _cmp_score(_mistakes_induction), [dict(seed=0), dict(seed=1, batch=3, n_pos=11, d_vocab=4)],
             localise=loc_token_detector),
    Exercise("scores_with_cache", _case_collect, _ref_collect, _cmp_collect, [dict(seed=0), dict(seed=2)],
             localise=loc_collect),
    Exercise("scores_with_hooks", lambda seed, **kw: _case_collect(seed, hooks_only=True, **kw), _ref_collect,
             _cmp_collect, [dict(seed=0), dict(seed=2)], localise=loc_collect),
    Exercise("identify_heads", _case_identify, _ref_identify, _cmp_identify,
             [dict(seed=0), dict(seed=1, n_layers=3, n_heads=2, threshold=0.5)]),
    Exercise("kcomp_token_circuit", _case_kcomp, _ref_kcomp, _cmp_kcomp, [dict(seed=0)]),
], pieces={
    # the detectors a student's scores_with_cache / scores_with_hooks may call (e.g. in a lambda)
    "current_token_score": metrics.current_token_score,
    "previous_token_score": metrics.previous_token_score,
    "first_token_score": metrics.first_token_score,
    "duplicate_token_score": metrics.duplicate_token_score,
    "induction_score": metrics.prefix_matching_score,
}, references={
    "scores_with_cache": lambda model, tokens, detector: _ref_collect(
        {"_model": model, "tokens": tokens, "detector": detector}),
    "scores_with_hooks": lambda model, tokens, detector: _ref_collect(
        {"_model": model, "tokens": tokens, "detector": detector}),
    "identify_heads": lambda prev_scores, induction_scores, threshold=0.4: _ref_identify(
        {"prev_scores": prev_scores, "induction_scores": induction_scores, "threshold": threshold}),
    "kcomp_token_circuit": metrics.kcomp_token_circuit,
}, heavy_imports=TL_BRIDGE_IMPORTS)  # the notebook's TransformerLens bridge (tl_convert.to_bridge)
CHECKS = _CHECKS  # the grader's trusted check reads the exercises from here

EXERCISES = _CHECKS.exercises
compare_with_reference = _CHECKS.compare_with_reference
run_visible_checks = _CHECKS.run_visible_checks
mine_or_reference = _CHECKS.mine_or_reference

check_current_token_score = _CHECKS.make_check("current_token_score")
check_previous_token_score = _CHECKS.make_check("previous_token_score")
check_first_token_score = _CHECKS.make_check("first_token_score")
check_duplicate_token_score = _CHECKS.make_check("duplicate_token_score")
check_induction_score = _CHECKS.make_check("induction_score")
check_scores_with_cache = _CHECKS.make_check("scores_with_cache")
check_scores_with_hooks = _CHECKS.make_check("scores_with_hooks")
check_identify_heads = _CHECKS.make_check("identify_heads")
check_kcomp_token_circuit = _CHECKS.make_check("kcomp_token_circuit")


def check_shipped_heads(result: Any) -> None:
    """The heads you named on the shipped model are the ones the reference finds on the paper's
    probe (25 random tokens x 4 copies, 10 sequences, seed 0: the probe of ``induction-course report``)."""
    __tracebackhide__ = True  # IPython and pytest hide this frame
    from induction_course import checkpoints
    from induction_course.probes import repeated_random_tokens

    model = checkpoints.load_model().eval()
    pool = torch.tensor(checkpoints.load_config()["token_pool"])
    probe = repeated_random_tokens(10, 25, 4, pool, BOS, seed=0)
    scores = metrics.head_scores(model, probe)
    expected = metrics.classify_heads(scores, threshold=0.4)
    _cmp_identify("identify_heads", result, expected, {  # the real tables, so that a message quotes real scores
        "threshold": 0.4, "prev_scores": scores["previous_token"], "induction_scores": scores["prefix_matching"]})
    print("✔ the shipped model: previous-token heads", sorted(expected["previous_token"]),
          "and induction heads", sorted(expected["induction"]))
