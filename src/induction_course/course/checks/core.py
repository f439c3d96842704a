"""The check framework every chapter shares: failures, comparisons, random inputs, one runner.

A chapter's check module (:mod:`.ch01` ... :mod:`.ch05`) lists its exercises as
:class:`Exercise` records (a seeded input maker, the reference answer, a comparison that names
known mistakes) and hands them to :class:`ChapterChecks`, which gives it the two entry points
the notebooks call:

- ``check_<exercise>(fn)``: the *visible* checks a student runs for instant feedback (small
  seeded inputs; prints one line when everything passes, raises :class:`CheckFailed` otherwise);
- ``compare_with_reference(exercise, fn, seed, **sizes)``: what the *hidden* tests call, on
  fresh seeded inputs of other sizes.

Both call the student's function with the *reference* versions of the chapter's other
exercises in place (:func:`reference_pieces`), so a mistake in one exercise costs the points of
that exercise only. Reference mathematics lives in the library (``functional``, ``metrics``,
``ablation``), never here.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from induction_course.course.checks.contract import answer_kind_problem, changed_inputs, snapshot
from induction_course.course.checks.properties import (
    batch_independence,
    causal_violation,
    first_differing_slice,
    out_of_range,
    rows_sum_to_one,
    scale_factor,
    symmetric_but_should_not_be,
)
from induction_course.model import AttnOnlyTransformer, ModelConfig

__all__ = [
    "CheckFailed", "ChapterChecks", "Exercise", "ValuesDiffer", "as_float", "as_tensor", "batch_independence",
    "call_args", "causal_violation", "compare_scalar", "compare_tensor", "describe_worst", "fail",
    "first_differing_slice", "first_failing_property", "generator", "has_or_have", "match_mistake",
    "out_of_range", "randn", "random_model", "random_model_case", "random_scores", "random_tokens",
    "reference_pieces", "rows_sum_to_one", "scalar", "scale_factor", "symmetric_but_should_not_be",
    "tensors_close",
]


class CheckFailed(AssertionError):
    """A check found a wrong answer. The message says what is wrong and the usual cause."""


class ValuesDiffer(CheckFailed):
    """The generic failure: right type and shape, wrong values, no known mistake matched.

    :class:`ChapterChecks` catches it and, when the exercise has a ``localise`` step, replaces
    it with a message that names the first intermediate property the answer breaks.
    """


# ----------------------------------------------------------------------------- small helpers
def fail(name: str, what: str, hint: str | None = None) -> None:
    __tracebackhide__ = True  # IPython and pytest hide this frame
    msg = f"{name}: {what}"
    if hint:
        msg += f"\n  Hint: {hint}"
    raise CheckFailed(msg)


def has_or_have(what: str) -> str:
    """``"has"`` or ``"have"`` for a subject such as ``"the logits"`` or ``"the pattern (second output)"``."""
    head = what.split("(")[0].strip().split()[-1] if what.strip() else ""
    plural = head.endswith("s") and not head.endswith(("ss", "us", "is")) or head in ("weights", "logits")
    return "have" if plural else "has"


def _is_are(what: str) -> str:
    return "are" if has_or_have(what) == "have" else "is"


def shape_of(x: Any) -> tuple[int, ...]:
    return tuple(x.shape)


def tensors_close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    a = a.detach().double()
    b = b.detach().double()
    both_inf = torch.isinf(a) & torch.isinf(b) & (torch.sign(a) == torch.sign(b))
    a = torch.where(both_inf, torch.zeros_like(a), a)
    b = torch.where(both_inf, torch.zeros_like(b), b)
    if torch.isnan(a).any() or torch.isnan(b).any():
        return bool((torch.isnan(a) == torch.isnan(b)).all()) and bool(
            torch.allclose(a.nan_to_num(), b.nan_to_num(), atol=atol, rtol=rtol)
        )
    return bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def describe_worst(actual: torch.Tensor, expected: torch.Tensor) -> str:
    a = actual.detach().double()
    e = expected.detach().double()
    diff = (a - e).abs().nan_to_num(nan=float("inf"), posinf=float("inf"))
    diff = torch.where(torch.isinf(a) & torch.isinf(e) & (a.sign() == e.sign()), torch.zeros_like(diff), diff)
    idx = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    return (
        f"the largest difference is at index {list(idx)}: you have {a[idx].item():.5g}, "
        f"the reference has {e[idx].item():.5g}"
    )


def as_tensor(name: str, x: Any, what: str = "the result") -> torch.Tensor:
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if isinstance(x, torch.Tensor):
        return x
    if x is None:
        fail(name, f"{what} {_is_are(what)} None.", "did you forget the `return` statement?")
    fail(name, f"{what} should be a torch.Tensor, got {type(x).__name__}.")
    raise AssertionError  # unreachable


def match_mistake(actual: torch.Tensor, mistakes: list[tuple[Any, str]], atol: float, rtol: float) -> str | None:
    for value, message in mistakes:
        if isinstance(value, torch.Tensor) and tensors_close(actual, value, atol, rtol):
            return message
    return None


def compare_tensor(
    name: str,
    actual: Any,
    expected: torch.Tensor,
    mistakes: list[tuple[Any, str]] = (),
    shape_hints: dict[tuple[int, ...], str] | None = None,
    shape_doc: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    what: str = "the result",
) -> None:
    __tracebackhide__ = True  # IPython and pytest hide this frame
    actual = as_tensor(name, actual, what)
    has = has_or_have(what)
    if shape_of(actual) != shape_of(expected):
        hint = (shape_hints or {}).get(shape_of(actual))
        fail(
            name,
            f"{what} {has} shape {list(actual.shape)}, expected {list(expected.shape)}{shape_doc}.",
            hint,
        )
    if actual.is_complex() and not expected.is_complex():
        fail(name, f"{what} {_is_are(what)} complex.", "take the real part.")
    if tensors_close(actual, expected, atol, rtol):
        return
    known = match_mistake(actual, list(mistakes), atol, rtol)
    if known:
        fail(name, f"{what} {has} the right shape but wrong values.", known)
    if torch.isnan(actual.detach().double()).any() and not torch.isnan(expected.detach().double()).any():
        fail(name, f"{what} {'contain' if has == 'have' else 'contains'} NaN.", "a softmax over a row that is "
             "entirely -inf gives NaN: is your causal mask hiding the diagonal too?")
    raise ValuesDiffer(f"{name}: {what} {has} the right shape but wrong values: {describe_worst(actual, expected)}.")


# ------------------------------------------------------------------ reference substitution
@contextlib.contextmanager
def reference_pieces(fn: Callable, keep: str, pieces: dict[str, Callable]) -> Iterator[None]:
    """While checking ``fn`` (exercise ``keep``), let it see the reference of every other exercise.

    A student's ``attention_layer`` may call their own ``attention_pattern``; if that one is
    wrong, the mistake has already cost its own points, so here the name resolves to the
    reference. Only names that ``fn``'s module (the notebook) defines are swapped, and
    everything is restored afterwards.
    """
    namespace = getattr(fn, "__globals__", None)
    saved: dict[str, Any] = {}
    if isinstance(namespace, dict):
        for piece, ref in pieces.items():
            if piece != keep and callable(namespace.get(piece)) and namespace[piece] is not ref:
                saved[piece] = namespace[piece]
                namespace[piece] = ref
    try:
        yield
    finally:
        if isinstance(namespace, dict):
            namespace.update(saved)


# ------------------------------------------------------------------------ random inputs
def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


def random_model(
    seed: int,
    d_vocab: int = 23,
    n_ctx: int = 12,
    d_model: int = 16,
    n_heads: int = 2,
    d_head: int = 4,
    n_layers: int = 2,
) -> AttnOnlyTransformer:
    """A small random model without LayerNorm (chapter 1 builds none) whose attention is far from
    uniform and whose biases are non-zero,
    so that a forgotten scale, bias or mask shows in the numbers.

    Every weight is drawn here (not by the model's own initialisation, which may change with
    training recipes), so a seed always gives the same model.
    """
    cfg = ModelConfig(
        d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_heads=n_heads, d_head=d_head,
        n_layers=n_layers, normalization=None, seed=seed,
    )
    model = AttnOnlyTransformer(cfg)
    g = generator(seed + 7919)
    scales = {
        "W_E": 1.0, "W_pos": 1.0,
        "W_Q": 1.5 * d_model**-0.5, "W_K": 1.5 * d_model**-0.5, "W_V": d_model**-0.5,
        "W_O": d_head**-0.5 / math.sqrt(n_heads), "W_U": d_model**-0.5,
        "b_Q": 0.2, "b_K": 0.2, "b_V": 0.2, "b_O": 0.2, "b_U": 0.2,
    }
    with torch.no_grad():
        for name, scale in scales.items():
            p = getattr(model, name)
            p.copy_(randn(g, *p.shape, scale=scale))
    return model.eval()


def random_tokens(g: torch.Generator, batch: int, n_pos: int, d_vocab: int) -> torch.Tensor:
    return torch.randint(0, d_vocab, (batch, n_pos), generator=g)


def random_scores(g: torch.Generator, *shape: int) -> torch.Tensor:
    return randn(g, *shape, scale=2.0)


def random_model_case(seed: int, batch: int = 2, n_pos: int = 7, **cfg) -> dict:
    """A :func:`random_model` of the given sizes and random tokens for it."""
    model = random_model(seed, **cfg)
    g = generator(seed + 1)
    return {"tokens": random_tokens(g, batch, n_pos, model.cfg.d_vocab), "model": model}

# --------------------------------------------------------------- localising a mistake
# When an answer has the right shape but wrong values and matches no known mistake, a chapter's
# ``localise`` step checks intermediate properties in order and reports the first one that fails
# (:func:`first_failing_property`). The property helpers (``rows_sum_to_one``, ``causal_violation``,
# ``out_of_range``, ``scale_factor``, ``symmetric_but_should_not_be``, ``first_differing_slice``,
# ``batch_independence``) live in :mod:`.properties` and are re-exported here.

def first_failing_property(name: str, what: str, properties: list[tuple[str, Callable[[], str | None]]],
                           hint: str | None = None) -> list[str]:
    """Check ``properties`` (``(label, check)`` pairs, in order) and fail on the first that breaks.

    The message lists the properties that hold before naming the one that fails, e.g.
    ``"attention_pattern: your pattern: ✓ rows sum to 1; ✗ position 3 attends to position 5 (the
    future) ..."``. Returns the labels of the properties that hold when none fails.
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame
    held: list[str] = []
    for label, check in properties:
        problem = check()
        if problem:
            ok = "".join(f"✓ {h}; " for h in held)
            fail(name, f"{what}: {ok}✗ {problem}.", hint)
        held.append(label)
    return held


