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
    import importlib.util
    import subprocess

    if importlib.util.find_spec("induction_course") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "induction-course[colab] @ git+https://github.com/induction-heads-course/induction-heads.git@main"], check=True)
from induction_course.course.notebook.runtime import setup_runtime

DEVICE = setup_runtime()

# %% [markdown]
# # Chapter 4 — The paper's metrics, and its central figure for your model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/induction-heads-course/induction-heads/blob/main/chapters/04_metrics/04_metrics.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/induction-heads-course/induction-heads/main?urlpath=lab/tree/chapters/04_metrics/04_metrics.ipynb)
#
# Olsson et al. (2022) did not find induction heads by looking at pictures: they defined numbers
# that any head can be scored on, computed them for every head of every checkpoint, and plotted
# them against training tokens. The induction heads then show themselves as the heads whose scores
# jump at the same moment as the loss bump and the in-context-learning score. In this chapter you
# derive and implement those numbers, and reproduce that figure for the model that the course
# trained (the shipped run in `data/checkpoints`, the same one as in chapters 2 and 3).
#
# - **prefix matching** (behaviour of the QK circuit): on repeated random tokens, how much does a
#   head attend to the token right after the earlier occurrence of the current token?
# - **copying** (behaviour of the OV circuit): if the head attends to token `t`, does it raise the
#   logit of `t`? Elhage et al.'s eigenvalue score Σλ/Σ|λ| of the full OV circuit (the measure
#   Olsson et al. validated their copying evaluator against), a logit score from the weights built
#   like Olsson et al.'s evaluator, the top-1 accuracy of the circuit, and the paper's evaluator
#   itself, run on activations;
# - **composition** (how heads are wired together): K-, Q- and V-composition scores, compared with
#   what two *random* heads would give;
# - **in-context learning**: loss late in the context minus loss early in the context.
#
# **Where this course departs from the paper, and why.**
# - *Context*: our model has 128 tokens of context (the paper: 8192). The ICL score's tokens 50
#   and 500 are therefore scaled by 128/512 to tokens 12 and 125, keeping their relative place.
# - *Fewer tokens*: the model saw 3.8 M training tokens on a CPU (the paper: billions), so the
#   figure's x-axis is in millions, and the bump is at about 1 M tokens.
# - *Positional embeddings*: the model has standard learned absolute positional embeddings
#   (the paper's small models used a relative scheme); the previous-token head uses them.
# - *LayerNorm*: the model has LayerNorm before each attention layer and before the unembedding.
#   The weight-based scores (copying, composition) use the plain matrices and ignore LayerNorm,
#   as Elhage et al.'s analysis of models without it does: LayerNorm centres and rescales each
#   vector by a positive number, which barely moves ratios and signs like these. The pattern-based
#   and loss-based scores run the real model, LayerNorm included.
# - *Probe tokens*: random tokens are drawn from the 142 token ids that occur in training (a token
#   the model never saw has an untrained embedding, which would test the embedding, not the head).
#
# | Exercise | Points | Difficulty | Time |
# |---|---|---|---|
# | 1. The repeated-random-token probe | 1 | ★ | 5 min |
# | 2. The prefix-matching score | 2 | ★★ | 15 min |
# | 3. Prefix matching of every head at once | 2 | ★★ | 10 min |
# | 4. A logit copying score from the weights | 2 | ★★ | 15 min |
# | 5. The eigenvalue copying score, the d_head-sized way | 2 | ★★★ | 15 min |
# | 6. Top-1 copying accuracy of the OV circuit | 1 | ★ | 5 min |
# | 7. The composition score | 1 | ★ | 5 min |
# | 8. K-, Q- and V-composition of every pair of heads | 2 | ★★★ | 15 min |
# | 9. What random heads score: the baseline | 2 | ★★ | 10 min |
# | 10. The in-context-learning score | 1 | ★ | 5 min |
#
# Then (not graded) you track every score over the 30 shipped checkpoints and draw the figure.
# As in every chapter: fill in `# YOUR CODE HERE`, run the check cell below it; hidden tests run
# the same function on fresh random inputs when you submit. Everything runs on a CPU in a minute
# or two.

# %% nbgrader={"grade_id": "ch4_setup", "locked": true}
import math

import matplotlib.pyplot as plt
import torch

