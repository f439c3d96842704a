"""Moodle and Canvas: the names of their submission downloads, and the gradebook files they import.

**Reading** a class (:func:`parse_entry`, used by :mod:`.intake`):

- Moodle's "Download all submissions" makes a folder per student and submission plugin,
  ``Full Name_1002_assignsubmission_file_/`` (or, without "download in folders",
  ``Full Name_1002_assignsubmission_file_notebook.ipynb``): the name and the *participant id*
  (Moodle's ``Participant 1002``, what its grading worksheet is matched on);
- Canvas' "Download submissions" names each file ``lastfirst_12345_67890_original.ipynb``
  (``lastfirst_LATE_12345_...`` when Canvas thought it late): a name key and the Canvas *user id*
  (then the attachment id and the uploaded file's name).

**Writing** (``grade --format canvas|moodle``, :func:`write_export`), from the rows of ``grades.csv``:

- ``canvas_grades.csv``, Canvas' gradebook import layout: ``Student, ID, SIS User ID, SIS Login
  ID, Section`` and one assignment column (``Name (assignment id)`` updates that assignment; a
  name alone makes Canvas create a new one), then a ``Points Possible`` row; students are matched
  on ``ID``;
- ``moodle_grades.csv``, the layout of the assignment's offline grading worksheet (``Identifier``
  = ``Participant <id>``, ``Full name``, ..., ``Grade``, ``Maximum Grade``, ``Last modified
  (grade)``, ``Feedback comments``); Moodle's importer reads ``Identifier``, ``Grade``, ``Last
  modified (grade)`` and the feedback columns.

The grade exported is ``total_after_penalty`` when there is a deadline, else ``total``; a student
whose written answers still wait for manual grading is left out (the LMS keeps what it has).
Names are written as they came (UTF-8, no spreadsheet quoting): the LMS reads them as data.
:func:`refresh_grades` recomputes the penalty columns and rewrites the export from ``grades.csv``
(after manual scores changed a total).
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from induction_course.course.grading import deadlines
from induction_course.course.grading.deadlines import DeadlinePolicy
from induction_course.course.grading.layout import GradingError

FORMATS = ("canvas", "moodle")
EXPORT_FILES = {"canvas": "canvas_grades.csv", "moodle": "moodle_grades.csv"}
SETTINGS = "grading_settings.json"  # in --out: what refresh_grades needs to redo the export
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_(?P<file>.*)$", re.S)
_CANVAS = re.compile(r"^(?P<name>[^_]+)_(?P<late>LATE_)?(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)$", re.S)
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                 "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]


@dataclass(frozen=True)
class LmsName:
    """What an LMS download's entry name says about its student."""
    lms: str  # "moodle" or "canvas"
    name: str  # Moodle's full name, Canvas' name key (NFC)
    id: str  # Moodle's participant id, Canvas' user id
    file: str = ""  # the uploaded file's own name ("" for a Moodle folder)
    late: bool = False  # Canvas put LATE in the name

    @property
    def student(self) -> str:
        """The student's key in ``grades.csv`` and ``feedback/``: unique, since two people may share a name."""
        return f"{self.name}_{self.id}"


def parse_moodle(entry: str) -> LmsName | None:
    m = _MOODLE.match(unicodedata.normalize("NFC", entry))
    if m is None or not m.group("name").strip():
        return None
    return LmsName("moodle", m.group("name").strip(), m.group("id"), m.group("file"))


def parse_canvas(entry: str) -> LmsName | None:
    m = _CANVAS.match(unicodedata.normalize("NFC", entry))
    if m is None:
        return None
    return LmsName("canvas", m.group("name"), m.group("id"), m.group("file"), bool(m.group("late")))


def parse_entries(names: list[str], files: set[str]) -> dict[str, LmsName]:
    """The LMS meaning of a class's top-level entries (``files``: those that are files).

    Moodle's suffix is specific enough to trust on any entry. Canvas' pattern (``a_1_2_b``) could
    be a student's own file name, so it is trusted only when *every* top-level file matches it."""
    found = {n: p for n in names if (p := parse_moodle(n)) is not None}
    canvas = {n: parse_canvas(n) for n in files if n not in found}
    if canvas and all(canvas.values()):
        found.update(canvas)
    return found


# ----------------------------------------------------------------------- grades.csv columns
def id_column(lms: str) -> str:
    return f"{lms}_id"


def identity_columns(kinds: set[str]) -> list[str]:
    """``name`` and one id column per LMS the class came from (none for a plain folder of names)."""
    return ["name", *[id_column(k) for k in FORMATS if k in kinds]] if kinds else []


def final_points(row: dict) -> Any:
    """The grade an LMS gets; None while written answers wait for manual grading."""
    if str(row.get("manual_grading", "")).startswith("pending"):
        return None
    return row["total_after_penalty"] if "total_after_penalty" in row else row["total"]