@dataclass
class Exercise:
    """How to test one exercise: inputs, reference, comparison (with known mistakes)."""

    name: str
    make_case: Callable[..., dict]  # (seed, **sizes) -> kwargs for the student's function
    reference: Callable[[dict], Any]
    compare: Callable[[str, Any, Any, dict], None]  # (name, actual, expected, case)
    visible_sizes: list[dict] = field(default_factory=list)
    check_properties: Callable[[str, Any, dict], None] | None = None
    # (name, call, case, actual, expected): runs when ``compare`` found wrong values that match no
    # known mistake (:class:`ValuesDiffer`); raises CheckFailed naming the first broken property.
    localise: Callable[[str, Callable, dict, Any, Any], None] | None = None


def as_float(name: str, actual: Any, what: str = "the result") -> float:
    """A Python number from a float, an int or a one-element tensor; a kind failure otherwise."""
    __tracebackhide__ = True  # IPython and pytest hide this frame
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            fail(name, f"{what} should be one number, got a tensor of shape {list(actual.shape)}.",
                  "average over every axis (or call .item() on a one-element tensor).")
        actual = actual.item()
    if actual is None:
        fail(name, f"{what} is None.", "did you forget the `return` statement?")
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        fail(name, f"{what} should be a number (float), got {type(actual).__name__}.")
    return float(actual)


