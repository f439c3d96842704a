"""Due dates and late penalties: ``grade --due ... --late-penalty P --cutoff ...``.

A submission's time is a POSIX timestamp read from the class itself, never the clock of the
grading machine: the graded notebook's modification time, which :mod:`.intake` sets from the
zip member's time when the class came as a zip (the UTC "extended timestamp" when the zip has
one, else the zip's local date and time read in ``zip_tz``). Grading the same class twice gives
the same lateness and the same penalties.

The rule (documented in teaching/INSTRUCTOR_GUIDE.md):

- a submission is late when its time is after ``due`` (to the second); every *started* day
  (24 h) after ``due`` costs ``late_penalty`` times the chapter's maximum points (Canvas' rule:
  10 % a day is 2.5 of 25 points), never more than the points earned;
- after ``cutoff`` it gets 0;
- a submission whose time is unknown (a zip without member times) gets no penalty and a line in
  the report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from induction_course.course.grading.layout import GradingError

DAY_S = 86_400
EARLIEST = datetime(1981, 1, 1, tzinfo=timezone.utc).timestamp()  # older: a zip with no real member times
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
LATE_COLUMNS = ["submitted", "hours_late", "days_late", "late_penalty", "total_after_penalty"]


@dataclass(frozen=True)
class DeadlinePolicy:
    due: datetime  # time-zone aware
    late_penalty: float = 0.0  # fraction of the maximum points per started day late
    cutoff: datetime | None = None  # after it: 0 points
    zip_tz: tzinfo | None = None  # how to read a zip's local member times (default: due's zone)

    @property
    def zone(self) -> tzinfo:
        return self.zip_tz or self.due.tzinfo

    def describe(self) -> str:
        parts = [f"due {iso(self.due)}"]
        if self.late_penalty:
            parts.append(f"{self.late_penalty * 100:g} % of the points per started day late")
        if self.cutoff is not None:
            parts.append(f"0 points after {iso(self.cutoff)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Lateness:
    submitted: datetime | None  # in the due date's zone; None: unknown
    seconds: float = 0.0  # after the due date (0 when on time)
    days: int = 0  # started days late
    after_cutoff: bool = False


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def parse_moment(text: str, option: str) -> datetime:
    """An ISO 8601 date and time *with* a time zone (``2026-12-01T23:59+01:00``, ``...Z``)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise GradingError(f"{option} {text!r} is not an ISO 8601 date and time; write it like "
                           "2026-12-01T23:59+01:00") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise GradingError(f"{option} {text!r} has no time zone; add one, e.g. {text.strip()}+01:00 or "
                           f"{text.strip()}Z for UTC (the grading machine's zone is never assumed)")
    return moment


def parse_zone(text: str) -> tzinfo:
    """``--zip-tz``: ``UTC``, an offset (``+01:00``) or a zone name (``Europe/Berlin``, DST aware)."""
    text = text.strip()
    if text.upper() in ("Z", "UTC", "GMT"):
        return timezone.utc
    m = _OFFSET.match(text)
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise GradingError(f"--zip-tz {text!r}: not a valid UTC offset")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if sign == "-" else delta)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise GradingError(f"--zip-tz {text!r} is neither a UTC offset (+01:00) nor a time zone name "
                           "(Europe/Berlin)") from None


def make_policy(due: str | None, late_penalty: float | None = None, cutoff: str | None = None,
                zip_tz: str | None = None) -> DeadlinePolicy | None:
    """The policy of the command-line options (None without ``--due``); a clear error for a bad one."""
    if due is None:
        if late_penalty is not None or cutoff is not None or zip_tz is not None:
            raise GradingError("--late-penalty, --cutoff and --zip-tz need --due (the deadline they are about)")
        return None
    when = parse_moment(due, "--due")
    rate = 0.0 if late_penalty is None else float(late_penalty)
    if not 0.0 <= rate <= 1.0 or math.isnan(rate):
        raise GradingError(f"--late-penalty {late_penalty} must be a fraction from 0 to 1 (0.1: 10 % a day)")
    stop = parse_moment(cutoff, "--cutoff") if cutoff is not None else None
    if stop is not None and stop < when:
        raise GradingError(f"--cutoff {cutoff} is before --due {due}")
    return DeadlinePolicy(when, rate, stop, parse_zone(zip_tz) if zip_tz else None)


def lateness(policy: DeadlinePolicy, submitted: float | None) -> Lateness:
    """How late a submission made at POSIX time ``submitted`` is (None or before 1981: unknown)."""
    if submitted is None or submitted < EARLIEST:
        return Lateness(None)
    moment = datetime.fromtimestamp(submitted, tz=policy.due.tzinfo)
    late = max(0.0, (moment - policy.due).total_seconds())
    return Lateness(moment, late, math.ceil(late / DAY_S), policy.cutoff is not None and moment > policy.cutoff)


def penalty(policy: DeadlinePolicy, late: Lateness, total: float, max_points: float) -> float:
    """Points lost: all of them after the cut-off, else ``late_penalty`` x max per started day (at most ``total``)."""
    if late.after_cutoff:
        return total
    return round(min(total, policy.late_penalty * late.days * max_points), 6)


def late_values(policy: DeadlinePolicy, submitted: float | None, total: float, max_points: float) -> dict[str, Any]:
    """The :data:`LATE_COLUMNS` of one row of ``grades.csv``."""
    late = lateness(policy, submitted)
    lost = penalty(policy, late, total, max_points)
    return {"submitted": iso(late.submitted) if late.submitted else "unknown",
            "hours_late": round(late.seconds / 3600, 2), "days_late": late.days,
            "late_penalty": lost, "total_after_penalty": round(total - lost, 6),
            "after_cutoff": late.after_cutoff}  # for the report, not a column


def report_lines(policy: DeadlinePolicy, rows: list[dict]) -> list[str]:
    """The report's section on deadlines: every late student and every unknown submission time."""
    lines = []
    for row in rows:
        if row.get("submitted") == "unknown":
            lines.append(f"  {row['student']}: submission time unknown (no time in the zip): no penalty applied")
        elif row.get("days_late"):  # 1 s late is late, though it rounds to 0.00 h
            cut = " after the cut-off" if row.get("after_cutoff") else ""
            lines.append(f"  {row['student']}: submitted {row['submitted']}, {row['hours_late']:g} h late "
                         f"({row['days_late']} started day(s)){cut}: -{row['late_penalty']:g} points, "
                         f"{row['total_after_penalty']:g} left")
    head = f"Late submissions ({policy.describe()}): {sum(1 for r in rows if r.get('days_late'))}"
    return [head, *lines]
