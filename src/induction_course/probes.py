"""Repeated-random-token probes: the inputs on which induction heads show themselves.

A probe is ``[BOS, r_1 ... r_n, r_1 ... r_n, ...]``: a random segment repeated. On the first
copy nothing can be predicted; on later copies a model with induction heads predicts every
token. Two details keep the probe honest (Olsson et al. 2022, and DESIGN.md):

- tokens are drawn from a *pool* of tokens that occur in training, so the embeddings of the
  tokens are trained and the model is not confused by never-seen ids;
- within one segment no token repeats, so "the token after the earlier occurrence" is unique.
"""

from __future__ import annotations

import torch


def repeated_random_tokens(
    n_examples: int,
    seg_len: int,
    n_repeats: int,
    token_pool: torch.Tensor,
    bos: int | None,
    seed: int = 0,
) -> torch.Tensor:
    """``[n_examples, (bos) + seg_len * n_repeats]`` tokens: a random segment repeated.

    ``token_pool`` is a 1-D tensor of token ids to draw from (without replacement inside a
    segment). The paper's protocol is ``seg_len=25, n_repeats=4, n_examples=10`` with a BOS.
    """
    token_pool = torch.as_tensor(token_pool).flatten()
    if seg_len > token_pool.numel():
        raise ValueError(
            f"seg_len={seg_len} is larger than the token pool ({token_pool.numel()} ids): a segment "
            "cannot be drawn without repeating a token"
        )
    if n_examples < 1 or seg_len < 1 or n_repeats < 1:
        raise ValueError("n_examples, seg_len and n_repeats must be positive")
    gen = torch.Generator().manual_seed(seed)
    # argsort of uniform noise = a batch of independent random permutations of the pool.
    idx = torch.rand(n_examples, token_pool.numel(), generator=gen).argsort(dim=-1)[:, :seg_len]
    segment = token_pool[idx]
    tokens = segment.repeat(1, n_repeats)
    if bos is not None:
        tokens = torch.cat([torch.full((n_examples, 1), bos, dtype=tokens.dtype), tokens], dim=1)
    return tokens


def induction_target_mask(tokens: torch.Tensor) -> torch.Tensor:
    """``[batch, q, k]`` boolean: key ``k`` is the token right after an earlier occurrence of
    the query's token (``tokens[k-1] == tokens[q]`` and ``k - 1 < q``). This is where an
    induction head attends. Works on any token sequence, not only probes."""
    b, n = tokens.shape
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]
    same = prev[:, None, :] == tokens[:, :, None]  # [b, q, k]: tokens[k-1] == tokens[q]
    q_idx = torch.arange(n)[:, None]
    k_idx = torch.arange(n)[None, :]
    earlier = (k_idx - 1) < q_idx  # the earlier occurrence is strictly before q; k <= q follows
    return same & earlier & (k_idx >= 1)


def duplicate_target_mask(tokens: torch.Tensor) -> torch.Tensor:
    """``[batch, q, k]`` boolean: key ``k < q`` holds the same token as the query."""
    n = tokens.shape[1]
    same = tokens[:, None, :] == tokens[:, :, None]
    strictly_before = torch.arange(n)[None, :] < torch.arange(n)[:, None]
    return same & strictly_before
