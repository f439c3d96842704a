"""A CPU-bound load beside a benchmark: ``n`` processes that each keep one core busy.

Shared by the benchmarks that print a "loaded" figure (``chapter_runtime.py``, ``report_speed.py``):
the situation of a shared Binder or Colab CPU, or a laptop doing something else.
"""

from __future__ import annotations

import subprocess
import sys


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` processes that keep one core each busy until :func:`stop_load`."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
