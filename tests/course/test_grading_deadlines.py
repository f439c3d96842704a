"""Deadlines: --due, --late-penalty, --cutoff, --zip-tz; submission times from zips and folders (fast).

No notebook is executed: the penalties are computed on rows built from fake autograding
outcomes (the same code path ``grade`` takes after nbgrader), the times on real zips and files.
"""

from __future__ import annotations

import csv
import os
import struct
import zipfile
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import CH1, ROOT
from induction_course.course.grading import intake, outputs
from induction_course.course.grading.deadlines import (
    DeadlinePolicy,
    late_values,
    lateness,
    make_policy,
    parse_moment,
    parse_zone,
    penalty,
)
from induction_course.course.grading.layout import GradingError
from induction_course.course.grading.zipmeta import member_time

CET = timezone(timedelta(hours=1))
DUE = datetime(2026, 12, 1, 23, 59, tzinfo=CET)
RELEASE = ROOT / "chapters" / CH1 / f"{CH1}.ipynb"


# ------------------------------------------------------------------ parsing the options
def test_due_dates_need_a_time_zone():
    assert parse_moment("2026-12-01T23:59+01:00", "--due") == DUE
    assert parse_moment("2026-12-01T22:59Z", "--due") == DUE
    with pytest.raises(GradingError, match="no time zone.*2026-12-01T23:59\\+01:00"):
        parse_moment("2026-12-01T23:59", "--due")
    with pytest.raises(GradingError, match="not an ISO 8601"):
        parse_moment("1 Dec 2026, 23:59", "--due")


def test_zip_time_zones():
    assert parse_zone("+01:00").utcoffset(None) == timedelta(hours=1)
    assert parse_zone("-0530").utcoffset(None) == -timedelta(hours=5, minutes=30)
    assert parse_zone("UTC") is timezone.utc
    assert parse_zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    with pytest.raises(GradingError, match="neither a UTC offset"):
        parse_zone("Mars/Olympus")


@pytest.mark.parametrize("kwargs,phrase", [
    (dict(due=None, late_penalty=0.1), "need --due"),
    (dict(due=None, zip_tz="+01:00"), "need --due"),
    (dict(due="2026-12-01T23:59+01:00", late_penalty=1.5), "fraction from 0 to 1"),
    (dict(due="2026-12-01T23:59+01:00", cutoff="2026-11-30T00:00+01:00"), "before --due"),
    (dict(due="2026-12-01T23:59+01:00", cutoff="2026-12-05T00:00"), "--cutoff.*no time zone"),
])
def test_bad_policies_are_refused(kwargs, phrase):
    with pytest.raises(GradingError, match=phrase):
        make_policy(**kwargs)


def test_the_zip_zone_defaults_to_the_due_dates():
    policy = make_policy("2026-12-01T23:59+01:00", 0.1)
    assert policy.zone.utcoffset(None) == timedelta(hours=1)
    assert make_policy("2026-12-01T23:59+01:00", zip_tz="Europe/Berlin").zone == ZoneInfo("Europe/Berlin")


def test_a_bad_due_date_is_one_line_from_the_command(tmp_path, capsys):
    from induction_course.course import cli

    (tmp_path / "subs").mkdir()
    code = cli.main(["grade", CH1, str(tmp_path / "subs"), "--out", str(tmp_path / "o"), "--due", "2026-12-01T23:59"])
    err = capsys.readouterr().err
    assert code == 2 and "no time zone" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ lateness and penalty
POLICY = DeadlinePolicy(DUE, 0.1, DUE + timedelta(days=3))


@pytest.mark.parametrize("after,days,cut", [
    (timedelta(seconds=-1), 0, False),
    (timedelta(0), 0, False),  # at the due second: on time
    (timedelta(seconds=1), 1, False),  # one second late starts a day
    (timedelta(hours=24), 1, False),
    (timedelta(hours=25), 2, False),
    (timedelta(days=3, seconds=1), 4, True),
])
def test_started_days_and_the_cutoff(after, days, cut):
    late = lateness(POLICY, (DUE + after).timestamp())
    assert (late.days, late.after_cutoff) == (days, cut)
    assert late.submitted.utcoffset() == timedelta(hours=1)  # shown in the due date's zone


def test_penalty_is_a_fraction_of_the_maximum_per_day_and_never_below_zero():
    late2 = lateness(POLICY, (DUE + timedelta(hours=30)).timestamp())
    assert penalty(POLICY, late2, 20.0, 25.0) == pytest.approx(5.0)  # 2 days x 10 % of 25
    assert penalty(POLICY, late2, 3.0, 25.0) == 3.0  # not more than earned
    very = lateness(POLICY, (DUE + timedelta(days=4)).timestamp())
    assert penalty(POLICY, very, 25.0, 25.0) == 25.0  # after the cut-off: nothing left


def test_unknown_times_cost_nothing():
    for stamp in (None, 0.0, datetime(1980, 1, 1, tzinfo=timezone.utc).timestamp()):
        values = late_values(POLICY, stamp, 20.0, 25.0)
        assert values["submitted"] == "unknown" and values["late_penalty"] == 0
        assert values["total_after_penalty"] == 20.0


