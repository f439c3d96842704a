"""``induction-course``: one entry point, one subcommand per job.

- ``train``   train the model from scratch, with checkpoints and metrics over training
- ``report``  head table, ablations, plots and an HTML page, from shipped or given checkpoints
- ``doctor``  what this installation can do (versions, data files, GPU)
- ``links``   rewrite the Colab/Binder badges and setup cells from the repository address
- ``export-html``  a notebook as one HTML page that opens offline
- ``release`` / ``grade``  the nbgrader course pipeline (see :mod:`induction_course.grading`)

Errors a user can fix (a missing folder, a corrupt file) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


def _cmd_export_html(args: argparse.Namespace) -> int:
    from induction_course.export import ExportError, notebook_to_html

    out = Path(args.out) if args.out else Path(args.notebook).with_suffix(".html")
    try:
        path = notebook_to_html(args.notebook, out, execute=args.execute)
    except ExportError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {path}")
    return 0


def _cmd_links(args: argparse.Namespace) -> int:
    from induction_course import links
    from induction_course.grading import find_root

    root = Path(args.root) if args.root else find_root()
    changed = links.sync(root, check=args.check)
    if args.check:
        for c in changed:
            print(f"out of date (run `induction-course links`): {c}")
        return 1 if changed else 0
    print("\n".join(f"wrote {c}" for c in changed) if changed else f"up to date with {links.REPOSITORY}")
    if changed:
        print("now run `induction-course release` to rebuild the notebooks")
    return 0


def build_parser() -> argparse.ArgumentParser:
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

    p = sub.add_parser("links", help="rewrite the Colab/Binder badges and the notebooks' setup cell "
                       "from induction_course.links.REPOSITORY")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    p.add_argument("--root", help="the course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_links)

    p = sub.add_parser("doctor", help="check the installation: versions, data files, GPU")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("export-html", help="a notebook as one HTML file that needs no network to open")
    p.add_argument("notebook", help="the .ipynb to export")
    p.add_argument("--out", default=None, help="HTML file to write (default: next to the notebook)")
    p.add_argument("--execute", action="store_true", help="run the notebook in a fresh kernel first")
    p.set_defaults(func=_cmd_export_html)

    try:
        from induction_course import grading
    except ImportError:  # the course extra (nbgrader) is not installed
        grading = None
    if grading is not None and hasattr(grading, "add_subcommands"):
        grading.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
