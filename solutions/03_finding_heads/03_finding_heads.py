# ---
# jupyter:
#   induction_course:
#     chapter: 03_finding_heads
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% nbgrader={"grade_id": "ch3_runtime_setup", "locked": true}
# Setup: run this cell first. In Google Colab it installs the course package and turns on
# interactive widgets; anywhere else (JupyterLab, Binder, nbgrader) it installs nothing.
# DEVICE is the GPU when the runtime has one: training and the checkpoint sweeps use it.
import sys

if "google.colab" in sys.modules:
    import glob
    import importlib.util
    import os
    import subprocess

    if importlib.util.find_spec("induction_course") is None:
        wheels = sorted(glob.glob("induction_course-*.whl") + glob.glob("/content/induction_course-*.whl"))
        source = wheels[-1] + "[colab]" if wheels else None  # no published address yet
        if source is None:
            raise SystemExit("This course has no published address yet, so Colab cannot install it: upload the course wheel (induction_course-*.whl, from your instructor) to this session's files and run this cell again, or ask your instructor to publish the course (induction-course links).")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True,
                       env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
from induction_course.course.notebook.runtime import setup_runtime

DEVICE = setup_runtime()

# %% [markdown]
# # Chapter 3 — Finding the heads
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/induction-heads-course/induction-heads/blob/main/chapters/03_finding_heads/03_finding_heads.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/induction-heads-course/induction-heads/main?urlpath=lab/tree/chapters/03_finding_heads/03_finding_heads.ipynb)
#
# Chapter 2 trained a two-layer attention-only model and saw its loss bump: somewhere in the
# model, an **induction circuit** formed. This chapter finds it. We look at attention patterns,
# learn to read them out of a model with **hooks**, and turn "this head looks like it attends to
# the previous token" into numbers: one **detector** per kind of head, scoring every head at
# once. Then we name the previous-token and induction heads of the trained model and check *why*
# they work together, with the QK circuit of the induction head after **K-composition**
# (Elhage et al. 2021).
#
# **How this notebook works.** As in chapter 1: each exercise says what it teaches, its
# difficulty (★ … ★★★, and ●○○○○ … ●●●●● beside its importance), its time, the shapes in and
# out, and the output a correct answer prints. Stuck? Open the hints one at a time (idea →
# the function to use → the shape of the line); none of them is the solution. Fill in `# YOUR CODE HERE`, run the
# check below it; hidden tests compare your function with the package's reference on fresh
# random inputs when you submit. Everything here uses the *shipped* trained model
# (`checkpoints.load_model()`), so it does not depend on your chapter-2 run; it runs in about a
# minute on a laptop CPU.
#
# | Exercise | Points | Difficulty | Time |
# |---|---|---|---|
# | 1. Current-token detector | 1 | ★ | 5 min |
# | 2. Previous-token detector | 1 | ★ | 5 min |
# | 3. First-token (BOS) detector | 1 | ★ | 5 min |
# | 4. Duplicate-token detector | 2 | ★★ | 15 min |
# | 5. Induction detector | 2 | ★★ | 15 min |
# | 6. Every head's score, from a cache | 2 | ★★ | 10 min |
# | 7. Every head's score, with hooks | 2 | ★★ | 15 min |
# | 8. Naming the heads | 2 | ★★ | 10 min |
# | 9. The QK circuit after K-composition | 2 | ★★★ | 20 min |
# | W1. Written: why a detector is not yet proof (graded by hand) | 2 | ★★ | 10 min |
# | W2. Written: how the induction head knows where to attend (graded by hand) | 2 | ★★ | 10 min |

# %% nbgrader={"grade_id": "ch3_setup", "locked": true}
import os

import matplotlib.pyplot as plt
import torch

from induction_course import checkpoints, metrics
from induction_course.course.notebook import viz
from induction_course.course.checks import ch03 as checks
from induction_course.model import hook_name
from induction_course.probes import repeated_random_tokens

AUTOGRADING = bool(os.environ.get("NBGRADER_EXECUTION"))
torch.manual_seed(0)

model = checkpoints.load_model().eval()  # the shipped run's final checkpoint (step 1500)
cfg = model.cfg
eval_set = checkpoints.load_eval_set()
BOS = eval_set.bos
pool = torch.tensor(checkpoints.load_config()["token_pool"])  # tokens that occur in training

text = eval_set.text[:8, :64]  # [8, 64] held-out Python source, BOS first
probe = repeated_random_tokens(8, 25, 2, pool, BOS, seed=0)  # [8, 51]: BOS, 25 random tokens, the same 25 again
paper_probe = repeated_random_tokens(10, 25, 4, pool, BOS, seed=0)  # [10, 101]: 4 copies, the report's probe (exercise 8)
print(cfg)
print("text", list(text.shape), "probe", list(probe.shape))
print("|".join(viz.token_labels(text[0]))[:200])  # one label per token, bytes escaped

