"""How long autograding takes: one submission, and a class graded serially and in parallel.

    python benchmarks/grading_speed.py [--chapter 01_build_transformer] [--class-size 20] [--jobs 2]

Each submission is a copy of the reference solution (every test runs to the end, the slow
case). Every figure includes everything `induction-course grade` does: reading and checking
the submissions, nbgrader generate_assignment, one `nbgrader autograde` (one Jupyter kernel)
per submission in a course folder of its own, `--jobs` of them at a time, merging the
gradebooks, generate_feedback, and writing grades.csv. The class is graded with `--jobs 1`
(serial) and with `--jobs N` (parallel); the grades must be identical. Not run as a test.
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


def _class(folder: Path, source: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(source, folder / f"student{i + 1:02d}.ipynb")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapter", default="01_build_transformer")
    ap.add_argument("--class-size", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=max(2, default_jobs()), help="parallel run (default: the cores, at least 2)")
    args = ap.parse_args(argv)
    root = find_root(Path(__file__).resolve().parent)
    source = root / "solutions" / args.chapter / f"{args.chapter}.ipynb"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results, grades = {}, {}
        for n, jobs in ((1, 1), (args.class_size, 1), (args.class_size, args.jobs)):
            subs = tmp / f"class{n}"
            if not subs.exists():
                _class(subs, source, n)
            out = tmp / f"out{n}_{jobs}"
            start = time.perf_counter()
            res = grade(args.chapter, subs, out, root=root, quiet=True, jobs=jobs)
            seconds = time.perf_counter() - start
            assert all(r["total"] == r["max"] for r in res.rows), "the reference should get full marks"
            results[n, jobs] = seconds
            grades[n, jobs] = (out / "grades.csv").read_bytes()
            print(f"grade {n:>3} submission(s) of {args.chapter} with --jobs {jobs}: {seconds:6.1f} s "
                  f"({seconds / n:5.1f} s per submission; load average {os.getloadavg()[0]:.1f})", flush=True)
    n = args.class_size
    if n > 1:
        per = (results[n, 1] - results[1, 1]) / (n - 1)
        print(f"serial: marginal cost of one more submission {per:.1f} s; fixed cost {results[1, 1] - per:.1f} s")
        print(f"parallel (--jobs {args.jobs}) vs serial: {results[n, 1] / results[n, args.jobs]:.2f}x faster; "
              f"identical grades.csv: {grades[n, 1] == grades[n, args.jobs]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
