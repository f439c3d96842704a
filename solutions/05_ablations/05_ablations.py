# ---
# jupyter:
#   induction_course:
#     chapter: 05_ablations
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% nbgrader={"grade_id": "ch5_runtime_setup", "locked": true}
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
# # Chapter 5 — Ablations: do the induction heads *cause* in-context learning?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/induction-heads-course/induction-heads/blob/main/chapters/05_ablations/05_ablations.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/induction-heads-course/induction-heads/main?urlpath=lab/tree/chapters/05_ablations/05_ablations.ipynb)
#
# Chapter 4 showed a coincidence: the induction heads' scores jump exactly when the in-context
# learning score drops. Olsson et al. (2022) back the claim with interventions: in small
# attention-only models they remove heads and measure how much in-context learning is lost
# ("argument 4", their ablation sweep). Here you build those interventions with hooks:
#
# - **zero ablation**: the head writes nothing;
# - **mean ablation**: the head writes its average output, so the rest of the model keeps seeing
#   "typical" values;
# - **pattern-preserving ablation**: freeze every attention pattern to the clean run, then remove
#   a head's output — later heads still look where they looked, so only what the head *writes*
#   is removed, not where it tells others to look;
# - **induction-stripe knockout**: remove only the attention on the induction targets, keep the
#   rest of the head's pattern.
#
# Then: a random-head control, a layer × head table of effects, the paper's ablation sweep over
# checkpoints in miniature, and — to close — an induction head built by hand, with no training.
#
# **Departures from the paper.** The paper ablates with a pattern-preserving method in
# attention-only models of up to 6 layers and measures the ICL score on contexts of 8192 tokens;
# we have 2 layers, 128 tokens (ICL score at tokens 12 and 125, see chapter 4), 30 checkpoints
# and 2.9 M training tokens. Effects are measured on (a) the loss on the later repeats of the
# paper's probe (25 random tokens × 4 after BOS) and (b) the ICL score on held-out text.
#
# | Exercise | Points | Difficulty | Time |
# |---|---|---|---|
# | 1. Zero ablation with a hook | 2 | ★ | 10 min |
# | 2. Mean ablation | 2 | ★★ | 10 min |
# | 3. Pattern-preserving ablation | 2 | ★★ | 15 min |
# | 4. Knock out only the induction stripe | 2 | ★★ | 15 min |
# | 5. Every head, one at a time | 2 | ★★ | 10 min |
# | 6. The effect on in-context learning | 2 | ★ | 10 min |
# | 7. The ablation sweep over checkpoints | 2 | ★★ | 10 min |
# | 8. An induction head by hand | 3 | ★★★ | 30 min |
# | W1. Written: why the stripe knockout convinces (graded by hand) | 2 | ★★ | 10 min |
# | W2. Written: what the previous-token heads do (graded by hand) | 2 | ★★ | 10 min |

# %% nbgrader={"grade_id": "ch5_setup", "locked": true}
import math

import matplotlib.pyplot as plt
import torch

from induction_course import ablation as A
from induction_course.course.checks import ch05 as checks
from induction_course import metrics as M
from induction_course.checkpoints import list_steps, load_config, load_history, load_model
from induction_course.metrics import later_repeat_loss
from induction_course.model import hook_name
from induction_course.checkpoints import load_eval_set
from induction_course.probes import repeated_random_tokens

torch.manual_seed(0)
config = load_config()
pool, BOS = torch.tensor(config["token_pool"]), int(config["bos"])
model = load_model()
cfg = model.cfg
SEG = 25
probe = repeated_random_tokens(10, SEG, 4, pool, BOS, seed=0)  # the paper's probe: [10, 101]
text_all = load_eval_set().text  # all 512 held-out windows of natural text, [512, 128]
text = text_all[:128]  # the windows the tables use, [128, 128]
other_probe = repeated_random_tokens(20, SEG, 4, pool, BOS, seed=1)  # a reference batch for mean ablation
# the heads chapter 3's detectors find on this probe (threshold 0.4), and the heads that are neither
found = M.classify_heads(M.head_scores(model, probe))
INDUCTION, PREV_TOKEN = found["induction"], found["previous_token"]
CONTROL = [(l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads) if (l, h) not in INDUCTION + PREV_TOKEN]


def names(heads):
    return " + ".join(f"{l}.{h}" for l, h in heads)


with torch.no_grad():
    clean_logits = model(probe)
clean_loss = later_repeat_loss(clean_logits, probe, SEG)
print(f"induction heads {names(INDUCTION)}; previous-token heads {names(PREV_TOKEN)}; neither: {names(CONTROL)}")
print(f"clean loss on the later repeats: {clean_loss:.3f}")

# %% [markdown]
# ## Exercise 1 — Zero ablation with a hook (2 points, ★, 10 min)
#
# **Goal:** remove one head. Its output enters the residual stream through `z @ W_O`, where
# `z = pattern @ v` is the hook `hook_name("z", layer)` (`blocks.{layer}.attn.hook_z`) of shape
# `[batch, pos, head, d_head]`.
# Write a hook that sets the head's slice of `z` to zero and run the model with it:
# `model.run_with_hooks(tokens, fwd_hooks=[(name, hook_fn)])`, where `hook_fn(z, hook)` returns the
# new `z`. (The layer's bias `b_O` stays: it belongs to the layer, not to a head.)
#
# - in: `model`, `tokens [batch, pos]`, `layer`, `head` (ints)
# - out: logits `[batch, pos, d_vocab]`
#
# **Difficulty** ●○○○○ · **Importance** ●●●●● · about 10 minutes
#
# <details><summary>Hint 1</summary> The hook gets <code>z</code> [batch, pos, head, d_head] and returns a changed copy; the head is the third axis. </details>
# <details><summary>Hint 2</summary> Clone <code>z</code> before writing into it (never change the tensor you were handed); the hook's name is <code>hook_name("z", layer)</code>. </details>
# <details><summary>Hint 3</summary> Inside the hook, set the head's slice, <code>z[:, :, head]</code>, to zero and return the clone; then return <code>model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), hook)])</code>. </details>
#
# **Expected output**: `✔ zero_ablation: all visible checks passed.` and `zero-ablate 1.0: Δ loss on
# later repeats = +0.569` (±0.01): a little, because the other three induction heads back it up
# (all four together: +4.76, in the table after exercise 4).

