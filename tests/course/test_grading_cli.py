"""The `release` and `grade` subcommands: wiring, bad invocations, input layouts (fast)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import zipfile

import nbformat
import pytest

from conftest import CH1, ROOT, tree_hashes
from induction_course.course.grading import cli as grading_cli
from induction_course.course.grading import intake, notebooks


def _run(argv, capsys):
    from induction_course.course import cli

    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_subcommands_registers_release_and_grade():
    parser = argparse.ArgumentParser()
    grading_cli.add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grade", CH1, "subs", "--out", "o"])
    assert args.func is grading_cli.cmd_grade and args.chapter == CH1 and args.out == "o"
    args = parser.parse_args(["release", "--check"])
    assert args.func is grading_cli.cmd_release and args.check


def test_unknown_chapter_is_one_clear_line(tmp_path, capsys):
    code, out, err = _run(["grade", "99_nope", str(tmp_path), "--out", str(tmp_path / "o"), "--root", str(ROOT)], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown chapter '99_nope'" in err and CH1 in err
    assert "Traceback" not in err


def test_missing_submissions_is_one_clear_line(tmp_path, capsys):
    code, _, err = _run(["grade", CH1, str(tmp_path / "missing"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "submissions not found" in err and "Traceback" not in err


def test_a_file_that_is_not_a_zip_is_refused(tmp_path, capsys):
    f = tmp_path / "subs.txt"
    f.write_text("hello")
    code, _, err = _run(["grade", CH1, str(f), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "neither a folder nor a zip" in err


def test_out_inside_the_submissions_is_refused(tmp_path, capsys):
    code, _, err = _run(["grade", CH1, str(tmp_path), "--out", str(tmp_path / "graded")], capsys)
    assert code == 2 and "inside the submissions" in err
    assert not (tmp_path / "graded").exists()


def test_corrupt_zip_is_one_clear_line(tmp_path, capsys):
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("alice.ipynb", "{}")
    data = bytearray(z.read_bytes())
    data[10:40] = b"\0" * 30  # damage the local header
    z.write_bytes(bytes(data))
    out = tmp_path / "o"
    code, _, err = _run(["grade", CH1, str(z), "--out", str(out), "--root", str(ROOT)], capsys)
    assert "Traceback" not in err
    if code == 2:
        assert "zip" in err
    else:  # the central directory survived: the damaged member is a zero with a reason
        assert code == 0
        assert "could not be extracted" in (out / "report.txt").read_text()
        assert (out / "grades.csv").read_text().splitlines()[1].startswith("alice,")


def test_release_and_grade_are_in_the_cli_help(capsys):
    from induction_course.course import cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "release" in out and "grade" in out


# ------------------------------------------------------------------ collecting submissions
@pytest.fixture(scope="module")
def ids():
    return notebooks.chapter_grade_ids(ROOT)


def _release_copy(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((ROOT / "chapters" / CH1 / f"{CH1}.ipynb").read_bytes())


def test_folder_of_folders_picks_the_chapter_notebook(tmp_path, ids):
    _release_copy(tmp_path / "alice" / "work" / f"{CH1}.ipynb")
    (tmp_path / "alice" / "notes.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    _release_copy(tmp_path / "bob" / "mine.ipynb")
    _release_copy(tmp_path / "bob" / ".ipynb_checkpoints" / "mine-checkpoint.ipynb")
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "answers.docx").write_bytes(b"PK")
    _release_copy(tmp_path / "dave" / "a.ipynb")
    _release_copy(tmp_path / "dave" / "b.ipynb")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    subs = {s.student: s for s in intake.collect(tmp_path, CH1, ids)}
    assert sorted(subs) == ["alice", "bob", "carol", "dave"]
    assert subs["alice"].problem is None and subs["alice"].origin == f"alice/work/{CH1}.ipynb"
    assert subs["bob"].problem is None and subs["bob"].origin == "bob/mine.ipynb"
    assert "no notebook" in subs["carol"].problem and "answers.docx" in subs["carol"].problem
    assert "several notebooks" in subs["dave"].problem


def test_duplicate_student_is_reported_and_graded_once(tmp_path, ids):
    _release_copy(tmp_path / "alice.ipynb")
    _release_copy(tmp_path / "alice" / "x.ipynb")
    subs = intake.collect(tmp_path, CH1, ids)
    graded = [s for s in subs if not s.ignored]
    ignored = [s for s in subs if s.ignored]
    assert [s.student for s in graded] == ["alice"]
    assert len(ignored) == 1 and "second submission" in ignored[0].problem


def test_student_ids_are_safe_and_unique(tmp_path, ids):
    _release_copy(tmp_path / "Jane Doe.ipynb")
    _release_copy(tmp_path / "Jane_Doe.ipynb")
    _release_copy(tmp_path / "Zoë.ipynb")
    subs = intake.collect(tmp_path, CH1, ids)
    nb_ids = [s.nbgrader_id for s in subs]
    assert len(set(i.lower() for i in nb_ids)) == 3
    assert all(i.replace("_", "").replace("-", "").isalnum() and i.isascii() for i in nb_ids)


def test_zip_paths_cannot_escape(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../escaped.ipynb", "{}")
        zf.writestr("/abs.ipynb", "{}")
        zf.writestr("__MACOSX/alice.ipynb", "{}")
        zf.writestr("alice/alice.ipynb", "{}")
    dest = tmp_path / "x"
    dest.mkdir()
    intake.safe_extract(z, dest)
    assert not (tmp_path / "escaped.ipynb").exists()
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.ipynb")) == ["alice/alice.ipynb"]


@pytest.mark.parametrize("content,phrase", [
    (b"\x89PNG\r\n\x1a\n\0\0", "not valid JSON"),
    (b'{"cells": [', "not valid JSON"),
    (b"[1, 2, 3]", "not a Jupyter notebook"),
    (json.dumps({"cells": [{"cell_type": "bogus"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode(),
     "not a valid Jupyter notebook"),
])
def test_load_submission_explains_what_is_wrong(tmp_path, ids, content, phrase):
    p = tmp_path / "x.ipynb"
    p.write_bytes(content)
    nb, problem = intake.load_submission(p, CH1, ids)
    assert nb is None and phrase in problem


def test_class_of_only_bad_files_is_graded_without_a_kernel(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "erin.txt").write_text("my answers")
    (subs / "dave.ipynb").write_text('{"cells": [')
    before = tree_hashes(subs)
    code, out, _ = _run(["grade", CH1, str(subs), "--out", str(tmp_path / "o"), "--root", str(ROOT)], capsys)
    assert code == 0
    assert "erin: 0 / 29" in out and "dave: 0 / 29" in out  # 25 autograded, 4 by hand
    csv_text = (tmp_path / "o" / "grades.csv").read_text().splitlines()
    assert csv_text[0].startswith("student,ch1_embed,") and csv_text[0].endswith(",total,max,manual_grading")
    assert [ln.split(",")[0] for ln in csv_text[1:]] == ["dave", "erin"]
    assert tree_hashes(subs) == before


def test_files_a_run_cannot_read_are_found(tmp_path):
    from induction_course.course.grading.sandbox import SandboxPlan, unreadable_by_runs

    top = tmp_path / "top"
    top.mkdir()
    (top / "sub").mkdir()
    (top / "sub" / "open.json").write_text("{}")
    (top / "sub" / "closed.safetensors").write_text("x")
    (top / "sub" / "closed.safetensors").chmod(0o600)
    top.chmod(0o755)
    as_root = SandboxPlan(bwrap="/usr/bin/bwrap", as_root=True)
    assert unreadable_by_runs(as_root, [top]) == [top / "sub" / "closed.safetensors"]
    (top / "sub").chmod(0o700)
    assert top / "sub" in unreadable_by_runs(as_root, [top])
    # runs that keep the grader's uid, or no sandbox: the grader's own permissions apply
    assert unreadable_by_runs(SandboxPlan(bwrap="/usr/bin/bwrap", as_root=False), [top]) == []
    assert unreadable_by_runs(SandboxPlan(), [top]) == []


def test_data_only_its_owner_may_read_is_one_clear_line(tmp_path, capsys, monkeypatch):
    from induction_course import paths
    from induction_course.course.grading.sandbox import find_bwrap

    if find_bwrap() is None or os.geteuid() != 0:
        pytest.skip("only a root grader with bubblewrap gives the runs uids of their own")
    data = tmp_path / "data"
    shutil.copytree(paths.data_dir(), data)
    (data / "checkpoints" / "eval_set.safetensors").chmod(0o600)
    monkeypatch.setattr(paths, "data_dir", lambda: data)
    subs = tmp_path / "subs"
    subs.mkdir()
    code, out, err = _run(["grade", CH1, str(subs), "--out", str(tmp_path / "o"), "--root", str(ROOT)], capsys)
    assert code == 2 and "Traceback" not in err
    assert "eval_set.safetensors (mode 0600)" in err and f"chmod -R a+rX {data}" in err
    assert not (tmp_path / "o" / "grades.csv").exists()
