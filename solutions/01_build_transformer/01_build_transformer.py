# ---
# jupyter:
#   induction_course:
#     chapter: 01_build_transformer
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% nbgrader={"grade_id": "ch1_runtime_setup", "locked": true}
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
# # Chapter 1 — Build a transformer, piece by piece
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/induction-heads-course/induction-heads/blob/main/chapters/01_build_transformer/01_build_transformer.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/induction-heads-course/induction-heads/main?urlpath=lab/tree/chapters/01_build_transformer/01_build_transformer.ipynb)
#
# Induction heads live in a two-layer, attention-only transformer (Elhage et al. 2021; Olsson et
# al. 2022). Before we can find them, we build that model ourselves: every weight named and
# shaped exactly as in [TransformerLens](https://github.com/TransformerLensOrg/TransformerLens),
# so that every formula in the papers reads the same in your code. At the end you load your
# weights into a TransformerLens 4 `TransformerBridge`, check that it computes exactly what your
# model computes, and read the **QK** and **OV circuits** of a head.
#
# **How this notebook works.** Each exercise says what it teaches, how hard it is (★ easy …
# ★★★ harder) and how long it should take, gives the shapes in and out, and what a correct
# output looks like. Fill in the cells marked `# YOUR CODE HERE`, then run the check cell below
# it: it tests your function on small inputs and tells you what is wrong (and the usual cause;
# for a mistake it does not know, the first property your answer breaks: rows that do not sum to
# 1, a query that sees the future, the first layer that differs …). Stuck before that? Each
# exercise has hints to open one at a time (idea → the function to use → the shape of the line;
# none is the solution), its importance beside its difficulty (●○○○○ … ●●●●●), and the output a
# correct answer prints.
# When you submit, the same cells run again with more (hidden) tests on fresh random inputs.
#
# A mistake in one exercise costs the points of that exercise only: the checks of later
# exercises use the reference versions of the earlier pieces. Later chapters import the
# reference model from the `induction_course` package, so you never depend on this notebook.
#
# Everything runs on a laptop CPU in a minute or two: we use small *random* models (no training
# needed to check shapes and circuits; chapter 2 trains one).
#
# | Exercise | Points | Difficulty | Time |
# |---|---|---|---|
# | 1. Token embedding | 1 | ★ | 3 min |
# | 2. Positional embedding | 1 | ★ | 5 min |
# | 3. One head's attention scores | 2 | ★★ | 10 min |
# | 4. The causal mask | 1 | ★ | 5 min |
# | 5. The attention pattern | 2 | ★ | 5 min |
# | 6. Weighted values and output projection | 2 | ★★ | 10 min |
# | 7. A multi-head attention layer | 3 | ★★★ | 20 min |
# | 8. Unembedding | 1 | ★ | 3 min |
# | 9. The residual stream through two layers | 3 | ★★ | 15 min |
# | 10. Your weights in TransformerLens names | 2 | ★★ | 10 min |
# | 11. Logits and patterns from the bridge | 2 | ★★ | 10 min |
# | 12. The full OV circuit of a head | 2 | ★★ | 10 min |
# | 13. The positional QK circuit of a head | 2 | ★★ | 10 min |
# | 14. The copying score of an OV circuit | 1 | ★★ | 10 min |
# | W1. Written: why the mask comes before the softmax (graded by hand) | 2 | ★ | 5 min |
# | W2. Written: where and what, QK and OV (graded by hand) | 2 | ★★ | 10 min |

# %% nbgrader={"grade_id": "ch1_setup", "locked": true}
import math

import matplotlib.pyplot as plt
import torch

from induction_course import functional as F  # the package's reference pieces (demo cells fall back on them)
from induction_course.course.checks import ch01 as checks
from induction_course.model import AttnOnlyTransformer, ModelConfig, hook_name

torch.manual_seed(0)
# A small random (untrained) model with the package's default initialisation.
cfg = ModelConfig(d_vocab=61, n_ctx=32, d_model=32, n_heads=4, d_head=8, n_layers=2, normalization=None, seed=0)
model = AttnOnlyTransformer(cfg).eval()
tokens = torch.randint(0, cfg.d_vocab, (2, 12))  # [batch=2, pos=12]
x_demo = model.W_E[tokens] + model.W_pos[: tokens.shape[1]]  # the residual stream before layer 0, [2, 12, 32]
print(cfg)
print("tokens:", list(tokens.shape))

# %% [markdown]
# ## The model in one picture
#
# The residual stream starts as token embedding plus positional embedding. Each layer's heads
# read the stream, and the layer adds what they write back into it. At the end, the unembedding
# turns the stream into logits:
#
# $$x_0 = W_E[t] + W_{pos}[p], \qquad x_{l+1} = x_l + \sum_h \mathrm{head}_{l,h}(x_l) + b_O^{(l)}, \qquad \text{logits} = x_L W_U + b_U$$
#
# Weights, in TransformerLens shapes: `W_E [d_vocab, d_model]`, `W_pos [n_ctx, d_model]`,
# `W_Q, W_K, W_V [n_layers, n_heads, d_model, d_head]`, `b_Q, b_K, b_V [n_layers, n_heads, d_head]`,
# `W_O [n_layers, n_heads, d_head, d_model]`, `b_O [n_layers, d_model]`, `W_U [d_model, d_vocab]`,
# `b_U [d_vocab]`. They are attributes of `model` (`model.W_E`, `model.W_Q[layer]`, …).