def _text(value: Any) -> str:
    """A cell of an export: numbers as 12.5, text without line breaks (kept otherwise: UTF-8 data)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value).replace("\r", " ").replace("\n", " ")


def _comment(row: dict, max_points: Any) -> str:
    """Moodle's feedback comment: the autograded points, and the penalty when there was one."""
    text = f"Autograded: {_text(row['total'])} / {_text(max_points)} points"
    if _number(row.get("late_penalty", 0)):
        text += f"; submitted {_text(row['days_late'])} day(s) late: -{_text(row['late_penalty'])}"
    return text + "; details in your feedback page"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def canvas_table(rows: list[dict], assignment: str, max_points: Any) -> list[list[str]]:
    table = [[*CANVAS_HEADER, assignment], ["Points Possible", "", "", "", "", _text(max_points)]]
    for row in rows:
        table.append([_text(row["name"]), _text(row[id_column("canvas")]), "", "", "", _text(final_points(row))])
    return table


def moodle_table(rows: list[dict], max_points: Any) -> list[list[str]]:
    table = [MOODLE_HEADER]
    for row in rows:
        submitted = row.get("submitted", "")
        table.append([f"Participant {_text(row[id_column('moodle')])}", _text(row["name"]), "", "",
                      _text(final_points(row)), _text(max_points), "Yes",
                      submitted if submitted and submitted != "unknown" else "-", "-", _comment(row, max_points)])
    return table


def write_export(out: Path, fmt: str, rows: list[dict], max_points: Any, assignment: str) -> tuple[Path, list[str]]:
    """Write ``out/<EXPORT_FILES[fmt]>``; return it and the report lines on who is not in it and why."""
    col = id_column(fmt)
    ready = [r for r in rows if str(r.get(col, "")).strip() and final_points(r) is not None]
    left = [f"  {r['student']}: " + ("written answers still to grade by hand" if str(r.get(col, "")).strip()
                                     else f"no {fmt.capitalize()} id in its file or folder name")
            for r in rows if r not in ready]
    table = canvas_table(ready, assignment, max_points) if fmt == "canvas" else moodle_table(ready, max_points)
    path = out / EXPORT_FILES[fmt]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(table)
    lines = [f"{fmt.capitalize()} export: {path.name}, {len(ready)} of {len(rows)} student(s)"]
    if fmt == "moodle":
        lines.append("  (importing over grades Moodle already has needs \"Allow updating records that have been "
                     "modified more recently in Moodle than in the spreadsheet\")")
    if left:
        lines += [f"  not in {path.name}:", *[f"  {ln}" for ln in left]]
    return path, lines


# ---------------------------------------------------------------- settings and refresh
def save_settings(out: Path, policy: DeadlinePolicy | None, fmt: str | None, assignment: str, max_points: float) -> None:
    """What :func:`refresh_grades` needs later (the deadline and the export), in ``out``."""
    data = {"format": fmt, "assignment": assignment, "max_points": max_points,
            "due": deadlines.iso(policy.due) if policy else None,
            "late_penalty": policy.late_penalty if policy else None,
            "cutoff": deadlines.iso(policy.cutoff) if policy and policy.cutoff else None}
    (out / SETTINGS).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _unquoted(text: str) -> str:
    """A name as it was before ``grades.csv`` guarded it for spreadsheets (:func:`.outputs.csv_cell`)."""
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t") else text


def _recompute_late(policy: DeadlinePolicy, row: dict, max_points: float) -> None:
    """The penalty columns of one ``grades.csv`` row, from its submission time and (new) total."""
    when = row.get("submitted", "")
    stamp = datetime.fromisoformat(when).timestamp() if when and when != "unknown" else None
    values = deadlines.late_values(policy, stamp, _number(row["total"]), max_points)
    row.update({k: _text(values[k]) for k in ("late_penalty", "total_after_penalty")})


def refresh_grades(out: str | Path) -> list[str]:
    """After a total in ``out/grades.csv`` changed (manual scores): recompute its penalty columns
    and rewrite the LMS export. Returns the export's report lines ([] without ``--format``)."""
    out = Path(out)
    settings = json.loads((out / SETTINGS).read_text(encoding="utf-8")) if (out / SETTINGS).is_file() else {}
    path = out / "grades.csv"
    if not path.is_file():
        raise GradingError(f"{path} not found: is {out} the --out folder of `induction-course grade`?")
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or []), list(reader)
    if settings.get("due") and "total_after_penalty" in header:
        policy = deadlines.make_policy(settings["due"], settings.get("late_penalty"), settings.get("cutoff"))
        for row in rows:
            _recompute_late(policy, row, float(settings["max_points"]))
        with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
            w = csv.DictWriter(fh, header, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    if not settings.get("format"):
        return []
    named = [{**row, "name": _unquoted(row.get("name", ""))} for row in rows]
    return write_export(out, settings["format"], named, settings["max_points"], settings["assignment"])[1]
