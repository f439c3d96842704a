"""``induction-course``: one entry point, one subcommand per job.

- ``train``   train the model from scratch, with checkpoints and metrics over training
- ``report``  head table, ablations, plots and an HTML page, from shipped or given checkpoints
- ``doctor``  what this installation can do (versions, data files, GPU)

The course adds ``links``, ``export-html``, ``release`` and ``grade``
(:mod:`induction_course.course.cli`, the installed ``induction-course`` command).

Errors a user can fix (a missing folder, a corrupt file) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from induction_course.checkpoints import CheckpointError


class UserError(Exception):
    """Something the user can fix; printed as one line, no traceback."""


def _cmd_train(args: argparse.Namespace) -> int:
    from induction_course.training import TrainConfig, train

    tcfg = TrainConfig(seed=args.seed)
    if args.steps is not None:
        tcfg.steps = args.steps
    if args.synthetic_fraction is not None:
        tcfg.synthetic_fraction = args.synthetic_fraction
    result = train(tcfg, out_dir=args.out, device=args.device, progress=not args.quiet)
    last = result.history[-1]
    print(
        f"trained {tcfg.steps} steps ({tcfg.steps * result.tokens_per_step:,} tokens) in "
        f"{result.seconds:.0f} s; checkpoints in {args.out}\n"
        f"best layer-0 previous-token score {last['best_prev_token_layer0']:.2f}, best layer-1 "
        f"prefix-matching score {last['best_prefix_matching_layer1']:.2f}, loss on first/later "
        f"repeats {last['loss_first_repeat']:.2f}/{last['loss_later_repeats']:.2f}, "
        f"ICL score {last['icl_score']:.2f}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from induction_course.report import build_report

    run_dir = args.checkpoints
    if args.train:
        from induction_course.training import TrainConfig, train

        run_dir = Path(args.out) / "run"
        train(TrainConfig(seed=args.seed), out_dir=run_dir, device=args.device, progress=not args.quiet)
    report = build_report(run_dir, Path(args.out), device=args.device)
    print(report.text)
    print(f"\nreport written to {report.html_path}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from induction_course.doctor import run_doctor

    return run_doctor()


def build_parser(extend: Callable | None = None) -> argparse.ArgumentParser:
    """The library's commands; ``extend(subparsers)`` adds more (the course's)."""
    parser = argparse.ArgumentParser(prog="induction-course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train the two-layer attention-only model from scratch")
    p.add_argument("--out", default="runs/default", help="run folder for checkpoints (default: runs/default)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped run's)")
    p.add_argument("--synthetic-fraction", type=float, default=None, help="share of repeated-random-segment sequences per batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("report", help="find, score and ablate the heads; write plots and an HTML page")
    p.add_argument("--out", default="report", help="output folder (default: report)")
    p.add_argument("--checkpoints", default=None, help="run folder (default: the shipped checkpoints in data/)")
    p.add_argument("--train", action="store_true", help="train from scratch first instead of using checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("doctor", help="check the installation: versions, data files, GPU")
    p.set_defaults(func=_cmd_doctor)

    if extend is not None:
        extend(sub)
    return parser


def main(argv: list[str] | None = None, build: Callable[[], argparse.ArgumentParser] | None = None) -> int:
    """Parse ``argv`` with ``build()`` (default: the library's commands) and run the command."""
    parser = (build or build_parser)()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, CheckpointError, FileNotFoundError) as exc:
        print(f"induction-course {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