# %% [markdown]
# ## Exercise 1 — Token embedding (1 point, ★, 3 min)
#
# **Difficulty** ●○○○○ · **Importance** ●●●○○ · about 3 minutes
#
# **Goal:** turn token ids into vectors. Row `t` of `W_E` is the embedding of token `t`.
#
# - in: `tokens [batch, pos]` (integers), `W_E [d_vocab, d_model]`
# - out: `[batch, pos, d_model]`
#
# One line. A correct answer on our `tokens` has shape `[2, 12, 32]`.
#
# **Expected output**: `embedding of our tokens: [2, 12, 32] tensor([-0.4274,  0.8143, -1.4121])` (±1e-4).
#
# <details><summary>Hint 1</summary>
#
# Each token id picks one row of `W_E`: no multiplication is needed.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# PyTorch indexing with an integer tensor, `W_E[ids]`, picks rows for every id at once and keeps the shape of `ids` in front.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_embed_code"}
def embed(tokens: torch.Tensor, W_E: torch.Tensor) -> torch.Tensor:
    """Token embeddings [batch, pos, d_model]."""
    ### BEGIN SOLUTION
    return W_E[tokens]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_embed", "points": 1}
checks.check_embed(embed)
with torch.no_grad():
    print("embedding of our tokens:", list(embed(tokens, model.W_E).shape), embed(tokens, model.W_E)[0, 0, :3])