from induction_course.course.checks import ch04 as checks
from induction_course import metrics as M
from induction_course.checkpoints import list_steps, load_config, load_eval_set, load_history, load_model
from induction_course.curves import bump_window
from induction_course.model import AttnOnlyTransformer, hook_name

torch.manual_seed(0)
config = load_config()
pool = torch.tensor(config["token_pool"])  # token ids that occur in the training data
BOS = int(config["bos"])
model = load_model()  # the final checkpoint
cfg = model.cfg
eval_set = load_eval_set()  # held-out natural text [512, 128] and a probe
print(cfg)
print(f"token pool: {pool.numel()} ids; BOS = {BOS}; checkpoints: {len(list_steps())}")

# %% [markdown]
# ## Exercise 1 — The repeated-random-token probe (1 point, ★, 5 min)
#
# **Goal:** build the paper's probe. On random tokens nothing can be predicted from the text's
# statistics; once the segment repeats, everything can, but only by looking back in the context.
# The paper uses 25 random tokens repeated 4 times, with a beginning-of-sequence token (BOS)
# first, averaged over 10 examples. Here the random segments are given; repeat them.
#
# - in: `segments [batch, seg_len]` (long), `n_repeats` (int), `bos` (int)
# - out: `[batch, 1 + seg_len * n_repeats]`: `bos`, then the segment `n_repeats` times.
#
# Expected: `[[0, 5, 9, 5, 9]]` for `segments=[[5, 9]]`, `n_repeats=2`, `bos=0`.

# %% nbgrader={"solution": true, "grade_id": "ch4_repeated_tokens_code"}
def repeated_tokens(segments: torch.Tensor, n_repeats: int, bos: int) -> torch.Tensor:
    """[batch, 1 + seg_len * n_repeats]: BOS, then every segment repeated n_repeats times."""
    ### BEGIN SOLUTION
    bos_col = torch.full((segments.shape[0], 1), bos, dtype=segments.dtype)
    return torch.cat([bos_col, segments.repeat(1, n_repeats)], dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_repeated_tokens", "points": 1}
checks.check_repeated_tokens(repeated_tokens)
print(repeated_tokens(torch.tensor([[5, 9]]), 2, 0))
### BEGIN HIDDEN TESTS
for seed in (401, 402):
    checks.compare_with_reference("repeated_tokens", repeated_tokens, seed=seed, batch=4, seg_len=7, n_repeats=3, bos=2)
### END HIDDEN TESTS

# %% [markdown]
# The segments themselves are drawn from the pool without repeats inside a segment (so "the token
# after the earlier occurrence" is unique in the first copy). The paper's protocol, for the whole
# notebook: 10 examples, 25 tokens, 4 repeats, BOS first — 101 tokens, which fits our context of 128.

# %%
gen = torch.Generator().manual_seed(0)
segments = pool[torch.rand(10, pool.numel(), generator=gen).argsort(-1)[:, :25]]
probe = repeated_tokens(segments, 4, BOS)
print("probe:", list(probe.shape))

# %% [markdown]
# ## Exercise 2 — The prefix-matching score (2 points, ★★, 15 min)
#
# **Goal:** score how much a head does the induction head's *attention* move. For a query at
# position `q` whose token occurred earlier, the *induction targets* are the keys `k` right after an
# earlier occurrence: `tokens[k-1] == tokens[q]` with `k-1 < q`. The score of a head is the
# attention mass on the targets, summed over all targets (from the third copy on there are
# several), averaged over the queries that *have* a target — the later repeats; the first copy
# cannot show induction — and over the batch.
#
# - in: `pattern [batch, n_heads, q, k]` (rows sum to 1), `tokens [batch, pos]` with `pos == q`
# - out: `[n_heads]`, each in [0, 1]; an ideal induction head scores 1.
#
# Tip: build a boolean mask `[batch, q, k]` of the targets with broadcasting, then
# `(pattern * mask[:, None]).sum(-1)` is the mass per query. On the final model, layer-1 heads
# score about 0.6–0.75, layer-0 heads about 0.

# %% nbgrader={"solution": true, "grade_id": "ch4_prefix_matching_score_code"}
def prefix_matching_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """[n_heads]: attention on induction targets, averaged over queries that have one, and the batch."""
    ### BEGIN SOLUTION
    n = tokens.shape[1]
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]  # prev[b, k] = tokens[b, k-1]
    k_idx = torch.arange(n)[None, None, :]
    q_idx = torch.arange(n)[None, :, None]
    target = (prev[:, None, :] == tokens[:, :, None]) & (k_idx - 1 < q_idx) & (k_idx >= 1)  # [b, q, k]
    mass = (pattern * target[:, None].to(pattern.dtype)).sum(-1)  # [b, h, q]
    has_target = target.any(-1)  # [b, q]
    return (mass * has_target[:, None]).sum(dim=(0, 2)) / has_target.sum()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_prefix_matching_score", "points": 2}
