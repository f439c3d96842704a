"""How long each chapter takes to run top to bottom, on a quiet machine and beside a CPU-bound load.

    python benchmarks/chapter_runtime.py [CHAPTER ...] [--load 2] [--only quiet|loaded] [--timeout 900]

Each chapter's *solution* notebook (``solutions/NN/NN.ipynb``, every exercise answered) is
copied with its folder into a scratch directory and executed with nbclient in a fresh
``python3`` kernel, the way a student's "Run all" does (kernel start and imports included),
with the default settings (no ``NBGRADER_EXECUTION``). It runs twice: alone, then with
``--load`` other processes spinning on the CPU beside it (busy loops started here and stopped
by their pid afterwards), the situation of a shared Binder or Colab CPU. Issue 16's target is
under 90 s for both. Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 90.0


def run_notebook(chapter: str, root: Path, timeout: int) -> float:
    """Seconds to execute the solution notebook of ``chapter`` in a fresh kernel."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix=f"runtime-{chapter}-") as tmp:
        work = Path(tmp) / chapter
        shutil.copytree(root / "solutions" / chapter, work,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__", ".ipynb_checkpoints"))
        nb = nbformat.read(work / f"{chapter}.ipynb", as_version=4)
        env_saved = os.environ.pop("NBGRADER_EXECUTION", None)
        try:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(work)}})
            start = time.perf_counter()
            client.execute()
            return time.perf_counter() - start
        finally:
            if env_saved is not None:
                os.environ["NBGRADER_EXECUTION"] = env_saved


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` processes that keep one core each busy until stopped."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main(argv: list[str] | None = None) -> int:
    from induction_course.course.grading import find_root, list_chapters

    root = find_root(Path(__file__).resolve().parent)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*", help="chapter ids (default: all)")
    ap.add_argument("--load", type=int, default=2, help="CPU-bound processes beside the loaded run (default 2)")
    ap.add_argument("--only", choices=("quiet", "loaded"), help="run one of the two settings only")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell before giving up")
    args = ap.parse_args(argv)
    chapters = args.chapters or list_chapters(root)

    print(f"{os.cpu_count()} CPUs; target: under {TARGET_S:.0f} s per chapter, quiet and beside {args.load} busy processes")
    print(f"{'chapter':<24}{'quiet (s)':>12}{'loaded (s)':>12}")
    over = []
    for ch in chapters:
        figures = {}
        for setting in ("quiet", "loaded"):
            if args.only and setting != args.only:
                continue
            load = start_load(args.load) if setting == "loaded" else []
            try:
                figures[setting] = run_notebook(ch, root, args.timeout)
            except Exception as err:  # noqa: BLE001 - report and go on with the next chapter
                print(f"{ch}: {setting} run failed: {type(err).__name__}: {str(err)[:300]}")
                figures[setting] = float("nan")
            finally:
                stop_load(load)
            if not figures[setting] < TARGET_S:
                over.append(f"{ch} ({setting})")
        cells = [f"{figures[k]:>12.1f}" if k in figures else f"{'-':>12}" for k in ("quiet", "loaded")]
        print(f"{ch:<24}{''.join(cells)}", flush=True)
    if over:
        print("over the target:", ", ".join(over))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
