"""Reading training curves: smoothing, and locating the induction bump.

The "bump" (Olsson et al. 2022, the phase change) is the short stretch of training in which
induction heads form: prefix-matching scores jump, the loss on repeated tokens collapses, the
in-context-learning score drops, and the training loss curve shows a visible kink.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

import torch


def smooth(values: Sequence[float], window: int = 25) -> torch.Tensor:
    """Centred moving average (edges use the available neighbours)."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    if x.numel() == 0:
        raise ValueError("cannot smooth an empty series")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    half = window // 2
    csum = torch.cat([torch.zeros(1, dtype=x.dtype), x.cumsum(0)])
    idx = torch.arange(x.numel())
    lo = (idx - half).clamp(min=0)
    hi = (idx + half + 1).clamp(max=x.numel())
    return (csum[hi] - csum[lo]) / (hi - lo)


def phase_change_index(values: Sequence[float], rising: bool = True) -> int:
    """Index ``i`` such that the jump between points ``i-1`` and ``i`` is the largest (rising)
    or the largest drop (``rising=False``). Works on a checkpoint series of any metric."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    if x.numel() < 2:
        raise ValueError("need at least two points to locate a change")
    diffs = x[1:] - x[:-1]
    if not rising:
        diffs = -diffs
    return int(diffs.argmax()) + 1


def change_window(steps: Sequence[int], values: Sequence[float], rising: bool = True) -> tuple[int, int]:
    """``(step_before, step_after)``: the two consecutive checkpoints between which ``values``
    rises (or, ``rising=False``, drops) most. The change happened somewhere in between; a plot
    marks the whole window (or its middle), not ``step_after`` alone, which lies at its end."""
    i = phase_change_index(values, rising=rising)
    return int(steps[i - 1]), int(steps[i])


def bump_window(history: Sequence[dict], key: str = "best_prefix_matching_layer1") -> tuple[int, int]:
    """``(step_before, step_after)``: the two checkpoints between which ``key`` jumps most."""
    return change_window([h["step"] for h in history], [h[key] for h in history], rising=True)


def first_step_reaching(history: Sequence[dict], predicate) -> dict | None:
    """The first checkpoint record for which ``predicate(record)`` holds, else ``None``."""
    for record in history:
        if predicate(record):
            return record
    return None


# ------------------------------------------------------------------ chapter 2's comparison run
COMPARISON_FILE = "chapter2_comparison.json"
COMPARISON_RUNS = (("with repeated segments", 3.5), ("natural text only", 0.0))
COMPARISON_KEYS = ("step", "loss_first_repeat", "loss_later_repeats", "icl_score", "best_prefix_matching_layer1",
                   "train_loss", "seconds")


def _busy_cpus_now(seconds: float = 0.15) -> float | None:
    """CPUs kept busy by the other processes over the next ``seconds`` (Linux ``/proc/stat``;
    ``None`` elsewhere). Unlike the load average, a 1-minute mean that also counts this process's
    own past work, it sees a load that started a moment ago and not the caller's last cell."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def _cpu_quota() -> float | None:
    """The CPU limit of this container (cgroup v2 ``cpu.max`` or v1 CFS quota), if any: Binder
    runs on a large machine whose cores are mostly not ours."""
    for path, period_path in (("/sys/fs/cgroup/cpu.max", None),
                              ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            fields = Path(path).read_text().split()
            quota = fields[0]
            period = fields[1] if period_path is None else Path(period_path).read_text().strip()
            if quota not in ("max", "-1") and int(period) > 0:
                return int(quota) / int(period)
        except (OSError, ValueError, IndexError):
            continue
    return None


_LAST_CHOICE: tuple[float, int] = (float("-inf"), 1)  # (when, threads): one sample serves 10 s


def free_cpu_threads(reserve: float = 0.0) -> int:
    """Threads worth giving torch now: the CPUs this process may use (its affinity and container
    quota) minus those the other processes keep busy right now, at least 1;
    ``INDUCTION_COURSE_THREADS=N`` in the environment decides instead.

    On a shared CPU (Binder, Colab, a busy laptop) more threads than free cores make every
    thread spin-wait for the others at each of the many small parallel regions of this small
    model (measured on 2 cores beside 2 busy processes: a training step 5x slower with 2 threads
    than with 1, a 900-step chapter-2 run of the LayerNorm recipe from 45 s to more than 15 min), while on a quiet
    machine the second thread buys about 10 % (training) to 30 % (the report)."""
    global _LAST_CHOICE
    forced = os.environ.get("INDUCTION_COURSE_THREADS", "").strip()
    if forced.isdigit() and int(forced) > 0:
        return int(forced)
    if reserve == 0.0 and time.monotonic() - _LAST_CHOICE[0] < 10.0:
        return _LAST_CHOICE[1]
    try:
        n_cpu = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cpu = os.cpu_count() or 1
    busy = _busy_cpus_now()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    limit = min(n_cpu, max(1, int(_cpu_quota() or n_cpu)))
    n = max(1, min(limit, int(n_cpu - busy - reserve + 0.5)))
    if reserve == 0.0:
        _LAST_CHOICE = (time.monotonic(), n)
    return n


class cpu_threads:
    """``with cpu_threads(n):`` torch uses ``n`` CPU threads inside the block (default
    :func:`free_cpu_threads`; ``0`` leaves torch's setting alone) and the previous number after."""

    def __init__(self, n: int | None = None):
        self.n = free_cpu_threads() if n is None else int(n)

    def __enter__(self) -> int:
        self.old = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)
        return torch.get_num_threads()

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.old)