# %% [markdown]
# ## Looking at attention
#
# A head's **attention pattern** `pattern[q, k]` says how much the query at position `q` reads
# from the key at position `k` (rows sum to 1; the causal mask keeps `k <= q`). We cache every
# pattern of one forward pass and draw them with
# [circuitsvis](https://github.com/TransformerLensOrg/CircuitsVis) (hover a token to see where it
# looks). First on natural text, then on a repeated random sequence.
#
# What to look for: in layer 0, heads whose pattern is a thin line *just below the diagonal*
# (each token reads the one before it). In layer 1 on the repeated sequence, a stripe parallel
# to the diagonal, 25 tokens back, one to the right: the second copy of a token attends to the
# token that *followed* its first copy.

# %%
_, cache = model.run_with_cache(text[:1])
labels = viz.token_labels(text[0])
viz.attention_view(cache[hook_name("pattern", 0)][0], labels, [f"0.{h}" for h in range(cfg.n_heads)])

# %%
_, cache = model.run_with_cache(probe[:1])
viz.attention_view(cache[hook_name("pattern", 1)][0], viz.token_labels(probe[0]),
                   [f"1.{h}" for h in range(cfg.n_heads)])

# %% [markdown]
# ## Hooks: reading (and changing) what a model computes
#
# Every intermediate activation passes a named **hook point** (TransformerLens names):
# `hook_embed`, `blocks.{l}.attn.hook_q`, `…hook_k`, `…hook_v`, `…hook_attn_scores`,
# `…hook_pattern` (`[batch, head, q, k]`), `…hook_z`, `blocks.{l}.hook_resid_post`, …
# Build them with `hook_name` (from `induction_course.model`), the course's
# `utils.get_act_name`: `hook_name("pattern", 1) == "blocks.1.attn.hook_pattern"`,
# `hook_name("z", 0) == "blocks.0.attn.hook_z"`, `hook_name("embed") == "hook_embed"`.
#
# - `logits, cache = model.run_with_cache(tokens)` stores every activation in `cache[name]`;
#   `names_filter=lambda name: ...` keeps only the ones you need.
# - `model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])` calls `fn(activation, hook)` as the
#   activation passes; if `fn` returns a tensor, it replaces the activation (chapter 5 ablates
#   heads this way). Nothing is stored unless you store it.
#
# Our model and a TransformerLens 4 `TransformerBridge` share these names and methods, so the
# same code reads either. The bridge has more hook points (one per sub-module):

# %%
from induction_course.tl_convert import to_bridge

bridge = to_bridge(model)
_, bcache = bridge.run_with_cache(probe[:2])
print([k for k in bcache.keys() if k.startswith("blocks.0.attn.hook_")])
print("same pattern as our model:", torch.allclose(bcache[hook_name("pattern", 1)],
                                                   model.run_with_cache(probe[:2])[1][hook_name("pattern", 1)],
                                                   atol=1e-5))

# %% [markdown]
# (One trap: in TransformerLens 4.3's native bridge `hook_attn_scores` carries the pattern
# *after* the softmax, while in our model it holds the masked, scaled scores before it. Read
# patterns from `hook_pattern`.)
#
# ## Detectors
#
# A detector turns a pattern into one number per head, so that "which heads do X" becomes a
# table. Each takes a pattern `[batch, head, q, k]` of one layer and returns `[head]`; all heads
# are scored at once (no loop over heads).

