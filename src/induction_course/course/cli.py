"""``induction-course``, the installed command: the library's commands plus the course's.

- ``train`` / ``report`` / ``doctor``  the library (:mod:`induction_course.cli`)
- ``links``   rewrite the Colab/Binder badges and setup cells from the repository address
- ``export-html``  a notebook as one HTML page that opens offline
- ``student-repo``  the student-facing tree (no solutions, hidden tests or graders)
- ``release`` / ``grade``  the nbgrader course pipeline (:mod:`induction_course.course.grading`)
- ``written export|import``  the written answers of a graded class, graded by hand through a CSV file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from induction_course import cli
from induction_course.cli import UserError


def _cmd_export_html(args: argparse.Namespace) -> int:
    from induction_course.course.notebook.export import ExportError, notebook_to_html

    out = Path(args.out) if args.out else Path(args.notebook).with_suffix(".html")
    try:
        path = notebook_to_html(args.notebook, out, execute=args.execute)
    except ExportError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {path}")
    return 0


def _cmd_links(args: argparse.Namespace) -> int:
    from induction_course.course.grading import find_root
    from induction_course.course.notebook import links

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


def _cmd_student_repo(args: argparse.Namespace) -> int:
    from induction_course.course.grading import GradingError, find_root
    from induction_course.course.student_repo import write_student_repo

    root = Path(args.root) if args.root else find_root()
    try:
        written = write_student_repo(root, args.out, force=args.force)
    except GradingError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {args.out}: {', '.join(written)} (no solutions, hidden tests or graders; leak check passed)")
    return 0


def _cmd_written(args: argparse.Namespace) -> int:
    from induction_course.course.grading import GradingError
    from induction_course.course.grading.written_csv import export_answers, import_scores

    try:
        if args.action == "export":
            out = Path(args.out) if args.out else Path(args.graded) / "written_answers.csv"
            n = export_answers(args.graded, out, force=args.force)
            print(f"wrote {out}: {n} answer(s); fill in the score (and comment) columns, then run "
                  f"`induction-course written import {args.graded} {out}`")
            return 0
        done = import_scores(args.graded, args.csv)
    except GradingError as exc:
        raise UserError(str(exc)) from exc
    workdir = {1: " and the --workdir's gradebook", 0: "",
               -1: " (the --workdir's gradebook could not be updated: graded again since?)"}[done["workdir_gradebook"]]
    print(f"imported {done['scores']} score(s) ({done['comments']} with a comment) into "
          f"{Path(args.graded) / 'gradebook' / 'gradebook.db'}{workdir}; rewrote {Path(args.graded) / 'grades.csv'}; "
          f"{done['pending']} answer(s) still need manual grading")
    for line in done["lms"]:
        print(line)
    return 0


def _add_written_command(sub) -> None:
    p = sub.add_parser("written", help="grade the written questions of a graded class by hand: export the "
                       "answers with the rubric to a CSV file, import the scores",
                       description="GRADED is the --out folder of `induction-course grade`.")
    acts = p.add_subparsers(dest="action", required=True)
    e = acts.add_parser("export", help="write every student's written answers, the rubric and empty score/comment "
                        "columns to a CSV file (UTF-8)")
    e.add_argument("graded", help="the --out folder of `induction-course grade`")
    e.add_argument("--out", help="CSV file to write (default: GRADED/written_answers.csv)")
    e.add_argument("--force", action="store_true", help="overwrite the CSV file if it exists")
    i = acts.add_parser("import", help="enter the score (and comment) columns of the CSV file into the class's "
                        "gradebook and grades.csv")
    i.add_argument("graded", help="the --out folder of `induction-course grade`")
    i.add_argument("csv", help="the CSV file written by `written export`, with scores filled in")
    p.set_defaults(func=_cmd_written)


def add_course_commands(sub) -> None:
    """Register ``links``, ``export-html``, ``student-repo``, ``release``, ``grade`` and ``written`` on the
    library's subparsers."""
    p = sub.add_parser("links", help="rewrite the Colab/Binder badges and the notebooks' setup cell "
                       "from induction_course.links.REPOSITORY")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    p.add_argument("--root", help="the course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_links)

    p = sub.add_parser("export-html", help="a notebook as one HTML file that needs no network to open")
    p.add_argument("notebook", help="the .ipynb to export")
    p.add_argument("--out", default=None, help="HTML file to write (default: next to the notebook)")
    p.add_argument("--execute", action="store_true", help="run the notebook in a fresh kernel first")
    p.set_defaults(func=_cmd_export_html)

    p = sub.add_parser("student-repo", help="write the student-facing tree (chapters, binder/, the package; "
                       "no solutions, hidden tests or graders) to publish for the badges")
    p.add_argument("out", help="folder to write (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--root", help="the course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_student_repo)

    from induction_course.course import grading  # nbgrader is imported lazily, by the commands

    grading.add_subcommands(sub)
    _add_written_command(sub)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(extend=add_course_commands)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, build_parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
