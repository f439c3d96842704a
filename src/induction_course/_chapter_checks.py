"""The machinery that the check modules of chapters 2 to 5 share.

:mod:`induction_course.checks` (chapter 1) defines the helpers (``_fail``, ``_compare_tensor``,
the :class:`~induction_course.checks.Exercise` record); this module adds a registry per chapter:
:class:`ChapterChecks` holds one chapter's exercises and the reference pieces that stand in for
the student's other answers while one exercise is checked (a mistake costs one exercise only).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from induction_course.checks import CheckFailed, Exercise, _call_args, _fail, reference_pieces

__all__ = ["ChapterChecks", "CheckFailed", "Exercise", "as_float"]


def as_float(name: str, actual: Any, what: str = "the result") -> float:
    """A Python number from a float, an int or a one-element tensor; a kind failure otherwise."""
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            _fail(name, f"{what} should be one number, got a tensor of shape {list(actual.shape)}.",
                  "average over every axis (or call .item() on a one-element tensor).")
        actual = actual.item()
    if actual is None:
        _fail(name, f"{what} is None.", "did you forget the `return` statement?")
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        _fail(name, f"{what} should be a number (float), got {type(actual).__name__}.")
    return float(actual)


class ChapterChecks:
    """The exercises of one chapter: visible checks and the hidden tests' comparison."""

    def __init__(self, exercises: list[Exercise], pieces: dict[str, Callable] | None = None,
                 no_grad: bool = False):
        self.exercises = {e.name: e for e in exercises}
        self.pieces = dict(pieces or {})
        # Chapters 4-5 hand whole models to the student's function: no autograd graph to build.
        self.no_grad = no_grad

    def _grad_mode(self):
        return torch.no_grad() if self.no_grad else contextlib.nullcontext()

    # -------------------------------------------------------------- reference substitution
    def reference_pieces(self, fn: Callable, keep: str):
        """While ``fn`` (exercise ``keep``) runs, names of the chapter's other exercises that the
        notebook defines resolve to the reference; restored afterwards."""
        return reference_pieces(fn, keep, self.pieces)

    # ------------------------------------------------------------------------- running
    def _run_one(self, exercise: str, fn: Callable, sizes: dict) -> None:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        ex = self.exercises[exercise]
        case = ex.make_case(**sizes)
        with self._grad_mode():
            expected = ex.reference(case)
        if not callable(fn):
            _fail(exercise, f"expected a function, got {type(fn).__name__}.")
        args = [v.clone() if isinstance(v, torch.Tensor) else v for v in _call_args(case)]
        try:
            with self.reference_pieces(fn, keep=exercise), self._grad_mode():
                actual = fn(*args)
        except NotImplementedError:
            raise CheckFailed(f"{exercise}: not implemented yet.\n  Hint: replace `raise NotImplementedError()` "
                              "with your code.") from None
        except CheckFailed:
            raise
        except Exception as err:  # a crash is a wrong answer too; say where it came from
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in case.items()
                               if isinstance(v, torch.Tensor) and not k.startswith("_"))
            raise CheckFailed(
                f"{exercise}: calling your function raised {type(err).__name__}: {err}\n"
                f"  Hint: check the shapes of the inputs in the exercise text"
                + (f" (inputs here: {shapes})." if shapes else ".")
            ) from err
        ex.compare(exercise, actual, expected, case)
        if ex.check_properties is not None:  # more calls, e.g. "same generator state, same result"
            def call(*a):
                with self.reference_pieces(fn, keep=exercise):
                    return fn(*a)

            ex.check_properties(exercise, call, case)

    def compare_with_reference(self, exercise: str, fn: Callable, seed: int, **sizes: Any) -> None:
        """Hidden-test helper: ``fn`` must match the reference on a fresh input (``seed``, ``sizes``)."""
        __tracebackhide__ = True  # IPython and pytest hide this frame
        if exercise not in self.exercises:
            raise KeyError(f"unknown exercise {exercise!r}; known: {sorted(self.exercises)}")
        self._run_one(exercise, fn, dict(sizes, seed=seed))

    def run_visible_checks(self, exercise: str, fn: Callable) -> None:
        """The visible checks of one exercise; prints one line when they all pass."""
        __tracebackhide__ = True  # IPython and pytest hide this frame
        for sizes in self.exercises[exercise].visible_sizes:
            self._run_one(exercise, fn, sizes)
        print(f"✔ {exercise}: all visible checks passed.")

    def make_check(self, exercise: str) -> Callable[[Callable], None]:
        def check(fn: Callable) -> None:
            __tracebackhide__ = True  # IPython and pytest hide this frame
            self.run_visible_checks(exercise, fn)

        check.__name__ = f"check_{exercise}"
        check.__doc__ = f"Visible checks of the `{exercise}` exercise: raise CheckFailed with a hint, or print ✔."
        return check