# %% [markdown]
# ## Exercise 1 — Current-token detector (1 point, ★, 5 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●○○○ · about 5 minutes
#
# **Goal:** the mean attention of each query to *itself*, `pattern[..., q, q]`, averaged over
# the batch and the queries `q = 1 … n-1`. Query 0 is left out: under the causal mask it can
# only attend to itself, which says nothing about the head.
#
# - in: `pattern [batch, head, q, k]`
# - out: `[head]`, values in `[0, 1]`; a head that always attends to itself scores 1.
#
# **Expected output**: `layer 0 on the probe: tensor([0.0200, 0.0509, 0.0681, 0.0019])` (each within ±1e-3): no head of
# layer 0 reads its own token much.
#
# <details><summary>Hint 1</summary>
#
# The entries `pattern[b, h, q, q]` form the main diagonal of each `[q, k]` matrix; you want its mean over `b` and over `q >= 1`, for every `h`.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `Tensor.diagonal(dim1=-2, dim2=-1)` returns the diagonal as a new last axis: `[batch, head, n]`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Slice away query 0 on that last axis, then `.mean(dim=(0, 2))`: one line.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_current_token_code"}
def current_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention to the current token (queries 1..n-1), per head: [head]."""
    ### BEGIN SOLUTION
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, 2))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_current_token", "points": 1}
checks.check_current_token_score(current_token_score)
print("layer 0 on the probe:", current_token_score(model.run_with_cache(probe)[1][hook_name("pattern", 0)]))
### BEGIN HIDDEN TESTS
for seed in (3101, 3102):
    checks.compare_with_reference("current_token_score", current_token_score, seed=seed, batch=3, n_heads=4, n_pos=9)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2 — Previous-token detector (1 point, ★, 5 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●● · about 5 minutes
#
# **Goal:** the mean attention from each query `q >= 1` to the key `q - 1` (the first
# sub-diagonal). This is the first half of the induction circuit.
#
# - in: `pattern [batch, head, q, k]`
# - out: `[head]` in `[0, 1]`. On the shipped model's layer 0 two heads score above 0.7.
#
# **Expected output**: `layer 0 on the probe: tensor([0.7562, 0.0740, 0.0850, 0.9758])` (±1e-3): heads 0.0 and 0.3 are
# previous-token heads, 0.3 an almost pure one (0.98), 0.0 a weaker one (0.76).
#
# <details><summary>Hint 1</summary>
#
# Row `q` of the pattern puts weight `pattern[..., q, q-1]` on the previous token: these entries lie on the line just *below* the diagonal.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `diagonal` takes an `offset`; negative offsets go below the main diagonal. That line has `n - 1` entries, one per query `q = 1 … n-1`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Average it over the batch and over its own last axis, keeping the head axis.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_previous_token_code"}
def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from query q to key q-1, per head: [head]."""
    ### BEGIN SOLUTION
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_previous_token", "points": 1}
checks.check_previous_token_score(previous_token_score)
print("layer 0 on the probe:", previous_token_score(model.run_with_cache(probe)[1][hook_name("pattern", 0)]))
### BEGIN HIDDEN TESTS
for seed in (3201, 3202):
    checks.compare_with_reference("previous_token_score", previous_token_score, seed=seed, batch=3, n_heads=4, n_pos=9)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3 — First-token (BOS) detector (1 point, ★, 5 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●○○○ · about 5 minutes
#
# **Goal:** the mean attention from each query `q >= 1` to position 0, which holds BOS. A head
# with nothing useful to do "rests" there; high scores mean a head is mostly idle on this input.
#
# - in: `pattern [batch, head, q, k]`
# - out: `[head]` in `[0, 1]`.
#
# **Expected output**: `layer 1 on the probe: tensor([0.6610, 0.2985, 0.3109, 0.2710])` (±1e-3): head 1.0 rests on BOS
# more than twice as much as the other layer-1 heads.
#
# <details><summary>Hint 1</summary>
#
# Attention *to* position 0 is a column of `pattern[q, k]` (the key axis is the last one), not a row.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# Index the key axis with `0` and the query axis with `1:` (leave query 0 out).
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# What remains is `[batch, head, n - 1]`: average over axes 0 and 2.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_first_token_code"}
def first_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from queries 1..n-1 to key 0, per head: [head]."""
    ### BEGIN SOLUTION
    return pattern[..., 1:, 0].mean(dim=(0, 2))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_first_token", "points": 1}
checks.check_first_token_score(first_token_score)
print("layer 1 on the probe:", first_token_score(model.run_with_cache(probe)[1][hook_name("pattern", 1)]))
### BEGIN HIDDEN TESTS
for seed in (3301, 3302):
    checks.compare_with_reference("first_token_score", first_token_score, seed=seed, batch=3, n_heads=4, n_pos=9)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 — Duplicate-token detector (2 points, ★★, 15 min)
#
# **Difficulty** ●●●○○ · **Importance** ●●○○○ · about 15 minutes
#
# **Goal:** how much a head attends to *earlier occurrences of the query's own token*. For each
# query with at least one earlier duplicate (key `k < q` with `tokens[k] == tokens[q]`), sum its
# attention on those keys; average over such queries and the batch. Queries whose token is new
# are left out (they cannot show the behaviour).
#
# - in: `pattern [batch, head, q, k]`, `tokens [batch, pos]`
# - out: `[head]` in `[0, 1]`.
#
# Build a boolean mask `[batch, q, k]` by broadcasting `tokens[:, None, :]` against
# `tokens[:, :, None]`, keep `k < q`, then weight the pattern with it.
#
# **Expected output**: `layer 0 on the probe: tensor([0.0044, 0.0170, 0.0210, 0.0008])` (±1e-3): no duplicate-token head in this model.
#
# <details><summary>Hint 1</summary>
#
# First build the boolean mask of targets `[batch, q, k]`: true where `tokens[b, k] == tokens[b, q]` and `k < q`. Then the attention mass of each query on its targets is a masked sum over `k`.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `tokens[:, None, :] == tokens[:, :, None]` compares every pair; `torch.arange(n)[None, :] < torch.arange(n)[:, None]` is `k < q`. Insert a head axis with `mask[:, None]` to multiply the pattern.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# `.any(-1)` of the mask marks the queries that have a target; the score is the sum of their masses over batch and queries divided by how many such queries there are.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_duplicate_token_code"}
def duplicate_token_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Attention mass on earlier copies of the query's token, per head: [head]."""
    ### BEGIN SOLUTION
    n = tokens.shape[1]
    same = tokens[:, None, :] == tokens[:, :, None]  # [batch, q, k]
    earlier = torch.arange(n)[None, :] < torch.arange(n)[:, None]
    mask = same & earlier
    mass = (pattern * mask[:, None]).sum(-1)  # [batch, head, q]
    valid = mask.any(-1)  # [batch, q]
    return (mass * valid[:, None]).sum(dim=(0, 2)) / valid.sum()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_duplicate_token", "points": 2}
checks.check_duplicate_token_score(duplicate_token_score)
print("layer 0 on the probe:", duplicate_token_score(model.run_with_cache(probe)[1][hook_name("pattern", 0)], probe))
### BEGIN HIDDEN TESTS
for seed in (3401, 3402, 3403):
    checks.compare_with_reference("duplicate_token_score", duplicate_token_score, seed=seed, batch=4, n_heads=2, n_pos=13, d_vocab=6)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 5 — Induction detector (2 points, ★★, 15 min)
#
# **Difficulty** ●●●○○ · **Importance** ●●●●● · about 15 minutes
#
# **Goal:** the second half of the circuit. An induction head at a token `A` attends to the
# token *after* an earlier `A`: key `k` with `tokens[k-1] == tokens[q]` and `k - 1 < q`. Sum the
# attention on those keys, average over the queries that have at least one such target. On a
# repeated random sequence this is Olsson et al.'s **prefix-matching score**.
#
# - in: `pattern [batch, head, q, k]`, `tokens [batch, pos]`
# - out: `[head]` in `[0, 1]`; an ideal induction head scores 1.
#
# **Expected output**: `layer 1 on the probe: tensor([0.2988, 0.5169, 0.5522, 0.5018])` (±1e-3): heads 1.1–1.3 put about
# half their attention on the induction target, head 1.0 only 0.30 (exercise 8 comes back to it).
#
# <details><summary>Hint 1</summary>
#
# The same recipe as exercise 4, with another mask: a key `k` is a target of query `q` when the token *before* `k` equals the query's token.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# Build `prev` with `prev[:, 1:] = tokens[:, :-1]` (and something no token equals, e.g. -1, at position 0), then compare `prev[:, None, :]` with `tokens[:, :, None]`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Keep only `k - 1 < q`, then sum, mark the valid queries and average exactly as in exercise 4.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_induction_code"}
def induction_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Attention mass on the tokens after earlier copies of the query's token, per head: [head]."""
    ### BEGIN SOLUTION
    n = tokens.shape[1]
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]  # prev[k] = tokens[k-1]
    k_idx, q_idx = torch.arange(n)[None, :], torch.arange(n)[:, None]
    mask = (prev[:, None, :] == tokens[:, :, None]) & (k_idx - 1 < q_idx) & (k_idx >= 1)
    mass = (pattern * mask[:, None]).sum(-1)
    valid = mask.any(-1)
    return (mass * valid[:, None]).sum(dim=(0, 2)) / valid.sum()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_induction", "points": 2}
