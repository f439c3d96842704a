"""Moodle and Canvas: their download's names (non-ASCII ones too) in, their gradebook files out (fast).

The classes are real zips laid out as each LMS lays out its download; the grading itself is
replaced by fake outcomes (what ``grade`` hands to :func:`outputs.write_outputs` after nbgrader).
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from conftest import CH1, ROOT
from induction_course.course.grading import intake, lms, outputs
from induction_course.course.grading.deadlines import make_policy
from induction_course.course.grading.notebooks import chapter_grade_ids
from induction_course.course.grading.zipmeta import member_name

RELEASE = (ROOT / "chapters" / CH1 / f"{CH1}.ipynb").read_bytes()
EXERCISES = [("ch1_a", 10.0), ("ch1_b", 15.0)]
NAMES = {"1002": "Renée Réf", "1003": "Łukasz Żółć", "1004": "李雷"}
MOJIBAKE = "Ren├⌐e R├⌐f"  # what cp437 makes of Renée's UTF-8 name


@pytest.fixture(scope="module")
def ids():
    return chapter_grade_ids(ROOT)


def _zip_without_utf8_flag(path, members):
    """A zip whose names are UTF-8 bytes *without* the UTF-8 flag (what PHP and Windows tools write).

    zipfile always flags non-ASCII names, so each name is written as ASCII of the same length
    and its bytes are swapped in afterwards (local header and central directory alike)."""
    with zipfile.ZipFile(path, "w") as zf:
        for i, (name, data) in enumerate(members.items()):
            raw = name.encode("utf-8")
            zf.writestr(f"{i:02d}".ljust(len(raw), "x"), data)
    blob = path.read_bytes()
    for i, name in enumerate(members):
        raw = name.encode("utf-8")
        placeholder = f"{i:02d}".ljust(len(raw), "x").encode()
        assert blob.count(placeholder) == 2
        blob = blob.replace(placeholder, raw)
    path.write_bytes(blob)


def _moodle_zip(path, utf8_flag: bool):
    members = {f"{name}_{pid}_assignsubmission_file_/{CH1}.ipynb": RELEASE for pid, name in NAMES.items()}
    members["Renée Réf_1002_assignsubmission_onlinetext_/onlinetext.html"] = b"<p>see the notebook</p>"
    if utf8_flag:
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        _zip_without_utf8_flag(path, members)


def _graded(tmp_path, subs, fmt, policy=None, scores=None):
    """write_outputs on fake outcomes: every graded student gets ``scores`` (default 20 of 25)."""
    outcome = {s.student: {"problem": None, "scores": scores or {"ch1_a": 10.0, "ch1_b": 10.0}, "notes": []}
               for s in subs if s.problem is None}
    result = outputs.GradeResult(CH1, EXERCISES, out=tmp_path / "out", deadline=policy, lms_format=fmt)
    outputs.write_outputs(result, subs, outcome, {}, tmp_path / "course", lambda line: None)
    return tmp_path / "out"


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# ------------------------------------------------------------------ names
def test_moodle_and_canvas_names_are_parsed():
    m = lms.parse_moodle("Renée Réf_1002_assignsubmission_file_")
    assert (m.lms, m.name, m.id, m.file, m.student) == ("moodle", "Renée Réf", "1002", "", "Renée Réf_1002")
    assert lms.parse_moodle("Jo_Anne Smith_77_assignsubmission_file_nb.ipynb").name == "Jo_Anne Smith"
    c = lms.parse_canvas("réfrenée_LATE_12345_67890_01_build_transformer.ipynb")
    assert (c.lms, c.name, c.id, c.file, c.late) == ("canvas", "réfrenée", "12345", "01_build_transformer.ipynb", True)
    assert lms.parse_moodle("alice") is None and lms.parse_canvas("alice.ipynb") is None


def test_canvas_names_are_trusted_only_when_every_file_has_one():
    files = {"doe_1_2_a.ipynb", "roe_3_4_b.ipynb"}
    assert set(lms.parse_entries(sorted(files), files)) == files
    mixed = files | {"alice.ipynb"}  # a plain class whose student happens to be called doe_1_2_a
    assert lms.parse_entries(sorted(mixed), mixed) == {}


def test_utf8_names_without_the_flag_are_repaired(tmp_path):
    z = tmp_path / "x.zip"
    _zip_without_utf8_flag(z, {"Renée Réf/a.txt": b"1", "李雷/b.txt": b"2"})
    with zipfile.ZipFile(z) as zf:
        infos = zf.infolist()
        assert infos[0].filename.startswith(MOJIBAKE)  # what zipfile itself makes of it
        assert [member_name(i) for i in infos] == ["Renée Réf/a.txt", "李雷/b.txt"]


def test_a_genuine_cp437_name_stays_cp437(tmp_path):
    z = tmp_path / "x.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("caf_.txt", b"1")
    z.write_bytes(z.read_bytes().replace(b"caf_", b"caf\x82"))  # 0x82 is é in cp437, invalid as UTF-8
    with zipfile.ZipFile(z) as zf:
        assert member_name(zf.infolist()[0]) == "café.txt"


# ------------------------------------------------------------------ a Moodle class, round trip
@pytest.mark.parametrize("utf8_flag", [False, True])
def test_moodle_zip_to_moodle_export_keeps_names_and_ids(tmp_path, utf8_flag):
    z = tmp_path / "moodle.zip"
    _moodle_zip(z, utf8_flag)
    (tmp_path / "work").mkdir()
    subs = intake.read_submissions(z, tmp_path / "work", CH1, ROOT)
    assert [(s.student, s.name, s.lms_id, s.problem) for s in subs] == [
        ("Renée Réf_1002", "Renée Réf", "1002", None),  # its onlinetext folder is part of the same submission
        ("Łukasz Żółć_1003", "Łukasz Żółć", "1003", None),
        ("李雷_1004", "李雷", "1004", None)]
    out = _graded(tmp_path, subs, "moodle")
    grades = _csv(out / "grades.csv")
    assert grades[0] == ["student", "ch1_a", "ch1_b", "total", "max", "name", "moodle_id"]
    assert grades[1] == ["Renée Réf_1002", "10", "10", "20", "25", "Renée Réf", "1002"]
    assert not any(MOJIBAKE in c or "assignsubmission" in c for row in grades for c in row)
    sheet = _csv(out / "moodle_grades.csv")
    assert sheet[0] == lms.MOODLE_HEADER
    assert [(r[0], r[1], r[4], r[5]) for r in sheet[1:]] == [
        (f"Participant {pid}", name, "20", "25") for pid, name in NAMES.items()]
    assert "Autograded: 20 / 25 points" in sheet[1][9]


def test_moodle_worksheet_has_the_columns_moodles_importer_reads():
    """Moodle's offline-grading importer finds its columns by these exact names and strips
    "Participant " from the identifier (mod/assign/feedback/offline/importgradeslib.php)."""
    for needed in ("Identifier", "Grade", "Last modified (grade)", "Feedback comments"):
        assert needed in lms.MOODLE_HEADER
    table = lms.moodle_table([{"student": "x", "name": "A B", "moodle_id": "7", "total": 3.0}], 25.0)
    row = dict(zip(table[0], table[1]))
    assert row["Identifier"] == "Participant 7" and row["Grade"] == "3" and row["Maximum Grade"] == "25"


# ------------------------------------------------------------------ a Canvas class
def test_canvas_zip_to_canvas_export(tmp_path):
    z = tmp_path / "submissions.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"réfrenée_12345_67890_{CH1}.ipynb", RELEASE)
        zf.writestr("réfrenée_12345_67891_notes.pdf", b"%PDF")  # a second upload of the same student
        zf.writestr(f"żółćłukasz_LATE_23456_78901_{CH1}.ipynb", RELEASE)
        zf.writestr("李雷_34567_89012_mine.ipynb", RELEASE)
    (tmp_path / "work").mkdir()
    subs = intake.read_submissions(z, tmp_path / "work", CH1, ROOT)
    assert [(s.student, s.name, s.lms, s.lms_id, s.problem) for s in subs] == [
        ("réfrenée_12345", "réfrenée", "canvas", "12345", None),
        ("żółćłukasz_23456", "żółćłukasz", "canvas", "23456", None),
        ("李雷_34567", "李雷", "canvas", "34567", None)]
    out = _graded(tmp_path, subs, "canvas")
    assert _csv(out / "grades.csv")[0][-2:] == ["name", "canvas_id"]
    table = _csv(out / "canvas_grades.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", CH1]
    assert table[1] == ["Points Possible", "", "", "", "", "25"]
    assert table[2:] == [["réfrenée", "12345", "", "", "", "20"], ["żółćłukasz", "23456", "", "", "", "20"],
                         ["李雷", "34567", "", "", "", "20"]]


def test_canvas_assignment_column_and_penalised_points(tmp_path):
    entries = tmp_path / "class"
    entries.mkdir()
    (entries / f"doe_11_1_{CH1}.ipynb").write_bytes(RELEASE)
    policy = make_policy("2026-12-01T23:59+01:00", 0.1)
    late = (datetime(2026, 12, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))).timestamp()
    os.utime(entries / f"doe_11_1_{CH1}.ipynb", (late, late))
    subs = intake.collect(entries, CH1, {CH1: {"ch1_embed"}})
    outcome = {s.student: {"problem": None, "scores": {"ch1_a": 10.0, "ch1_b": 10.0}, "notes": []} for s in subs}
    result = outputs.GradeResult(CH1, EXERCISES, out=tmp_path / "out", deadline=policy, lms_format="canvas",
                                 lms_assignment="Chapter 1 (4567)")
    outputs.write_outputs(result, subs, outcome, {}, tmp_path / "course", lambda line: None)
    table = _csv(tmp_path / "out" / "canvas_grades.csv")
    assert table[0][-1] == "Chapter 1 (4567)" and table[2] == ["doe", "11", "", "", "", "17.5"]


# ------------------------------------------------------------------ who is left out, and refresh
def test_students_without_an_id_or_with_pending_answers_are_left_out(tmp_path):
    rows = [{"student": "alice", "name": "", "total": 20.0},
            {"student": "Bo_9", "name": "Bo", "moodle_id": "9", "total": 5.0, "manual_grading": "pending (4 points)"},
            {"student": "Cy_8", "name": "Cy", "moodle_id": "8", "total": 7.0, "manual_grading": "done"}]
    path, lines = lms.write_export(tmp_path, "moodle", rows, 25.0, CH1)
    assert [r[0] for r in _csv(path)[1:]] == ["Participant 8"]
    text = "\n".join(lines)
    assert "1 of 3" in text and "alice: no Moodle id" in text and "Bo_9: written answers still to grade" in text


def test_refresh_recomputes_the_penalty_and_the_export_after_a_total_changed(tmp_path):
    z = tmp_path / "moodle.zip"
    _moodle_zip(z, True)
    (tmp_path / "work").mkdir()
    subs = intake.read_submissions(z, tmp_path / "work", CH1, ROOT)
    for s in subs:
        s.submitted = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc).timestamp()  # 1 started day late
    out = _graded(tmp_path, subs, "moodle", policy=make_policy("2026-12-01T23:59+01:00", 0.1))
    settings = json.loads((out / lms.SETTINGS).read_text("utf-8"))
    assert settings["format"] == "moodle" and settings["due"] == "2026-12-01T23:59:00+01:00"
    assert _csv(out / "moodle_grades.csv")[1][4] == "17.5"
    rows = _csv(out / "grades.csv")
    col = {h: i for i, h in enumerate(rows[0])}
    rows[1][col["total"]] = "24"  # what an import of manual scores does to a total
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    lines = lms.refresh_grades(out)
    rows = _csv(out / "grades.csv")
    assert rows[1][col["late_penalty"]] == "2.5" and rows[1][col["total_after_penalty"]] == "21.5"
    sheet = _csv(out / "moodle_grades.csv")
    assert sheet[1][:2] == ["Participant 1002", "Renée Réf"] and sheet[1][4] == "21.5"
    assert lines and lines[0].startswith("Moodle export")


def test_grades_csv_is_plain_utf8_and_names_are_spreadsheet_safe(tmp_path):
    entries = tmp_path / "class"
    (entries / "=HYPERLINK(1)_5_assignsubmission_file_").mkdir(parents=True)
    (entries / "=HYPERLINK(1)_5_assignsubmission_file_" / f"{CH1}.ipynb").write_bytes(RELEASE)
    subs = intake.collect(entries, CH1, {CH1: {"ch1_embed"}})
    out = _graded(tmp_path, subs, "moodle")
    raw = (out / "grades.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    row = _csv(out / "grades.csv")[1]
    assert row[0] == "'=HYPERLINK(1)_5" and row[5] == "'=HYPERLINK(1)"  # shown as text by a spreadsheet
    assert _csv(out / "moodle_grades.csv")[1][1] == "=HYPERLINK(1)"  # the LMS gets the name as it is
    lms.refresh_grades(out)  # rebuilt from grades.csv: the guard is taken off again
    assert _csv(out / "moodle_grades.csv")[1][:2] == ["Participant 5", "=HYPERLINK(1)"]