# %% nbgrader={"solution": true, "grade_id": "ch5_zero_ablation_code"}
def zero_ablation(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """Logits [batch, pos, d_vocab] with head (layer, head)'s hook_z set to zero."""
    ### BEGIN SOLUTION
    def hook(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), hook)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_zero_ablation", "points": 2}
checks.check_zero_ablation(zero_ablation)
with torch.no_grad():
    print(f"zero-ablate 1.0: Δ loss on later repeats = {later_repeat_loss(zero_ablation(model, probe, 1, 0), probe, SEG) - clean_loss:+.3f}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("zero_ablation", zero_ablation, seed=501, layer=1, head=2, n_heads=4, batch=2)
checks.compare_with_reference("zero_ablation", zero_ablation, seed=502, layer=0, head=0, seg_len=4, n_repeats=4)
checks.compare_with_reference("zero_ablation", zero_ablation, seed=503, layer=2, head=1, n_layers=3)
checks.compare_with_reference("zero_ablation", zero_ablation, seed=504, layer=0, head=2, n_layers=1)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2 — Mean ablation (2 points, ★★, 10 min)
#
# **Goal:** a zero output is something the model never saw during training, so zero ablation
# partly measures that surprise. Mean ablation replaces the head's `z` by its average over a
# *reference* batch instead — averaged over the batch only, separately for each position
# (position matters: position 0 can only attend to itself, and `W_pos` is part of every value).
#
# - in: `model`, `tokens [batch, pos]`, `layer`, `head`, `reference_tokens [n_ref, pos]`
# - out: logits `[batch, pos, d_vocab]` with `z[:, :, head] = mean over the reference batch of z[:, :, head]`
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# <details><summary>Hint 1</summary> Two runs: one on the reference batch to get the head's average z, one on the tokens with a hook that writes it in. </details>
# <details><summary>Hint 2</summary> <code>model.run_with_cache(reference_tokens)</code>, then <code>cache[hook_name("z", layer)][:, :, head]</code> is [n_ref, pos, d_head]. </details>
# <details><summary>Hint 3</summary> <code>.mean(dim=0)</code> gives [pos, d_head]; assigning it to the head's slice of <code>z</code> in the hook broadcasts it over the batch. </details>
#
# **Expected output**: `✔ mean_ablation: all visible checks passed.` and `mean-ablate 1.0: Δ loss =
# +0.602` (±0.01).

# %% nbgrader={"solution": true, "grade_id": "ch5_mean_ablation_code"}
def mean_ablation(model, tokens: torch.Tensor, layer: int, head: int, reference_tokens: torch.Tensor) -> torch.Tensor:
    """Logits with head (layer, head)'s z replaced by its per-position mean over reference_tokens."""
    ### BEGIN SOLUTION
    name = hook_name("z", layer)
    _, cache = model.run_with_cache(reference_tokens)
    mean_z = cache[name][:, :, head].mean(dim=0)  # [pos, d_head]

    def hook(z, hook):
        z = z.clone()
        z[:, :, head] = mean_z
        return z

    return model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_mean_ablation", "points": 2}
checks.check_mean_ablation(mean_ablation)
with torch.no_grad():
    print(f"mean-ablate 1.0: Δ loss = {later_repeat_loss(mean_ablation(model, probe, 1, 0, other_probe), probe, SEG) - clean_loss:+.3f}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("mean_ablation", mean_ablation, seed=511, layer=1, head=0, n_heads=2, batch=2)
checks.compare_with_reference("mean_ablation", mean_ablation, seed=512, layer=0, head=3, n_heads=4, seg_len=6)
checks.compare_with_reference("mean_ablation", mean_ablation, seed=513, layer=2, head=0, n_layers=3)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3 — Pattern-preserving ablation (2 points, ★★, 15 min)
#
# **Goal:** separate *where later heads look* from *what a head writes*. Run the model once
# clean and cache every layer's `hook_pattern`; then rerun with hooks that replace **every**
# layer's pattern by the cached one, and zero the head's `z`. Removing a previous-token head this
# way cannot change where the induction heads attend (their K-composition input is gone, but their
# pattern is frozen), so only the head's direct and V-composition contributions are removed.
#
# - in: `model`, `tokens`, `layer`, `head`
# - out: logits `[batch, pos, d_vocab]`
#
# **Difficulty** ●●●○○ · **Importance** ●●●●○ · about 15 minutes
#
# <details><summary>Hint 1</summary> Cache the clean run first; then a single <code>run_with_hooks</code> with one pattern hook per layer plus your zero hook on z. </details>
# <details><summary>Hint 2</summary> A hook may ignore its input and return the cached tensor: <code>lambda p, hook: cache[hook_name("pattern", hook.layer())]</code>. </details>
# <details><summary>Hint 3</summary> A list with one <code>(hook_name("pattern", l), freeze)</code> pair per layer index <code>l</code>, plus <code>(hook_name("z", layer), zero)</code>. </details>
#
# **Expected output**: `✔ pattern_preserving_ablation: all visible checks passed.`, then for the
# previous-token heads 0.0 + 0.3 `zero: Δ loss = +4.653` and `pattern_preserving: Δ loss = +0.008`
# (±0.01): the previous-token heads matter only through where the induction heads look (their
# *keys*, K-composition), not through what they write.

# %% nbgrader={"solution": true, "grade_id": "ch5_pattern_preserving_ablation_code"}
def pattern_preserving_ablation(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """Logits with all attention patterns frozen to the clean run and head (layer, head)'s z zeroed."""
    ### BEGIN SOLUTION
    _, cache = model.run_with_cache(tokens)
    # One hook for every layer: hook.layer() says which layer's clean pattern to put back.
    hooks = [(hook_name("pattern", l), lambda p, hook: cache[hook_name("pattern", hook.layer())])
             for l in range(model.cfg.n_layers)]

    def zero(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    return model.run_with_hooks(tokens, fwd_hooks=hooks + [(hook_name("z", layer), zero)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_pattern_preserving_ablation", "points": 2}
checks.check_pattern_preserving_ablation(pattern_preserving_ablation)
for kind in ("zero", "pattern_preserving"):
    with torch.no_grad():
        d = later_repeat_loss(A.ablate(model, probe, PREV_TOKEN, kind), probe, SEG) - clean_loss
    print(f"previous-token heads {names(PREV_TOKEN)}, {kind:>18}: Δ loss = {d:+.3f}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("pattern_preserving_ablation", pattern_preserving_ablation, seed=521, layer=0, head=2, n_heads=3)
checks.compare_with_reference("pattern_preserving_ablation", pattern_preserving_ablation, seed=522, layer=1, head=0, n_heads=2, batch=2)
checks.compare_with_reference("pattern_preserving_ablation", pattern_preserving_ablation, seed=523, layer=2, head=1, n_layers=3)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 — Knock out only the induction stripe (2 points, ★★, 15 min)
#
# **Goal:** the sharpest test of "the induction behaviour is what matters". On a repeated-token
# input an induction head's pattern has a *stripe*: from each later token to the token right after
# its earlier occurrences (`probes.induction_target_mask(tokens)`, `[batch, q, k]`, which you
# derived in chapter 4). Hook `hook_pattern` of the head's layer and set those entries of the
# head's pattern to zero; keep everything else as it was and **do not renormalise** the rows
# (renormalising would hand the removed mass to other keys, and the head would start moving
# information it did not move before).
#
# - in: `model`, `tokens`, `layer`, `head`
# - out: logits `[batch, pos, d_vocab]`
#
# **Difficulty** ●●●○○ · **Importance** ●●●●○ · about 15 minutes
#
# <details><summary>Hint 1</summary> Hook the layer's pattern [batch, head, q, k] and multiply the head's slice by a 0/1 mask that is 0 on the stripe. </details>
# <details><summary>Hint 2</summary> <code>keep = (~induction_target_mask(tokens)).float()</code> is [batch, q, k], the same shape as <code>pattern[:, head]</code>. </details>
# <details><summary>Hint 3</summary> In the hook: clone the pattern, multiply the head's slice <code>[:, head]</code> by <code>keep</code>, write it back; no division afterwards. </details>
#
# **Expected output**: `✔ stripe_knockout: all visible checks passed.`; in the next cell the stripe
# of all four induction heads costs +4.815 nats (±0.01), as much as removing the heads
# altogether (+4.758).

# %% nbgrader={"solution": true, "grade_id": "ch5_stripe_knockout_code"}
from induction_course.probes import induction_target_mask  # noqa: E402


def stripe_knockout(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """Logits with head (layer, head)'s attention on induction targets set to 0 (no renormalisation)."""
    ### BEGIN SOLUTION
    keep = (~induction_target_mask(tokens)).float()  # [batch, q, k]

    def hook(pattern, hook):
        pattern = pattern.clone()
        pattern[:, head] = pattern[:, head] * keep
        return pattern

    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name("pattern", layer), hook)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_stripe_knockout", "points": 2}
checks.check_stripe_knockout(stripe_knockout)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("stripe_knockout", stripe_knockout, seed=531, layer=1, head=0, n_heads=2, seg_len=6, n_repeats=4)
checks.compare_with_reference("stripe_knockout", stripe_knockout, seed=532, layer=0, head=2, n_heads=3, batch=2)
checks.compare_with_reference("stripe_knockout", stripe_knockout, seed=533, layer=2, head=0, n_layers=3)
### END HIDDEN TESTS

# %% [markdown]
# All four induction heads at once (the library's versions take a list of heads), and the
# **random-head control**: as many heads as there are previous-token heads, drawn at random from
# the heads that are neither induction nor previous-token heads (this model has only two such
# heads, 0.1 and 0.2, so the draw takes both). A claim "these heads matter" needs it: if any
# heads mattered as much, the claim would say nothing.

# %%
rows = []
with torch.no_grad():
    for label, heads, kind in [("induction heads, zero", INDUCTION, "zero"),
                               ("induction heads, mean", INDUCTION, "mean"),
                               ("induction heads, stripe knockout", INDUCTION, "knockout"),
                               ("previous-token heads, zero", PREV_TOKEN, "zero"),
                               ("previous-token heads, pattern-preserving", PREV_TOKEN, "pattern_preserving")]:
        rows.append((label, later_repeat_loss(A.ablate(model, probe, heads, kind, other_probe), probe, SEG) - clean_loss))
    control = A.random_head_control(model, probe, len(PREV_TOKEN), exclude=INDUCTION + PREV_TOKEN, seed=0)
    rows.append((f"random control {control.heads}, zero", later_repeat_loss(control.logits, probe, SEG) - clean_loss))
for label, d in rows:
    print(f"{label:>45}: Δ loss on later repeats {d:+.3f}")

# %% [markdown]
# ## Exercise 5 — Every head, one at a time (2 points, ★★, 10 min)
#
# **Goal:** a layer × head table: for each head alone, zero-ablate it and report the change of the
# later-repeat loss (ablated minus clean; positive = the head helped). Use your `zero_ablation`
# and the helper `later_repeat_loss(logits, tokens, seg_len)`.
#
# - in: `model`, `probe [batch, 1 + seg_len * n]` (BOS first), `seg_len`
# - out: `[n_layers, n_heads]` (float)
#
# **Difficulty** ●●○○○ · **Importance** ●●●○○ · about 10 minutes
#
# <details><summary>Hint 1</summary> The clean loss once, then one ablated run per head, and the difference. </details>
# <details><summary>Hint 2</summary> Two loops over <code>range(model.cfg.n_layers)</code> and <code>range(model.cfg.n_heads)</code>; <code>later_repeat_loss(zero_ablation(model, probe, layer, head), probe, seg_len)</code>. </details>
# <details><summary>Hint 3</summary> <code>table[layer, head] = ablated - clean</code> in a <code>torch.zeros(n_layers, n_heads)</code>. </details>
#
# **Expected output**: `✔ single_head_table: all visible checks passed.`; your table's row 0 is
# `[0.598, 0.344, -0.013, 4.379]` and row 1 `[0.569, 0.552, 0.549, 0.582]` (±0.01).

# %% nbgrader={"solution": true, "grade_id": "ch5_single_head_table_code"}
def single_head_table(model, probe: torch.Tensor, seg_len: int) -> torch.Tensor:
    """[n_layers, n_heads]: later-repeat loss with each head zero-ablated, minus the clean loss."""
    ### BEGIN SOLUTION
    clean = later_repeat_loss(model(probe), probe, seg_len)
    table = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            table[layer, head] = later_repeat_loss(zero_ablation(model, probe, layer, head), probe, seg_len) - clean
    return table
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_single_head_table", "points": 2}
checks.check_single_head_table(single_head_table)
with torch.no_grad():
    my_table = checks.on_its_own(single_head_table, "single_head_table")(model, probe, SEG)
print("your Δ later-repeat loss [layer, head]:\n", my_table)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("single_head_table", single_head_table, seed=541, n_heads=2, n_layers=2, seg_len=4)
checks.compare_with_reference("single_head_table", single_head_table, seed=542, n_heads=3, n_layers=1, batch=2)
### END HIDDEN TESTS

# %% [markdown]
# ## One head at a time, and all of them together
#
# The package's `A.joint_ablation_table` ablates each group of heads **together** in one run and
# measures three things: Δ loss on the later repeats of the probe, Δ ICL score on 128 held-out
# windows with its standard error (± over windows, paired: the same windows clean and ablated),
# and Δ loss averaged over *every* position of the text (how much the heads matter for prediction
# in general, in context or not). One row per head alone, then the joint rows. (About 15 s.)

# %%
HEADS = [(l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
groups = {f"head {l}.{h}": [(l, h)] for l, h in HEADS}
ctrl_label = f"control: the other {len(CONTROL)} heads, {names(CONTROL)}"
groups.update({"all 4 induction heads": INDUCTION, "both previous-token heads": PREV_TOKEN,
               "induction + previous-token (6 heads)": INDUCTION + PREV_TOKEN,
               ctrl_label: CONTROL})
with torch.no_grad():
    effects = {r["label"]: r for r in A.joint_ablation_table(model, groups, probe, text, kind="zero")}
    effects_mean = {r["label"]: r for r in A.joint_ablation_table(
        model, {k: groups[k] for k in ("all 4 induction heads", "both previous-token heads", ctrl_label)},
        probe, text, kind="mean")}
clean_icl = effects["all 4 induction heads"]["clean_icl_score"]
print(f"clean model: ICL score {clean_icl:+.3f} on {len(text)} windows, later-repeat loss {clean_loss:.3f}")
print(f"{'zero ablation':>38} | Δ later-repeat loss | Δ ICL score (± s.e.) | Δ loss, all text positions")
for label, r in effects.items():
    print(f"{label:>38} | {r['delta_probe_loss']:+19.3f} | {r['delta_icl_score']:+8.3f} ± {r['delta_icl_se']:.3f}    | "
          f"{r['delta_text_loss']:+.3f}")
print(f"{'mean ablation':>38} |")
for label, r in effects_mean.items():
    print(f"{label:>38} | {r['delta_probe_loss']:+19.3f} | {r['delta_icl_score']:+8.3f} ± {r['delta_icl_se']:.3f}    | "
          f"{r['delta_text_loss']:+.3f}")
table = torch.tensor([[effects[f"head {l}.{h}"]["delta_probe_loss"] for h in range(cfg.n_heads)] for l in range(cfg.n_layers)])
icl_table = torch.tensor([[effects[f"head {l}.{h}"]["delta_icl_score"] for h in range(cfg.n_heads)] for l in range(cfg.n_layers)])
single_ind = sum(effects[f"head {l}.{h}"]["delta_probe_loss"] for l, h in INDUCTION)
print(f"sum of the four induction heads' single effects on the later repeats: {single_ind:+.3f}; "
      f"together: {effects['all 4 induction heads']['delta_probe_loss']:+.3f}")
ind = effects["all 4 induction heads"]
print(f"ICL score with the 4 induction heads removed: {clean_icl + ind['delta_icl_score']:+.3f} "
      f"(clean {clean_icl:+.3f}; the ablation removes {-ind['delta_icl_score'] / clean_icl:.0%} of it)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3), gridspec_kw={"width_ratios": [1, 1, 1.3]})
for ax, (values, title) in zip(axes, [(table, "Δ loss on later repeats"), (icl_table, "Δ ICL score")]):
    im = ax.imshow(values, cmap="RdBu_r", vmin=-values.abs().max(), vmax=values.abs().max())
    ax.set(title=title, xlabel="head", ylabel="layer", xticks=range(cfg.n_heads), yticks=range(cfg.n_layers))
    for (l, h), v in zip([(l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)], values.flatten()):
        ax.text(h, l, f"{v:+.2f}", ha="center", va="center", fontsize=8)
joint = ["all 4 induction heads", "both previous-token heads", "induction + previous-token (6 heads)", ctrl_label]
y = range(len(joint))
axes[2].barh([i - 0.2 for i in y], [effects[j]["delta_probe_loss"] / 10 for j in joint], 0.4,
             label="Δ later-repeat loss / 10")
axes[2].barh([i + 0.2 for i in y], [effects[j]["delta_icl_score"] for j in joint], 0.4,
             xerr=[effects[j]["delta_icl_se"] for j in joint], label="Δ ICL score ± s.e.")
axes[2].set_yticks(list(y), ["4 induction", "2 previous-token", "all 6", f"control {names(CONTROL)}"])
axes[2].axvline(0, color="k", lw=0.5)
axes[2].set(title="heads ablated together (zero)")
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# What the table and figure show (numbers printed above; zero ablation, 128 windows):
#
# - **Together, the four induction heads** cost +4.76 nats on the later repeats, against +2.25 for
#   the sum of their four single ablations (+0.55 to +0.58 each): they back each other up, so
#   one-at-a-time ablation hides half of their role. On text their joint Δ ICL score is
#   +0.60 ± 0.16, more than the clean model's whole ICL score on these windows (−0.48): with them
#   gone the ICL score is +0.12, no in-context learning left within its standard error. So on this
#   model removing the induction heads removes all of the measured ICL, not just "most". Mean
#   ablation agrees (+0.66 ± 0.16).
# - **The two previous-token heads together** cost +4.65 nats on the later repeats and +0.45 ±
#   0.16 on the ICL score, nearly all of it head 0.3 (alone: +4.38 and +0.50 ± 0.15; head 0.0
#   alone: +0.60 and +0.10 ± 0.07). **All six** cost +4.74 and +0.52 ± 0.18: no more than the
#   induction heads alone (on ICL the difference is within one standard error): without their
#   previous-token input the induction heads have nothing left to remove.
# - **The control**, the two remaining heads 0.1 and 0.2, costs +0.36 on the later repeats, a
#   thirteenth of the induction heads' cost, but moves the ICL score by −0.37 ± 0.10 — *down*, by
#   more than three standard errors, as if the model learned *more* in context; each head alone
#   moves it down too (0.1: −0.15 ± 0.04, 0.2: −0.12 ± 0.05). Over all text positions the pair
#   costs +0.30 nats, not far from the induction heads' +0.42. A control that is not neutral needs
#   explaining before the other rows can be trusted: the section after exercise 6 finds out what
#   heads 0.1 and 0.2 do, and what the mean-ablation rows (printed above) say about them.

# %% [markdown]
# ## Exercise 6 — The effect on in-context learning (2 points, ★, 10 min)
#
# **Goal:** the paper's real question is not the probe but in-context learning on natural text.
# Zero-ablate one head and return how its ICL score changes: ICL score of the ablated run minus
# that of the clean run (positive = less in-context learning). Use chapter 4's positions,
# `early, late = metrics.icl_positions(n_ctx)` (12 and 125 for 128 tokens), and remember that the
# loss at token `n` is column `n - 1` of `cross_entropy_next_token(logits, text, per_token=True)`.
#
# - in: `model`, `text [batch, n_ctx]`, `layer`, `head`
# - out: a float
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# <details><summary>Hint 1</summary> The ICL score of a run is one column of its per-token loss minus another; compute it for the ablated and the clean logits. </details>
# <details><summary>Hint 2</summary> <code>M.icl_positions</code> of the context length (<code>text.shape[1]</code>) gives (early, late); <code>cross_entropy_next_token(logits, text, per_token=True)</code> gives the table. </details>
# <details><summary>Hint 3</summary> <code>loss[:, late - 1].mean() - loss[:, early - 1].mean()</code> for each run, then ablated minus clean, as a float. </details>
#
# **Expected output**: `✔ icl_effect: all visible checks passed.` and `Δ ICL score, head 1.0
# zero-ablated: +0.025` (±0.01): less than its standard error over the 128 windows (0.04, in the
# table above), so head 1.0 alone does not measurably move the ICL score; the four together do.

# %% nbgrader={"solution": true, "grade_id": "ch5_icl_effect_code"}
from induction_course.model import cross_entropy_next_token  # noqa: E402


def icl_effect(model, text: torch.Tensor, layer: int, head: int) -> float:
    """ICL score with head (layer, head) zero-ablated, minus the clean ICL score."""
    ### BEGIN SOLUTION
    early, late = M.icl_positions(text.shape[1])

    def icl(logits):
        loss = cross_entropy_next_token(logits, text, per_token=True)
        return float(loss[:, late - 1].mean() - loss[:, early - 1].mean())

    return icl(zero_ablation(model, text, layer, head)) - icl(model(text))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_icl_effect", "points": 2}
checks.check_icl_effect(icl_effect)
with torch.no_grad():
    print(f"Δ ICL score, head 1.0 zero-ablated: {checks.on_its_own(icl_effect, 'icl_effect')(model, text, 1, 0):+.3f}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("icl_effect", icl_effect, seed=571, layer=1, head=1, n_pos=40, batch=3)
checks.compare_with_reference("icl_effect", icl_effect, seed=572, layer=0, head=0, n_pos=64, n_heads=3)
checks.compare_with_reference("icl_effect", icl_effect, seed=573, layer=0, head=1, n_pos=48, n_layers=1)
### END HIDDEN TESTS

# %% [markdown]
# ## What do the control heads 0.1 and 0.2 do?
#
# Heads 0.1 and 0.2 are neither induction nor previous-token heads, yet zero-ablating them moves
# the ICL score by −0.37 ± 0.10 — in the "wrong" direction, and by more than three standard
# errors. Four measurements, each printed by the cell below:
#
# 1. **Where they look** (their patterns on the text): how much attention goes to the current
#    token, to 1, 2, … 5 tokens back, and to BOS, and how far back it goes on average; and
#    chapter 3's previous-token score on the probe, beside the previous-token heads'.
# 2. **Where removing them hurts**: the Δ loss averaged over every text position, beside the Δ loss
#    at the two positions the ICL score reads (tokens 12 and 125), and the position where it is
#    largest (the figure draws it at every position).
# 3. **Which part of their output matters**: zero ablation removes all of it, mean ablation only
#    what varies from one input to the next (it writes each position's average output in its
#    place), pattern-preserving ablation only what does not act through layer 1's attention.
# 4. **How stable the effect is**: the same zero ablation on disjoint sets of 32 windows, and on
#    all 512 held-out windows.

# %%
e_pos, l_pos = M.icl_positions(text.shape[1])
ctrl, ctrl_mean = effects[ctrl_label], effects_mean[ctrl_label]
with torch.no_grad():
    _, cache0 = model.run_with_cache(text, names_filter=lambda n: n in (hook_name("pattern", 0), hook_name("z", 0)))
    q = torch.arange(text.shape[1])
    back = (q[:, None] - q[None, :]).clamp_min(0).float()  # [q, k]: how many tokens back key k is from query q
    looks = {}
    for l, h in CONTROL + PREV_TOKEN:
        pat = cache0[hook_name("pattern", 0)][:, h]  # [batch, q, k]
        looks[(l, h)] = {"by_offset": [float(pat[:, q[off:], q[off:] - off].mean()) for off in range(6)],
                         "to_bos": float(pat[:, 1:, 0].mean()), "mean_back": float((pat * back).sum(-1).mean())}
    prev_score = M.head_scores(model, probe)["previous_token"]
    # the control heads' output at every position, split into its per-position average and the rest
    out = sum(torch.einsum("bpd,dm->bpm", cache0[hook_name("z", 0)][:, :, h], model.W_O[0, h]) for _, h in CONTROL)
    out_avg = out.mean(0)  # [pos, d_model]
    avg_norm, rest_norm = float(out_avg.norm(dim=-1).mean()), float((out - out_avg).norm(dim=-1).mean())
    pp_probe = later_repeat_loss(A.ablate(model, probe, CONTROL, "pattern_preserving"), probe, SEG) - clean_loss
    ctrl_all = {r["kind"]: r for kind in ("zero", "mean")
                for r in A.joint_ablation_table(model, {ctrl_label: CONTROL}, probe, text_all, kind=kind)}
print("1. where each layer-0 head looks on the text (attention 0, 1, ..., 5 tokens back; BOS; mean distance back):")
for (l, h), r in looks.items():
    print(f"   head {l}.{h}: {[round(x, 3) for x in r['by_offset']]}  BOS {r['to_bos']:.3f}  "
          f"{r['mean_back']:5.1f} tokens back  (previous-token score on the probe {prev_score[l, h]:.2f})")
d_pos = ctrl["delta_loss_by_position"]
peak = int(d_pos.argmax())
print(f"2. removing {names(CONTROL)} raises the loss by {ctrl['delta_text_loss']:+.3f} nats over all positions; "
      f"at token {e_pos}: {d_pos[e_pos - 1]:+.3f}, at token {l_pos}: {d_pos[l_pos - 1]:+.3f} "
      f"-> Δ ICL = {d_pos[l_pos - 1] - d_pos[e_pos - 1]:+.3f} ± {ctrl['delta_icl_se']:.3f}; "
      f"largest at token {peak + 1}: {d_pos[peak]:+.3f}")
print(f"3. {'':>20} Δ later-repeat loss | Δ ICL score (± s.e.) | Δ loss, all text positions")
for kind, r in (("zero", ctrl), ("mean", ctrl_mean)):
    print(f"   {kind + ' ablation':>20} {r['delta_probe_loss']:+19.3f} | {r['delta_icl_score']:+8.3f} ± "
          f"{r['delta_icl_se']:.3f}    | {r['delta_text_loss']:+.3f}")
print(f"   {'pattern-preserving':>20} {pp_probe:+19.3f} |")
print(f"   their summed output: per-position average {avg_norm:.2f} in norm, what varies around it {rest_norm:.2f}")
subsets = ctrl["delta_icl_per_window"].reshape(-1, 32).mean(1)
print(f"4. Δ ICL score on 4 disjoint sets of 32 windows: {[round(float(x), 2) for x in subsets]}; "
      f"on all {len(text_all)} windows: zero ablation {ctrl_all['zero']['delta_icl_score']:+.3f} ± "
      f"{ctrl_all['zero']['delta_icl_se']:.3f}, mean ablation {ctrl_all['mean']['delta_icl_score']:+.3f} ± "
      f"{ctrl_all['mean']['delta_icl_se']:.3f}")
tokens_axis = range(2, text.shape[1] + 1)  # column i of the per-token loss predicts token i + 1
plt.figure(figsize=(6, 3))
plt.plot(tokens_axis, d_pos.tolist(), label=f"control {names(CONTROL)}, zero")
plt.plot(tokens_axis, ctrl_mean["delta_loss_by_position"].tolist(), label=f"control {names(CONTROL)}, mean")
plt.plot(tokens_axis, effects["all 4 induction heads"]["delta_loss_by_position"].tolist(), label="induction heads, zero")
for t in (e_pos, l_pos):
    plt.axvline(t, color="k", lw=0.5, ls="--")
plt.xlabel("token position (dashed: the ICL score's tokens)")
plt.ylabel("Δ loss (nats)")
plt.legend(fontsize=7)
plt.show()

# %% [markdown]
# What the numbers say (the cell and figure above):
#
# 1. Heads 0.1 and 0.2 spread their attention over the whole context: at most 0.06 on any of the
#    current and last five tokens, 0.06 and 0.12 on BOS, on average 23 and 27 tokens back; their
#    previous-token scores are 0.05 and 0.06, against 0.71 and 0.97 for heads 0.0 and 0.3.
# 2. Removing them raises the loss at token 12 (+0.44) far more than at token 125 (+0.07): the
#    damage sits early in the context (largest at token 25, +1.38; the figure). The ICL score is
#    the *difference* of those two losses, so it moves by −0.37: the model predicts *worse* at both
#    positions, not better late in the context; this is not a gain in in-context learning.
# 3. What the model misses is their *average* output, not what they read from a particular
#    context: mean ablation, which writes each position's average output in their place, costs
#    nothing measurable (Δ ICL +0.04 ± 0.06, +0.04 nats over all positions, −0.01 on the repeats).
#    Their summed output is mostly that average (norm 2.54, against 1.66 for what varies around
#    it), so a zero output is far from anything they write. The +0.36 on the repeats goes through
#    layer 1's attention: with every pattern frozen, removing them costs −0.02.
# 4. The zero-ablation effect itself is not noise: it is negative on all four sets of 32 windows
#    (−0.09 to −0.62) and on all 512 windows (−0.37 ± 0.05), where mean ablation stays at +0.02 ±
#    0.02.
#
# So the control is not neutral under zero ablation, for a reason that has nothing to do with
# in-context learning, and mean ablation is the fairer control here. The main finding survives
# it: mean-ablated, the induction heads still cost +0.66 ± 0.16 on the ICL score and the
# previous-token heads +0.50 ± 0.15 (table above), while the control costs +0.04 ± 0.06.
# Lesson: an ablation's effect on a *difference* of losses needs the single-position effects and
# its standard error beside it, and a zero output can be off-distribution enough to be an effect
# of its own.

# %% [markdown]
# ## Exercise 7 — The ablation sweep over checkpoints (2 points, ★★, 10 min)
#
# **Goal:** the paper's ablation sweep in miniature: how much do a fixed set of heads matter at
# each point of training? For each model (checkpoint), ablate all of `heads` **together** (zero
# ablation; the library's `A.zero_ablation(model, tokens, heads)` takes a list) and report the
# later-repeat loss minus that checkpoint's own clean loss.
#
# - in: `models` (a list), `probe`, `heads` (list of `(layer, head)`), `seg_len`
# - out: `[n_models]` (float)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# <details><summary>Hint 1</summary> Per model: its own clean later-repeat loss, and the loss with all the heads ablated in one run. </details>
# <details><summary>Hint 2</summary> <code>A.zero_ablation(m, probe, heads)</code> ablates a list of heads together; <code>later_repeat_loss(logits, probe, seg_len)</code> scores it. </details>
# <details><summary>Hint 3</summary> Collect <code>ablated - clean</code> per model in a list and return <code>torch.tensor(out)</code>. </details>
#
# **Expected output**: `✔ ablation_sweep: all visible checks passed.`; in the plot below the
# induction heads' curve starts near 0 and ends near +4.8 (the numbers are printed under it).

# %% nbgrader={"solution": true, "grade_id": "ch5_ablation_sweep_code"}
def ablation_sweep(models: list, probe: torch.Tensor, heads: list, seg_len: int) -> torch.Tensor:
    """[n_models]: Δ later-repeat loss when ``heads`` are zero-ablated together, per model."""
    ### BEGIN SOLUTION
    out = []
    for m in models:
        clean = later_repeat_loss(m(probe), probe, seg_len)
        out.append(later_repeat_loss(A.zero_ablation(m, probe, heads), probe, seg_len) - clean)
    return torch.tensor(out)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch5_ablation_sweep", "points": 2}
checks.check_ablation_sweep(ablation_sweep)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("ablation_sweep", ablation_sweep, seed=551, n_models=2, n_heads=2)
checks.compare_with_reference("ablation_sweep", ablation_sweep, seed=552, n_models=4, n_heads=4, seg_len=4)
### END HIDDEN TESTS

# %%
steps = sorted(set(list_steps()[::5]) | {list_steps()[-1]})  # every fifth checkpoint and the last
history = {h["step"]: h for h in load_history()}
models = [load_model(step=s, device=DEVICE) for s in steps]
print(f"sweep over {len(steps)} checkpoints on {DEVICE}")
with torch.no_grad():
    my_sweep = checks.or_reference(ablation_sweep, "ablation_sweep")
    sweep_ind = my_sweep(models, probe.to(DEVICE), INDUCTION, SEG).cpu()
    sweep_prev = my_sweep(models, probe.to(DEVICE), PREV_TOKEN, SEG).cpu()
    sweep_rand = my_sweep(models, probe.to(DEVICE), CONTROL, SEG).cpu()
tok = [history[s]["tokens"] / 1e6 for s in steps]
plt.figure(figsize=(6, 3.5))
plt.plot(tok, sweep_ind, "o-", label=f"induction heads {names(INDUCTION)}")
plt.plot(tok, sweep_prev, "o-", label=f"previous-token heads {names(PREV_TOKEN)}")
plt.plot(tok, sweep_rand, "o-", label=f"control: heads {names(CONTROL)}")
plt.xlabel("training tokens (M)")
plt.ylabel("Δ loss on later repeats (nats)")
plt.legend()
plt.show()
print(f"{'step':>21}: " + "  ".join(f"{s:>11}" for s in steps))
for name, values in (("induction heads", sweep_ind), ("previous-token heads", sweep_prev), ("control", sweep_rand)):
    print(f"{name:>21}: " + "  ".join(f"{t:.2f}M {v:+.2f}" for t, v in zip(tok, values.tolist())))

# %% [markdown]
# The numbers under the plot: before the bump (chapter 2) ablating the future induction heads
# costs almost nothing (+0.06 nats at step 107, 0.21 M tokens); as the heads form they take over the
# repeated-token skill (+2.18 at step 304, 0.58 M; +4.00 at step 558, 1.07 M; +4.76 at the end),
# and the previous-token heads that feed them follow the same curve (+2.02 at 0.58 M, +3.96 at
# 1.07 M, +4.65 at the end). The control heads 0.1 + 0.2 stay between −0.02 and +0.35 throughout,
# no more than a seventh of the induction heads' cost from step 304 on (the last is the table's
# +0.355, the zero-ablation cost explained after exercise 6).

# %% [markdown]
# ## Exercise 8 — An induction head by hand (3 points, ★★★, 30 min)
#
# **Goal:** prove you understand the circuit by *writing* it. Set every weight of a fresh
# two-layer attention-only model (no LayerNorm) so that it does match-and-copy with no training.
# The config gives you room for a one-hot code of everything
# (`d_model = 2·d_vocab + n_ctx`, `d_head = max(d_vocab, n_ctx)`):
#
# | residual dims | holds | written by |
# |---|---|---|
# | `0 … d_vocab-1` | the current token, one-hot | `W_E` |
# | `d_vocab … d_vocab+n_ctx-1` | the position, one-hot | `W_pos` |
# | `d_vocab+n_ctx … end` | the *previous* token, one-hot | head 0.0 |
#
# 1. **Head 0.0, previous token.** QK: the query at position `p` must match the key at `p-1`
#    (map position `p` to direction `p` in `W_Q`, position `k` to direction `k+1` in `W_K`, times a
#    large factor — the scores are divided by `sqrt(d_head)`). OV: read the token, write it into the
#    previous-token dims.
# 2. **Head 1.0, induction.** QK: query = current token, key = previous-token dims (K-composition
#    with head 0.0). OV: read the token at the attended position, write it into the token dims,
#    with a factor large enough to beat the direct path.
# 3. **Unembedding**: `W_U` reads the token dims as logits. Leave every other weight and bias zero.
#
# - in: `cfg` (`checks.hand_built_config(...)`: `d_vocab`, `n_ctx`, `d_model`, `d_head`, `n_heads ≥ 1`)
# - out: an `AttnOnlyTransformer(cfg)` with your weights. It passes when chapter 3's detectors
#   (`metrics.head_scores`) give a layer-0 head previous-token score ≥ 0.9, a layer-1 head
#   prefix-matching score ≥ 0.9 on a repeated-random-token probe, and the later repeats are predicted.
#
# **Difficulty** ●●●●○ · **Importance** ●●●○○ · about 30 minutes
#
# <details><summary>Hint 1</summary> Each head is two small matrices: QK decides where it looks, OV what it writes. Write them as one-hot maps between the blocks of the table above. </details>
# <details><summary>Hint 2</summary> Index assignments set a whole diagonal at once: with <code>v = torch.arange(V)</code>, <code>W_E[v, TOK + v]</code> addresses every token's own direction; do it under <code>torch.no_grad()</code> after zeroing every parameter. </details>
# <details><summary>Hint 3</summary> Head 0.0's query maps position p to direction p and its key maps position k to direction k + 1; head 1.0's query reads the TOK block and its key the PREV block; both OV circuits copy a one-hot token, head 1.0's with a factor of about 10. </details>
#
# **Expected output**: `✔ build_induction_model: all visible checks passed.` and
# `previous-token: tensor([1.])  prefix matching: tensor([1.])` (each ≥ 0.9).

# %% nbgrader={"solution": true, "grade_id": "ch5_build_induction_model_code"}
from induction_course.model import AttnOnlyTransformer  # noqa: E402


def build_induction_model(cfg) -> AttnOnlyTransformer:
    """A two-layer model whose head 0.0 attends to the previous token and head 1.0 does induction."""
    V, N = cfg.d_vocab, cfg.n_ctx
    TOK, POS, PREV = 0, V, V + N  # where each one-hot code starts in the residual stream
    model = AttnOnlyTransformer(cfg)
    ### BEGIN SOLUTION
    big = 20.0 * math.sqrt(cfg.d_head)
    v, n = torch.arange(V), torch.arange(N)
    for p in model.parameters():
        p.requires_grad_(False).zero_()
    with torch.no_grad():  # set the one-hot codes and the two heads
        model.W_E[v, TOK + v] = 1.0
        model.W_pos[n, POS + n] = 1.0
        # head 0.0: query at p -> direction p, key at k -> direction k + 1
        model.W_Q[0, 0, POS + n, n] = big
        model.W_K[0, 0, POS + n[:-1], n[1:]] = 1.0
        model.W_V[0, 0, TOK + v, v] = 1.0
        model.W_O[0, 0, v, PREV + v] = 1.0
        # head 1.0: query = current token, key = previous token (written by head 0.0)
        model.W_Q[1, 0, TOK + v, v] = big
        model.W_K[1, 0, PREV + v, v] = 1.0
        model.W_V[1, 0, TOK + v, v] = 1.0
        model.W_O[1, 0, v, TOK + v] = 10.0
        model.W_U[TOK + v, v] = 1.0
    ### END SOLUTION
    return model.eval()


# %% nbgrader={"grade": true, "grade_id": "ch5_build_induction_model", "points": 3}
checks.check_build_induction_model(build_induction_model)
hand = build_induction_model(checks.hand_built_config(30, 48))
hand_probe = repeated_random_tokens(10, 10, 4, torch.arange(1, 30), 0, seed=0)
s = M.head_scores(hand, hand_probe)
print("previous-token:", s["previous_token"][0], " prefix matching:", s["prefix_matching"][1])
### BEGIN HIDDEN TESTS
checks.compare_with_reference("build_induction_model", build_induction_model, seed=561, d_vocab=20, n_ctx=64, seg_len=12)
checks.compare_with_reference("build_induction_model", build_induction_model, seed=562, d_vocab=40, n_ctx=40, n_heads=2, seg_len=9)
### END HIDDEN TESTS

# %% [markdown]
# **Summary** (every number from a cell above). Removing the four induction heads together costs
# +4.76 nats on the later repeats, about twice the sum of their single-head effects (+2.25), and
# raises the ICL score on 128 held-out windows by +0.60 ± 0.16, more than the clean model's
# −0.48: no in-context learning is left within the standard error. Knocking out just their
# induction stripe costs +4.82, as much as removing the heads; the previous-token heads 0.0 + 0.3
# together cost +4.65 (head 0.3 alone +4.38), but nothing once the patterns are frozen (+0.01):
# they matter through the induction heads' keys. The control, the other two heads 0.1 + 0.2, is
# not neutral under zero ablation (+0.36 on the repeats, −0.37 ± 0.10 on the ICL score): these
# broad heads write a large per-position average that a zero output removes, hurting early tokens
# far more than late ones; under mean ablation they cost nothing (+0.04 ± 0.06 on the ICL score)
# while the induction heads still cost +0.66 ± 0.16. And a dozen lines of hand-set weights
# reproduce the circuit: two heads, K-composition, a copying OV circuit.

# %% [markdown] nbgrader={"grade_id": "ch5_written_intro", "locked": true}
# ## Written questions (4 points, graded by hand)
#
# Answer each question in the cell below it, in three to six sentences, in place of `YOUR ANSWER
# HERE`. Argue from the numbers and figures this notebook printed and cite them: that is what earns
# the points. Your instructor grades these answers by hand after the autograder has run.

# %% [markdown] nbgrader={"grade_id": "ch5_written_knockout_question", "locked": true}
# **Written question 1 (2 points).** Why is the induction-stripe knockout more convincing evidence
# than zero ablation that the induction heads' *induction* causes the low loss on repeats? Cite
# your numbers: the table printed after exercise 4 (zero ablation, stripe knockout and the random
# control, Δ loss on later repeats).

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch5_written_knockout", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** Zero ablation removes everything the four heads do (and feeds the rest of the
# model an output it never saw), so its cost, +4.76 nats on the later repeats, shows that the
# heads matter but not *which* of their behaviours matters. The knockout removes only the
# attention on the induction targets and leaves the rest of each head's pattern in place; it
# still costs +4.82, as much as the zero ablation: the whole value of these heads on the repeats
# is the induction stripe. The random control (the two other heads, 0.1 and 0.2, zeroed) costs
# +0.36, about a thirteenth, so removing heads as such does not cost this much; the effect is
# specific to these heads and this behaviour.
#
# **Rubric (2 points).** 1 point: zero ablation removes the whole head (any behaviour, and an
# off-distribution output), the knockout removes one behaviour, so it tests the mechanism itself.
# 1 point: cites the numbers, knockout about +4.8 against zero about +4.8 (all of the effect) and
# the control far smaller (+0.36). Half a point for the numbers without the argument, or the
# argument without the numbers. No point is lost for adding that the control's +0.36 vanishes under
# mean ablation (−0.01).
# ### END SOLUTION

# %% [markdown] nbgrader={"grade_id": "ch5_written_steering_question", "locked": true}
# **Written question 2 (2 points).** Zero-ablating the previous-token heads 0.0 and 0.3 costs a lot
# on the later repeats, pattern-preserving ablation of the same heads almost nothing. Cite both
# numbers from the table printed after exercise 4 and explain what the difference says about the
# job of the previous-token heads.

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch5_written_steering", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** Zero ablation of heads 0.0 and 0.3 costs +4.65 nats on the later repeats;
# with every attention pattern frozen to the clean run, removing their output costs +0.01, nothing.
# Freezing the patterns keeps layer 1 attending where it attended, so what is left to remove is
# only what the previous-token heads write directly into the logits (and through V-composition),
# which is small. Their job is to *steer* the induction heads: through K-composition, the
# previous token they write at every position is what the induction heads' keys match against.
# Zero ablation removes that information, so the induction heads look in the wrong place; the
# pattern-preserving ablation cannot remove it, because the patterns no longer depend on it.
#
# **Rubric (2 points).** 1 point: both numbers (about +4.7 and +0.01) and the reading that the heads
# matter only through where layer 1 attends. 1 point: the mechanism, K-composition: the induction
# heads' keys read what the previous-token heads write; freezing the patterns keeps that effect,
# so only the (small) direct contribution is removed. Half a point for "they feed layer 1"
# without K-composition or without the numbers.
# ### END SOLUTION

# %% [markdown]
# ## Summarise in your own words
#
# Write three or four sentences for a classmate who skipped this chapter: which heads cause the
# in-context learning and how you know (which ablation, which control), why the single-head table
# understates the induction heads, and what the control heads' effect on the ICL score teaches
# about reading ablation numbers. (Not graded.)

# %% [markdown]
# *Your summary here.*