def comparison_runs(steps: int = 900, corpus=None, progress: bool = True, threads: int | None = None,
                    device: str | None = "cpu") -> dict:
    """Chapter 2's experiment: the shipped recipe trained twice for ``steps`` steps, with the
    repeated random segments (``synthetic_fraction=3.5``) and on natural text only (``0``).

    Returns a JSON-able dict: ``{"runs": {label: [checkpoint records]}, "seconds": {label: s},
    "threads": n, "steps": steps, "torch": version}``; each record keeps :data:`COMPARISON_KEYS`.
    ``threads`` defaults to :func:`free_cpu_threads`; ``device=None`` trains where
    :func:`~induction_course.training.train` would (the GPU when there is one). Seeded: on a CPU it gives the same numbers
    as the file shipped in ``data/`` (written by ``python -m induction_course.curves``)."""
    from induction_course.training import TrainConfig, train  # training imports this module's users

    n_threads = threads or free_cpu_threads()
    out: dict = {"steps": steps, "threads": n_threads, "device": str(device or "default"), "torch": torch.__version__, "runs": {}, "seconds": {}}
    with cpu_threads(n_threads):
        for label, frac in COMPARISON_RUNS:
            tcfg = TrainConfig(steps=steps, synthetic_fraction=frac, n_checkpoints=8, eval_text_examples=64)
            t0 = time.perf_counter()
            history = train(tcfg, progress=progress, corpus=corpus, device=device, threads=0).history
            out["seconds"][label] = round(time.perf_counter() - t0, 1)
            out["runs"][label] = [{k: (round(float(h[k]), 5) if h.get(k) is not None and k != "step" else h.get(k))
                                   for k in COMPARISON_KEYS} for h in history]
    return out


def load_comparison(path: Path | str | None = None) -> dict:
    """The shipped result of :func:`comparison_runs` (``data/chapter2_comparison.json``)."""
    from induction_course.paths import data_dir

    return json.loads(Path(path or data_dir() / COMPARISON_FILE).read_text())


if __name__ == "__main__":  # python -m induction_course.curves [threads]: regenerate the shipped file
    import sys

    from induction_course.paths import data_dir

    result = comparison_runs(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
    target = data_dir() / COMPARISON_FILE
    target.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {target}: {result['seconds']} s with {result['threads']} threads")
