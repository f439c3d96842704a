"""Does a student's answer call the package's reference for its own exercise?

Two detectors, because each misses what the other sees:

- **static** (:func:`static_uses`, in the grader): the student's cells parsed with :mod:`ast`;
  inside the exercise's function, a name bound by an import to a forbidden function, or an
  attribute of an imported package module with a forbidden name (``F.embed``, an alias
  ``q.embed``, ``from ... import embed as e``), or any use of the chapter's check module;
- **runtime** (:class:`Monitor`, in the producer beside the student's code): a profile hook
  sees every Python call while the producer handles an exercise; a call of a forbidden
  function with a frame of the student's code anywhere below it on the stack is a use, however
  it was reached (``getattr``, ``importlib``, a lambda, a copied ``__code__``).

The forbidden functions of an exercise (:func:`forbidden_functions`) are found by running its
reference once under the same hook: the package functions the check module's reference calls
directly, the reference itself and the chapter's stand-in for it. Calling the reference of
*another* exercise stays allowed.
"""

from __future__ import annotations

import ast
import sys
import threading
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, Callable

import induction_course

LIBRARY = Path(induction_course.__file__).resolve().parent
CHECKS_DIR = LIBRARY / "course" / "checks"
STUDENT_FILE = "<student cell"  # the producer compiles each student cell under this file name
# Plumbing a reference calls that is the exercise's subject, not its answer (a model's forward,
# its hooks, loading data): calling these is the point of several exercises.
_NEVER_FORBIDDEN = ("model.py", "data.py", "paths.py", "checkpoints.py", "tl_convert.py")


def _library_file(filename: str) -> bool:
    p = Path(filename)
    return (p.suffix == ".py" and LIBRARY in p.parents and CHECKS_DIR not in p.parents
            and (LIBRARY / "course") not in p.parents and p.name not in _NEVER_FORBIDDEN)


def _checks_file(filename: str) -> bool:
    return CHECKS_DIR in Path(filename).parents


def forbidden_functions(reference: Callable, case: dict, standin: Callable | None = None) -> set[CodeType]:
    """The code of every package function ``reference(case)`` calls from the check module."""
    found: set[CodeType] = set()

    def hook(frame, event, arg):
        if event == "call" and frame.f_back is not None and _library_file(frame.f_code.co_filename) \
                and _checks_file(frame.f_back.f_code.co_filename):
            found.add(frame.f_code)

    old = sys.getprofile()
    sys.setprofile(hook)
    try:
        reference(case)
    finally:
        sys.setprofile(old)
    for fn in (reference, standin):
        code = getattr(fn, "__code__", None)
        if code is not None:
            found.add(code)
    return found


def chapter_forbidden(checks: Any, cases: dict[str, dict], allowed: set[str]) -> dict[str, set[CodeType]]:
    """exercise -> the code a student's answer to it must not reach.

    The exercise's own reference and what it calls from the check module, less the references
    of the chapter's *other* exercises (an answer may build on them) and the helpers the chapter
    hands out (``allowed``: names imported by its set-up cells or named in its text)."""
    codes = {x: forbidden_functions(checks.exercises[x].reference, case, checks.pieces.get(x))
             for x, case in cases.items()}
    pieces = {x: piece_codes(p) for x, p in checks.pieces.items()}
    refs = {x: {getattr(e.reference, "__code__", None)} for x, e in checks.exercises.items()}
    out = {}
    for x, found in codes.items():
        others = {c for y, cs in [*pieces.items(), *refs.items()] if y != x for c in cs if c is not None}
        out[x] = {c for c in found - others if c.co_name not in allowed or c.co_name == x}
    return out


def code_key(code: CodeType) -> list:
    """A code object as JSON: (file, first line, name), the same in every process of one install."""
    return [code.co_filename, code.co_firstlineno, code.co_name]


def resolve_codes(keys: list[list], checks: Any) -> set[CodeType]:
    """The code objects of this process that :func:`code_key` gave ``keys`` for."""
    wanted = {tuple(k) for k in keys}
    candidates: set[CodeType] = set()
    for modname, mod in list(sys.modules.items()):
        if modname.startswith("induction_course") and mod is not None:
            candidates |= set(_module_functions(mod))
    for ex in checks.exercises.values():
        candidates |= {c for c in [getattr(ex.reference, "__code__", None)] if c is not None}
    for piece in checks.pieces.values():
        candidates |= piece_codes(piece)
    return {c for c in candidates if tuple(code_key(c)) in wanted}