def scalar(name: str, actual: Any, what: str = "the score") -> float:
    __tracebackhide__ = True
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            fail(name, f"return one number, got a tensor of shape {list(actual.shape)}.",
                  "reduce to a single number (a mean, a sum, .item()).")
        if actual.is_complex():
            fail(name, f"{what} is complex.", "take the real part.")
        actual = actual.item()
    if actual is None:
        fail(name, f"{what} is None.", "did you forget the `return` statement?")
    if isinstance(actual, complex):
        fail(name, f"{what} is complex.", "take the real part.")
    if not isinstance(actual, (int, float)):
        fail(name, f"return a float, got {type(actual).__name__}.")
    return float(actual)


def compare_scalar(name, actual, expected, mistakes, generic_hint, tol=1e-4, what="the score"):
    __tracebackhide__ = True
    value = scalar(name, actual, what)
    if math.isclose(value, expected, rel_tol=tol, abs_tol=tol):
        return
    for wrong, hint in mistakes:
        if wrong is None:
            continue
        if (math.isnan(value) and math.isnan(wrong)) or math.isclose(value, wrong, rel_tol=tol, abs_tol=tol):
            fail(name, f"{what} is {value:.5g}, the reference is {expected:.5g}.", hint)
    msg = f"{name}: {what} is {value:.5g}, the reference is {expected:.5g}."
    raise ValuesDiffer(msg + (f"\n  Hint: {generic_hint}" if generic_hint else ""))


