"""How long autograding takes: one submission, and a class graded serially.

    python benchmarks/grading_speed.py [--chapter 01_build_transformer] [--class-size 20]

Each submission is a copy of the reference solution (every test runs to the end, the slow
case). Both figures include everything `induction-course grade` does: reading and checking the
submissions, nbgrader generate_assignment, autograde (one Jupyter kernel per notebook, one after
the other), generate_feedback, and writing grades.csv. Not run as a test.
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

from induction_course.grading import find_root, grade


def _class(folder: Path, source: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(source, folder / f"student{i + 1:02d}.ipynb")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapter", default="01_build_transformer")
    ap.add_argument("--class-size", type=int, default=20)
    args = ap.parse_args(argv)
    root = find_root(Path(__file__).resolve().parent)
    source = root / "solutions" / args.chapter / f"{args.chapter}.ipynb"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        for n in (1, args.class_size):
            subs = tmp / f"class{n}"
            _class(subs, source, n)
            start = time.perf_counter()
            res = grade(args.chapter, subs, tmp / f"out{n}", root=root, quiet=True)
            seconds = time.perf_counter() - start
            assert all(r["total"] == r["max"] for r in res.rows), "the reference should get full marks"
            results[n] = seconds
            print(f"grade {n:>3} submission(s) of {args.chapter}: {seconds:6.1f} s "
                  f"({seconds / n:5.1f} s per submission)", flush=True)
    if args.class_size > 1:
        per = (results[args.class_size] - results[1]) / (args.class_size - 1)
        print(f"marginal cost of one more submission: {per:.1f} s; fixed cost: {results[1] - per:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