def piece_codes(piece: Callable) -> set[CodeType]:
    """The code of a chapter's stand-in for an exercise and of the package functions it names
    (``lambda m, t, l, h: A.zero_ablation(m, t, [(l, h)])`` names ``ablation.zero_ablation``)."""
    code = getattr(piece, "__code__", None)
    if code is None:
        return set()
    if not _checks_file(code.co_filename):  # a package function itself: what it calls is not named here
        return {code}
    found, env = {code}, getattr(piece, "__globals__", {})
    for name in code.co_names:
        obj = env.get(name)
        targets = [obj] if not isinstance(obj, ModuleType) else [getattr(obj, n, None) for n in code.co_names]
        found |= {t.__code__ for t in targets if isinstance(getattr(t, "__code__", None), CodeType)}
    return found


def _from_student(frame: Any) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(STUDENT_FILE):
            return True
        frame = frame.f_back
    return False


_setprofile, _thread_setprofile = sys.setprofile, threading.setprofile  # fixed
# when this module is imported (before any student code runs), so a later patch of ``sys`` does not reach them
_getprofile = sys.getprofile


class Monitor:
    """While active, records forbidden calls made (however indirectly) by the student's code."""

    def __init__(self, forbidden: set[CodeType] | None = None) -> None:
        self.forbidden: set[CodeType] = set(forbidden or ())
        self.used: list[str] = []
        self.tampered = False
        self._bound = self._hook  # bound now: patching the class later changes nothing here

    def _hook(self, frame, event, arg):
        if event == "call" and frame.f_code in self.forbidden and _from_student(frame.f_back):
            name = describe(frame.f_code)
            if name not in self.used:
                self.used.append(name)

    def __enter__(self) -> "Monitor":
        _setprofile(self._bound)
        _thread_setprofile(self._bound)
        return self

    def __exit__(self, *exc: Any) -> None:
        if _getprofile() is not self._bound:  # the student's code replaced or removed the hook
            self.tampered = True
        _setprofile(None)
        _thread_setprofile(None)


def describe(code: CodeType) -> str:
    """``functional.embed`` for the code of :func:`induction_course.functional.embed`."""
    try:
        rel = Path(code.co_filename).resolve().relative_to(LIBRARY).with_suffix("")
        return ".".join(rel.parts) + "." + code.co_name
    except ValueError:
        return code.co_name


# ------------------------------------------------------------------------------- static
def _module_functions(mod: ModuleType) -> dict[CodeType, list[str]]:
    out: dict[CodeType, list[str]] = {}
    for name, obj in vars(mod).items():
        code = getattr(obj, "__code__", None)
        if isinstance(code, CodeType):
            out.setdefault(code, []).append(name)
    return out


def forbidden_names(codes: set[CodeType]) -> set[tuple[str, str]]:
    """(module, attribute) pairs under which the package exposes the forbidden functions."""
    names: set[tuple[str, str]] = set()
    for modname, mod in list(sys.modules.items()):
        if not modname.startswith("induction_course") or mod is None:
            continue
        for code, attrs in _module_functions(mod).items():
            if code in codes:
                names |= {(modname, a) for a in attrs}
    return names


def _aliases(trees: list[ast.Module]) -> dict[str, tuple[str, str | None]]:
    """name -> (module, attribute or None) for every import of the package in the cells."""
    out: dict[str, tuple[str, str | None]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("induction_course"):
                        out[a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0], None)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("induction_course"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    out[a.asname or a.name] = (full, None) if full in sys.modules else (node.module, a.name)
    return out


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def static_uses(trees: list[ast.Module], function: str, forbidden: set[tuple[str, str]], checks: str) -> list[str]:
    """What the student's ``function`` (a top-level ``def`` in ``trees``) names of the forbidden."""
    aliases = _aliases(trees)
    defs = [n for t in trees for n in t.body if isinstance(n, ast.FunctionDef) and n.name == function]
    found: list[str] = []
    for node in (n for d in defs[-1:] for n in ast.walk(d)):
        dotted = _dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        if not dotted or dotted.split(".")[0] not in aliases:
            continue
        module, attr = aliases[dotted.split(".")[0]]
        rest = dotted.split(".")[1:]
        target = (module, attr) if attr is not None and not rest else \
            (".".join([module, *([attr] if attr else []), *rest[:-1]]), rest[-1]) if rest else (module, "")
        if module == checks or target[0] == checks:
            hit = f"the check module ({dotted})"
        elif target in forbidden:
            hit = f"{target[0].removeprefix('induction_course.')}.{target[1]}"
        else:
            continue
        if hit not in found:
            found.append(hit)
    return found