# ------------------------------------------------------------------ times from zips and folders
def _info(name, date_time, extra=b""):
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.extra = extra
    return info


def test_zip_member_times_are_read_in_the_given_zone():
    info = _info("a.ipynb", (2026, 12, 2, 0, 30, 0))
    assert member_time(info, CET) == datetime(2026, 12, 2, 0, 30, tzinfo=CET).timestamp()
    summer = _info("a.ipynb", (2026, 7, 1, 12, 0, 0))  # Berlin is +02:00 in July
    assert member_time(summer, ZoneInfo("Europe/Berlin")) == datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc).timestamp()
    assert member_time(_info("a.ipynb", (1980, 1, 1, 0, 0, 0)), CET) is None  # no time recorded


def test_a_utc_extended_timestamp_wins_over_the_local_time():
    utc = int(datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp())
    ut = struct.pack("<HHBI", 0x5455, 5, 1, utc)
    info = _info("a.ipynb", (2026, 12, 1, 20, 0, 0), extra=ut)  # a local time in some other zone
    assert member_time(info, CET) == utc


def test_extracted_files_carry_their_zip_time(tmp_path):
    z = tmp_path / "class.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo("alice.ipynb", date_time=(2026, 12, 2, 8, 0, 0)), RELEASE.read_bytes())
        zf.writestr(zipfile.ZipInfo("bob.ipynb", date_time=(1980, 1, 1, 0, 0, 0)), RELEASE.read_bytes())
    (tmp_path / "work").mkdir()
    subs = {s.student: s for s in intake.read_submissions(z, tmp_path / "work", CH1, ROOT, zip_tz=CET)}
    assert subs["alice"].submitted == datetime(2026, 12, 2, 8, 0, tzinfo=CET).timestamp()
    assert late_values(POLICY, subs["bob"].submitted, 1.0, 25.0)["submitted"] == "unknown"


def test_a_folders_times_are_its_files_modification_times(tmp_path):
    (tmp_path / "carol").mkdir()
    nb = tmp_path / "carol" / f"{CH1}.ipynb"
    nb.write_bytes(RELEASE.read_bytes())
    when = datetime(2026, 12, 3, 9, 15, tzinfo=CET).timestamp()
    os.utime(nb, (when, when))
    (sub,) = intake.collect(tmp_path, CH1, {CH1: {"ch1_embed"}})
    assert sub.submitted == when


# ------------------------------------------------------------------ a class: grades.csv and report
def _class(tmp_path, policy):
    """Three students graded 20 / 25 (fake outcomes), on time, a day late and after the cut-off."""
    exercises = [("ch1_a", 10.0), ("ch1_b", 15.0)]
    times = {"ann": DUE - timedelta(hours=1), "ben": DUE + timedelta(hours=5), "cy": DUE + timedelta(days=4),
             "dee": None}
    subs = [intake.Submission(n, f"{n}.ipynb", notebook=object(), nbgrader_id=n,
                              submitted=t.timestamp() if t else None) for n, t in times.items()]
    outcome = {n: {"problem": None, "scores": {"ch1_a": 10.0, "ch1_b": 10.0}, "notes": []} for n in times}
    result = outputs.GradeResult(CH1, exercises, out=tmp_path / "out", deadline=policy)
    outputs.write_outputs(result, subs, outcome, {}, tmp_path / "course", lambda line: None)
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}, (tmp_path / "out" / "report.txt").read_text("utf-8")


def test_on_time_late_and_very_late_get_their_penalties(tmp_path):
    rows, report = _class(tmp_path, POLICY)
    header = list(rows["ann"])
    assert header[:5] == ["student", "ch1_a", "ch1_b", "total", "max"]  # the existing columns, as they were
    assert header[-5:] == ["submitted", "hours_late", "days_late", "late_penalty", "total_after_penalty"]
    assert rows["ann"]["submitted"] == "2026-12-01T22:59:00+01:00"
    assert [rows["ann"][k] for k in ("hours_late", "days_late", "late_penalty", "total_after_penalty")] == ["0", "0", "0", "20"]
    assert [rows["ben"][k] for k in ("hours_late", "days_late", "late_penalty", "total_after_penalty")] == ["5", "1", "2.5", "17.5"]
    assert rows["cy"]["total"] == "20" and rows["cy"]["total_after_penalty"] == "0"
    assert rows["dee"]["submitted"] == "unknown" and rows["dee"]["total_after_penalty"] == "20"
    late = report[report.index("Late submissions"):]
    assert "10 % of the points per started day" in late and "Late submissions" in late
    assert "ben: submitted 2026-12-02T04:59:00+01:00, 5 h late (1 started day(s)): -2.5 points" in late
    assert "cy:" in late and "after the cut-off" in late
    assert "dee: submission time unknown" in late and "ann:" not in late


def test_without_a_due_date_grades_csv_is_unchanged(tmp_path):
    rows, report = _class(tmp_path, None)
    assert list(rows["ann"]) == ["student", "ch1_a", "ch1_b", "total", "max"]
    assert "Late" not in report