def call_args(case: dict) -> list:
    """The student's positional arguments: the case's public entries, in signature order."""
    return [v for k, v in case.items() if not k.startswith("_")]


# What building a TransformerLens bridge imports (tl_convert, functional.bridge_from_tl_state_dict):
# about 3.5 s, most of a chapter-1 kernel's start.
TL_BRIDGE_IMPORTS = ("transformer_lens", "transformer_lens.config", "transformer_lens.model_bridge",
                     "transformer_lens.utilities.tl_checkpoint_conversion")


class ChapterChecks:
    """The exercises of one chapter: visible checks and the hidden tests' comparison."""

    def __init__(self, exercises: list[Exercise], pieces: dict[str, Callable] | None = None,
                 no_grad: bool = False, references: dict[str, Callable] | None = None,
                 numbers: dict[str, int] | None = None, heavy_imports: tuple[str, ...] = ()):
        self.exercises = {e.name: e for e in exercises}
        # Slow imports besides torch that the chapter's notebook makes (directly or through the
        # package): the grader loads them once per student, for the kernel and the trusted check.
        self.heavy_imports = tuple(heavy_imports)
        # exercise -> its number in the notebook, for the "finish exercise N first" notes
        self.numbers = dict(numbers or {name: i + 1 for i, name in enumerate(self.exercises)})
        self.pieces = dict(pieces or {})
        # reference functions with the student's signature, for demo cells (mine_or_reference)
        self.references = {**self.pieces, **dict(references or {})}
        # Chapters 4-5 hand whole models to the student's function: no autograd graph to build.
        self.no_grad = no_grad

    def grad_mode(self):
        """``torch.no_grad()`` for chapters whose functions take whole models, else nothing."""
        return torch.no_grad() if self.no_grad else contextlib.nullcontext()

    _grad_mode = grad_mode

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
            fail(exercise, f"expected a function, got {type(fn).__name__}.")
        before = snapshot(case)
        args = [v.clone() if isinstance(v, torch.Tensor) else v for v in call_args(case)]
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
        def call(*a):
            with self.reference_pieces(fn, keep=exercise):
                return fn(*a)

        try:
            ex.compare(exercise, actual, expected, case)
        except ValuesDiffer as generic:
            if ex.localise is None:
                raise
            try:
                with self._grad_mode():
                    ex.localise(exercise, call, case, actual, expected)
            except CheckFailed as named:
                raise named from None
            except Exception:  # a localiser must never hide the generic message
                pass
            raise generic from None
        self._check_contract(exercise, actual, expected, case, args, before)
        if ex.check_properties is not None:  # more calls, e.g. "same generator state, same result"
            ex.check_properties(exercise, call, case)

    @staticmethod
    def _check_contract(exercise: str, actual: Any, expected: Any, case: dict, args: list, before: dict) -> None:
        """Right values, but the kind of answer or the purity the exercise asks for is broken."""
        __tracebackhide__ = True  # IPython and pytest hide this frame
        problem = answer_kind_problem(exercise, actual, expected)
        if problem:
            fail(exercise, problem + ".")
        names = [k for k in case if not k.startswith("_")]
        bad = changed_inputs(before, dict(zip(names, args)), exercise)
        if bad:
            fail(exercise, f"your function changed its input {', '.join(bad)} in place.",
                 "work on a copy (x = x.clone(), or out-of-place operations such as masked_fill instead of "
                 "masked_fill_): a function must leave its inputs as they were.")

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

    def alone(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args)`` with the package's reference in place of every *other* exercise of the
        chapter that it calls, as in the checks: a grade cell's demo line depends on its own
        exercise only."""
        with self.reference_pieces(fn, keep=getattr(fn, "__name__", "")), self._grad_mode():
            return fn(*args, **kwargs)

    def mine_or_reference(self, exercise: str, fn: Any, number: int | None = None) -> Callable:
        """For a demo cell: the student's ``fn`` when it passes its visible checks, else the
        package's reference, with a one-line note naming the exercise to finish first.

        A demo cell never fails because an earlier exercise is unanswered or wrong.
        """
        label = f"exercise {number} (`{exercise}`)" if number is not None else f"the exercise `{exercise}`"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.run_visible_checks(exercise, fn)
            return fn
        except Exception:  # noqa: BLE001 - not implemented, wrong, or crashing: all mean "not finished"
            ref = self.references.get(exercise)
            if ref is None:
                raise CheckFailed(f"finish {label} first: this cell needs it.") from None
            print(f"Note: {label} is not finished yet, so this cell uses the package's reference instead; "
                  f"finish {label} to see your own.")
            return ref

    def or_reference(self, fn: Any, exercise: str) -> Callable:
        """``fn`` (the student's answer to ``exercise``) for a demo cell; while it (or an exercise
        it calls) raises ``NotImplementedError``, the package's reference stands in and one line
        says which exercise to finish. Grade cells never use this: they check the student's own answer."""
        ref, number = self.references[exercise], self.numbers[exercise]
        noted: list[bool] = []

        def call(*args: Any, **kwargs: Any) -> Any:
            if fn is not None:
                try:
                    return fn(*args, **kwargs)
                except NotImplementedError as err:
                    missing = str(err) or exercise
                    if not noted:
                        noted.append(True)
                        print(f"note: finish exercise {number} (`{exercise}`) and the exercises it uses to see "
                              f"your own results here; meanwhile this cell uses the package's reference"
                              f"{'' if missing == exercise else f' ({missing})'}.")
            return ref(*args, **kwargs)

        call.__name__ = getattr(fn, "__name__", exercise)
        return call

    def make_check(self, exercise: str) -> Callable[[Callable], None]:
        def check(fn: Callable) -> None:
            __tracebackhide__ = True  # IPython and pytest hide this frame
            self.run_visible_checks(exercise, fn)

        check.__name__ = f"check_{exercise}"
        check.__doc__ = f"Visible checks of the `{exercise}` exercise: raise CheckFailed with a hint, or print ✔."
        return check
