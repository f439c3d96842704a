"""The measurements taken at every checkpoint during training.

One fixed evaluation set per run (seeded) so that numbers across checkpoints are comparable:
the paper's prefix-matching probe (25 random tokens repeated 4 times after a BOS, 10+
examples) and windows of held-out corpus text for the in-context-learning score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from induction_course import metrics
from induction_course.data import Corpus, sample_windows
from induction_course.model import cross_entropy_next_token
from induction_course.probes import repeated_random_tokens

PROBE_SEG_LEN = 25
PROBE_REPEATS = 4


@dataclass
class EvalSet:
    probe: torch.Tensor  # [n, 1 + seg_len * repeats]
    text: torch.Tensor  # [n, n_ctx] held-out windows
    seg_len: int
    bos: int

    @classmethod
    def build(cls, corpus: Corpus, n_ctx: int, n_probe: int = 16, n_text: int = 512, seed: int = 1) -> "EvalSet":
        seg_len = min(PROBE_SEG_LEN, (n_ctx - 1) // PROBE_REPEATS)
        probe = repeated_random_tokens(n_probe, seg_len, PROBE_REPEATS, corpus.token_pool(), corpus.bos, seed)
        gen = torch.Generator().manual_seed(seed)
        # The ICL score is a difference of two single-position losses; over 64 windows its
        # sampling error was about 0.4 nats (measured), so we use hundreds.
        text = sample_windows(corpus.heldout, n_text, n_ctx, corpus.bos, gen)
        return cls(probe=probe, text=text, seg_len=seg_len, bos=corpus.bos)


@torch.no_grad()
def evaluate(model, eval_set: EvalSet) -> dict:
    """Headline numbers of a model: repeat losses, head scores and the ICL score."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probe = eval_set.probe.to(device)
    text = eval_set.text.to(device)
    rep = metrics.repeated_token_losses(model, probe, eval_set.seg_len)
    first, later = rep.first, rep.later
    scores = metrics.head_scores(model, probe)
    prev = scores["previous_token"]  # [L, H]
    prefix = scores["prefix_matching"]
    # One forward pass over the held-out text gives both the ICL score and the mean loss.
    text_losses = cross_entropy_next_token(model(text), text, per_token=True)
    icl = metrics.icl_score_from_losses(text_losses, *metrics.icl_positions(text.shape[1]))
    if was_training:
        model.train()
    return {
        "loss_first_repeat": float(first),
        "loss_later_repeats": float(later),
        "previous_token_score": [[round(float(x), 5) for x in row] for row in prev.cpu()],
        "prefix_matching_score": [[round(float(x), 5) for x in row] for row in prefix.cpu()],
        "best_prev_token_layer0": float(prev[0].max()),
        "best_prefix_matching_layer1": float(prefix[1:].max()) if prefix.shape[0] > 1 else float("nan"),
        "icl_score": float(icl),
        "text_loss": float(text_losses.mean()),
    }


def induction_formed(record: dict, threshold: float = 0.5) -> bool:
    """The criterion of the speed target: a layer-1 prefix-matching head, a layer-0
    previous-token head, and later repeats predicted at less than half the first's loss."""
    return (
        record["best_prefix_matching_layer1"] >= threshold
        and record["best_prev_token_layer0"] >= threshold
        and record["loss_later_repeats"] < 0.5 * record["loss_first_repeat"]
    )