checks.check_induction_score(induction_score)
print("layer 1 on the probe:", induction_score(model.run_with_cache(probe)[1][hook_name("pattern", 1)], probe))
### BEGIN HIDDEN TESTS
for seed in (3501, 3502, 3503):
    checks.compare_with_reference("induction_score", induction_score, seed=seed, batch=4, n_heads=2, n_pos=13, d_vocab=6)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 6 — Every head's score, from a cache (2 points, ★★, 10 min)
#
# **Difficulty** ●●●○○ · **Importance** ●●●●○ · about 10 minutes
#
# **Goal:** run the model once with `run_with_cache` and apply a detector to the pattern of
# every layer: a table `[n_layers, n_heads]`. `detector` takes one pattern `[batch, head, q, k]`
# and returns `[head]` (for the token-dependent ones, wrap them:
# `lambda p: induction_score(p, tokens)`). It must work for our model and for a
# `TransformerBridge` alike (both have `.cfg.n_layers` and the same hook names).
#
# - in: `model`, `tokens [batch, pos]`, `detector`
# - out: `[n_layers, n_heads]`, row `l` = `detector(pattern of blocks.l)`.
#
# **Expected output**: the previous-token table `[[0.7562, 0.0740, 0.0850, 0.9758], [0.0218, 0.0304, 0.0227, 0.0284]]` (±1e-3).
#
# <details><summary>Hint 1</summary>
#
# One forward pass stores every pattern; then one detector call per layer gives one row.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `model.run_with_cache(tokens)` returns the logits and the cache; the pattern of layer `l` is `cache[hook_name("pattern", l)]`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# `torch.stack([... for l in range(model.cfg.n_layers)])` turns the rows into `[n_layers, n_heads]`.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_scores_with_cache_code"}
def scores_with_cache(model, tokens: torch.Tensor, detector) -> torch.Tensor:
    """detector applied to every layer's hook_pattern: [n_layers, n_heads]."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return torch.stack([detector(cache[hook_name("pattern", l)]) for l in range(model.cfg.n_layers)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_scores_with_cache", "points": 2}
checks.check_scores_with_cache(scores_with_cache)
print("previous-token scores of the shipped model:\n", scores_with_cache(model, probe, metrics.previous_token_score))
### BEGIN HIDDEN TESTS
checks.compare_with_reference("scores_with_cache", scores_with_cache, seed=3601, batch=3, n_pos=11, n_heads=3)
checks.compare_with_reference("scores_with_cache", scores_with_cache, seed=3602, batch=2, n_pos=10, bridge=True)
checks.compare_with_reference("scores_with_cache", scores_with_cache, seed=3603, batch=2, n_pos=8, n_layers=1)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 7 — Every head's score, with hooks (2 points, ★★, 15 min)
#
# **Difficulty** ●●●●○ · **Importance** ●●●●○ · about 15 minutes
#
# **Goal:** the same table without storing a cache: a hook on each
# `hook_name("pattern", l)` computes `detector(pattern)` on the fly and writes it into a
# result tensor. This is how you measure a big model without keeping every activation, and the
# pattern of every later intervention (chapter 5). Use `model.run_with_hooks` (the checks give
# you a model whose `run_with_cache` refuses to run).
#
# - in: `model`, `tokens [batch, pos]`, `detector`
# - out: `[n_layers, n_heads]`, equal to exercise 6's answer.
#
# A hook function has the signature `fn(activation, hook)`; as in TransformerLens, `hook.name`
# is the hook point's name and `hook.layer()` (a method) its layer, so one function can serve
# every layer. (Binding the layer with `functools.partial` or a default argument works too.)
#
# **Expected output**: the induction table, row 0 ≈ `[0.0006, 0.0236, 0.0223, 0.0000]` and row 1 ≈ `[0.2988, 0.5169, 0.5522, 0.5018]` (±1e-3).
#
# <details><summary>Hint 1</summary>
#
# A hook is a function called with the activation as it passes; it can store `detector(pattern)` in a dictionary keyed by layer, outside the model.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `model.run_with_hooks(tokens, fwd_hooks=[(hook_name("pattern", l), fn) for l in ...])`; inside `fn(pattern, hook)`, `hook.layer()` says which layer is passing.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# After the run, stack the stored rows in layer order. Return nothing from the hook (a returned tensor would replace the activation).
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_scores_with_hooks_code"}
def scores_with_hooks(model, tokens: torch.Tensor, detector) -> torch.Tensor:
    """detector applied in a hook on every layer's hook_pattern: [n_layers, n_heads]."""
    ### BEGIN SOLUTION
    rows = {}

    def store(pattern, hook):
        rows[hook.layer()] = detector(pattern.detach())

    hooks = [(hook_name("pattern", l), store) for l in range(model.cfg.n_layers)]
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    return torch.stack([rows[l] for l in range(model.cfg.n_layers)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_scores_with_hooks", "points": 2}
checks.check_scores_with_hooks(scores_with_hooks)
print("induction scores of the shipped model:\n",
      scores_with_hooks(model, probe, lambda p: metrics.prefix_matching_score(p, probe)))
### BEGIN HIDDEN TESTS
checks.compare_with_reference("scores_with_hooks", scores_with_hooks, seed=3701, batch=3, n_pos=11, n_heads=3)
checks.compare_with_reference("scores_with_hooks", scores_with_hooks, seed=3703, batch=2, n_pos=10, n_layers=3)
### END HIDDEN TESTS

# %% [markdown]
# ## All detectors on the shipped model
#
# Five tables, one run each. Read them before the next exercise: which layer-0 heads attend to
# the previous token? Which layer-1 heads score high on induction? Does any head attend to
# duplicates (a different circuit, not needed here)?
#
# With every detector right, the tables look like this (whole heads and layers on the axes):
#
# ![expected detector tables](expected_detectors.png)

# %%
# Your functions when they pass their checks; otherwise the package's reference, with a note.
my_current = checks.mine_or_reference("current_token_score", current_token_score, 1)
my_previous = checks.mine_or_reference("previous_token_score", previous_token_score, 2)
my_first = checks.mine_or_reference("first_token_score", first_token_score, 3)
my_duplicate = checks.mine_or_reference("duplicate_token_score", duplicate_token_score, 4)
my_induction = checks.mine_or_reference("induction_score", induction_score, 5)
my_scores_with_cache = checks.mine_or_reference("scores_with_cache", scores_with_cache, 6)
detectors = {
    "current token": my_current,
    "previous token": my_previous,
    "first token": my_first,
    "duplicate token": lambda p: my_duplicate(p, probe),
    "induction": lambda p: my_induction(p, probe),
}
tables = {name: my_scores_with_cache(model, probe, fn) for name, fn in detectors.items()}
fig, axes = plt.subplots(1, len(tables), figsize=(16, 2.6))
for ax, (name, t) in zip(axes, tables.items()):
    ax.imshow(t, vmin=0, vmax=1, cmap="Blues")
    ax.set_title(name)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(cfg.n_heads))  # whole heads and layers, no fractional ticks
    ax.set_yticks(range(cfg.n_layers))
    for (l, h), v in zip([(l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)], t.flatten()):
        ax.text(h, l, f"{v:.2f}", ha="center", va="center", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exercise 8 — Naming the heads (2 points, ★★, 10 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# **Goal:** turn the tables into a verdict. A **previous-token head** is a head of a layer
# *before the last* (a later head must be able to read what it writes) whose previous-token
# score is above `threshold`. An **induction head** is a head of a layer `>= 1` (it needs an
# earlier head to compose with) whose induction score is above `threshold`.
#
# - in: `prev_scores [n_layers, n_heads]`, `induction_scores [n_layers, n_heads]`, `threshold`
# - out: `{"previous_token": [(layer, head), ...], "induction": [(layer, head), ...]}`, pairs of
#   ints, ordered by layer then head. "Above" means `>`.
#
# The second check applies your function to the shipped model's tables on **the paper's probe**,
# the one `induction-course report` and chapters 4 and 5 use: 10 sequences of 25 random tokens
# repeated 4 times (`paper_probe`, `[10, 101]`), so the reference finds the same heads as the
# report. The choice matters here. On our probe every query has exactly one earlier copy, and
# head 1.0 scored 0.30 (exercise 5), below the threshold 0.4; on the paper's probe, where the
# queries of the third and fourth copies can match two or three earlier copies, the cell prints
# 0.48 for it, just above. Head 1.0 is the weakest of the four induction heads, and a detector's
# verdict depends on the input it was measured on.
#
# **Expected output**: `induction scores, layer 1, paper's probe: tensor([0.4750, 0.6157, 0.6373, 0.5959])` (±1e-3)
# and `{'previous_token': [(0, 0), (0, 3)], 'induction': [(1, 0), (1, 1), (1, 2), (1, 3)]}`.
#
# <details><summary>Hint 1</summary>
#
# Two lists of `(layer, head)` pairs, each a threshold test on one table plus a condition on the layer.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `(scores > threshold).nonzero().tolist()` gives the `[layer, head]` pairs above the threshold, in order.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Keep a previous-token pair when `layer < n_layers - 1` and an induction pair when `layer >= 1`; convert each pair to a tuple of ints.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_identify_heads_code"}
def identify_heads(prev_scores: torch.Tensor, induction_scores: torch.Tensor, threshold: float = 0.4) -> dict:
    """{"previous_token": [(layer, head), ...], "induction": [(layer, head), ...]}."""
    ### BEGIN SOLUTION
    n_layers = prev_scores.shape[0]
    prev = [(int(l), int(h)) for l, h in (prev_scores > threshold).nonzero().tolist() if l < n_layers - 1]
    ind = [(int(l), int(h)) for l, h in (induction_scores > threshold).nonzero().tolist() if l >= 1]
    return {"previous_token": prev, "induction": ind}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_identify_heads", "points": 2}
checks.check_identify_heads(identify_heads)
shipped_tables = metrics.head_scores(model, paper_probe)  # the package's tables: this cell rests on no other exercise
print("induction scores, layer 1, paper's probe:", shipped_tables["prefix_matching"][1])
found = identify_heads(shipped_tables["previous_token"], shipped_tables["prefix_matching"])
print(found)
checks.check_shipped_heads(found)
### BEGIN HIDDEN TESTS
for seed in (3801, 3802, 3803):
    checks.compare_with_reference("identify_heads", identify_heads, seed=seed, n_layers=3, n_heads=5, threshold=0.3)
### END HIDDEN TESTS

# %% [markdown]
# ## Why they work together: K-composition
#
# An induction head in layer 1 at a token `A` must find the key whose *previous* token is `A`.
# A token alone does not know its predecessor; the layer-0 previous-token head writes it into
# the key position's residual stream: at position `k` it adds (roughly) `W_E[tokens[k-1]] @
# W_OV^{0,h}`. The layer-1 head's keys read that (**K-composition**). So, leaving positions aside
# (the shipped model has no LayerNorm, so there is no scale to fold in), the score of a query token
# `a` for a key whose previous token is `b` is
#
# $$M[a, b] = W_E[a]\; W_{QK}^{1,h'}\; \big(W_E[b]\, W_{OV}^{0,h}\big)^\top,\qquad
# M = W_E\, W_{QK}^{1,h'}\, (W_E W_{OV}^{0,h})^\top \in \mathbb{R}^{d_{vocab}\times d_{vocab}}.$$
#
# If the pair forms an induction circuit, `M` is **diagonal-heavy**: each row's largest entry is
# on the diagonal (`b == a`).

# %% [markdown]
# ## Exercise 9 — The QK circuit after K-composition (2 points, ★★★, 20 min)
#
# **Difficulty** ●●●●○ · **Importance** ●●●●● · about 20 minutes
#
# **Goal:** compute `M` for previous-token head `prev_head` (layer 0) and induction head
# `ind_head` (layer 1). `model.W_E [d_vocab, d_model]`, `model.W_OV [n_layers, n_heads, d_model,
# d_model]`, `model.W_QK [n_layers, n_heads, d_model, d_model]`.
#
# - in: `model`, `prev_head`, `ind_head` (ints)
# - out: `[d_vocab, d_vocab]`; row = query token, column = the key's previous token.
#
# On the shipped model the two previous-token heads differ. Through head 0.3 the diagonal holds
# the row maximum for nearly every token of the pool; through head 0.0, the weaker
# previous-token head, for a quarter to a third of them; through heads 0.1 and 0.2, which are
# not previous-token heads, hardly more often than chance.
#
# **Expected output**: in the table printed by the check cell (142 pool tokens, chance 1/142 ≈ 0.007), row 3 (head 0.3) is 0.98–1.00, row 0 (head 0.0) 0.24–0.35, rows 1 and 2 at most 0.03 (e.g. row 3 ≈ `[1.0000, 0.9789, 0.9859, 1.0000]`, row 0 ≈ `[0.3521, 0.3310, 0.2394, 0.2958]`, ±1e-3). The plot below it, drawn through the strongest previous-token head and the strongest induction head, should look like this, a dark red diagonal:
#
# ![expected K-composition circuit](expected_kcomp.png)
#
# <details><summary>Hint 1</summary>
#
# Write each side as a `[d_vocab, d_model]` matrix: the query side is the token embedding `W_E`; the key side is what the previous-token head writes for each token, `W_E @ W_OV[0, prev_head]`.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `model.W_QK[1, ind_head]` is `[d_model, d_model]` and sits between them: query side @ W_QK @ (key side)ᵀ.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Use `torch.no_grad()`; the result must be `[d_vocab, d_vocab]` with rows the query tokens.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch3_kcomp_circuit_code"}
def kcomp_token_circuit(model, prev_head: int, ind_head: int) -> torch.Tensor:
    """W_E W_QK[1, ind_head] (W_E W_OV[0, prev_head])^T: [d_vocab, d_vocab]."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        key_side = model.W_E @ model.W_OV[0, prev_head]
        return model.W_E @ model.W_QK[1, ind_head] @ key_side.T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch3_kcomp_circuit", "points": 2}
checks.check_kcomp_token_circuit(kcomp_token_circuit)
diag_top1 = torch.zeros(cfg.n_heads, cfg.n_heads)
for h0 in range(cfg.n_heads):
    for h1 in range(cfg.n_heads):
        M = kcomp_token_circuit(model, h0, h1)[pool][:, pool]
        diag_top1[h0, h1] = (M.argmax(-1) == torch.arange(len(pool))).float().mean()
print(f"fraction of the {len(pool)} pool tokens whose row maximum is on the diagonal (chance {1 / len(pool):.3f}; "
      "rows: layer-0 head, cols: layer-1 head):")
print(diag_top1)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("kcomp_token_circuit", kcomp_token_circuit, seed=3901, prev_head=2, ind_head=0, n_heads=3)
checks.compare_with_reference("kcomp_token_circuit", kcomp_token_circuit, seed=3902, prev_head=1, ind_head=1, d_vocab=31)
### END HIDDEN TESTS

# %%
my_identify = checks.mine_or_reference("identify_heads", identify_heads, 8)
my_kcomp = checks.mine_or_reference("kcomp_token_circuit", kcomp_token_circuit, 9)
paper_tables = metrics.head_scores(model, paper_probe)
heads = my_identify(paper_tables["previous_token"], paper_tables["prefix_matching"])
# the strongest of each kind: the highest previous-token score, the highest induction score
prev_h = max(heads["previous_token"], key=lambda lh: paper_tables["previous_token"][lh])[1]
ind_h = max(heads["induction"], key=lambda lh: paper_tables["prefix_matching"][lh])[1]
M = my_kcomp(model, prev_h, ind_h)[pool][:, pool]
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(M[:60, :60], cmap="RdBu_r", vmin=-M[:60, :60].abs().max(), vmax=M[:60, :60].abs().max())
ax.set_title(f"W_E W_QK(1.{ind_h}) (W_E W_OV(0.{prev_h}))^T, first 60 pool tokens")
ax.set_xlabel("key's previous token")
ax.set_ylabel("query token")
plt.show()

# %% [markdown]
# ## An explorer
#
# Pick a prompt, a layer and a head. Things to try: the previous-token heads 0.0 and 0.3 on
# natural text (does the stripe below the diagonal survive real code?); the induction heads on
# natural text (in the first snippet, does the `st` of `stops` look at the tokens after the
# earlier `st`s, of `starts` and `last`?); head 1.0, the weakest induction head on the probe, on
# code; a layer-0 head that is not a previous-token head.

# %%
prompts = {"repeated random tokens": probe[0], "python source": text[0], "python source 2": text[1]}
viz.head_explorer(model, prompts)

# %% [markdown]
# ## What you found
#
# - Layer 0 holds two **previous-token heads** in the shipped run: 0.3, almost pure (0.98 on the
#   probe), and 0.0, weaker (0.76). They write into each position the identity of the token
#   before it.
# - Layer 1 holds **induction heads**: on a repeated sequence they attend to the token after the
#   earlier copy of the current token. Heads 1.1–1.3 do it clearly (0.50–0.55 on our probe);
#   head 1.0 is weaker (0.30 on our probe, 0.48 on the paper's) and rests on BOS more (0.66).
# - The two are wired by **K-composition**: the induction head's keys read what the
#   previous-token head wrote, and its token QK circuit through that head is diagonal. In this
#   model that is true of head 0.3 (0.98–1.00 of the pool tokens have their row maximum on the
#   diagonal, for every induction head) and only partly of head 0.0 (0.24–0.35): the token
#   matching runs reliably through one previous-token head, although the detector found two.
#
# Chapter 4 measures this the paper's way (prefix matching, copying, composition scores) over
# training, and chapter 5 removes the heads to show they cause the in-context learning.

# %% [markdown] nbgrader={"grade_id": "ch3_written_intro", "locked": true}
# ## Written questions (4 points, graded by hand)
#
# Answer each question in the cell below it, in three to six sentences, in place of `YOUR ANSWER
# HERE`. Argue from the numbers and figures this notebook printed and cite them: that is what earns
# the points. Your instructor grades these answers by hand after the autograder has run.

# %% [markdown] nbgrader={"grade_id": "ch3_written_not_proof_question", "locked": true}
# **Written question 1 (2 points).** The layer-1 heads score far above the layer-0 heads on the
# induction detector (the "induction" table of "All detectors on the shipped model"). Why is that
# not yet proof that they are induction heads? Say what the score measures, what it cannot tell,
# and what you would measure to complete the argument.

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch3_written_not_proof", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** The detector measures *where* a head attends, on one kind of input: on the
# repeated random tokens, heads 1.1–1.3 put about 0.50–0.55 of their attention on the token after
# the earlier copy of the current token, head 1.0 only 0.30, the layer-0 heads about 0.02 or
# less. Even the verdict depends on the input: on the paper's probe, with four copies, head 1.0
# scores 0.48 and passes the threshold 0.4 it failed on ours (exercise 8). The score says
# nothing about what the head *writes* from there (it could attend to the right token and write
# something useless: its OV circuit must copy, chapter 4) and nothing about whether the model
# *uses* it (a head can look right and not matter: remove it and see whether the loss on the
# repeats rises, chapter 5). It is a correlation on a synthetic input. To complete the argument: the copying
# score or OV top-1 of these heads, and an ablation that costs the later repeats their low loss
# (with a control head that does not).
#
# **Rubric (2 points).** 1 point: the score is about attention (where), on one input, citing the
# table's layer-1 values (about 0.5–0.55 for 1.1–1.3, 0.30 for 1.0; or the 0.48 of head 1.0 on
# the paper's probe as a sign that the input matters). 1 point: names what is missing, what the
# head writes (OV/copying) *and* whether the model depends on it (an ablation or another causal
# test). Half a point if only one of the two is named.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade_id": "ch3_written_kcomp_question", "locked": true}
# **Written question 2 (2 points).** How does an induction head know where to attend? Explain
# K-composition with exercise 9: the picture of `W_E W_QK (W_E W_OV)^T` and the printed table of
# the fraction of tokens whose row maximum is on the diagonal. Compare the rows of the two
# previous-token heads, 0.0 and 0.3, with each other and with those of heads 0.1 and 0.2.

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch3_written_kcomp", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** At the second copy of token `A` the induction head must find the position
# whose *previous* token is `A`. A position does not know its previous token until a layer-0
# previous-token head writes it there. The induction head's keys read that (K-composition),
# while its query is the current token; so the score of query token `a` for a key whose previous
# token is `b` is `W_E[a] W_QK (W_E[b] W_OV^0)^T`, large when `a = b`. The picture shows a dark
# diagonal, and the table confirms it: through head 0.3 the row maximum is on the diagonal for
# 0.98–1.00 of the 142 pool tokens, for each of the four induction heads. Through head 0.0, the
# other previous-token head, only for 0.24–0.35: far above chance (1/142 ≈ 0.007) but far below
# 0.3, so what 0.3 writes lets the keys single out the matching token almost always, what 0.0
# writes only for a quarter to a third of the tokens. Through 0.1 and 0.2, which are not
# previous-token heads, 0.01–0.03, about chance. A previous-token pattern (0.76 for head 0.0) is
# not enough: what the head writes must be something the induction head's keys can match.
#
# **Rubric (2 points).** 1 point: the mechanism, the previous-token head writes the previous
# token into each position, and the induction head's *keys* read it while its query is the current
# token. 1 point: cites the table (row 0.3 at 0.98–1.00, row 0.0 at 0.24–0.35, rows 0.1 and 0.2
# near chance, about 0.01–0.03) or the diagonal of the picture as the evidence, and notices that
# 0.0 composes far less than 0.3 (half of this point without that). Half a point for "Q- or
# V-composition" with otherwise correct reasoning.
# ### END SOLUTION

# %% [markdown]
# ## Summarise in your own words (not graded)
#
# Before chapter 4, write three or four sentences below, without looking back: what does a
# previous-token head write into the residual stream, and where? How does an induction head use
# it (which of Q, K, V reads it)? Which numbers in this notebook convinced you that head 0.3
# feeds the induction heads, and how much head 0.0 does? What would you measure next to be sure
# they *cause* the behaviour?
#
# *Your summary:*
