"""The ``release`` and ``grade`` subcommands of ``induction-course``.

A :class:`GradingError` is the user's mistake or a failed step, not a bug: it is printed as
one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from induction_course.course.grading.autograde import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, default_jobs, grade
from induction_course.course.grading.deadlines import make_policy
from induction_course.course.grading.layout import GradingError, find_root
from induction_course.course.grading.lms import FORMATS
from induction_course.course.grading.release import release


def cmd_release(args: argparse.Namespace) -> int:
    try:
        root = Path(args.root) if args.root else find_root()
        changed = release(root, args.chapters or None, check=args.check)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print("out of date (run `induction-course release`):")
            for c in changed:
                print(f"  {c}")
            return 1
        print("chapters/ and the solution notebooks are up to date.")
        return 0
    print("\n".join(f"wrote {c}" for c in changed) if changed else "nothing to do: chapters/ is up to date.")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    try:
        policy = make_policy(args.due, args.late_penalty, args.cutoff, args.zip_tz)
        grade(args.chapter, args.submissions, args.out, root=args.root, workdir=args.workdir,
              jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb, sandbox=not args.no_sandbox,
              deadline=policy, lms_format=args.format, lms_assignment=args.lms_assignment or "")
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def add_subcommands(subparsers) -> None:
    """Register ``release`` and ``grade`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "release",
        help="regenerate chapters/ (student notebooks) from solutions/ with nbgrader",
        description="Rebuild each solutions/NN/NN.ipynb from its jupytext script, then chapters/ with "
        "nbgrader generate_assignment (solutions and hidden tests removed, outputs cleared).",
    )
    p.add_argument("chapters", nargs="*", help="chapter ids (default: all), e.g. 01_build_transformer")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    p.add_argument("--root", help="the course repository (default: found from the current folder)")
    p.set_defaults(func=cmd_release)

    g = subparsers.add_parser(
        "grade",
        help="autograde a class: grades.csv and one HTML feedback file per student",
        description="SUBMISSIONS is a folder of <student>.ipynb, a folder with one sub-folder per "
        "student, or a zip of either. Submissions are never modified.",
    )
    g.add_argument("chapter", help="chapter id, e.g. 01_build_transformer")
    g.add_argument("submissions", help="folder or zip of the submissions")
    g.add_argument("--out", required=True, help="output folder (grades.csv, feedback/, report.txt)")
    g.add_argument("--root", help="the course repository (default: found from the current folder)")
    g.add_argument("--workdir", help="keep the work folder here: course/ (the class's merged nbgrader "
                   "gradebook, autograded/, feedback/), students/<id>/ (one course per student) and "
                   "nbgrader.log (default: a temporary folder)")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help=f"notebooks graded at the same time, each in its own kernel (default: the number "
                   f"of cores, here {default_jobs()})")
    g.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"seconds per cell before it is interrupted and loses its points (default "
                   f"{DEFAULT_TIMEOUT}); a whole notebook is killed after 4*S+120 s and gets 0")
    g.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                   help=f"address-space limit of each kernel in MB (default {DEFAULT_MEMORY_MB}); an "
                   "allocation beyond it raises MemoryError in the student's cell")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run student code without the bubblewrap sandbox (it can then change files and "
                   "processes of the grader's user; report.txt says so). Without bwrap (macOS) this is "
                   "what happens anyway, with the same warning")
    _add_seminar_options(g)
    g.set_defaults(func=cmd_grade)


def _add_seminar_options(g) -> None:
    """Deadlines (.deadlines) and the LMS export (.lms) of ``grade``."""
    d = g.add_argument_group("deadline (submission times come from the zip's member times, or the files' "
                             "modification times; never from the clock)")
    d.add_argument("--due", metavar="DATETIME", help="the due date, ISO 8601 with a time zone, e.g. "
                   "2026-12-01T23:59+01:00 (or ...Z for UTC); grades.csv gets submitted, hours_late, "
                   "days_late, late_penalty and total_after_penalty, report.txt lists late students")
    d.add_argument("--late-penalty", type=float, metavar="P", help="fraction of the chapter's maximum "
                   "points lost per started day late, e.g. 0.1 (never more than the points earned; default 0)")
    d.add_argument("--cutoff", metavar="DATETIME", help="submissions after this (ISO 8601 with a time zone) get 0")
    d.add_argument("--zip-tz", metavar="ZONE", help="the time zone of the zip's member times, which zip stores "
                   "without one: an offset (+01:00) or a name (Europe/Berlin, DST aware); default: the zone "
                   "of --due. Not used for members with a UTC timestamp, nor for folders")
    e = g.add_argument_group("LMS export (students matched by the id in their Moodle folder or Canvas file names)")
    e.add_argument("--format", choices=FORMATS, help="also write the gradebook file this LMS imports: "
                   "canvas_grades.csv (Canvas gradebook import) or moodle_grades.csv (the assignment's "
                   "offline grading worksheet)")
    e.add_argument("--lms-assignment", metavar="NAME", help="Canvas: the assignment column, as in Canvas' "
                   "export, e.g. 'Chapter 3 (4567)' (with its id it updates that assignment; default: the chapter id)")