### BEGIN HIDDEN TESTS
for seed in (101, 102, 103):
    checks.compare_with_reference("embed", embed, seed=seed, batch=3, n_pos=9, d_vocab=40, d_model=12)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2 — Positional embedding (1 point, ★, 5 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●○○ · about 5 minutes
#
# **Goal:** the attention-only model knows *where* a token is only through `W_pos`: row `p` is
# added at position `p`, whatever the token. Return it for every sequence of the batch.
#
# - in: `tokens [batch, pos]` (only its shape matters), `W_pos [n_ctx, d_model]`
# - out: `[batch, pos, d_model]`; every sequence of the batch gets the same rows `W_pos[0], …, W_pos[pos-1]`.
#
# **Expected output**: `pos_embed(tokens, model.W_pos)[1, 5, 1:4] = tensor([-1.4142, -0.1397,  1.4073])` (±1e-4): row 5 of `W_pos`, whatever the token.
#
# <details><summary>Hint 1</summary>
#
# Only the positions `0 … pos-1` matter, so the answer is the first `pos` rows of `W_pos`, once per sequence.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# Slice `W_pos[:n_pos]`, then give it a batch axis with `unsqueeze(0)`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# `.expand(batch, n_pos, d_model)` repeats it over the batch without copying.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_pos_embed_code"}
def pos_embed(tokens: torch.Tensor, W_pos: torch.Tensor) -> torch.Tensor:
    """Positional embeddings [batch, pos, d_model]."""
    ### BEGIN SOLUTION
    batch, n_pos = tokens.shape
    return W_pos[:n_pos].unsqueeze(0).expand(batch, n_pos, W_pos.shape[1])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_pos_embed", "points": 1}
checks.check_pos_embed(pos_embed)
with torch.no_grad():
    print("pos_embed(tokens, model.W_pos)[1, 5, 1:4] =", pos_embed(tokens, model.W_pos)[1, 5, 1:4].detach())
### BEGIN HIDDEN TESTS
for seed in (201, 202, 203):
    checks.compare_with_reference("pos_embed", pos_embed, seed=seed, batch=4, n_pos=7, n_ctx=15, d_model=10)
checks.compare_with_reference("pos_embed", pos_embed, seed=204, batch=1, n_pos=15, n_ctx=15, d_model=10)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3 — One head's attention scores (2 points, ★★, 10 min)
#
# **Difficulty** ●●●○○ · **Importance** ●●●●● · about 10 minutes
#
# **Goal:** a head compares every query position with every key position. With
# $q = x W_Q + b_Q$ and $k = x W_K + b_K$, the score of query position $i$ for key position $j$ is
#
# $$\text{score}[i, j] = \frac{q_i \cdot k_j}{\sqrt{d_{head}}}.$$
#
# - in: `x [batch, pos, d_model]`, `W_Q, W_K [d_model, d_head]`, `b_Q, b_K [d_head]`
# - out: `[batch, q_pos, k_pos]`: rows are queries, columns keys. **No mask yet** (next exercise).
#
# Why the scale? Each entry of `q · k` is a sum of `d_head` products, so it grows like
# `sqrt(d_head)`; dividing keeps the softmax away from saturation.
#
# **Expected output**: `scores of head 0.0, sequence 0, query 3: tensor([ 0.8341, -2.9769, -0.7249, -3.4377])` (±1e-4).
#
# <details><summary>Hint 1</summary>
#
# Compute the queries and the keys of every position first (`[batch, pos, d_head]` each), then compare every query with every key.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# A batched matrix product `q @ k.transpose(-1, -2)` gives all dot products `[batch, q_pos, k_pos]` at once.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Divide by `math.sqrt(d_head)`, where `d_head` is the last dimension of `W_Q`.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_head_scores_code"}
def head_attn_scores(x: torch.Tensor, W_Q: torch.Tensor, b_Q: torch.Tensor,
                     W_K: torch.Tensor, b_K: torch.Tensor) -> torch.Tensor:
    """Scaled attention scores [batch, q_pos, k_pos] of one head, before the causal mask."""
    ### BEGIN SOLUTION
    q = x @ W_Q + b_Q
    k = x @ W_K + b_K
    return q @ k.transpose(-1, -2) / math.sqrt(W_Q.shape[-1])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_head_scores", "points": 2}
checks.check_head_attn_scores(head_attn_scores)
with torch.no_grad():
    print("scores of head 0.0, sequence 0, query 3:",
          head_attn_scores(x_demo, model.W_Q[0, 0], model.b_Q[0, 0], model.W_K[0, 0], model.b_K[0, 0])[0, 3, :4])
### BEGIN HIDDEN TESTS
for seed in (301, 302, 303):
    checks.compare_with_reference("head_attn_scores", head_attn_scores, seed=seed, batch=3, n_pos=9, d_model=20, d_head=5)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 — The causal mask (1 point, ★, 5 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 5 minutes
#
# **Goal:** a language model predicts the next token, so position $i$ may only look at positions
# $j \le i$. Set every score with key after query ($j > i$) to `-inf`, and leave the others as
# they are. Work on the last two axes, whatever comes before them (one head, or all heads).
#
# - in: `scores [..., q_pos, k_pos]`
# - out: same shape; above the diagonal `-inf`, on and below it unchanged.
#
# **Expected output**: the cell prints a 4×4 matrix: zeros on and below the diagonal, `-inf` above it.
#
# <details><summary>Hint 1</summary>
#
# Build a boolean `[q_pos, k_pos]` matrix that is `True` exactly where `k > q`; it broadcasts over the leading axes.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)` is that matrix.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# `scores.masked_fill(mask, float("-inf"))` returns a new tensor and leaves `scores` unchanged.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_causal_mask_code"}
def apply_causal_mask(scores: torch.Tensor) -> torch.Tensor:
    """scores [..., q_pos, k_pos] with -inf wherever k_pos > q_pos."""
    ### BEGIN SOLUTION
    n_q, n_k = scores.shape[-2:]
    future = torch.ones(n_q, n_k, dtype=torch.bool, device=scores.device).triu(diagonal=1)
    return scores.masked_fill(future, float("-inf"))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_causal_mask", "points": 1}
checks.check_apply_causal_mask(apply_causal_mask)
print(apply_causal_mask(torch.zeros(4, 4)))
### BEGIN HIDDEN TESTS
for seed in (401, 402):
    checks.compare_with_reference("apply_causal_mask", apply_causal_mask, seed=seed, batch=3, n_pos=8)
checks.compare_with_reference("apply_causal_mask", apply_causal_mask, seed=403, batch=2, n_pos=9, n_heads=3)
### END HIDDEN TESTS

# %% [markdown]
# You should see a 4×4 matrix with zeros on and below the diagonal and `-inf` above it.
#
# ## Exercise 5 — The attention pattern (2 points, ★, 5 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●● · about 5 minutes
#
# **Goal:** turn scores into a probability distribution over the keys each query may see: mask,
# then softmax over the **key** axis. (Why in that order? A softmax followed by zeroing would
# leave rows that no longer sum to 1.)
#
# - in: `scores [..., q_pos, k_pos]` (scaled, unmasked)
# - out: `pattern [..., q_pos, k_pos]`: every row sums to 1, zeros above the diagonal, and row 0
#   is `[1, 0, 0, …]` (the first token can only attend to itself).
#
# You may call your `apply_causal_mask`.
#
# **Expected output**: `attention_pattern(torch.zeros(3, 3))` prints `[[1, 0, 0], [0.5, 0.5, 0], [0.3333, 0.3333, 0.3333]]` (equal scores share the visible keys evenly), and the plot below the check looks like this:
#
# ![expected pattern of head 0.0](expected_pattern.png)
#
# <details><summary>Hint 1</summary>
#
# Two steps: hide the future, then normalise each row over the keys it can see.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# Your `apply_causal_mask`, then `softmax` over the last axis (`dim=-1`, the keys).
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_pattern_code"}
def attention_pattern(scores: torch.Tensor) -> torch.Tensor:
    """Causal attention pattern [..., q_pos, k_pos]: every row a distribution over keys <= query."""
    ### BEGIN SOLUTION
    return apply_causal_mask(scores).softmax(dim=-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_pattern", "points": 2}
checks.check_attention_pattern(attention_pattern)
print(checks.alone(attention_pattern, torch.zeros(3, 3)))  # your function, with the reference apply_causal_mask
### BEGIN HIDDEN TESTS
for seed in (501, 502):
    checks.compare_with_reference("attention_pattern", attention_pattern, seed=seed, batch=3, n_pos=10)
checks.compare_with_reference("attention_pattern", attention_pattern, seed=503, batch=2, n_pos=7, n_heads=4)
### END HIDDEN TESTS

# %% [markdown]
# Here is the pattern of head 0 of layer 0 of our random model on the first sequence. It is lower
# triangular, and row 0 puts all its weight on position 0.

# %%
my_scores = checks.mine_or_reference("head_attn_scores", head_attn_scores, 3)
my_pattern = checks.mine_or_reference("attention_pattern", attention_pattern, 5)
with torch.no_grad():
    demo_pattern = my_pattern(my_scores(x_demo, model.W_Q[0, 0], model.b_Q[0, 0], model.W_K[0, 0], model.b_K[0, 0]))
plt.figure(figsize=(3.5, 3))
plt.imshow(demo_pattern[0], cmap="Blues", vmin=0, vmax=1)
plt.xticks(range(tokens.shape[1]))  # whole positions, no fractional ticks
plt.yticks(range(tokens.shape[1]))
plt.xlabel("key position")
plt.ylabel("query position")
plt.title("layer 0, head 0")
plt.colorbar()
plt.show()

# %% [markdown]
# ## Exercise 6 — Weighted values and output projection (2 points, ★★, 10 min)
#
# **Difficulty** ●●●○○ · **Importance** ●●●●● · about 10 minutes
#
# **Goal:** what one head writes into the residual stream. Each key position offers a value
# $v_j = x_j W_V + b_V$; query position $i$ takes the average of the values weighted by its row
# of the pattern, $z_i = \sum_j \text{pattern}[i, j]\, v_j$, and projects it back to the
# residual stream with $W_O$: $z_i W_O$. (No `b_O` here: it belongs to the layer, not the head.)
#
# - in: `pattern [batch, q_pos, k_pos]`, `x [batch, pos, d_model]`, `W_V [d_model, d_head]`,
#   `b_V [d_head]`, `W_O [d_head, d_model]`
# - out: `[batch, q_pos, d_model]`
#
# **Expected output**: `head 0.0 writes, at sequence 0, position 2: tensor([-0.1652,  0.1402, -0.3483])` (±1e-4).
#
# <details><summary>Hint 1</summary>
#
# Three steps: the values of every key position, their weighted average for every query, the projection back to `d_model`.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# The values (`x` times `W_V`, plus `b_V`) are `[batch, pos, d_head]`; a batched matrix product of the pattern with them averages them with the rows of the pattern.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Finish with `@ W_O`; no `b_O` here.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_head_output_code"}
def head_output(pattern: torch.Tensor, x: torch.Tensor, W_V: torch.Tensor, b_V: torch.Tensor,
                W_O: torch.Tensor) -> torch.Tensor:
    """What one head writes into the residual stream, [batch, q_pos, d_model]."""
    ### BEGIN SOLUTION
    v = x @ W_V + b_V
    z = pattern @ v
    return z @ W_O
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_head_output", "points": 2}
checks.check_head_output(head_output)
with torch.no_grad():
    p00 = F.attention_pattern(F.head_attn_scores(x_demo, model.W_Q[0, 0], model.b_Q[0, 0], model.W_K[0, 0], model.b_K[0, 0]))
    print("head 0.0 writes, at sequence 0, position 2:",
          head_output(p00, x_demo, model.W_V[0, 0], model.b_V[0, 0], model.W_O[0, 0])[0, 2, :3])
### BEGIN HIDDEN TESTS
for seed in (601, 602, 603):
    checks.compare_with_reference("head_output", head_output, seed=seed, batch=3, n_pos=8, d_model=14, d_head=6)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 7 — A multi-head attention layer (3 points, ★★★, 20 min)
#
# **Difficulty** ●●●●○ · **Importance** ●●●●● · about 20 minutes
#
# **Goal:** all heads of a layer at once. Every head has its own `W_Q[h], W_K[h], W_V[h], W_O[h]`
# and biases; the layer's output is the **sum** of what the heads write, plus `b_O` (once).
# Also return the pattern of every head, in TransformerLens's `hook_pattern` shape.
#
# - in: `x [batch, pos, d_model]`; `W_Q, W_K, W_V [n_heads, d_model, d_head]`;
#   `b_Q, b_K, b_V [n_heads, d_head]`; `W_O [n_heads, d_head, d_model]`; `b_O [d_model]`
# - out: `(attn_out [batch, pos, d_model], pattern [batch, n_heads, q_pos, k_pos])`
#
# A loop over heads that calls your earlier functions is a fine answer; `torch.einsum`
# (e.g. `"bpd,hde->bhpe"`) does all heads in one go, as TransformerLens does.
#
# **Expected output**: `layer 0 writes, at sequence 0, position 2: tensor([-0.5431, -0.1452,  0.0142]) | pattern [2, 4, 12, 12]` (±1e-4).
#
# <details><summary>Hint 1</summary>
#
# Every head is exercise 3 → 5 → 6 with its own slice of the weights; the layer adds up what the heads write, then `b_O` once.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# A loop `for h in range(n_heads)` calling your functions with `W_Q[h]`, `b_Q[h]`, …, then `torch.stack(patterns, dim=1)` for `[batch, n_heads, q, k]`. Or `torch.einsum("bpd,hde->bhpe", x, W_Q)` for all heads' queries at once.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# `attn_out = sum of the heads' outputs + b_O`; return `(attn_out, pattern)`.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_attention_layer_code"}
def attention_layer(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O):
    """(attn_out [batch, pos, d_model], pattern [batch, n_heads, q_pos, k_pos])."""
    ### BEGIN SOLUTION
    q = torch.einsum("bpd,hde->bhpe", x, W_Q) + b_Q[:, None, :]
    k = torch.einsum("bpd,hde->bhpe", x, W_K) + b_K[:, None, :]
    v = torch.einsum("bpd,hde->bhpe", x, W_V) + b_V[:, None, :]
    scores = q @ k.transpose(-1, -2) / math.sqrt(W_Q.shape[-1])
    pattern = attention_pattern(scores)
    z = pattern @ v  # [batch, head, q_pos, d_head]
    attn_out = torch.einsum("bhpe,hed->bpd", z, W_O) + b_O
    return attn_out, pattern
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_attention_layer", "points": 3}
checks.check_attention_layer(attention_layer)
with torch.no_grad():
    out0, pat0 = checks.alone(attention_layer, x_demo, model.W_Q[0], model.b_Q[0], model.W_K[0], model.b_K[0],
                              model.W_V[0], model.b_V[0], model.W_O[0], model.b_O[0])
    print("layer 0 writes, at sequence 0, position 2:", out0[0, 2, :3], "| pattern", list(pat0.shape))
### BEGIN HIDDEN TESTS
for seed in (701, 702, 703):
    checks.compare_with_reference("attention_layer", attention_layer, seed=seed, batch=2, n_pos=9, d_model=12, n_heads=4, d_head=3)
checks.compare_with_reference("attention_layer", attention_layer, seed=704, batch=1, n_pos=5, d_model=8, n_heads=1, d_head=8)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 8 — Unembedding (1 point, ★, 3 min)
#
# **Difficulty** ●○○○○ · **Importance** ●●●○○ · about 3 minutes
#
# **Goal:** read the next-token logits off the final residual stream.
#
# - in: `resid [batch, pos, d_model]`, `W_U [d_model, d_vocab]`, `b_U [d_vocab]`
# - out: `logits [batch, pos, d_vocab]` (logits, not probabilities)
#
# **Expected output**: `unembed(x_demo, W_U, b_U)[0, 0, :3] = tensor([-1.0160, -1.8490, -0.0753])` (±1e-4).
#
# <details><summary>Hint 1</summary>
#
# A linear map from `d_model` to `d_vocab`, with a bias.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `resid @ W_U + b_U`: no softmax.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_unembed_code"}
def unembed(resid: torch.Tensor, W_U: torch.Tensor, b_U: torch.Tensor) -> torch.Tensor:
    """Logits [batch, pos, d_vocab]."""
    ### BEGIN SOLUTION
    return resid @ W_U + b_U
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_unembed", "points": 1}
checks.check_unembed(unembed)
with torch.no_grad():
    print("unembed(x_demo, W_U, b_U)[0, 0, :3] =", unembed(x_demo, model.W_U, model.b_U)[0, 0, :3])
### BEGIN HIDDEN TESTS
for seed in (801, 802):
    checks.compare_with_reference("unembed", unembed, seed=seed, batch=3, n_pos=6, d_model=10, d_vocab=21)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 9 — The residual stream through two layers (3 points, ★★, 15 min)
#
# **Difficulty** ●●●○○ · **Importance** ●●●●● · about 15 minutes
#
# **Goal:** the whole forward pass. Start the residual stream with token plus positional
# embedding; for every layer, *add* the attention layer's output to the stream; unembed.
# Read the weights from `model` (layer `l` uses `model.W_Q[l]`, `model.b_Q[l]`, …, `model.b_O[l]`;
# `model.cfg.n_layers` layers). This model has no LayerNorm (`normalization=None` in `cfg`), so
# nothing sits between the stream and the attention layers. So has the larger model chapter 2
# trains and chapters 3–5 analyse; models such as GPT-2 put a LayerNorm before each layer, and
# chapter 4 (exercise 7) shows how to fold one into the weights so that circuits like the ones
# you read here keep their meaning.
#
# - in: `tokens [batch, pos]`, `model` (an `AttnOnlyTransformer`)
# - out: `(logits [batch, pos, d_vocab], patterns)` where `patterns` is a list with one
#   `[batch, n_heads, q_pos, k_pos]` tensor per layer.
#
# The cell after the checks compares your logits with the reference model's.
#
# **Expected output**: the cell after the checks prints `max |your logits - model(tokens)|:` about `1e-6` (anything below `1e-5`).
#
# <details><summary>Hint 1</summary>
#
# The stream starts as embeddings; each layer *reads* the current stream and *adds* its output to it; the last stream is unembedded.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# Call your `embed`, `pos_embed`, `attention_layer` (with `model.W_Q[layer]`, …, `model.b_O[layer]`) and `unembed`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Inside `for layer in range(model.cfg.n_layers)`, add the layer's output to the stream (never replace the stream) and append its pattern to a list.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_forward_code"}
def transformer_forward(tokens: torch.Tensor, model: AttnOnlyTransformer):
    """(logits [batch, pos, d_vocab], [pattern of each layer [batch, n_heads, q_pos, k_pos]])."""
    ### BEGIN SOLUTION
    resid = embed(tokens, model.W_E) + pos_embed(tokens, model.W_pos)
    patterns = []
    for layer in range(model.cfg.n_layers):
        attn_out, pattern = attention_layer(
            resid,
            model.W_Q[layer], model.b_Q[layer], model.W_K[layer], model.b_K[layer],
            model.W_V[layer], model.b_V[layer], model.W_O[layer], model.b_O[layer],
        )
        resid = resid + attn_out
        patterns.append(pattern)
    return unembed(resid, model.W_U, model.b_U), patterns
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_forward", "points": 3}
checks.check_transformer_forward(transformer_forward)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("transformer_forward", transformer_forward, seed=901, batch=3, n_pos=10, n_layers=2, n_heads=3)
checks.compare_with_reference("transformer_forward", transformer_forward, seed=902, batch=2, n_pos=6, n_layers=3)
checks.compare_with_reference("transformer_forward", transformer_forward, seed=903, batch=1, n_pos=12, n_layers=1, n_heads=4)
### END HIDDEN TESTS

# %%
my_forward = checks.mine_or_reference("transformer_forward", transformer_forward, 9)
with torch.no_grad():
    my_logits, my_patterns = my_forward(tokens, model)
    print("max |your logits - model(tokens)|:", (my_logits - model(tokens)).abs().max().item())

# %% [markdown]
# A value around `1e-6` or smaller means your transformer and the package's agree (float32 sums
# in a different order differ in the last digits).
#
# ## Exercise 10 — Your weights in TransformerLens names (2 points, ★★, 10 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●○○ · about 10 minutes
#
# **Goal:** TransformerLens stores a model's weights under standard names, one set of attention
# weights per layer. Build that dictionary from `model`:
#
# | key | tensor | shape |
# |---|---|---|
# | `embed.W_E` | `model.W_E` | `[d_vocab, d_model]` |
# | `pos_embed.W_pos` | `model.W_pos` | `[n_ctx, d_model]` |
# | `blocks.{l}.attn.W_Q`, `.W_K`, `.W_V` | layer `l` of `model.W_Q` … | `[n_heads, d_model, d_head]` |
# | `blocks.{l}.attn.W_O` | layer `l` of `model.W_O` | `[n_heads, d_head, d_model]` |
# | `blocks.{l}.attn.b_Q`, `.b_K`, `.b_V` | layer `l` of `model.b_Q` … | `[n_heads, d_head]` |
# | `blocks.{l}.attn.b_O` | layer `l` of `model.b_O` | `[d_model]` |
# | `unembed.W_U`, `unembed.b_U` | `model.W_U`, `model.b_U` | `[d_model, d_vocab]`, `[d_vocab]` |
#
# - in: `model`; out: `dict[str, Tensor]` with exactly these keys (for every layer `l`).
#
# The next cell boots a TransformerLens 4 `TransformerBridge` with the same architecture and
# loads your dictionary into it (importing TransformerLens takes a few seconds).
#
# **Expected output**: `20 keys, e.g. ['blocks.0.attn.W_K', 'blocks.0.attn.W_O', 'blocks.0.attn.W_Q']` (2 embeddings + 8 per layer × 2 layers + 2 unembedding).
#
# <details><summary>Hint 1</summary>
#
# A dictionary built in a loop over layers; the model's weights already have TransformerLens's shapes, so nothing is transposed.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `getattr(model, name)[layer]` for `name` in `("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")`, stored under `f"blocks.{layer}.attn.{name}"`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Add `embed.W_E`, `pos_embed.W_pos`, `unembed.W_U`, `unembed.b_U`; `.detach().clone()` each tensor.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_tl_state_dict_code"}
def to_tl_state_dict(model: AttnOnlyTransformer) -> dict:
    """The model's weights under TransformerLens names, one set of attention weights per layer."""
    ### BEGIN SOLUTION
    sd = {"embed.W_E": model.W_E, "pos_embed.W_pos": model.W_pos}
    for layer in range(model.cfg.n_layers):
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
            sd[f"blocks.{layer}.attn.{name}"] = getattr(model, name)[layer]
    sd["unembed.W_U"] = model.W_U
    sd["unembed.b_U"] = model.b_U
    return {k: v.detach().clone() for k, v in sd.items()}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_tl_state_dict", "points": 2}
checks.check_to_tl_state_dict(to_tl_state_dict)
print(len(to_tl_state_dict(model)), "keys, e.g.", sorted(to_tl_state_dict(model))[:3])
### BEGIN HIDDEN TESTS
checks.compare_with_reference("to_tl_state_dict", to_tl_state_dict, seed=1001, n_layers=3, n_heads=3)
checks.compare_with_reference("to_tl_state_dict", to_tl_state_dict, seed=1002, n_layers=1)
### END HIDDEN TESTS

# %%
from induction_course.functional import bridge_from_tl_state_dict  # boots the bridge, loads the dict

try:
    bridge = bridge_from_tl_state_dict(to_tl_state_dict(model), cfg)
except Exception as err:  # so that the rest of the notebook still runs
    print(f"Could not load your dictionary (finish exercise 10 (`to_tl_state_dict`) first: "
          f"{type(err).__name__}); using the reference conversion instead.")
    from induction_course.tl_convert import to_bridge

    bridge = to_bridge(model)
print(type(bridge).__name__, "with", bridge.cfg.n_layers, "layers of", bridge.cfg.n_heads, "heads")

# %% [markdown]
# ## Exercise 11 — Logits and patterns from the bridge (2 points, ★★, 10 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# **Goal:** TransformerLens's way of looking inside a model. `bridge.run_with_cache(tokens)`
# returns the logits and an `ActivationCache` holding every hooked activation under its hook name;
# the pattern of layer `l` is `cache[hook_name("pattern", l)]`, `[batch, n_heads, q_pos, k_pos]`
# (`hook_name("pattern", l)` is `"blocks.{l}.attn.hook_pattern"`; like TransformerLens's
# `utils.get_act_name`, it builds hook names so you never type them by hand).
# Return the logits and the patterns of all layers stacked into one tensor.
#
# - in: `bridge` (a `TransformerBridge`), `tokens [batch, pos]`
# - out: `(logits [batch, pos, d_vocab], patterns [n_layers, batch, n_heads, q_pos, k_pos])`
#
# The cell after the checks then shows that the bridge computes exactly what your
# `transformer_forward` computes.
#
# **Expected output**: the cell after the checks prints both differences below `1e-5` and `Your transformer and TransformerLens compute the same function.`
#
# <details><summary>Hint 1</summary>
#
# One `run_with_cache` call gives everything; the patterns are in the cache under their hook names.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `cache[hook_name("pattern", layer)]` for each `layer in range(bridge.cfg.n_layers)`.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# `torch.stack` the list (a new first axis) and return `(logits, patterns)`.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_bridge_run_code"}
def bridge_logits_and_patterns(bridge, tokens: torch.Tensor):
    """(logits [batch, pos, d_vocab], patterns [n_layers, batch, n_heads, q_pos, k_pos])."""
    ### BEGIN SOLUTION
    logits, cache = bridge.run_with_cache(tokens)
    patterns = torch.stack([cache[hook_name("pattern", layer)] for layer in range(bridge.cfg.n_layers)])
    return logits, patterns
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_bridge_run", "points": 2}
checks.check_bridge_logits_and_patterns(bridge_logits_and_patterns)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("bridge_logits_and_patterns", bridge_logits_and_patterns, seed=1101, batch=3, n_pos=9, n_layers=3)
checks.compare_with_reference("bridge_logits_and_patterns", bridge_logits_and_patterns, seed=1102, batch=1, n_pos=5, n_layers=1, n_heads=3)
### END HIDDEN TESTS

# %%
my_bridge_run = checks.mine_or_reference("bridge_logits_and_patterns", bridge_logits_and_patterns, 11)
my_forward = checks.mine_or_reference("transformer_forward", transformer_forward, 9)
with torch.no_grad():
    tl_logits, tl_patterns = my_bridge_run(bridge, tokens)
    my_logits, my_patterns = my_forward(tokens, model)
print("max |logits difference|  :", (tl_logits - my_logits).abs().max().item())
print("max |pattern difference| :", (tl_patterns - torch.stack(my_patterns)).abs().max().item())
assert torch.allclose(tl_logits, my_logits, atol=1e-4), "your model and TransformerLens disagree on the logits"
assert torch.allclose(tl_patterns, torch.stack(my_patterns), atol=1e-5), "your model and TransformerLens disagree on the patterns"
print("Your transformer and TransformerLens compute the same function.")

# %% [markdown]
# Both differences should be tiny (below `1e-5`): your hand-built transformer *is* a
# TransformerLens model.
#
# ## Reading circuits
#
# Elhage et al. (2021) read a head as two independent circuits:
#
# - the **QK circuit** `W_Q W_K^T` (`[d_model, d_model]`) decides *where* the head attends;
# - the **OV circuit** `W_V W_O` (`[d_model, d_model]`) decides *what* it writes once it attends.
#
# TransformerLens gives both for every head as low-rank `FactoredMatrix` objects:
# `bridge.QK[layer, head]` and `bridge.OV[layer, head]`. A `FactoredMatrix` keeps the product
# `A @ B` unmultiplied (`.A`, `.B`, `.AB` for the full matrix, `.eigenvalues`, `.T`, …), and
# multiplying it by a tensor on either side gives another `FactoredMatrix`.

# %% [markdown]
# ## Exercise 12 — The full OV circuit of a head (2 points, ★★, 10 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●● · about 10 minutes
#
# **Goal:** sandwich the OV circuit between the embedding and the unembedding:
# `W_E W_OV W_U` is `[d_vocab, d_vocab]`; row `i` is how the head changes the logits when it
# attends to token `i`. A copying head (an induction head's job) has a large positive diagonal.
#
# - in: `bridge`, `layer`, `head` (ints)
# - out: a `FactoredMatrix` of shape `[d_vocab, d_vocab]`
#
# **Expected output**: `full OV circuit of head 1.0: torch.Size([61, 61]) tensor([-0.1494,  0.4093, -0.3237])` (±1e-4).
#
# <details><summary>Hint 1</summary>
#
# Tokens in (`W_E`), through the head's OV circuit, logits out (`W_U`).
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `bridge.OV[layer, head]` is a `FactoredMatrix`; `tensor @ FactoredMatrix @ tensor` stays factored.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_full_ov_code"}
def full_ov_circuit(bridge, layer: int, head: int):
    """W_E W_V W_O W_U of one head, as a FactoredMatrix [d_vocab, d_vocab]."""
    ### BEGIN SOLUTION
    return bridge.W_E @ bridge.OV[layer, head] @ bridge.W_U
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_full_ov", "points": 2}
checks.check_full_ov_circuit(full_ov_circuit)
with torch.no_grad():
    print("full OV circuit of head 1.0:", full_ov_circuit(bridge, 1, 0).AB.shape, full_ov_circuit(bridge, 1, 0).AB[0, :3])
### BEGIN HIDDEN TESTS
checks.compare_with_reference("full_ov_circuit", full_ov_circuit, seed=1201, layer=0, head=2, n_heads=3, d_vocab=31)
checks.compare_with_reference("full_ov_circuit", full_ov_circuit, seed=1202, layer=2, head=0, n_layers=3)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 13 — The positional QK circuit of a head (2 points, ★★, 10 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# **Goal:** how much does position `i` want to attend to position `j`, through the positional
# embeddings alone? That is `W_pos W_Q W_K^T W_pos^T`, `[n_ctx, n_ctx]` (rows are query
# positions, columns key positions; unscaled). A *previous-token head*, the first half of an
# induction circuit, lights up the sub-diagonal `[i, i-1]` of this matrix.
#
# - in: `bridge`, `layer`, `head`
# - out: a `FactoredMatrix` of shape `[n_ctx, n_ctx]`
#
# **Expected output**: `positional QK circuit of head 0.0: torch.Size([32, 32]) tensor([3.7413, 4.6072, 4.3788])` (±1e-3).
#
# <details><summary>Hint 1</summary>
#
# The same sandwich as exercise 12, with positions instead of tokens on both sides and the QK circuit in the middle.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `bridge.W_pos @ bridge.QK[layer, head] @ ...`: the key side is transposed.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_pos_qk_code"}
def pos_qk_circuit(bridge, layer: int, head: int):
    """W_pos W_Q W_K^T W_pos^T of one head, as a FactoredMatrix [n_ctx (query), n_ctx (key)]."""
    ### BEGIN SOLUTION
    return bridge.W_pos @ bridge.QK[layer, head] @ bridge.W_pos.T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_pos_qk", "points": 2}
checks.check_pos_qk_circuit(pos_qk_circuit)
with torch.no_grad():
    print("positional QK circuit of head 0.0:", pos_qk_circuit(bridge, 0, 0).AB.shape, pos_qk_circuit(bridge, 0, 0).AB[1, :3])
### BEGIN HIDDEN TESTS
checks.compare_with_reference("pos_qk_circuit", pos_qk_circuit, seed=1301, layer=1, head=0, n_heads=3, n_ctx=10)
checks.compare_with_reference("pos_qk_circuit", pos_qk_circuit, seed=1302, layer=0, head=1)
### END HIDDEN TESTS

# %%
my_full_ov = checks.mine_or_reference("full_ov_circuit", full_ov_circuit, 12)
my_pos_qk = checks.mine_or_reference("pos_qk_circuit", pos_qk_circuit, 13)
with torch.no_grad():
    ov = my_full_ov(bridge, 1, 0).AB
    qk = my_pos_qk(bridge, 0, 0).AB
fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
axes[0].imshow(ov, cmap="RdBu", vmin=-ov.abs().max(), vmax=ov.abs().max())
axes[0].set(title="full OV circuit, head 1.0", xlabel="output token", ylabel="attended token")
axes[1].imshow(qk, cmap="RdBu", vmin=-qk.abs().max(), vmax=qk.abs().max())
axes[1].set(title="positional QK circuit, head 0.0", xlabel="key position", ylabel="query position")
plt.tight_layout()
plt.show()

# %% [markdown]
# In a random model neither picture shows what we will look for: no bright diagonal in the OV
# circuit (copying), no sub-diagonal stripe in the positional QK circuit (attending to the
# previous token); smooth blobs there come from how `W_pos` is initialised. In chapter 2 you
# train the model and watch both appear.
#
# ## Exercise 14 — The copying score of an OV circuit (1 point, ★★, 10 min)
#
# **Difficulty** ●●○○○ · **Importance** ●●●○○ · about 10 minutes
#
# **Goal:** summarise "does this head copy?" in one number. If the full OV circuit maps a token
# to itself, it has large *positive* eigenvalues (vectors it sends to positive multiples of
# themselves). Elhage et al. define
#
# $$\text{copying score} = \frac{\mathrm{Re}\left(\sum_i \lambda_i\right)}{\sum_i |\lambda_i|} \in [-1, 1],$$
#
# +1 for a pure copying head, −1 for a head that suppresses what it attends to.
#
# - in: `ov`, a square `FactoredMatrix` (its `.eigenvalues` are complex: the non-zero
#   eigenvalues, computed cheaply from the small factor)
# - out: a Python `float`
#
# **Expected output**: `copying score of head 1.0: 0.0032` (±1e-3), and the cell below prints `layer 0: copying scores -0.00 +0.16 -0.02 -0.25` and `layer 1: copying scores +0.00 -0.25 +0.29 +0.04`.
#
# <details><summary>Hint 1</summary>
#
# The numerator is the real part of a sum of complex numbers, the denominator a sum of their moduli.
#
# </details>
#
# <details><summary>Hint 2</summary>
#
# `ov.eigenvalues` is a complex tensor; `.sum()`, `.abs()` and `.real` do the rest.
#
# </details>
#
# <details><summary>Hint 3</summary>
#
# Return a Python `float`: `float(...)` of a one-element real tensor.
#
# </details>

# %% nbgrader={"solution": true, "grade_id": "ch1_ov_copying_code"}
def ov_copying_score(ov) -> float:
    """Re(sum of eigenvalues) / sum of |eigenvalues|, a float in [-1, 1]."""
    ### BEGIN SOLUTION
    eig = ov.eigenvalues
    return float((eig.sum() / eig.abs().sum()).real)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch1_ov_copying", "points": 1}
checks.check_ov_copying_score(ov_copying_score)
with torch.no_grad():
    print("copying score of head 1.0:", round(ov_copying_score(bridge.W_E @ bridge.OV[1, 0] @ bridge.W_U), 4))
### BEGIN HIDDEN TESTS
for seed in (1401, 1402, 1403, 1404):
    checks.compare_with_reference("ov_copying_score", ov_copying_score, seed=seed, d_vocab=29, d_head=5)
### END HIDDEN TESTS

# %%
my_copying = checks.mine_or_reference("ov_copying_score", ov_copying_score, 14)
my_full_ov = checks.mine_or_reference("full_ov_circuit", full_ov_circuit, 12)
with torch.no_grad():
    for layer in range(cfg.n_layers):
        scores = [my_copying(my_full_ov(bridge, layer, head)) for head in range(cfg.n_heads)]
        print(f"layer {layer}: copying scores", " ".join(f"{s:+.2f}" for s in scores))

# %% [markdown]
# For a random model the scores scatter around 0. After training (chapter 2), the induction
# heads of layer 1 score close to +1.
#
# ## What you built
#
# A two-layer attention-only transformer, from embeddings to logits, that computes exactly what
# TransformerLens computes with the same weights; and the two lenses (QK and OV circuits) through
# which we will recognise previous-token and induction heads. Next: train it.

# %% [markdown] nbgrader={"grade_id": "ch1_written_intro", "locked": true}
# ## Written questions (4 points, graded by hand)
#
# Answer each question in the cell below it, in three to six sentences, in place of `YOUR ANSWER
# HERE`. Argue from the numbers and figures this notebook printed and cite them: that is what earns
# the points. Your instructor grades these answers by hand after the autograder has run.

# %% [markdown] nbgrader={"grade_id": "ch1_written_mask_question", "locked": true}
# **Written question 1 (2 points).** Why is the causal mask applied *before* the softmax? Use the
# pattern that `attention_pattern(torch.zeros(3, 3))` printed in exercise 5: what would its first
# two rows be if you took the softmax first and then set the future entries to zero, and what
# would be wrong with them?

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch1_written_mask", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** Masked first, row `i` is a softmax over the keys `0 … i` only: the printed
# rows `[1, 0, 0]`, `[0.5, 0.5, 0]`, `[0.33, 0.33, 0.33]` are each a distribution over the keys
# that query may see. Softmax first spreads every row over all three keys (`[0.33, 0.33, 0.33]`);
# zeroing the future afterwards leaves `[0.33, 0, 0]` and `[0.33, 0.33, 0]`, rows that sum to 1/3
# and 2/3. The head's output would shrink at early positions, and its weights would depend on the
# scores of future tokens, which sit in the softmax's denominator: the future leaks into every
# position.
#
# **Rubric (2 points).** 1 point: masking first makes each row a distribution over the visible
# keys, with the printed rows (or an equivalent computation) as evidence. 1 point: softmax then
# zeroing gives rows that do not sum to 1 (1/3 and 2/3 here) *and* the future's scores still
# enter the normalisation (a leak). Half a point for either idea stated without numbers; 0 for
# "the model must not see the future" alone.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade_id": "ch1_written_qk_ov_question", "locked": true}
# **Written question 2 (2 points).** A head's attention pattern shows *where* it moves information
# but not *what* it moves. Explain why with the two circuits of "Reading circuits". Then use the
# copying scores printed after exercise 14: does any head of this random model copy? What would
# the full OV circuit (exercise 12's picture) and the copying score of a copying head look like?

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch1_written_qk_ov", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** The pattern is the softmax of the scores of the QK circuit `W_Q W_K^T`: it
# decides which positions a head reads. What it writes from there is decided by the OV circuit
# `W_V W_O`, made of other matrices: a head can attend to exactly the right place and write
# something unrelated, so the pattern alone cannot say what moves. In the random model the
# copying scores are close to 0 (layer 0: −0.00, +0.16, −0.02, −0.25; layer 1: +0.00, −0.25,
# +0.29, +0.04) and the full OV picture has no diagonal: no head copies. A copying head's full OV
# circuit `W_E W_V W_O W_U` has a bright positive diagonal (attending to token `t` raises the
# logit of `t`), its eigenvalues are mostly positive and its copying score is close to +1.
#
# **Rubric (2 points).** 1 point: QK decides the pattern, OV separately decides what is written
# (independent weights, so one says nothing about the other). 1 point: cites the printed copying
# scores (near 0, the largest about ±0.29) or the diagonal-free picture, *and* describes a copying
# head (positive diagonal, score near +1). Half a point for the description without the numbers.
# ### END SOLUTION

# %% [markdown]
# ## Summarise in your own words (not graded)
#
# Before chapter 2, write a few sentences below without looking back: what is the residual
# stream, and what do the heads of a layer do to it? Why does the causal mask come before the
# softmax? What do the QK and OV circuits of a head each decide, and what would a copying head's
# full OV circuit look like?
#
# *Your summary:*