checks.check_prefix_matching_score(prefix_matching_score)
_, cache = model.run_with_cache(probe)
print("layer-1 prefix matching:", prefix_matching_score(cache[hook_name("pattern", 1)], probe))
### BEGIN HIDDEN TESTS
checks.compare_with_reference("prefix_matching_score", prefix_matching_score, seed=411, batch=3, n_heads=2, seg_len=5, n_repeats=4)
checks.compare_with_reference("prefix_matching_score", prefix_matching_score, seed=412, batch=1, n_heads=4, seg_len=9, n_repeats=2, d_vocab=50)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3 — Prefix matching of every head at once (2 points, ★★, 10 min)
#
# **Goal:** the batched, all-heads version: one forward pass with `model.run_with_cache`, then
# your score on every layer's `hook_name("pattern", layer)` (`blocks.{layer}.attn.hook_pattern`).
#
# - in: `model` (ours or a TransformerLens bridge: only `run_with_cache` and `model.cfg.n_layers`
#   are used), `tokens [batch, pos]`
# - out: `[n_layers, n_heads]`
#
# Expected on the final model and our probe: row 0 near 0, row 1 about 0.6–0.75 for every head.

# %% nbgrader={"solution": true, "grade_id": "ch4_prefix_matching_all_heads_code"}
def prefix_matching_all_heads(model, tokens: torch.Tensor) -> torch.Tensor:
    """[n_layers, n_heads] prefix-matching scores from one cached run."""
    ### BEGIN SOLUTION
    _, cache = model.run_with_cache(tokens)
    return torch.stack([
        M.prefix_matching_score(cache[hook_name("pattern", layer)], tokens)
        for layer in range(model.cfg.n_layers)
    ])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_prefix_matching_all_heads", "points": 2}
checks.check_prefix_matching_all_heads(prefix_matching_all_heads)
pm = prefix_matching_all_heads(model, probe)
print(pm)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("prefix_matching_all_heads", prefix_matching_all_heads, seed=421, n_heads=4, seg_len=5, n_repeats=3)
checks.compare_with_reference("prefix_matching_all_heads", prefix_matching_all_heads, seed=422, n_heads=2, n_ctx=30, seg_len=9)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 — A logit copying score from the weights (2 points, ★★, 15 min)
#
# **Goal:** measure what the OV circuit *does* when the head attends to a token. If a head attends
# with all its attention to token `t`, its direct effect on the logits is the row
# `x = W_E[t] W_V W_O W_U` (LayerNorm ignored). A copying head raises the logit of `t` itself.
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
W = {n: getattr(model, n).detach().double() for n in ("W_E", "W_V", "W_O", "W_U")}
mine = torch.tensor([[logit_copying_score(W["W_E"][pool] @ W["W_V"][l, h] @ W["W_O"][l, h] @ W["W_U"][:, pool],
                                          torch.arange(pool.numel())) for h in range(cfg.n_heads)]
                     for l in range(cfg.n_layers)])
print("logit copying score:\n", mine)
assert torch.allclose(mine.float(), M.copying_score(model, pool), atol=1e-4)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("logit_copying_score", logit_copying_score, seed=431, n_tokens=12, n_cols=20)
checks.compare_with_reference("logit_copying_score", logit_copying_score, seed=432, n_tokens=5, n_cols=40, strength=4.0)
checks.compare_with_reference("logit_copying_score", logit_copying_score, seed=433, n_tokens=9, n_cols=9, strength=1.0)
### END HIDDEN TESTS

