"""How long each chapter takes to run top to bottom, on a quiet machine and beside a CPU-bound load.

    python benchmarks/chapter_runtime.py [CHAPTER ...] [--load 2] [--only quiet|loaded] [--timeout 900]
                                         [--baseline e3f21a3]

Each chapter's *solution* notebook (``solutions/NN/NN.ipynb``, every exercise answered) is
copied with its folder into a scratch directory and executed with nbclient in a fresh
``python3`` kernel, the way a student's "Run all" does (kernel start and imports included),
with the default settings (no ``NBGRADER_EXECUTION``). It runs twice: alone, then with
``--load`` other processes spinning on the CPU beside it (busy loops started here and stopped
by their pid afterwards), the situation of a shared Binder or Colab CPU. Issue 16's target is
under 90 s for both. ``--baseline REV`` also runs every notebook on the package as it was at a
git revision (the files of issue 15 put back, ``benchmarks/baseline_tree.py``, first on the
kernel's ``PYTHONPATH``), alternating with the current one, and prints the ratio. Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import baseline_tree
from cpu_load import start_load, stop_load

TARGET_S = 90.0


def run_notebook(chapter: str, root: Path, timeout: int, package_src: Path | None = None) -> float:
    """Seconds to execute the solution notebook of ``chapter`` in a fresh kernel (on the package
    in ``package_src`` when given, else the installed one)."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix=f"runtime-{chapter}-") as tmp:
        work = Path(tmp) / chapter
        shutil.copytree(root / "solutions" / chapter, work,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__", ".ipynb_checkpoints"))
        nb = nbformat.read(work / f"{chapter}.ipynb", as_version=4)
        env_saved = os.environ.pop("NBGRADER_EXECUTION", None)
        path_saved = os.environ.get("PYTHONPATH")
        if package_src is not None:  # the kernel inherits this process's environment
            os.environ["PYTHONPATH"] = str(package_src)
        try:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(work)}})
            start = time.perf_counter()
            client.execute()
            return time.perf_counter() - start
        finally:
            if env_saved is not None:
                os.environ["NBGRADER_EXECUTION"] = env_saved
            if path_saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = path_saved


def main(argv: list[str] | None = None) -> int:
    from induction_course.course.grading import find_root, list_chapters

    root = find_root(Path(__file__).resolve().parent)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*", help="chapter ids (default: all)")
    ap.add_argument("--load", type=int, default=2, help="CPU-bound processes beside the loaded run (default 2)")
    ap.add_argument("--only", choices=("quiet", "loaded"), help="run one of the two settings only")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell before giving up")
    ap.add_argument("--baseline", help="also run on the package at this git revision, alternating")
    args = ap.parse_args(argv)
    chapters = args.chapters or list_chapters(root)
    settings = [s for s in ("quiet", "loaded") if not args.only or s == args.only]

    with tempfile.TemporaryDirectory(prefix="runtime-baseline-") as tmp:
        packages: list[tuple[str, Path | None]] = [("current", None)]
        if args.baseline:
            packages.insert(0, (args.baseline, baseline_tree.build(Path(tmp), args.baseline)))
        print(f"{os.cpu_count()} CPUs; target: under {TARGET_S:.0f} s per chapter, quiet and beside {args.load} busy processes")
        print(f"{'chapter':<24}{'package':<10}" + "".join(f"{s + ' (s)':>13}" for s in settings))
        over = []
        for ch in chapters:
            figures: dict[tuple[str, str], float] = {}
            for setting in settings:
                for name, src in packages:
                    load = start_load(args.load) if setting == "loaded" else []
                    try:
                        figures[name, setting] = run_notebook(ch, root, args.timeout, src)
                    except Exception as err:  # noqa: BLE001 - report and go on with the next chapter
                        print(f"{ch} ({name}): {setting} run failed: {type(err).__name__}: {str(err)[:300]}")
                        figures[name, setting] = float("nan")
                    finally:
                        stop_load(load)
                    if name == "current" and not figures[name, setting] < TARGET_S:
                        over.append(f"{ch} ({setting})")
            for name, _ in packages:
                print(f"{ch:<24}{name:<10}" + "".join(f"{figures[name, s]:>13.1f}" for s in settings), flush=True)
            if args.baseline:
                print(f"{ch:<24}{'ratio':<10}" + "".join(
                    f"{figures[args.baseline, s] / figures['current', s]:>12.2f}x" for s in settings), flush=True)
    if over:
        print("over the target:", ", ".join(over))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
