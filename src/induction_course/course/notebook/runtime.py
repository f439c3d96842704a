"""Where a notebook runs, and on which device: called by the setup cell that opens every chapter.

Colab needs its custom widget manager switched on before ipywidgets (the chapter 3 explorer)
can draw; everywhere else that call does not exist. The device is chosen once here so that the
notebook's training and checkpoint sweeps agree with what the setup cell printed.

On a CPU the setup also sizes torch's thread pool to the cores that are free now
(:func:`induction_course.curves.free_cpu_threads`). Binder and Colab CPUs are shared: with more
threads than free cores each of the many small parallel regions of this small model waits for a
thread that is not running (measured on 2 cores beside 2 busy processes: a training step 5x
slower with 2 threads than with 1). ``OMP_WAIT_POLICY=PASSIVE`` would also stop the waiting, but
only when set before torch is first imported, which a notebook's first cell cannot promise.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Mapping

import torch

from induction_course import curves, training

__all__ = ["Runtime", "detect", "setup_runtime", "current_device"]

@dataclass(frozen=True)
class Runtime:
    in_colab: bool
    device: torch.device
    gpu_name: str | None
    threads: int | None = None  # torch CPU threads set by setup_runtime (None: left as they were)

    def describe(self) -> str:
        where = "Google Colab" if self.in_colab else "local runtime"
        if self.device.type == "cuda":
            return f"{where}, GPU {self.gpu_name}: training and checkpoint sweeps run on {self.device}."
        threads = f", {self.threads} torch thread(s) for the free cores" if self.threads else ""
        return f"{where}, no GPU: everything runs on the CPU{threads} (each chapter is sized for a laptop CPU)."


def detect(modules: Mapping[str, ModuleType] | None = None) -> Runtime:
    modules = sys.modules if modules is None else modules
    cuda = torch.cuda.is_available()
    return Runtime(
        in_colab="google.colab" in modules,
        device=torch.device("cuda" if cuda else "cpu"),
        gpu_name=torch.cuda.get_device_name(0) if cuda else None,
    )


def setup_runtime(modules: Mapping[str, ModuleType] | None = None, quiet: bool = False) -> torch.device:
    """Enable Colab's widget manager when in Colab, pick the device (on a CPU: the number of
    torch threads), say which; return the device."""
    modules = sys.modules if modules is None else modules
    rt = detect(modules)
    if rt.in_colab:
        colab = modules["google.colab"]
        output = getattr(colab, "output", None)
        if output is None:  # `import google.colab` does not always import the submodule
            import importlib

            output = importlib.import_module("google.colab.output")
        output.enable_custom_widget_manager()
    training.set_default_device(rt.device)
    if rt.device.type == "cpu":
        torch.set_num_threads(curves.free_cpu_threads())
        rt = dataclasses.replace(rt, threads=torch.get_num_threads())
    if not quiet:
        print(rt.describe())
    return rt.device


def current_device() -> torch.device:
    """The device the setup cell chose (the best available one if it has not run)."""
    return training.pick_device()
