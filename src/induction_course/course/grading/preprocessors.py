"""Making a student's notebook gradable before nbgrader sees it, one small step per job.

Each step is an nbconvert :class:`~nbconvert.preprocessors.Preprocessor`, as nbgrader's own
converters are built, applied in the order of :data:`SANITIZERS` by :func:`sanitize`. They
change the notebook in place and append a line to ``resources["notes"]`` (the report) for
anything the student should hear about. nbgrader's ``OverwriteCells`` then restores the
source of locked cells (hidden tests included) from the gradebook; these steps make sure it
finds every one of them, with the release's metadata, and nothing it would choke on.

``resources`` carries the release: ``release_cells`` (grade_id -> the release's cell),
``release_order`` (the release's grade ids in notebook order), ``grade_ids`` (the graded
ones), ``accepted`` (grade_id -> other sources that count as unedited) and ``notes``.

Importing this module imports nbconvert (seconds): the grader imports it only to grade.
"""

from __future__ import annotations

import copy
import json

import nbformat
from nbconvert.preprocessors import Preprocessor

from induction_course.course.grading.hidden_plan import HIDDEN_BEGIN, HIDDEN_END

_HIDDEN_MARKERS = (HIDDEN_BEGIN, HIDDEN_END)


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class ClearOutputs(Preprocessor):
    """Drop stored outputs: they are recomputed, and megabytes of them slow every step."""

    def preprocess(self, nb, resources):
        out_bytes = 0
        for cell in nb.cells:
            if cell.cell_type == "code":
                out_bytes += len(json.dumps(cell.get("outputs", [])))
                cell.outputs = []
                cell.execution_count = None
        if out_bytes > 1_000_000:
            resources["notes"].append(f"{out_bytes / 1e6:.0f} MB of stored outputs were dropped before grading")
        return nb, resources


class DropUnknownIds(Preprocessor):
    """A cell whose ``grade_id`` is not the chapter's (a renamed test) is just code: nbgrader
    would otherwise grade a cell that is in no gradebook."""

    def preprocess(self, nb, resources):
        unknown = []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta is None:
                continue
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if gid not in resources["release_cells"]:
                if gid:
                    unknown.append(str(gid))
                del cell.metadata["nbgrader"]
        if unknown:
            resources["notes"].append("cells with a grade_id that is not in the chapter (renamed?) were graded "
                                      "as plain code: " + ", ".join(sorted(set(unknown))))
        return nb, resources


class KeepLastOfDuplicateIds(Preprocessor):
    """Of a duplicated ``grade_id`` only the last copy keeps it, as nbgrader's DeduplicateIds does."""

    def preprocess(self, nb, resources):
        counts: dict[str, int] = {}
        for cell in nb.cells:
            if "nbgrader" in cell.metadata:
                gid = _grade_id(cell)
                counts[gid] = counts.get(gid, 0) + 1
        seen: set[str] = set()
        for cell in reversed(nb.cells):
            gid = _grade_id(cell)
            if gid is None:
                continue
            if gid in seen:
                del cell.metadata["nbgrader"]
            seen.add(gid)
        dups = sorted(g for g, n in counts.items() if n > 1)
        if dups:
            resources["notes"].append("duplicated grade_id (only the last copy counts): " + ", ".join(dups))
        return nb, resources


class RestoreMetadata(Preprocessor):
    """A known cell gets the release's cell type and nbgrader metadata back (``grade``,
    ``locked``, ``points``): a student cannot unlock a test or change its points."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            gid = _grade_id(cell)
            if gid is None:
                continue
            ref = resources["release_cells"][gid]
            if ref.cell_type != cell.cell_type:
                cell.cell_type = ref.cell_type
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
                else:
                    cell.pop("outputs", None)
                    cell.pop("execution_count", None)
            cell.metadata["nbgrader"] = copy.deepcopy(ref.metadata["nbgrader"])
        return nb, resources


class NoteEditedLockedCells(Preprocessor):
    """Only notes: nbgrader's ``OverwriteCells`` restores the source of edited read-only cells."""

    def preprocess(self, nb, resources):
        by_id, accepted = resources["release_cells"], resources["accepted"]
        edited = []
        for cell in nb.cells:
            gid = _grade_id(cell)
            if (gid in by_id and by_id[gid].metadata["nbgrader"].get("locked")
                    and cell.source.strip() not in {by_id[gid].source.strip(), *accepted.get(gid, ())}):
                edited.append(gid)
        if edited:
            resources["notes"].append("edited read-only cells were restored before grading: " + ", ".join(edited))
        return nb, resources


class RestoreDeletedCells(Preprocessor):
    """Put deleted grade and read-only cells back after the cell that precedes them in the
    release (nbgrader's own ``add_missing_cells`` is off: it appends them at the end)."""

    def preprocess(self, nb, resources):
        by_id, order = resources["release_cells"], resources["release_order"]
        present = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata}
        missing = [g for g in order if g not in present
                   and (g in resources["grade_ids"] or by_id[g].metadata["nbgrader"].get("locked"))]
        for gid in missing:
            new = nbformat.from_dict(copy.deepcopy(dict(by_id[gid])))
            if new.cell_type == "code":
                new.outputs, new.execution_count = [], None
            nb.cells.insert(self._position(nb, order, gid), new)
        if missing:
            resources["notes"].append("deleted read-only/test cells were put back before grading: " + ", ".join(missing))
        return nb, resources

    @staticmethod
    def _position(nb, order: list[str], gid: str) -> int:
        """Just after the nearest earlier release cell still in ``nb``; else the top."""
        for prev in reversed(order[: order.index(gid)]):
            idx = next((i for i, c in enumerate(nb.cells) if _grade_id(c) == prev), None)
            if idx is not None:
                return idx + 1
        return 0


class StripStrayMarkers(Preprocessor):
    """Hidden-test markers outside a grade cell make nbgrader's feedback fail: keep the code,
    drop the marker lines."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if _grade_id(cell) is None and cell.cell_type == "code" and "HIDDEN TESTS" in cell.source:
                cell.source = "\n".join(ln for ln in cell.source.split("\n") if ln.strip() not in _HIDDEN_MARKERS)
        return nb, resources


class AssignCellIds(Preprocessor):
    """Unique cell ids (a duplicated cell copies its id): the grade id, else the position."""

    def preprocess(self, nb, resources):
        for i, cell in enumerate(nb.cells):
            cell["id"] = _grade_id(cell) or f"cell-{i:04d}"
        return nb, resources


SANITIZERS = (
    ClearOutputs,
    DropUnknownIds,
    KeepLastOfDuplicateIds,
    RestoreMetadata,
    NoteEditedLockedCells,
    RestoreDeletedCells,
    StripStrayMarkers,
    AssignCellIds,
)


def sanitize(nb, release_nb, exercises: list[tuple[str, float]], accepted: dict[str, set[str]]) -> list[str]:
    """Make the student's notebook gradable in place (every step of :data:`SANITIZERS`, in
    order); return the notes for the report."""
    release_cells = [c for c in release_nb.cells if "nbgrader" in c.metadata]
    resources = {
        "release_cells": {c.metadata["nbgrader"]["grade_id"]: c for c in release_cells},
        "release_order": [c.metadata["nbgrader"]["grade_id"] for c in release_cells],
        "grade_ids": {g for g, _ in exercises},
        "accepted": accepted,
        "notes": [],
    }
    for step in SANITIZERS:
        nb, resources = step().preprocess(nb, resources)
    return resources["notes"]