# %% [markdown]
# The scores are small (about 0.05 for the induction heads), and that is not a bug: over 142
# tokens, even a head that puts the attended token at the top of its row gives it only a modest
# *share* of all the positive mass. The score reads best *relatively* — layer-1 heads are several
# times higher than layer-0 heads. Exercises 5 and 6 give two sharper views of the same circuit.
#
# ### The paper's evaluator, on activations
#
# Olsson et al.'s appendix (head activation evaluators) defines copying on a forward pass:
# *generate 25 random tokens (not the most or least common ones); take the head's contribution
# to the residual stream and convert it with the unembedding (the direct path) into logits;
# subtract the mean and apply a ReLU; compute the ratio of what it raises the attended token's
# logit to what it raises the logits of all tokens in the sample.* `metrics.activation_copying_ratio`
# does exactly that (each key weighted by its attention, through the final LayerNorm, averaged
# over 10 samples). Compare the trained heads with the same architecture at initialisation:
# a head that raises the attended token no more than any other gets about 1/25 = 0.04.
#
# The paper adds that the ratio "ranges from 0 to 0.5" and is scaled to −1…1. Read literally the
# ratio can reach 1 (a head that raises only the attended token), and `4r − 1` would give a
# *random* head about −0.84, not 0 — the text is ambiguous there, so we compare raw ratios. Also
# note how weak the separation is on a non-repeated sequence: the induction heads have nothing
# to induct on, and put much of their attention on the first token.

# %%
paper_r = M.activation_copying_ratio(model, pool)
untrained_r = M.activation_copying_ratio(AttnOnlyTransformer(model.cfg), pool)
print("paper's evaluator, raw ratio r (rows: layers, columns: heads)\n", paper_r)
print("same architecture at initialisation\n", untrained_r)
print(f"induction heads / initialisation: {paper_r[1].mean() / untrained_r.mean():.1f}x")

# %% [markdown]
# ## Exercise 5 — The eigenvalue copying score, the d_head-sized way (2 points, ★★★, 15 min)
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
eig_scores = torch.tensor([[eigen_copying_score(W["W_E"][pool], W["W_V"][l, h], W["W_O"][l, h], W["W_U"][:, pool])
                            for h in range(cfg.n_heads)] for l in range(cfg.n_layers)])
print("eigenvalue copying score:\n", eig_scores)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("eigen_copying_score", eigen_copying_score, seed=441, d_vocab=50, d_model=16, d_head=5)
checks.compare_with_reference("eigen_copying_score", eigen_copying_score, seed=444, d_vocab=20, d_model=8, d_head=3)
checks.compare_with_reference("eigen_copying_score", eigen_copying_score, seed=445, d_vocab=40, d_model=10, d_head=4)
### END HIDDEN TESTS

# %% [markdown]
# The four induction heads score 1.00: every non-zero eigenvalue of their full OV circuit is
# positive. The layer-0 heads score between 0.26 and 0.72 — positive too, because the
# embedding and the unembedding of the same token are aligned in any trained model, so many
# heads look a little like copiers on this score.
#
# ## Exercise 6 — Top-1 copying accuracy of the OV circuit (1 point, ★, 5 min)
#
# **Goal:** the most concrete reading of the circuit: for what fraction of tokens `t` is the
# largest logit of row `t` of `W_E W_V W_O W_U` the token `t` itself?
#
# - in: `W_E, W_V, W_O, W_U` as in exercise 5
# - out: a float in [0, 1]; chance is `1 / d_vocab`.

