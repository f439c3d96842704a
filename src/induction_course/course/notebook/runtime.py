"""Where a notebook runs, and on which device: called by the setup cell that opens every chapter.

Colab needs its custom widget manager switched on before ipywidgets (the chapter 3 explorer)
can draw; everywhere else that call does not exist. The device is chosen once here so that the
notebook's training and checkpoint sweeps agree with what the setup cell printed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Mapping

import torch

from induction_course import training

__all__ = ["Runtime", "detect", "setup_runtime", "current_device"]

@dataclass(frozen=True)
class Runtime:
    in_colab: bool
    device: torch.device
    gpu_name: str | None

    def describe(self) -> str:
        where = "Google Colab" if self.in_colab else "local runtime"
        if self.device.type == "cuda":
            return f"{where}, GPU {self.gpu_name}: training and checkpoint sweeps run on {self.device}."
        return f"{where}, no GPU: everything runs on the CPU (each chapter is sized for a laptop CPU)."


def detect(modules: Mapping[str, ModuleType] | None = None) -> Runtime:
    modules = sys.modules if modules is None else modules
    cuda = torch.cuda.is_available()
    return Runtime(
        in_colab="google.colab" in modules,
        device=torch.device("cuda" if cuda else "cpu"),
        gpu_name=torch.cuda.get_device_name(0) if cuda else None,
    )


def setup_runtime(modules: Mapping[str, ModuleType] | None = None, quiet: bool = False) -> torch.device:
    """Enable Colab's widget manager when in Colab, pick the device, say which; return it."""
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
    if not quiet:
        print(rt.describe())
    return rt.device


def current_device() -> torch.device:
    """The device the setup cell chose (the best available one if it has not run)."""
    return training.pick_device()
