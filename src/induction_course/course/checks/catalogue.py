"""The wrong-answer catalogues' common shape (``graders/wrong_answers/chNN.py``).

Each catalogue lists mistakes students really make; the tests run an exercise's grade cell with
the student's function replaced by each entry and require that the cell fails (the points are
lost) and, when ``hint`` is given, that the visible check's message names the cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class WrongAnswer:
    grade_id: str  # the grade cell that must fail (a column of grades.csv)
    function: str  # the name the student's function has in the notebook
    why: str  # the mistake, in words
    fn: Callable
    hint: str | None = None  # a substring the visible checks' message must contain


def new_catalogue() -> tuple[list[WrongAnswer], Callable]:
    """``(entries, wrong)``: decorate a function with ``@wrong(grade_id, function, why, hint=...)``
    to add it to ``entries``."""
    entries: list[WrongAnswer] = []

    def wrong(grade_id: str, function: str, why: str, hint: str | None = None):
        def register(fn: Callable) -> Callable:
            entries.append(WrongAnswer(grade_id, function, why, fn, hint))
            return fn

        return register

    return entries, wrong
