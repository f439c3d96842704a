"""Time-to-induction of the default training run on this machine.

Prints: wall-clock seconds and training tokens until the induction criterion first holds at a
checkpoint (best layer-1 prefix-matching >= 0.5, best layer-0 previous-token >= 0.5, loss on
later repeats < half the loss on the first copy), training throughput (tokens per second,
evaluation excluded), total run time and the share of natural-text tokens.

    python benchmarks/time_to_induction.py [--steps N] [--seed S] [--threads T]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from induction_course.data import load_corpus
from induction_course.evaluation import induction_formed
from induction_course.training import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    corpus = load_corpus()
    load_s = time.perf_counter() - t0
    tcfg = TrainConfig(seed=args.seed)
    if args.steps:
        tcfg.steps = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train(tcfg, out_dir=tmp, progress=False, corpus=corpus)
        total = time.perf_counter() - start
        summary = __import__("json").loads((__import__("pathlib").Path(tmp) / "summary.json").read_text())
    formed = next((h for h in result.history if induction_formed(h)), None)
    train_s = summary["seconds"] - summary["eval_seconds"]
    tokens = tcfg.steps * result.tokens_per_step
    print(f"device                 {summary['device']} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print(f"corpus load+tokenize   {load_s:.1f} s")
    if formed:
        print(f"time to induction      {formed['seconds']:.1f} s (step {formed['step']}, checkpoint resolution)")
        print(f"tokens to induction    {formed['tokens']:,} ({formed['natural_tokens'] / max(formed['tokens'], 1):.0%} natural text)")
    else:
        print("time to induction      not reached")
    print(f"throughput             {tokens / train_s:,.0f} tokens/s (evaluation excluded)")
    print(f"whole run              {total:.1f} s for {tokens:,} tokens, {summary['natural_tokens'] / tokens:.0%} natural text")
    last = result.history[-1]
    print(f"final                  prev-token {last['best_prev_token_layer0']:.2f}, prefix-matching "
          f"{last['best_prefix_matching_layer1']:.2f}, repeats {last['loss_first_repeat']:.2f} -> "
          f"{last['loss_later_repeats']:.2f}, ICL {last['icl_score']:+.2f}")


if __name__ == "__main__":
    main()
