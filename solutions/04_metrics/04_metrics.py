# ---
# jupyter:
#   induction_course:
#     chapter: 04_metrics
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% nbgrader={"grade_id": "ch4_runtime_setup", "locked": true}
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
# # Chapter 4 — Which heads form the circuit? Metrics that single it out, and the central figure
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/induction-heads-course/induction-heads/blob/main/chapters/04_metrics/04_metrics.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/induction-heads-course/induction-heads/main?urlpath=lab/tree/chapters/04_metrics/04_metrics.ipynb)
#
# Chapters 2 and 3 found the induction heads by their *behaviour*: the repeated-token loss, the
# prefix-matching and previous-token scores, the ICL score. This chapter asks what those chapters
# did not: **which weights make the circuit, and which metric can tell?** Olsson et al. (2022)
# and Elhage et al. (2021) score heads from their weights — copying (the OV circuit) and
# composition (how a layer-1 head reads a layer-0 head). You implement those scores, then test
# them against the model: do they pick out the previous-token heads that chapter 3 found, and
# say how much each induction head reads from each? Then you build sharper ones (the token-level
# K-circuit, and the key score split by the head it comes through), and finally an ICL score whose
# noise you measure before you read a phase change into it.
#
# **Where this course departs from the paper, and why.**
# - *Context*: 128 tokens (the paper: 8192). The ICL score compares bands of tokens scaled from
#   the paper's tokens 50 and 500 (exercise 10).
# - *Fewer tokens*: 2.9 M training tokens on a CPU (the paper: billions); the bump is between
#   0.42 M and 0.50 M.
# - *Positional embeddings*: learned absolute embeddings (the paper's small models: a relative scheme).
# - *Probe tokens*: random tokens are drawn from the 142 token ids that occur in training.
# - *Copying saturates early*: here the eigenvalue copying score reaches ~1 well before the phase
#   change (measured in the last section), so this chapter tracks OV top-1 accuracy over training.
#
# The shipped model has no LayerNorm (chapter 2's recipe), so the weight scores of this chapter
# read its weights exactly. Exercise 7 still teaches how to fold a LayerNorm into the weights, as
# TransformerLens does for models that have one (GPT-2), and checks the fold on such a model.
#
# | Exercise | Points | Difficulty | Time |
# |---|---|---|---|
# | 1. A logit copying score from the weights | 2 | ★★ | 15 min |
# | 2. The eigenvalue copying score, the d_head-sized way | 2 | ★★★ | 15 min |
# | 3. Top-1 copying accuracy of the OV circuit | 1 | ★ | 5 min |
# | 4. The composition score | 1 | ★ | 5 min |
# | 5. K-, Q- and V-composition of every pair of heads | 2 | ★★★ | 15 min |
# | 6. What random heads score: the baseline | 2 | ★★ | 10 min |
# | 7. Folding LayerNorm into the weights | 2 | ★★ | 15 min |
# | 8. The token-level K-circuit | 2 | ★★★ | 20 min |
# | 9. The key score, split by the head it comes through | 2 | ★★★ | 20 min |
# | 10. An ICL score with its error bar | 1 | ★★ | 10 min |
# | W1. Written: composition scores and their baseline (graded by hand) | 2 | ★★ | 10 min |
# | W2. Written: a clock for the phase change (graded by hand) | 2 | ★★ | 10 min |
#
# Then (not graded) you track the scores over the 30 shipped checkpoints and draw the figure.
# As in every chapter: fill in `# YOUR CODE HERE`, run the check cell below it; hidden tests run
# the same function on fresh random inputs when you submit. Every cell after an exercise uses the
# library's reference numbers, so a blank or wrong answer costs that exercise only.

# %% nbgrader={"grade_id": "ch4_setup", "locked": true}
import dataclasses
import math

import matplotlib.pyplot as plt
import torch

from induction_course.course.checks import ch04 as checks
from induction_course import evaluation
from induction_course import metrics as M
from induction_course.checkpoints import list_steps, load_config, load_eval_set, load_history, load_model
from induction_course.curves import bump_window
from induction_course.model import AttnOnlyTransformer, cross_entropy_next_token, hook_name
from induction_course.probes import repeated_random_tokens

torch.manual_seed(0)
config = load_config()
pool = torch.tensor(config["token_pool"])  # token ids that occur in the training data
BOS = int(config["bos"])
model = load_model()  # the final checkpoint
cfg = model.cfg
eval_set = load_eval_set()  # held-out natural text [512, 128] and a probe
# The paper's probe (chapter 2 built it): 10 examples of 25 random tokens repeated 4 times after a BOS.
probe = repeated_random_tokens(10, 25, 4, pool, BOS, seed=0)
# The model's weights as float64 (products of several matrices lose digits in float32).
W = {n: getattr(model, n).detach().double() for n in ("W_E", "W_Q", "W_K", "W_V", "W_O", "W_U")}
prev_score = M.head_scores(model, probe)["previous_token"][0]  # chapter 3's score, layer-0 heads
prev_heads = [h for h in range(cfg.n_heads) if prev_score[h] > 0.4]
print(cfg)
print(f"token pool: {pool.numel()} ids; BOS = {BOS}; checkpoints: {len(list_steps())}; previous-token heads "
      f"(chapter 3's score > 0.4): {', '.join(f'0.{h} ({prev_score[h]:.2f})' for h in prev_heads)}")

# %% [markdown]
# ## Exercise 1 — A logit copying score from the weights (2 points, ★★, 15 min)
#
# **Goal:** measure what the OV circuit *does* when the head attends to a token. If a head attends
# with all its attention to token `t`, its direct effect on the logits is the row
# `x = W_E[t] W_V W_O W_U` (biases left out). A copying head raises the logit of `t` itself.
# Olsson et al.'s copying evaluator (their appendix) works on such logit effects: mean-centre them
# (a constant shift of every logit changes no probability), pass them through a ReLU, and take
# the share of the attended token; then rescale to −1…1 so that negative means anti-copying.
# Their evaluator runs the model on 25 random tokens; this exercise builds the same idea from
# the weights alone, over every pool token, with a symmetric form whose range needs no rescaling:
#
# $$x \leftarrow x - \bar x, \qquad r_+ = \frac{\mathrm{ReLU}(x)_t}{\sum_j \mathrm{ReLU}(x)_j},
# \qquad r_- = \frac{\mathrm{ReLU}(-x)_t}{\sum_j \mathrm{ReLU}(-x)_j}, \qquad
# \text{score} = \operatorname{mean}_t (r_+ - r_-)$$
#
# +1 for a head that raises only `t`, −1 for one that lowers only `t`, about 0 for a random head.
#
# - in: `logits [n_tokens, n_cols]` (row `i`: the direct effect when attending to token `i`),
#   `attended [n_tokens]` (long: the column of token `i` itself)
# - out: a float in [−1, 1].
#
# **Difficulty** ●●○○○ · **Importance** ●●●○○ · about 15 minutes
#
# <details><summary>Hint 1</summary> Work on all rows at once: centre with
# <code>logits - logits.mean(dim=-1, keepdim=True)</code>, then <code>clamp_min(0)</code> both ways.
# </details>
# <details><summary>Hint 2</summary> The entry of the attended token in each row is
# <code>up[torch.arange(n_tokens), attended]</code>; divide it by <code>up.sum(-1)</code>.
# </details>
#
# **Expected output**: on the final model, the four layer-1 heads score 0.055–0.064 (± 0.002) and
# the layer-0 heads between −0.005 and 0.020 (± 0.002).

