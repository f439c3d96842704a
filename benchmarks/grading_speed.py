"""How long autograding takes: one submission, and a class graded serially and in parallel.

    python benchmarks/grading_speed.py [--chapter 01_build_transformer] [--class-size 20] [--jobs 2]
                                       [--only single serial parallel unsandboxed nbgrader]

Each submission is a copy of the reference solution (every test runs to the end, the slow
case). Every figure includes everything `induction-course grade` does: reading and checking
the submissions, nbgrader generate_assignment, one `nbgrader autograde` (one Jupyter kernel)
per submission in a course folder of its own, `--jobs` of them at a time, merging the
gradebooks, generate_feedback, and writing grades.csv. The class is graded with `--jobs 1`
(serial) and with `--jobs N` (parallel), sandboxed (bubblewrap, the default; run as root, the
kernels are forked from the class's zygote, which imports torch and TransformerLens once) with the
trusted check (the default), and without it (`untrusted`: its cost); then with
`--jobs N --no-sandbox` (the sandbox's overhead, goal: within 10 %; no zygote there: each kernel
launcher imports them once for its kernel and its trusted check) and with plain nbgrader
(`nbgrader autograde` of the whole class in one course folder, serial, no limits, no sandbox).
The grades must be identical. Not run as a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from induction_course.course.grading import default_jobs, find_root, grade
from induction_course.course.grading.course_dir import forget_generated, prepare_course, run_nbgrader

ROWS = ("single", "serial", "parallel", "untrusted", "unsandboxed", "nbgrader")


def _plain_nbgrader(root: Path, chapter: str, subs: Path, tmp: Path) -> float:
    """Seconds for plain nbgrader: generate_assignment, then one `nbgrader autograde` of the class."""
    start = time.perf_counter()
    course = prepare_course(root, chapter, tmp / "plain")
    for nb in sorted(subs.glob("*.ipynb")):
        dest = course / "submitted" / nb.stem / chapter
        dest.mkdir(parents=True)
        shutil.copyfile(nb, dest / f"{chapter}.ipynb")
    run_nbgrader(course, "autograde", chapter, "--force")
    return time.perf_counter() - start


def _class(folder: Path, source: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(source, folder / f"student{i + 1:02d}.ipynb")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapter", default="01_build_transformer")
    ap.add_argument("--class-size", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=max(2, default_jobs()), help="parallel run (default: the cores, at least 2)")
    ap.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), help="the rows to measure (default: all)")
    args = ap.parse_args(argv)
    root = find_root(Path(__file__).resolve().parent)
    source = root / "solutions" / args.chapter / f"{args.chapter}.ipynb"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results, grades = {}, {}
        plan = {"single": (1, 1, True), "serial": (args.class_size, 1, True),
                "parallel": (args.class_size, args.jobs, True), "unsandboxed": (args.class_size, args.jobs, False),
                "untrusted": (args.class_size, args.jobs, True)}
        for row in [r for r in ROWS if r in args.only and r in plan]:
            n, jobs, sandbox = plan[row]
            subs = tmp / f"class{n}"
            if not subs.exists():
                _class(subs, source, n)
            out = tmp / f"out{n}_{jobs}_{sandbox}_{row}"
            forget_generated()  # every row pays for generate_assignment, as a fresh `grade` would
            start = time.perf_counter()
            res = grade(args.chapter, subs, out, root=root, quiet=True, jobs=jobs, sandbox=sandbox,
                        trusted=row != "untrusted")
            seconds = time.perf_counter() - start
            auto_max = sum(p for g, p in res.exercises if g not in set(res.written))  # written answers: by hand
            assert all(r["total"] == auto_max for r in res.rows), "the reference should get every autograded point"
            results[row] = seconds
            grades[row] = (out / "grades.csv").read_bytes()
            print(f"grade {n:>3} submission(s) of {args.chapter} with --jobs {jobs}"
                  f"{'' if sandbox else ' --no-sandbox'}{' (no trusted check)' if row == 'untrusted' else ''}: {seconds:6.1f} s "
                  f"({seconds / n:5.1f} s per submission; load average {os.getloadavg()[0]:.1f})", flush=True)
        if "nbgrader" in args.only:
            n = args.class_size
            if not (tmp / f"class{n}").exists():
                _class(tmp / f"class{n}", source, n)
            forget_generated()
            results["nbgrader"] = _plain_nbgrader(root, args.chapter, tmp / f"class{n}", tmp)
            print(f"plain nbgrader autograde of {n:>3} submission(s) (serial, no limits, no sandbox): "
                  f"{results['nbgrader']:6.1f} s ({results['nbgrader'] / n:5.1f} s per submission; "
                  f"load average {os.getloadavg()[0]:.1f})", flush=True)
    n = args.class_size
    if n > 1 and {"single", "serial"} <= set(results):
        per = (results["serial"] - results["single"]) / (n - 1)
        print(f"serial: marginal cost of one more submission {per:.1f} s; fixed cost {results['single'] - per:.1f} s")
    if n > 1 and {"serial", "parallel"} <= set(results):
        print(f"parallel (--jobs {args.jobs}) vs serial: {results['serial'] / results['parallel']:.2f}x faster; "
              f"identical grades.csv: {grades['serial'] == grades['parallel']}")
    if {"parallel", "unsandboxed"} <= set(results):
        print(f"sandbox overhead (--jobs {args.jobs}): sandboxed / unsandboxed = "
              f"{results['parallel'] / results['unsandboxed']:.3f}; identical grades.csv: "
              f"{grades['parallel'] == grades['unsandboxed']}")
    if {"parallel", "untrusted"} <= set(results):
        print(f"trusted check's cost (--jobs {args.jobs}): with / without = {results['parallel'] / results['untrusted']:.2f}; "
              f"identical grades.csv: {grades['parallel'] == grades['untrusted']}")
    if {"parallel", "nbgrader"} <= set(results):
        print(f"sandboxed --jobs {args.jobs} vs plain serial nbgrader: {results['nbgrader'] / results['parallel']:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