# %% nbgrader={"solution": true, "grade_id": "ch4_ov_top1_accuracy_code"}
def ov_top1_accuracy(W_E, W_V, W_O, W_U) -> float:
    """Fraction of tokens t whose top logit under the full OV circuit is t."""
    ### BEGIN SOLUTION
    full = W_E @ W_V @ W_O @ W_U
    return float((full.argmax(dim=-1) == torch.arange(full.shape[0])).float().mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_ov_top1_accuracy", "points": 1}
checks.check_ov_top1_accuracy(ov_top1_accuracy)
top1 = torch.tensor([[ov_top1_accuracy(W["W_E"][pool], W["W_V"][l, h], W["W_O"][l, h], W["W_U"][:, pool])
                      for h in range(cfg.n_heads)] for l in range(cfg.n_layers)])
print("OV top-1 accuracy (chance 1/142 = 0.007):\n", top1)
### BEGIN HIDDEN TESTS
checks.compare_with_reference("ov_top1_accuracy", ov_top1_accuracy, seed=451, d_vocab=45, d_model=14, d_head=7)
checks.compare_with_reference("ov_top1_accuracy", ov_top1_accuracy, seed=452, d_vocab=25, d_model=10, d_head=5)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 7 — The composition score (1 point, ★, 5 min)
#
# **Goal:** a later head *composes* with an earlier one when it reads what the earlier one
# writes. For two matrices the paper measures how much of `W_B`'s input space `W_A`'s output
# lands in:
#
# $$\text{score}(W_A, W_B) = \frac{\lVert W_A W_B \rVert_F}{\lVert W_A \rVert_F\, \lVert W_B \rVert_F} \in [0, 1].$$
#
# - in: `W_A [m, n]`, `W_B [n, p]`
# - out: a float (or a 0-d tensor). Use `torch.linalg.matrix_norm` (Frobenius by default).

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
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 8 — K-, Q- and V-composition of every pair of heads (2 points, ★★★, 15 min)
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
W_OV = (model.W_V @ model.W_O).detach().double()  # [layer, head, d_model, d_model]
W_QK = (model.W_Q @ model.W_K.transpose(-1, -2)).detach().double()
comp = kqv_composition(W_OV[0], W_QK[1], W_OV[1])
for k in "KQV":
    print(f"{k}-composition [layer-1 head, layer-0 head]:\n{comp[k].float()}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("kqv_composition", kqv_composition, seed=471, h0=4, h1=3, d=12, dh=4)
checks.compare_with_reference("kqv_composition", kqv_composition, seed=472, h0=2, h1=2, d=8, dh=2)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 9 — What random heads score: the baseline (2 points, ★★, 10 min)
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
#   (`E‖AB‖²_F` grows like `d_model` times less than `‖A‖²_F ‖B‖²_F`.) For our model: about 0.125.

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
baseline = random_composition_scores(cfg.d_model, cfg.d_head, 1000, seed=0)
print(f"random baseline for our model: {baseline.mean():.3f} ± {baseline.std():.3f}")
for k in "KQV":
    print(f"{k}: mean over pairs {comp[k].mean():.3f}, max {comp[k].max():.3f}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("random_composition_scores", random_composition_scores, seed=481, d_model=32, d_head=8, n_samples=500)
checks.compare_with_reference("random_composition_scores", random_composition_scores, seed=482, d_model=9, d_head=2, n_samples=600)
### END HIDDEN TESTS

# %% [markdown]
# **What the numbers say.** K-composition of the induction heads with the previous-token heads
# 0.1 and 0.2 (about 0.19–0.21) sits well above the random baseline (0.125 ± 0.007, so 8–12
# standard deviations), while V-composition stays below it and Q-composition is at or below it
# except for head 0.0 (about 0.14): the induction heads read
# the previous-token heads through their keys, exactly the mechanism of Elhage et al.

# %% [markdown]
# ## Exercise 10 — The in-context-learning score (1 point, ★, 5 min)
#
# **Goal:** the paper's behavioural definition of in-context learning: the loss at token 500 minus
# the mean loss at token 50 (negative = later tokens are predicted better thanks to the context).
# Our context is 128 tokens, so scale both: `early = round(50 n_ctx / 512)`, `late = round(500 n_ctx / 512)`
# (12 and 125 for us). Careful with the indexing: column `i` of a per-token loss table is the loss
# of predicting token `i + 1`, so "the loss at token n" is column `n - 1`.
#
# - in: `per_token_loss [batch, n_ctx - 1]` (as `cross_entropy_next_token(..., per_token=True)` gives)
# - out: a float: mean over the batch of the loss at `late` minus the loss at `early`.

# %% nbgrader={"solution": true, "grade_id": "ch4_icl_score_code"}
def icl_score(per_token_loss: torch.Tensor) -> float:
    """Mean loss at token round(500 n/512) minus mean loss at token round(50 n/512)."""
    ### BEGIN SOLUTION
    n_ctx = per_token_loss.shape[1] + 1
    early, late = round(50 * n_ctx / 512), round(500 * n_ctx / 512)
    return float(per_token_loss[:, late - 1].mean() - per_token_loss[:, early - 1].mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch4_icl_score", "points": 1}
checks.check_icl_score(icl_score)
from induction_course.model import cross_entropy_next_token  # noqa: E402

text = eval_set.text[:128]
with torch.no_grad():
    text_loss = cross_entropy_next_token(model(text), text, per_token=True)
print(f"ICL score of the final model on held-out text: {icl_score(text_loss):.3f}")
### BEGIN HIDDEN TESTS
checks.compare_with_reference("icl_score", icl_score, seed=491, batch=3, n_ctx=256)
checks.compare_with_reference("icl_score", icl_score, seed=492, batch=8, n_ctx=100)
### END HIDDEN TESTS

# %% [markdown]
# ## The paper's central figure, for your model (not graded)
#
# Now every score for every head at every checkpoint. We take every second checkpoint (15 of 30)
# and 128 held-out text windows to keep this under a minute on a CPU; the shipped history has the
# same numbers for all 30. The grey band marks the loss bump (where the training loss bends
# fastest as the induction heads form).

# %%
steps = list_steps()[::2] + ([list_steps()[-1]] if len(list_steps()) % 2 == 0 else [])
history = {h["step"]: h for h in load_history()}
track = {k: [] for k in ("tokens", "prefix", "copy_eig", "copy_logit", "K", "icl", "loss")}
probe_d, pool_d, text_d = probe.to(DEVICE), pool.to(DEVICE), text.to(DEVICE)
print(f"sweep over {len(steps)} checkpoints on {DEVICE}")
for step in steps:
    m = load_model(step=step, device=DEVICE)
    track["tokens"].append(history[step]["tokens"] / 1e6)
    track["prefix"].append(prefix_matching_all_heads(m, probe_d).cpu())
    track["copy_eig"].append(M.eigenvalue_copying_score(m, pool_d).cpu())
    track["copy_logit"].append(M.copying_score(m, pool_d).cpu())
    ov0 = (m.W_V[0] @ m.W_O[0]).detach().double()
    qk1 = (m.W_Q[1] @ m.W_K[1].transpose(-1, -2)).detach().double()
    track["K"].append(kqv_composition(ov0, qk1, (m.W_V[1] @ m.W_O[1]).detach().double())["K"].max(-1).values.cpu())
    with torch.no_grad():
        track["icl"].append(float(icl_score(cross_entropy_next_token(m(text_d), text_d, per_token=True))))
    track["loss"].append(history[step]["train_loss"])
tokens_m = track["tokens"]
lo, hi = bump_window(load_history())
bump = (history[lo]["tokens"] / 1e6, history[hi]["tokens"] / 1e6)

fig, axes = plt.subplots(1, 5, figsize=(20, 3.6), sharex=True)
panels = [("prefix", "prefix matching"), ("copy_eig", "copying (eigenvalue)"), ("copy_logit", "copying (logit)"),
          ("K", "K-composition (max over layer-0 heads)")]
for ax, (key, title) in zip(axes, panels):
    values = torch.stack([v.float() if v.dim() == 2 else v.float()[None] for v in track[key]])  # [step, L?, H]
    for layer in range(values.shape[1]):
        for head in range(values.shape[2]):
            label = f"{layer + (1 if key == 'K' else 0)}.{head}"
            ax.plot(tokens_m, values[:, layer, head], color="C1" if label.startswith("1") else "C0", alpha=0.8,
                    label=label)
    if key == "K":
        ax.axhline(baseline.mean(), color="k", ls=":", label="random")
    ax.set_title(title)
axes[4].plot(tokens_m, track["icl"], color="C2")
axes[4].set_title("in-context-learning score")
for ax in axes:
    ax.axvspan(*bump, color="grey", alpha=0.25)
    ax.set_xlabel("training tokens (M)")
axes[0].legend(fontsize=7, ncol=2)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Reading the figure.** Blue lines are layer-0 heads, orange lines layer-1 heads. Inside the
# grey band, the layer-1 heads' prefix-matching score jumps from about 0 to most of its final
# value, the eigenvalue copying score of the same heads rises to 1, their K-composition with layer
# 0 climbs above the random baseline, and the ICL score drops — all at once. That coincidence is
# the paper's first and central line of evidence (its Figure 1/"argument 1"): induction heads form
# at the same moment as in-context learning. Chapter 5 turns the correlation into causation with
# ablations.