# %% nbgrader={"solution": true, "grade_id": "ch4_logit_copying_score_code"}
def logit_copying_score(logits: torch.Tensor, attended: torch.Tensor) -> float:
    """Mean over rows of r+ - r- after mean-centring each row (see the formula)."""
    ### BEGIN SOLUTION
    x = logits - logits.mean(dim=-1, keepdim=True)
    up, down = x.clamp_min(0), (-x).clamp_min(0)
    rows = torch.arange(x.shape[0])
    r_up = up[rows, attended] / up.sum(-1)
    r_down = down[rows, attended] / down.sum(-1)
    return float((r_up - r_down).mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_logit_copying_score", "points": 2}
checks.check_logit_copying_score(logit_copying_score)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("logit_copying_score", logit_copying_score, seed=431, n_tokens=12, n_cols=20)
checks.compare_with_reference("logit_copying_score", logit_copying_score, seed=432, n_tokens=5, n_cols=40, strength=4.0)
checks.compare_with_reference("logit_copying_score", logit_copying_score, seed=433, n_tokens=9, n_cols=9, strength=1.0)
### END HIDDEN TESTS

# %%
full_ov = W["W_E"][pool] @ W["W_V"] @ W["W_O"] @ W["W_U"][:, pool]  # [layer, head, pool, pool]
mine = [[checks.yours(logit_copying_score, full_ov[l, h], torch.arange(pool.numel())) for h in range(cfg.n_heads)]
        for l in range(cfg.n_layers)]
logit_copy = M.copying_score(model, pool)
print("logit copying score, library (rows: layers):\n", logit_copy)
if all(x is not None for row in mine for x in row):
    print("yours:\n", torch.tensor(mine))

# %% [markdown]
# The scores printed above are small (the layer-1 heads 0.055–0.064, the layer-0 heads −0.005 to
# 0.020), and that is not a bug: over 142 tokens, even a head that puts the attended token at the
# top of its row gives it only a modest *share* of all the positive mass. The score reads best
# *relatively*: the layer-1 heads are about three times the highest layer-0 head. Exercises
# 2 and 3 give two sharper views of the same circuit.
#
# ### The paper's evaluator, on activations
#
# Olsson et al.'s appendix (head activation evaluators) defines copying on a forward pass:
# *generate 25 random tokens (not the most or least common ones); take the head's contribution
# to the residual stream and convert it with the unembedding (the direct path) into logits;
# subtract the mean and apply a ReLU; compute the ratio of what it raises the attended token's
# logit to what it raises the logits of all tokens in the sample.* `metrics.activation_copying_ratio`
# does exactly that (each key weighted by its attention, averaged over 10 samples; in a model
# with a final LayerNorm, the contribution goes through it). Compare the trained heads with the
# same architecture at initialisation: a head that raises the attended token no more than any
# other gets about 1/25 = 0.04.
#
# The paper adds that the ratio "ranges from 0 to 0.5" and is scaled to −1…1. Read literally the
# ratio can reach 1 (a head that raises only the attended token), and `4r − 1` would give a
# *random* head about −0.84, not 0 — the text is ambiguous there, so we compare raw ratios.

# %%
paper_r = M.activation_copying_ratio(model, pool)
untrained_r = M.activation_copying_ratio(AttnOnlyTransformer(model.cfg), pool)
print("paper's evaluator, raw ratio r (rows: layers, columns: heads)\n", paper_r)
print("same architecture at initialisation\n", untrained_r)
print(f"induction heads / initialisation: {paper_r[1].mean() / untrained_r.mean():.1f}x")

# %% [markdown]
# The induction heads' ratios printed above (0.15–0.26) are 4.8 times the untrained model's mean.
# The previous-token heads 0.0 and 0.3 score 0.02, below every untrained head (0.04–0.06): they
# do not copy by this measure. What they write matters through layer 1 (exercises 8 and 9).
#
# ## Exercise 2 — The eigenvalue copying score, the d_head-sized way (2 points, ★★★, 15 min)
#
# **Goal:** Elhage et al.'s view. The full OV circuit `W_E W_V W_O W_U` is a `[d_vocab, d_vocab]`
# matrix. If it copies, its eigenvalues are mostly positive (an eigenvector is a set of tokens that
# map onto themselves, with a positive factor). The score is
#
# $$\frac{\mathrm{Re}\sum_i \lambda_i}{\sum_i |\lambda_i|} \in [-1, 1].$$
#
# **The trick:** the matrix has rank at most `d_head`, so almost all its eigenvalues are 0. For
# `A [m, n]` and `B [n, m]`, `AB` and `BA` have the same non-zero eigenvalues. Cycle the product
# until `d_head` is on the outside: `W_O W_U W_E W_V` is `[d_head, d_head]` and has the same
# non-zero eigenvalues as the `[d_vocab, d_vocab]` circuit. (Zeros add nothing to either sum.)
#
# - in: `W_E [d_vocab, d_model]`, `W_V [d_model, d_head]`, `W_O [d_head, d_model]`, `W_U [d_model, d_vocab]`
# - out: a float in [−1, 1] (use `torch.linalg.eigvals`; eigenvalues can be complex)
#
# **Difficulty** ●●●○○ · **Importance** ●●○○○ · about 15 minutes
#
# <details><summary>Hint 1</summary> Multiply the four matrices in the cycled order so the result
# is <code>[d_head, d_head]</code>; work in float64.</details>
# <details><summary>Hint 2</summary> <code>torch.linalg.eigvals</code> of that small matrix; the score
# is the real part of the eigenvalues' sum over the sum of their moduli (<code>.abs()</code>).</details>
#
# **Expected output**: the layer-1 heads of the final model score 1.00 (± 0.01); the layer-0 heads
# 0.1 and 0.2 score 0.78 and 0.61, the previous-token heads 0.0 and 0.3 −0.25 and −0.07 (± 0.01).

# %% nbgrader={"solution": true, "grade_id": "ch4_eigen_copying_score_code"}
def eigen_copying_score(W_E, W_V, W_O, W_U) -> float:
    """Re(sum of eigenvalues) / sum of |eigenvalues| of the full OV circuit W_E W_V W_O W_U."""
    ### BEGIN SOLUTION
    small = W_O.double() @ W_U.double() @ W_E.double() @ W_V.double()  # [d_head, d_head]
    eig = torch.linalg.eigvals(small)
    return float(eig.sum().real / eig.abs().sum())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_eigen_copying_score", "points": 2}
checks.check_eigen_copying_score(eigen_copying_score)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("eigen_copying_score", eigen_copying_score, seed=441, d_vocab=50, d_model=16, d_head=5)
checks.compare_with_reference("eigen_copying_score", eigen_copying_score, seed=444, d_vocab=20, d_model=8, d_head=3)
checks.compare_with_reference("eigen_copying_score", eigen_copying_score, seed=445, d_vocab=40, d_model=10, d_head=4)
### END HIDDEN TESTS

# %%
eig_scores = M.eigenvalue_copying_score(model, pool)
print("eigenvalue copying score, library:\n", eig_scores)
# Control: the same score with the trained W_E, W_U but random OV matrices of the same rank.
g = torch.Generator().manual_seed(0)
V_rand = torch.randn(200, cfg.d_model, cfg.d_head, generator=g, dtype=torch.float64)
O_rand = torch.randn(200, cfg.d_head, cfg.d_model, generator=g, dtype=torch.float64)
ev = torch.linalg.eigvals(O_rand @ (W["W_U"][:, pool] @ W["W_E"][pool]) @ V_rand)
random_ov = ev.real.sum(-1) / ev.abs().sum(-1)
print(f"random OV matrices with the trained embeddings: {random_ov.mean():.2f} ± {random_ov.std():.2f}")
print("yours for head 1.0:", checks.yours(eigen_copying_score, W["W_E"][pool], W["W_V"][1, 0], W["W_O"][1, 0], W["W_U"][:, pool]))

# %% [markdown]
# The four layer-1 heads score 1.00 above: every non-zero eigenvalue of their full OV circuit is
# positive. That is learned by the heads, not given by the embeddings: random OV matrices between
# the same trained `W_E` and `W_U` score −0.01 ± 0.13 (printed above). The layer-0 heads differ:
# 0.1 and 0.2 score 0.78 and 0.61, the previous-token heads 0.0 and 0.3 −0.25 and −0.07: no more
# copying than random OV matrices, the same verdict as the paper's evaluator above. The last
# section shows the score's weakness as a clock: it is already high well before the induction
# heads form.
#
# ## Exercise 3 — Top-1 copying accuracy of the OV circuit (1 point, ★, 5 min)
#
# **Goal:** the most concrete reading of the circuit: for what fraction of tokens `t` is the
# largest logit of row `t` of `W_E W_V W_O W_U` the token `t` itself?
#
# - in: `W_E, W_V, W_O, W_U` as in exercise 2
# - out: a float in [0, 1]; chance is `1 / d_vocab`.
#
# **Difficulty** ●○○○○ · **Importance** ●●●○○ · about 5 minutes
#
# <details><summary>Hint 1</summary> Build the full circuit, then compare
# <code>argmax(dim=-1)</code> of each row with <code>torch.arange(n_rows)</code>.</details>
#
# **Expected output**: on the final model the layer-1 heads get 0.83–0.97 (± 0.01); chance is
# 1/142 = 0.007.

# %% nbgrader={"solution": true, "grade_id": "ch4_ov_top1_accuracy_code"}
def ov_top1_accuracy(W_E, W_V, W_O, W_U) -> float:
    """Fraction of tokens t whose top logit under the full OV circuit is t."""
    ### BEGIN SOLUTION
    full = W_E @ W_V @ W_O @ W_U
    return float((full.argmax(dim=-1) == torch.arange(full.shape[0])).float().mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_ov_top1_accuracy", "points": 1}
checks.check_ov_top1_accuracy(ov_top1_accuracy)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("ov_top1_accuracy", ov_top1_accuracy, seed=451, d_vocab=45, d_model=14, d_head=7)
checks.compare_with_reference("ov_top1_accuracy", ov_top1_accuracy, seed=452, d_vocab=25, d_model=10, d_head=5)
### END HIDDEN TESTS

# %%
top1 = M.ov_top1_copying_accuracy(model, pool)
print("OV top-1 accuracy, library (chance 1/142 = 0.007):\n", top1)
print("yours for head 1.0:", checks.yours(ov_top1_accuracy, W["W_E"][pool], W["W_V"][1, 0], W["W_O"][1, 0], W["W_U"][:, pool]))

# %% [markdown]
# ## Exercise 4 — The composition score (1 point, ★, 5 min)
#
# **Goal:** a later head *composes* with an earlier one when it reads what the earlier one
# writes. For two matrices the paper measures how much of `W_B`'s input space `W_A`'s output
# lands in:
#
# $$\text{score}(W_A, W_B) = \frac{\lVert W_A W_B \rVert_F}{\lVert W_A \rVert_F\, \lVert W_B \rVert_F} \in [0, 1].$$
#
# - in: `W_A [m, n]`, `W_B [n, p]`
# - out: a float (or a 0-d tensor). Use `torch.linalg.matrix_norm` (Frobenius by default).
#
# **Difficulty** ●○○○○ · **Importance** ●●○○○ · about 5 minutes
#
# <details><summary>Hint 1</summary> Three Frobenius norms, one division; written with
# <code>@</code> it also works on batches <code>[..., m, n]</code>.</details>
#
# **Expected output**: `composition_score(torch.eye(4), torch.eye(4))` is 0.5 (± 1e-6):
# ‖I‖_F = 2.

# %% nbgrader={"solution": true, "grade_id": "ch4_composition_score_code"}
def composition_score(W_A: torch.Tensor, W_B: torch.Tensor):
    """||W_A W_B||_F / (||W_A||_F ||W_B||_F); works on batches [..., m, n] @ [..., n, p] too."""
    ### BEGIN SOLUTION
    norm = torch.linalg.matrix_norm
    return norm(W_A @ W_B) / (norm(W_A) * norm(W_B))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_composition_score", "points": 1}
checks.check_composition_score(composition_score)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("composition_score", composition_score, seed=461, m=12, n=6, p=12)
checks.compare_with_reference("composition_score", composition_score, seed=462, m=3, n=20, p=4)
checks.compare_with_reference("composition_score", composition_score, seed=463, m=5, n=6, p=4, batch=(3, 2))
### END HIDDEN TESTS

# %%
print("yours on (I, I):", checks.yours(composition_score, torch.eye(4), torch.eye(4)))

# %% [markdown]
# ## Exercise 5 — K-, Q- and V-composition of every pair of heads (2 points, ★★★, 15 min)
#
# **Goal:** apply the score to the three ways a layer-1 head can read a layer-0 head's output.
# Row vectors (TransformerLens): head 0 writes `x W_OV0` into the residual stream, and layer-1's
# attention score between a query `x_q` and a key `x_k` is `x_q W_QK1 x_k^T`. Derive, then code:
#
# - **Q-composition**, the output enters the *query*: `(x W_OV0) W_QK1 x_k^T` → `W_OV0 W_QK1`;
# - **K-composition**, it enters the *key*: `x_q W_QK1 (x W_OV0)^T = x_q (W_QK1 W_OV0^T) x^T` →
#   `W_QK1 W_OV0^T` (its transpose `W_OV0 W_QK1^T` has the same norm);
# - **V-composition**, it enters the *value*: `(x W_OV0) W_OV1` → `W_OV0 W_OV1`.
#
# An induction head K-composes with a previous-token head: its key reads "the token before me".
#
# - in: `W_OV0 [h0, d_model, d_model]` (the earlier layer's heads), `W_QK1 [h1, d_model, d_model]`,
#   `W_OV1 [h1, d_model, d_model]` (the later layer's)
# - out: `{"Q": ..., "K": ..., "V": ...}`, each `[h1, h0]` (row: later head, column: earlier head).
#   Use your `composition_score` with broadcasting: no loops needed.
#
# **Difficulty** ●●●○○ · **Importance** ●●●○○ · about 15 minutes
#
# <details><summary>Hint 1</summary> Give the earlier heads a new first axis and the later heads a
# new second one, so that every pair meets: <code>W_OV0[None]</code> is <code>[1, h0, d, d]</code>,
# <code>W_QK1[:, None]</code> is <code>[h1, 1, d, d]</code>.</details>
# <details><summary>Hint 2</summary> Each score is one call of <code>composition_score(A, B)</code>
# with the two matrices in the order of the formula above (one of them transposed for K:
# <code>.transpose(-1, -2)</code>).</details>
#
# **Expected output**: on the final model the largest K-composition is 0.197 (± 0.001), layer-1
# head 1.3 with layer-0 head **0.3**, the strongest previous-token head.

# %% nbgrader={"solution": true, "grade_id": "ch4_kqv_composition_code"}
def kqv_composition(W_OV0: torch.Tensor, W_QK1: torch.Tensor, W_OV1: torch.Tensor) -> dict:
    """{"Q", "K", "V"} composition scores, each [h1, h0]."""
    ### BEGIN SOLUTION
    A = W_OV0[None]  # [1, h0, d, d]
    QK = W_QK1[:, None]  # [h1, 1, d, d]
    return {
        "Q": composition_score(A, QK),
        "K": composition_score(QK, A.transpose(-1, -2)),
        "V": composition_score(A, W_OV1[:, None]),
    }
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_kqv_composition", "points": 2}
checks.check_kqv_composition(kqv_composition)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("kqv_composition", kqv_composition, seed=471, h0=4, h1=3, d=12, dh=4)
checks.compare_with_reference("kqv_composition", kqv_composition, seed=472, h0=2, h1=2, d=8, dh=2)
### END HIDDEN TESTS

# %%
comp = M.composition_scores(model)  # the library's reference, [layer-1 head, layer-0 head]
for k in "KQV":
    print(f"{k}-composition [layer-1 head, layer-0 head]:\n{comp[k]}")
W_OV, W_QK = W["W_V"] @ W["W_O"], W["W_Q"] @ W["W_K"].transpose(-1, -2)
yours_comp = checks.yours(kqv_composition, W_OV[0], W_QK[1], W_OV[1])
if yours_comp is not None:
    print("yours agree with the library:", all(torch.allclose(yours_comp[k].float(), comp[k], atol=1e-4) for k in "KQV"))

# %% [markdown]
# ## Exercise 6 — What random heads score: the baseline (2 points, ★★, 10 min)
#
# **Goal:** a composition score means nothing alone: two *random* `d_model x d_model` matrices
# already overlap a little. Elhage et al. compare with the expected score of random matrices of the
# same shapes. Draw `n_samples` pairs of random heads — `W_Q, W_K, W_V` i.i.d. Gaussian
# `[d_model, d_head]`, `W_O [d_head, d_model]` — form `W_A = W_V W_O` (earlier head) and
# `W_B = W_Q W_K^T` (later head), and return every pair's score. (Under this null Q-, K- and
# V-composition have the same distribution, so one baseline serves all three.)
#
# - in: `d_model, d_head, n_samples` (ints), `seed` (int: use a `torch.Generator`)
# - out: `[n_samples]`. Their mean is about `1/sqrt(d_model)`, whatever `d_head` — can you see why?
#   (`E‖AB‖²_F` grows like `d_model` times less than `‖A‖²_F ‖B‖²_F`.)
#
# **Difficulty** ●●○○○ · **Importance** ●●○○○ · about 10 minutes
#
# <details><summary>Hint 1</summary> Draw everything in one batch: <code>torch.randn(n_samples,
# d_model, d_head, generator=g)</code>, and so on.</details>
# <details><summary>Hint 2</summary> <code>W_A = V @ O</code>, <code>W_B = Q @ K.transpose(-1, -2)</code>,
# then <code>composition_score(W_A, W_B)</code> scores every pair at once.</details>
#
# **Expected output**: for our model (`d_model=64, d_head=16`), mean 0.125 ± 0.007 (std); the mean
# within ± 0.002 of that.

# %% nbgrader={"solution": true, "grade_id": "ch4_random_composition_scores_code"}
def random_composition_scores(d_model: int, d_head: int, n_samples: int, seed: int) -> torch.Tensor:
    """[n_samples] composition scores of random heads with the given shapes."""
    ### BEGIN SOLUTION
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(n_samples, *shape, generator=g, dtype=torch.float64)

    W_A = randn(d_model, d_head) @ randn(d_head, d_model)
    W_B = randn(d_model, d_head) @ randn(d_model, d_head).transpose(-1, -2)
    return composition_score(W_A, W_B)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_random_composition_scores", "points": 2}
checks.check_random_composition_scores(random_composition_scores)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("random_composition_scores", random_composition_scores, seed=481, d_model=32, d_head=8, n_samples=500)
checks.compare_with_reference("random_composition_scores", random_composition_scores, seed=482, d_model=9, d_head=2, n_samples=600)
### END HIDDEN TESTS

# %%
baseline = M.composition_baseline(cfg, n_samples=1000, seed=0)
print(f"random baseline for our model (library): {baseline.mean:.3f} ± {baseline.std:.3f}")
yours_base = checks.yours(random_composition_scores, cfg.d_model, cfg.d_head, 1000, 0)
if yours_base is not None:
    print(f"yours: {yours_base.mean():.3f} ± {yours_base.std():.3f}")
rel = M.relative_to_other_heads(comp["K"])
print("K-composition / mean of the other layer-0 heads' (rows: layer-1 heads; cols: 0.0 .. 0.3):\n", rel)
for h1 in range(cfg.n_heads):
    order = comp["K"][h1].argsort(descending=True).tolist()
    print(f"head 1.{h1}: layer-0 heads by K-composition: " + " > ".join(f"0.{h} ({comp['K'][h1, h]:.3f})" for h in order))

# %% [markdown]
# **What the numbers say, and what they miss.** For every layer-1 head the highest K-composition
# printed above is with head **0.3** (0.188–0.197), well above the random baseline (0.125 ± 0.007)
# and ×1.44–1.69 the mean of the other layer-0 heads (the ratio table): the Frobenius score finds
# the strongest previous-token head (previous-token score 0.97, setup cell), as in Elhage et al.'s
# picture. It does not find the second one. Head **0.0** is a previous-token head too (0.71), yet
# its K-composition, 0.118–0.138, is close to the random baseline and no higher than that of heads
# 0.1 and 0.2 (0.095–0.137), which are not previous-token heads: ×0.88–1.02 the others. The
# Frobenius score measures how much two subspaces overlap, not whether the path *does* anything,
# so it cannot say whether the induction heads read head 0.0. The next three exercises ask that
# sharper question.

# %% [markdown]
# ## Exercise 7 — Folding LayerNorm into the weights (2 points, ★★, 15 min)
#
# **Goal:** many transformers have a LayerNorm before each attention layer (GPT-2 does; the
# shipped model does not, so the scores above are exact for it). In such a model a weight score
# that ignores the LayerNorm reads the wrong matrix. A head reads
# `LN(x) = (x − mean(x)) / s · w + b` through `W` (e.g. `W_K [d_model, d_head]`) and its bias
# `b_W`. Everything but the division by the per-vector scale `s` is linear, so it can be moved
# into the weights (TransformerLens's `fold_ln` does the same):
#
# $$\mathrm{LN}(x)\,W + b_W = \frac{x}{s}\,W' + b', \qquad W' = C\,\mathrm{diag}(w)\,W, \qquad b' = b\,W + b_W,$$
#
# where `C = I − 11ᵀ/d_model` centres: `C M` subtracts from every column of `M` its mean over
# `d_model`.
#
# - in: `w [d_model]`, `b [d_model]` (the LayerNorm's weight and bias), `W [n_heads, d_model, d_head]`,
#   `b_W [n_heads, d_head]`
# - out: `(W_folded [n_heads, d_model, d_head], b_folded [n_heads, d_head])`
#
# **Difficulty** ●●○○○ · **Importance** ●●●○○ · about 15 minutes
#
# <details><summary>Hint 1</summary> Scaling the input rows: <code>w[:, None] * W</code> multiplies
# row <code>i</code> of each head's <code>W</code> by <code>w[i]</code>.</details>
# <details><summary>Hint 2</summary> Centring over <code>d_model</code> is a mean over
# <code>dim=-2</code>; the bias is <code>b @ W + b_W</code> (an <code>einsum</code> or
# <code>matmul</code> broadcasts over heads).</details>
#
# **Expected output**: the shipped model has nothing to fold (folded and plain K-composition differ
# by 0). On a model with LayerNorm — the shipped weights given a seeded, non-trivial `ln1` — the
# queries `(x / s) W' + b'` with layer 1's LayerNorm folded into `W_Q` match that model's `hook_q`
# to 1e-4, while the unfolded `x W_Q + b_Q` are off by about 4.

# %% nbgrader={"solution": true, "grade_id": "ch4_fold_layer_norm_code"}
def fold_layer_norm(w: torch.Tensor, b: torch.Tensor, W: torch.Tensor, b_W: torch.Tensor):
    """(W_folded, b_folded): the LayerNorm's weight, centring and bias moved into W and b_W."""
    ### BEGIN SOLUTION
    Ww = w[:, None] * W
    return Ww - Ww.mean(dim=-2, keepdim=True), b @ W + b_W
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_fold_layer_norm", "points": 2}
checks.check_fold_layer_norm(fold_layer_norm)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("fold_layer_norm", fold_layer_norm, seed=491, d_model=12, n_heads=3, d_head=5)
checks.compare_with_reference("fold_layer_norm", fold_layer_norm, seed=492, d_model=5, n_heads=4, d_head=2)
### END HIDDEN TESTS

# %%
# The shipped model has no LayerNorm: folding changes nothing.
print("shipped model, K-composition folded minus plain:", float((M.composition_scores_folded(model)["K"] - comp["K"]).abs().max()))
# A model that has one: the shipped weights with a seeded LayerNorm (made up, not trained).
ln_model = AttnOnlyTransformer(dataclasses.replace(cfg, normalization="LN"))
ln_model.load_state_dict(model.state_dict(), strict=False)  # every weight but the LayerNorms'
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    ln_model.ln1_w.copy_(1 + 0.5 * torch.randn(ln_model.ln1_w.shape, generator=g))
    ln_model.ln1_b.copy_(0.5 * torch.randn(ln_model.ln1_b.shape, generator=g))
_, cache = ln_model.run_with_cache(probe[:2])
resid, q_model = cache[hook_name("resid_pre", 1)].double(), cache[hook_name("q", 1)].double()
s = ((resid - resid.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt()
ln_w, ln_b = ln_model.ln1_w[1].detach().double(), ln_model.ln1_b[1].detach().double()
b_Q1 = ln_model.b_Q[1].detach().double()
Wq_f, bq_f = M.fold_layer_norm(ln_w, ln_b, W["W_Q"][1], b_Q1)
q_folded = torch.einsum("bpd,hde->bphe", resid / s, Wq_f) + bq_f
q_unfolded = torch.einsum("bpd,hde->bphe", resid, W["W_Q"][1]) + b_Q1
print(f"folded queries vs that model's hook_q: max difference {(q_folded - q_model).abs().max():.1e}; "
      f"unfolded: {(q_unfolded - q_model).abs().max():.1f} (largest query entry {q_model.abs().max():.1f})")
mine_f = checks.yours(fold_layer_norm, ln_w, ln_b, W["W_Q"][1], b_Q1)
if mine_f is not None:
    print("yours agree with the library:", torch.allclose(mine_f[0], Wq_f) and torch.allclose(mine_f[1], bq_f))

# %% [markdown]
# The folded queries above match that model's own to float32 rounding (1.5e-06), where the
# unfolded ones are off by 4.4 with query entries up to 6.2: only the per-position scale `s` is
# left outside the weights. That LayerNorm is made up, so this checks the algebra, not a
# finding. The shipped model has none (the difference printed first is 0): the composition
# scores of exercises 5 and 6 are exact as they stand, and so are the next two exercises'.
# Overlap of subspaces still does not say whether a path is used. So ask the circuit directly.
#
# ## Exercise 8 — The token-level K-circuit (2 points, ★★★, 20 min)
#
# **Goal:** an induction head at a query with token `A` must prefer the key whose *previous*
# token is `A`. A layer-0 head `h0` that attends to the previous token writes `E[prev] W_OV0` into
# the key position; the layer-1 head compares it with its query `E[A]` through `W_QK1`. The whole
# token-to-token path is one matrix per pair of heads:
#
# $$K_{h_1 h_0} = E\, W_{QK}^{1,h_1}\, \big(E\, W_{OV}^{0,h_0}\big)^{\mathsf T} \qquad [n_{tok}, n_{tok}],$$
#
# row = the query's token, column = the token `h0` copies into the key. If the path implements
# induction, each row's largest entry is on the diagonal. Score every pair by
#
# - **top-1**: the fraction of rows whose largest entry is the diagonal one;
# - **mean rank**: the mean over rows of how many entries of the row are *strictly larger* than
#   the diagonal entry (0 = top; about `(n − 1)/2` for a random circuit).
#
# - in: `E [n_tok, d_model]` (embeddings of the tokens), `W_QK1 [h1, d_model, d_model]`,
#   `W_OV0 [h0, d_model, d_model]`
# - out: `(top1 [h1, h0], mean_rank [h1, h0])`
#
# **Difficulty** ●●●○○ · **Importance** ●●●●● · about 20 minutes
#
# <details><summary>Hint 1</summary> Broadcast as in exercise 5: <code>E @ W_QK1[:, None]</code> is
# <code>[h1, 1, n, d]</code>, <code>E @ W_OV0[None]</code> is <code>[1, h0, n, d]</code>; multiply the
# first by the transpose (last two axes) of the second.</details>
# <details><summary>Hint 2</summary> The diagonal: <code>C.diagonal(dim1=-2, dim2=-1)</code>; compare
# it with every entry of its row: <code>(C > diag[..., None]).sum(-1)</code> is the rank.</details>
# <details><summary>Hint 3</summary> top-1 is <code>(rank == 0)</code> averaged over rows.</details>
#
# **Expected output**: on the final model (the library's `kcircuit_token_scores`), head 1.0 gets
# top-1 1.00 through 0.3, 0.35 through 0.0, 0.03 through 0.2 and 0.01 through 0.1 (± 0.01).

# %% nbgrader={"solution": true, "grade_id": "ch4_kcircuit_scores_code"}
def kcircuit_scores(E: torch.Tensor, W_QK1: torch.Tensor, W_OV0: torch.Tensor):
    """(top1 [h1, h0], mean_rank [h1, h0]) of the token-level K-circuits E W_QK1 (E W_OV0)^T."""
    ### BEGIN SOLUTION
    C = (E @ W_QK1[:, None]) @ (E @ W_OV0[None]).transpose(-1, -2)  # [h1, h0, n, n]
    diag = C.diagonal(dim1=-2, dim2=-1)
    rank = (C > diag[..., None]).sum(-1).double()
    return (rank == 0).double().mean(-1), rank.mean(-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_kcircuit_scores", "points": 2}
checks.check_kcircuit_scores(kcircuit_scores)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("kcircuit_scores", kcircuit_scores, seed=4101, n_tokens=20, d_model=8, h0=4, h1=3, d_head=2)
checks.compare_with_reference("kcircuit_scores", kcircuit_scores, seed=4102, n_tokens=7, d_model=12, h0=2, h1=4, d_head=4)
### END HIDDEN TESTS

# %%
kc = M.kcircuit_token_scores(model, pool)
print("token-level K-circuit top-1 [layer-1 head, layer-0 head]:\n", kc["top1"])
print("mean rank of the diagonal (random: 70.5):\n", kc["mean_rank"])
yours_kc = checks.yours(kcircuit_scores, W["W_E"][pool], W_QK[1], W_OV[0])
if yours_kc is not None:
    print("yours agree with the library:", torch.allclose(yours_kc[0].float(), kc["top1"], atol=1e-4))
for h1 in range(cfg.n_heads):
    order = kc["top1"][h1].argsort(descending=True).tolist()
    print(f"head 1.{h1}: " + " > ".join(f"0.{h} ({kc['top1'][h1, h]:.2f})" for h in order))

# %% [markdown]
# This is the measure that singles out the circuit, and it sees what the Frobenius score missed.
# For every layer-1 head, head 0.3 ranks first with top-1 0.98–1.00: for almost every query token,
# the key whose previous token matches gets the highest score through it. The second
# previous-token head, 0.0, comes next at 0.24–0.35, far above chance (1/142 = 0.007) although
# its Frobenius K-composition was no higher than that of heads 0.1 and 0.2; those two come last
# at 0.01–0.03, chance level. The mean ranks say the same: 0.00–0.02 through 0.3, 3.9–9.0 through
# 0.0, 49–73 through 0.1 and 0.2 (random: 70.5). `induction-course report --checkpoints RUN`
# prints this ranking for any run (the README compares two training seeds).
#
# ## Exercise 9 — The key score, split by the head it comes through (2 points, ★★★, 20 min)
#
# **Goal:** the functional version of K-composition. On the repeated-token probe, the layer-1
# key at position `k` is a sum of parts, one per source of the residual stream: the token
# embedding, the positional embedding, the output of each layer-0 head, the biases (the model has
# no LayerNorm, so the parts add up exactly). So the attention score `q · k / sqrt(d_head)`
# splits into one term per source. A softmax ignores what is added to every key of a row alike,
# so what matters is the **advantage** of the induction target over the query's other keys:
#
# $$\mathrm{adv}_s = \operatorname*{mean}_{(b,q,k)\,\in\,\text{targets}}
# \Big( S_s[b,q,k] - \operatorname*{mean}_{k' \le q,\ k' \notin \text{targets}} S_s[b,q,k'] \Big),
# \qquad S_s[b,q,k] = \frac{q_{b,q} \cdot k^{(s)}_{b,k}}{\sqrt{d_{head}}}.$$
#
# - in: `q [batch, pos, d_head]` (one head's queries), `k_parts [batch, n_src, pos, d_head]` (its
#   keys split into parts that add up to the key), `target [batch, pos, pos]` (bool: the induction
#   targets of each query, only keys `k <= q`)
# - out: `[n_src]`
#
# **Difficulty** ●●●●○ · **Importance** ●●●●○ · about 20 minutes
#
# <details><summary>Hint 1</summary> All scores at once:
# <code>torch.einsum("bqe,bske->bsqk", q, k_parts) / math.sqrt(d_head)</code>.</details>
# <details><summary>Hint 2</summary> The other keys of a query: the visible ones (a boolean
# lower-triangular <code>[n, n]</code> mask, <code>torch.tril</code>) that are not targets
# (<code>& ~target</code>); their mean score is a masked sum over the last axis divided by the
# mask's count.</details>
# <details><summary>Hint 3</summary> Subtract that mean (<code>[..., None]</code>), keep only target
# entries, sum over batch, query and key, and divide by <code>target.sum()</code>.</details>
#
# **Expected output**: for head 1.0 of the final model, +7.06 through 0.3, +1.24 through 0.0,
# +0.12 through 0.1 and +0.00 through 0.2 (± 0.01).

# %% nbgrader={"solution": true, "grade_id": "ch4_key_score_by_source_code"}
def key_score_by_source(q: torch.Tensor, k_parts: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[n_src]: mean advantage of the target keys over the query's other visible keys, per key part."""
    ### BEGIN SOLUTION
    n = target.shape[-1]
    S = torch.einsum("bqe,bske->bsqk", q, k_parts) / math.sqrt(q.shape[-1])
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    others = (causal & ~target)[:, None].to(S.dtype)
    other_mean = (S * others).sum(-1) / others.sum(-1).clamp_min(1)
    adv = (S - other_mean[..., None]) * target[:, None].to(S.dtype)
    return adv.sum(dim=(0, 2, 3)) / target.sum()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_key_score_by_source", "points": 2}
checks.check_key_score_by_source(key_score_by_source)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("key_score_by_source", key_score_by_source, seed=4111, batch=3, seg_len=5, n_repeats=4, n_src=5, d_head=8)
checks.compare_with_reference("key_score_by_source", key_score_by_source, seed=4112, batch=1, seg_len=6, n_repeats=2, n_src=2, d_head=2)
### END HIDDEN TESTS

# %%
split = M.key_score_decomposition(model, probe)  # the library: one cached run
print("sources:", split.sources)
print("advantage of the induction target, per source [layer-1 head, source]:\n", split.scores)
print("sum over sources (the heads' whole advantage):", split.total)
cols = split.head_columns()
for h1 in range(cfg.n_heads):
    row = split.scores[h1, cols]
    print(f"head 1.{h1}: " + " > ".join(f"0.{h} ({row[h]:+.2f})" for h in row.argsort(descending=True).tolist()))

# %% [markdown]
# Measured on the model's own activations, the split printed above agrees with exercise 8. Of
# each induction head's advantage on its targets (+5.5 to +8.2 in total), most comes through
# head 0.3 (+4.85 to +7.06), 13–15 % through head 0.0 (+0.77 to +1.24), and next to nothing
# through heads 0.1 and 0.2 (+0.12 at most). The embeddings and biases add less than 0.17 in
# absolute value. K-composition *is* the mechanism, as Elhage et al. say, here through two
# previous-token heads, one main and one minor; the Frobenius *score* found the main one and
# could not tell the minor one from heads that contribute nothing.
#
# ## Exercise 10 — An ICL score with its error bar (1 point, ★★, 10 min)
#
# **Goal:** chapter 2's ICL score — the loss at one late token minus the loss at one early token —
# rests on two single-token losses, and its noise is large: over the 512 held-out windows its
# standard error is about 0.11 (measured below). Average each window over a *band* of tokens
# instead, early (tokens 10–15, around the paper's 50 scaled to 128) and late (tokens 100–127),
# and report the standard error with the mean.
#
# - in: `per_token_loss [n_windows, n_ctx - 1]` (column `i` is the loss *at token* `i + 1`),
#   `early = (first, last)` and `late = (first, last)` token indices, both ends included
# - out: `(mean, standard_error)`: per window `d = mean loss over the late band − mean loss over the
#   early band`; the mean of `d` over windows and `std(d) / sqrt(n_windows)` (sample std).
#
# **Difficulty** ●●○○○ · **Importance** ●●●●○ · about 10 minutes
#
# <details><summary>Hint 1</summary> Tokens <code>a..b</code> are columns <code>a-1 .. b-1</code>:
# the slice <code>per_token_loss[:, a - 1:b]</code>.</details>
# <details><summary>Hint 2</summary> <code>d.std() / math.sqrt(len(d))</code> (torch's default std
# is the sample std).</details>
#
# **Expected output**: on the final model and all 512 windows, −0.402 ± 0.043 (± 0.002 on each).

# %% nbgrader={"solution": true, "grade_id": "ch4_icl_band_score_code"}
def icl_band_score(per_token_loss: torch.Tensor, early: tuple, late: tuple) -> tuple:
    """(mean, standard error) over windows of (late-band mean loss - early-band mean loss)."""
    ### BEGIN SOLUTION
    x = per_token_loss.double()
    d = x[:, late[0] - 1:late[1]].mean(-1) - x[:, early[0] - 1:early[1]].mean(-1)
    return float(d.mean()), float(d.std() / math.sqrt(d.shape[0]))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_icl_band_score", "points": 1}
checks.check_icl_band_score(icl_band_score)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("icl_band_score", icl_band_score, seed=4121, batch=20, n_ctx=256)
checks.compare_with_reference("icl_band_score", icl_band_score, seed=4122, batch=5, n_ctx=100)
### END HIDDEN TESTS

# %%
text = eval_set.text  # all 512 held-out windows
with torch.no_grad():
    text_loss = cross_entropy_next_token(model(text), text, per_token=True)
early, late = M.icl_bands(cfg.n_ctx)
band = M.icl_band_score(text_loss, early, late)
e1, l1 = M.icl_positions(cfg.n_ctx)
single = text_loss[:, l1 - 1] - text_loss[:, e1 - 1]
print(f"bands {early} and {late}: ICL score {band.mean:+.3f} ± {band.se:.3f} (standard error, {text.shape[0]} windows)")
print(f"single tokens {e1} and {l1} (chapter 2): {single.mean():+.3f} ± {single.std() / math.sqrt(len(single)):.3f}")
print("four disjoint sets of 128 windows, single tokens:", [round(float(single[i::4].mean()), 2) for i in range(4)])
print("                                   bands:        ", [round(float(band.per_window[i::4].mean()), 2) for i in range(4)])
print("yours:", checks.yours(icl_band_score, text_loss, early, late))

# %% [markdown]
# The band score printed above has a standard error 2.5 times smaller than the single-token
# score's on the same 512 windows (0.043 against 0.109). Four disjoint sets of 128 windows give
# single-token scores from −0.83 to 0.00, band scores from −0.48 to −0.32. Noise of this size
# decides what a curve over training can show: with single tokens, a dip of 0.2 is within the noise.
#
# ## The central figure, for your model (not graded)
#
# Now the scores at every one of the 30 shipped checkpoints: prefix matching (from the training
# history), copying two ways, the token-level K-circuit through each layer-0 head, the Frobenius
# K-composition, and the banded ICL score with its standard-error band, all on the same 512
# windows. `evaluation.scores_over_training` loads every checkpoint once (the ICL bands cost one
# forward pass each the first time, and are cached). The grey band marks the loss bump.

# %%
series = evaluation.scores_over_training()
hist = load_history()
steps = series["step"]
tokens_m = [max(t, 1e4) / 1e6 for t in series["tokens"]]
prefix = torch.tensor([h["prefix_matching_score"] for h in hist])[:, 1]  # [T, layer-1 heads]
ov_top1 = torch.stack(series["ov_top1"])[:, 1]
eig = torch.stack(series["copying_eigen"])[:, 1]
kc_t = torch.stack(series["kcircuit_top1"]).mean(1)  # [T, layer-0 head]: mean over layer-1 heads
frob_k = torch.stack([M.composition_scores(load_model(step=st))["K"].mean(0) for st in steps])  # [T, h0]
icl_m, icl_se = torch.tensor(series["icl_band"]), torch.tensor(series["icl_band_se"])
lo, hi = bump_window(hist)
bump = (hist[steps.index(lo)]["tokens"] / 1e6, hist[steps.index(hi)]["tokens"] / 1e6)

fig, axes = plt.subplots(1, 5, figsize=(21, 3.8), sharex=True)
for h in range(cfg.n_heads):
    axes[0].plot(tokens_m, prefix[:, h], color="C1", alpha=0.8, label=f"1.{h}")
    axes[1].plot(tokens_m, ov_top1[:, h], color="C1", alpha=0.8, label="OV top-1" if h == 0 else None)
    axes[1].plot(tokens_m, eig[:, h], color="C0", ls="--", alpha=0.8, label="eigenvalue" if h == 0 else None)
    style = "-" if h in prev_heads else ":"
    axes[2].plot(tokens_m, kc_t[:, h], style, label=f"0.{h}")
    axes[3].plot(tokens_m, frob_k[:, h], style, label=f"0.{h}")
axes[3].axhline(baseline.mean, color="k", ls=":", lw=0.8, label="random")
axes[4].plot(tokens_m, icl_m, color="C2")
axes[4].fill_between(tokens_m, icl_m - icl_se, icl_m + icl_se, color="C2", alpha=0.3, label="± 1 s.e.")
titles = ["prefix matching (layer 1)", "copying, layer-1 heads", "K-circuit top-1 through layer-0 head",
          "Frobenius K-composition (mean over layer 1)", "ICL score (late band − early band)"]
for ax, title in zip(axes, titles):
    ax.set_title(title, fontsize=10)
    ax.axvspan(*bump, color="grey", alpha=0.25)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens (M)")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
print("means over the layer-1 heads; K-circuit top-1 and Frobenius K through layer-0 heads 0.0 .. 0.3")
for st in (0, 50, 107, 178, lo, hi, 304, 350, 450, 734, steps[-1]):
    i = steps.index(st)
    print(f"step {st:5d}: prefix {prefix[i].mean():.2f}  OV top-1 {ov_top1[i].mean():.2f}  eigen {eig[i].mean():.2f}  "
          f"K-circuit {' '.join(f'{x:.2f}' for x in kc_t[i])}  Frobenius K {' '.join(f'{x:.3f}' for x in frob_k[i])}  "
          f"ICL {icl_m[i]:+.3f} ± {icl_se[i]:.3f}")

# %% [markdown]
# **Reading the figure** (numbers from the table printed under it). The grey band is the loss
# bump, steps 217–259. Inside it the layer-1 heads' prefix matching rises from 0.11 to 0.24 (0.04
# at step 178, 0.48 at step 450) and the K-circuit through head 0.3 from 0.28 to 0.58 (0.10 at
# step 178, 0.96 at step 450): these two take off between step 178 and the band and are mostly
# done by step 450. The K-circuit through the other layer-0 heads rises in the band too (through
# 0.0 from 0.22 to 0.42, through 0.2 from 0.18 to 0.39), peaks soon after (through 0.0: 0.53 at
# step 350) and then falls while the one through 0.3 rises to about 1: at the end 0.30 through
# 0.0, 0.01 through 0.1 and 0.2. OV top-1 copying makes its largest rise in the band (0.54 to
# 0.77), but it starts earlier: 0.20 at step 107 and 0.38 at step 178, while prefix matching is
# still 0.03–0.04.
#
# Two curves do not mark the band. The **eigenvalue copying score** is 0.85 already at step 50
# and 0.97 at step 107, long before it. Random OV matrices score about 0 (exercise 2), so the
# heads do learn this early; but the score only asks whether the OV circuit's eigenvalues are
# positive, which a weak copier already satisfies (OV top-1 0.20 at step 107), while OV top-1
# asks whether the token itself comes out on top. This is a departure from the paper, and the
# reason the figure tracks OV top-1. The **Frobenius K-composition** does jump in the band, but
# for every layer-0 head (0.128–0.141 at step 178, 0.152–0.194 at step 259); afterwards
# only head 0.3 stays high (0.192 at the end) while the others fall back to 0.111–0.132.
#
# And the **ICL score** does not drop inside the band: −0.152 ± 0.037 at step 178, −0.200 ± 0.040
# at step 259. It drops by 0.13 just after it (−0.326 ± 0.043 at step 304), goes back to −0.231
# at step 350 and −0.265 at step 450, reaches −0.463 at step 734 and ends at −0.402 (the windows
# are the same at every checkpoint, so these swings are the model's). Even the untrained model
# scores −0.148 ± 0.029 (step 0), so the values before the band are no sign of in-context
# learning. So on this model the coincidence of the paper's Figure 1 (induction heads and
# in-context learning forming at one moment) is clear for the circuit's own scores, prefix
# matching and the K-circuit through head 0.3, but only partial for the ICL score: it drops right
# after the band, then falls back, and reaches its final level only hundreds of steps later.
# Chapter 5 tests the link causally with ablations.

# %% [markdown] nbgrader={"grade_id": "ch4_written_intro", "locked": true}
# ## Written questions (4 points, graded by hand)
#
# Answer each question in the cell below it, in three to six sentences, in place of `YOUR ANSWER
# HERE`. Argue from the numbers and figures this notebook printed and cite them: that is what earns
# the points. Your instructor grades these answers by hand after the autograder has run.

# %% [markdown] nbgrader={"grade_id": "ch4_written_baseline_question", "locked": true}
# **Written question 1 (2 points).** Why must a composition score be compared with a random
# baseline, and is beating the baseline enough? Use exercise 6's baseline, the Frobenius
# K-composition scores printed after it (where do the two previous-token heads, 0.0 and 0.3,
# rank?) and the token-level K-circuit of exercise 8.

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch4_written_baseline", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** The Frobenius ratio `‖W_A W_B‖ / (‖W_A‖ ‖W_B‖)` is not zero for unrelated
# matrices: random weights of our shapes score 0.125 ± 0.007, so a score means something only
# against that. Head 0.3 beats it clearly for every induction head (0.188–0.197, ×1.44–1.69 the
# other layer-0 heads), and it is the strongest previous-token head (0.97). But the score does not
# say how much the other heads matter: heads 0.1 and 0.2, which are not previous-token heads,
# score up to 0.137, and the second previous-token head, 0.0 (0.71), scores 0.118–0.138, near the
# baseline and no higher than they do (×0.88–1.02 the others). The score measures how much two
# subspaces overlap, not whether the path does anything. The token-level K-circuit asks the
# functional question and separates them: through 0.3 the matching key wins for 0.98–1.00 of the
# tokens, through 0.0 for 0.24–0.35, through 0.1 and 0.2 for 0.01–0.03 (chance 0.007). Head 0.0 is
# a second, weaker path that the Frobenius score cannot tell from heads that do nothing.
#
# **Rubric (2 points).** 1 point: unrelated matrices already score about 0.125, so scores are read
# against that baseline (with the number). 1 point: beating or nearly matching it is not enough
# to tell which heads are read, with the evidence (head 0.0, a previous-token head, scoring no
# higher than 0.1 and 0.2, and/or the token-level K-circuit ranking 0.3 at 0.98–1.00, then 0.0 at
# 0.24–0.35, then 0.1 and 0.2 at chance). Noting only that 0.3 ranks first does not earn the
# second point. Half a point for either without numbers.
# ### END SOLUTION

# %% [markdown] nbgrader={"grade_id": "ch4_written_clock_question", "locked": true}
# **Written question 2 (2 points).** Why is the eigenvalue copying score a poor clock for the
# phase change in this model, and why does the figure track OV top-1 accuracy instead? Cite the
# table printed under the central figure (the eigenvalue score and OV top-1 before and inside the
# loss bump).

# %% [markdown] nbgrader={"solution": true, "grade": true, "grade_id": "ch4_written_clock", "points": 2}
# ### BEGIN SOLUTION
# **Model answer.** A clock must change when the circuit forms. The eigenvalue score is already
# 0.85 at step 50 and 0.97 at step 107, long before the bump (steps 217–259), so it cannot mark
# it; random OV matrices score about 0, so the heads do learn it, early. The score only asks
# whether the eigenvalues are positive, which a weak copier satisfies. OV top-1 asks whether the
# attended token itself comes out on top; it is 0.20 at step 107 and makes its largest rise inside
# the band, from 0.54 to 0.77, together with prefix matching (0.11 to 0.24) and the K-circuit
# through head 0.3 (0.28 to 0.58). It is not a sharp clock either: it already climbs to 0.38 by
# step 178, while prefix matching is still 0.04.
#
# **Rubric (2 points).** 1 point: the eigenvalue score saturates long before the bump, with its
# values (0.85 at step 50, 0.97 at step 107; bump at steps 217–259). 1 point: OV top-1 is a
# stricter test (the token itself on top, not just positive eigenvalues) and rises most inside
# the band, with its values (half of it if the answer says OV top-1 is flat before the band: it
# is 0.38 at step 178). Half a point for either without numbers.
# ### END SOLUTION

# %% [markdown]
# ## Summarise in your own words
#
# Write three or four sentences for a classmate who skipped this chapter: which score tells how
# much each induction head reads from each previous-token head (and what the Frobenius score
# misses, with the numbers above), why the eigenvalue copying score is a poor clock for the phase
# change here, and what the banded ICL score with its error band does and does not show. (Not graded.)

# %% [markdown]
# *Your summary here.*
