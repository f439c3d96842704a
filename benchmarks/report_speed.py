"""How long `induction-course report` takes on the shipped checkpoints, against the previous
implementation measured in the same run.

    python benchmarks/report_speed.py [--baseline e3f21a3] [--repeats 3] [--load N] [--cold]

The baseline is this checkout's package with the files of issue 15 as they were at a git
revision (``benchmarks/baseline_tree.py``: ``git show REV:path`` into a scratch folder that reads
the same ``data/``). Each repeat runs the baseline and the current code once
each, alternating, each in a fresh process (imports included) with the default settings, so
machine noise hits both alike; printed are the median wall-clock seconds, CPU-seconds, their
ratio, and whether the printed report is the same text. ``--load N`` starts N busy-looping
processes beside the runs (stopped by pid afterwards), the situation of a shared CPU. ``--cold``
also times both with their caches off (``INDUCTION_COURSE_CACHE=0``: the baseline recomputes the
ICL band of every checkpoint, the current code the numbers it stores beside the checkpoints in
``analysis.json``). Not a test: the issue's target is under 15 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import baseline_tree
from cpu_load import start_load, stop_load

ROOT = baseline_tree.ROOT
TARGET_S = 15.0


def run_report(src: Path, out: Path, env_extra: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU-seconds and the printed text of one `report` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(src), **env_extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "induction_course.cli", "report", "--out", str(out)],
                          env=env, cwd=out.parent, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"report failed ({src}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The run folder and the output folder differ between the two: compare the rest.
    lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith(("checkpoints:", "report written to"))]
    return wall, cpu, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=baseline_tree.DEFAULT_REV, help="git revision of the previous implementation")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--load", type=int, default=0, help="busy processes beside the runs (default 0)")
    ap.add_argument("--cold", action="store_true", help="also time both with their caches off")
    args = ap.parse_args(argv)

    settings = [("warm", {})] + ([("cold", {"INDUCTION_COURSE_CACHE": "0"})] if args.cold else [])
    with tempfile.TemporaryDirectory(prefix="report-speed-") as tmp:
        tmp = Path(tmp)
        old_src = baseline_tree.build(tmp / "baseline", args.baseline)
        new_src = ROOT / "src"
        print(f"{os.cpu_count()} CPUs, {args.load} busy process(es) beside; baseline {args.baseline}; "
              f"{args.repeats} repeat(s), alternating; target under {TARGET_S:.0f} s")
        # One untimed run each: the baseline fills its ICL cache, the current code its analysis.json
        # (both as a first `report` on this machine would), and the OS caches the files.
        for src in (old_src, new_src):
            run_report(src, tmp / "warmup", {})
        load = start_load(args.load)
        try:
            for name, env in settings:
                times: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
                texts = {}
                for i in range(args.repeats):
                    for label, src in (("baseline", old_src), ("current", new_src)):
                        out = tmp / f"{label}-{name}-{i}"
                        wall, cpu, texts[label] = run_report(src, out, env)
                        times[label].append((wall, cpu))
                        shutil.rmtree(out, ignore_errors=True)
                med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
                spread = {k: (min(w for w, _ in v), max(w for w, _ in v)) for k, v in times.items()}
                print(f"[{name} caches]")
                for label in ("baseline", "current"):
                    (w, c), (lo, hi) = med[label], spread[label]
                    print(f"  {label:<9} {w:6.1f} s wall (min {lo:.1f}, max {hi:.1f}), {c:6.1f} CPU-s")
                print(f"  ratio     {med['baseline'][0] / med['current'][0]:.2f}x faster wall, "
                      f"{med['baseline'][1] / med['current'][1]:.2f}x less CPU; same printed report: "
                      f"{'yes' if texts['baseline'] == texts['current'] else 'NO'}")
        finally:
            stop_load(load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
