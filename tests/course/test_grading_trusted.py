"""The trusted check: hidden tests replayed outside the student's kernel and judged by the grader.

Fast tests run the producer (the student's side) on notebooks and the verifier (the grader's
side) on what it recorded, without nbgrader; ``test_grading_cheats.py`` grades a whole class.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from induction_course.course.grading.hidden_plan import hidden_calls, plan_calls, trusted_plan
from induction_course.course.grading.notebooks import source_notebook
from induction_course.course.grading.producer import produce, solution_sources
from induction_course.course.grading.trusted import read_answers
from induction_course.course.checks.contract import kind_problem
from induction_course.course.grading.verify import verify

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ["01_build_transformer", "02_training", "03_finding_heads", "04_metrics", "05_ablations"]


_PLANS: dict[str, dict] = {}


def _plan(chapter: str) -> dict:
    if chapter not in _PLANS:  # finding the forbidden functions runs every reference once: once per chapter
        _PLANS[chapter] = trusted_plan(chapter, source_notebook(ROOT, chapter))
    return _PLANS[chapter]


def _notebook(chapter: str, where: str = "solutions") -> dict:
    return json.loads((ROOT / where / chapter / f"{chapter}.ipynb").read_text(encoding="utf-8"))


def _verdicts(chapter: str, nb: dict, record: dict | None) -> dict:
    return verify(_plan(chapter), record, solution_sources(nb))


def _produce_in_subprocess(tmp_path: Path, chapter: str, nb: dict) -> dict | None:
    """The producer as the grader starts it (a fresh interpreter: cheats cannot reach the test)."""
    (tmp_path / "plan.json").write_text(json.dumps(_plan(chapter)), encoding="utf-8")
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    out = tmp_path / "answers.pt"
    subprocess.run([sys.executable, "-m", "induction_course.course.grading.producer", str(tmp_path / "plan.json"),
                    str(tmp_path / "nb.ipynb"), str(out), "600"], cwd=tmp_path, timeout=600, check=False)
    return read_answers(out) if out.exists() else None


def _with_cells(nb: dict, sources: dict[str, str]) -> dict:
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell["source"] = sources[gid]
    return nb


# ------------------------------------------------------------------------------ the plan
def test_plan_has_every_hidden_test_of_every_chapter():
    for chapter in CHAPTERS:
        pristine = source_notebook(ROOT, chapter)
        plan = _plan(chapter)
        checks = importlib.import_module(plan["checks"]).CHECKS
        graded = [c for c in pristine.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
        with_hidden = [c.metadata["nbgrader"]["grade_id"] for c in graded if "BEGIN HIDDEN TESTS" in c.source]
        assert sorted(plan["calls"]) == sorted(with_hidden), chapter
        for calls in plan["calls"].values():
            assert calls and all(c["exercise"] in checks.exercises for c in calls)
        assert plan["setup"] and all("import" in s for s in plan["setup"])


@pytest.mark.parametrize("block", [
    "assert embed(t, W).shape == (2, 3)",  # runs nowhere now: the kernel gets no hidden tests
    "checks.check_embed(embed)",
    "for s in range(2):\n    print(checks.compare_with_reference('embed', embed, seed=s))",
])
def test_a_hidden_block_the_trusted_check_cannot_replay_is_refused(block):
    with pytest.raises(ValueError, match="cannot replay"):
        hidden_calls(f"x = 1\n### BEGIN HIDDEN TESTS\n{block}\n### END HIDDEN TESTS\n")
    loop = "for s in range(3):\n    checks.compare_with_reference('embed', embed, seed=s, batch=2)"
    assert len(hidden_calls(f"### BEGIN HIDDEN TESTS\n{loop}\n### END HIDDEN TESTS\n")) == 3


def test_hidden_calls_unrolls_loops_and_rejects_non_names():
    src = ("x = 1\n### BEGIN HIDDEN TESTS\nfor seed in (1, 2):\n"
           "    checks.compare_with_reference('embed', embed, seed=seed, batch=seed + 1)\n### END HIDDEN TESTS\n")
    calls = hidden_calls(src)
    assert [(c.exercise, c.function, c.seed, c.sizes) for c in calls] == [
        ("embed", "embed", 1, {"batch": 2}), ("embed", "embed", 2, {"batch": 3})]
    with pytest.raises(ValueError):
        hidden_calls("### BEGIN HIDDEN TESTS\nchecks.compare_with_reference('embed', lambda t: t, seed=1)\n"
                     "### END HIDDEN TESTS\n")


# ------------------------------------------------------------------ right answers pass
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_solutions_pass_the_trusted_check(chapter):
    nb = _notebook(chapter)
    record = produce(_plan(chapter), nb)
    assert record["cell_errors"] == []
    failed = {g: v.reasons for g, v in _verdicts(chapter, nb, record).items() if not v.passed}
    assert failed == {}


def test_blank_notebook_fails_every_cell_and_no_record_fails_everything():
    nb = _notebook("04_metrics", "chapters")
    verdicts = _verdicts("04_metrics", nb, produce(_plan("04_metrics"), nb))
    assert verdicts and not any(v.passed for v in verdicts.values())
    assert all("NotImplementedError" in v.reasons[0] for v in verdicts.values())
    lost = _verdicts("04_metrics", _notebook("04_metrics"), None)
    assert not any(v.passed for v in lost.values()) and "no answer reached the grader" in next(iter(lost.values())).reasons[0]


# -------------------------------------------------------------------------- the contract
def test_kinds_of_answers():
    assert kind_problem(torch.tensor(0.5), 0.5).startswith("returned a tensor where the exercise asks for a Python number")
    assert "integer tensor" in kind_problem(torch.zeros(2), torch.zeros(2, dtype=torch.long))
    assert kind_problem((1.0,), (1.0, 2.0)) is not None
    assert kind_problem(0.5, 0.25) is None and kind_problem(torch.ones(2), torch.zeros(3)) is None  # values: compare's job


CONTRACT_BREAKERS = {
    # a tensor where a float is asked for (chapter 2's ICL score)
    "ch2_icl_score": ("02_training", "icl_score", "import torch\nfrom induction_course import metrics as _m\n"
                      "def icl_score(per_token_loss):\n    n = per_token_loss.shape[1] + 1\n"
                      "    e, l = round(50 * n / 512), round(500 * n / 512)\n"
                      "    return per_token_loss[:, l - 1].mean() - per_token_loss[:, e - 1].mean()\n",
                      "a tensor where the exercise asks for a Python number"),
    # ignores the generator: global random state (same seed, different batches)
    "ch2_batch": ("02_training", "sample_batch", "import torch\n"
                         "def sample_batch(stream, batch_size, n_ctx, bos, generator):\n"
                         "    starts = torch.randint(0, stream.numel() - n_ctx + 2, (batch_size,))\n"
                         "    idx = starts[:, None] + torch.arange(n_ctx - 1)\n"
                         "    return torch.cat([torch.full((batch_size, 1), bos), stream[idx]], 1)\n",
                         "different"),
}


@pytest.mark.parametrize("gid", sorted(CONTRACT_BREAKERS))
def test_contract_breakers_lose_their_points(tmp_path, gid):
    chapter, _, source, reason = CONTRACT_BREAKERS[gid]
    nb = _with_cells(_notebook(chapter), {gid + "_code": source})
    verdicts = _verdicts(chapter, nb, _produce_in_subprocess(tmp_path, chapter, nb))
    assert not verdicts[gid].passed and reason in " ".join(verdicts[gid].reasons), verdicts[gid].reasons
    assert all(v.passed for g, v in verdicts.items() if g != gid)


def test_an_answer_that_changes_its_input_in_place_loses_its_points(tmp_path):
    src = ("import torch\ndef apply_causal_mask(scores):\n    n = scores.shape[-1]\n"
           "    scores.masked_fill_(torch.ones(n, n, dtype=torch.bool).triu(1), float('-inf'))\n    return scores\n")
    nb = _with_cells(_notebook("01_build_transformer"), {"ch1_causal_mask_code": src})
    verdicts = _verdicts("01_build_transformer", nb, _produce_in_subprocess(tmp_path, "01_build_transformer", nb))
    assert not verdicts["ch1_causal_mask"].passed
    assert "in place" in " ".join(verdicts["ch1_causal_mask"].reasons)


# --------------------------------------------------------------- the wrong-answer catalogue
TAGS = {"ch01": "01_build_transformer", "ch02": "02_training", "ch03": "03_finding_heads", "ch04": "04_metrics",
        "ch05": "05_ablations"}


def trusted_verdict(checks, calls, fn) :
    """The grader's verdict on ``fn`` for one grade cell, produced in this process (trusted code)."""
    from induction_course.course.grading.hidden_plan import NEEDS_GRAD
    from induction_course.course.grading.producer import call_once, properties
    from induction_course.course.grading.reference_use import Monitor
    from induction_course.course.grading.verify import Verdict, check_call

    v = Verdict()
    for call in calls:
        spec, grad = call.to_json(), call.exercise in NEEDS_GRAD
        rec = call_once(checks, spec, fn, Monitor(), grad)
        rec["again"] = call_once(checks, spec, fn, Monitor(), grad).get("output")
        rec["properties"] = properties(checks, spec, fn)
        check_call(checks, call, rec, v)
        if not v.passed:  # one failed hidden test costs the cell: the rest need not run
            break
    return v


@pytest.mark.parametrize("tag", sorted(TAGS))
def test_every_catalogued_wrong_answer_fails_the_trusted_check(tag):
    """Each entry of graders/wrong_answers/chNN.py (and its TRUSTED_ONLY list: contract breaks the
    kernel's checks cannot see) loses its points in the grader's own judgement."""
    from chapter_harness import load_wrong_answers

    cat = load_wrong_answers(tag)
    plan = _plan(TAGS[tag])
    checks = importlib.import_module(plan["checks"]).CHECKS
    calls = plan_calls(plan)
    entries = [*cat.WRONG_ANSWERS, *getattr(cat, "TRUSTED_ONLY", [])]
    passed = [f"{w.grade_id}: {w.why}" for w in entries if trusted_verdict(checks, calls[w.grade_id], w.fn).passed]
    assert passed == []
    print(f"{tag}: {len(entries)} wrong answers rejected by the trusted check")


# ------------------------------------------------------------------ limits under load
def test_a_timed_out_student_is_graded_again_alone(monkeypatch):
    """A time limit hit while the class shared the CPU costs nothing: the student is graded once
    more, alone with every core, and the better run counts (report line)."""
    from induction_course.course.grading import autograde
    from induction_course.course.grading.student_run import GradeTask

    seen = []

    def fake_grade_one(task):
        seen.append(task.threads)
        return {"student": task.student, "seconds": 1.0, "problem": None, "scores": {"a": 2.0}, "notes": []}

    monkeypatch.setattr(autograde, "grade_one", fake_grade_one)
    monkeypatch.setattr(autograde, "default_jobs", lambda: 8)
    task = GradeTask("ann", "ann", None, Path("."), Path("."), Path("."), "ch", 10, 1024, 1, ())
    slow = {"student": "ann", "seconds": 9.0, "problem": None, "scores": {"a": 0.0},
            "notes": ["a cell was stopped at the 10 s time limit"]}
    run = autograde._ClassRun(Path("."), "ch", Path("."), Path("log"), 2, 10, 1024, say=lambda line: None)
    out = autograde._retry_timeouts(run, [task], {"ann": slow})
    assert seen == [8] and out["ann"]["scores"] == {"a": 2.0}
    assert "graded again alone; the second run counts" in out["ann"]["notes"][-1]
    fine = {"student": "ann", "seconds": 9.0, "problem": None, "scores": {"a": 2.0}, "notes": []}
    assert autograde._retry_timeouts(run, [task], {"ann": fine})["ann"] is fine and seen == [8]


# ------------------------------------------------------------------ the static checks
def test_static_checks_see_through_magics_and_spare_ordinary_names():
    """A magic in the cell hides no reference call; a student's own ``verify`` or ``producer``
    is no tampering; importing the grader or switching off the profile hook is."""
    from induction_course.course.grading.verify import static_findings

    plan = _plan("01_build_transformer")
    checks = importlib.import_module(plan["checks"]).CHECKS
    cheat = "%matplotlib inline\nfrom induction_course.functional import embed as e\ndef embed(t, W):\n    return e(t, W)\n"
    honest = "def verify(x):\n    producer = x\n    return producer\ndef embed(tokens, W_E):\n    return W_E[tokens]\n"
    uses, tampering = static_findings([cheat], plan, checks)
    assert uses["ch1_embed"] == ["functional.embed"] and tampering == []
    uses, tampering = static_findings([honest], plan, checks)
    assert uses["ch1_embed"] == [] and tampering == []
    _, tampering = static_findings(["import sys\nsys.setprofile(None)\nfrom induction_course.course import grading\n"],
                                   plan, checks)
    assert set(tampering) == {"setprofile", "induction_course.course.grading"}


def test_student_kernels_get_the_visible_tests_only(tmp_path):
    """With the trusted check on, the gradebook a student's kernel runs from holds no hidden test
    (they are replayed outside it): every grade cell with hidden tests gets its release source,
    with nbgrader's own checksum, so an untouched release cell is left alone by OverwriteCells
    and an edited one is restored to the visible tests."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.utils import compute_checksum

    from induction_course.course.grading.course_dir import COURSE_ID, base_course, drop_hidden_tests

    chapter = CHAPTERS[0]
    release = base_course(ROOT, chapter, tmp_path / "base", tmp_path / "log")
    changed = drop_hidden_tests(tmp_path / "base", chapter, release)
    assert sorted(changed) == sorted(_plan(chapter)["calls"])
    released = {c.metadata["nbgrader"]["grade_id"]: c for c in release.cells if "grade_id" in c.metadata.get("nbgrader", {})}
    with Gradebook(f"sqlite:///{tmp_path / 'base' / 'gradebook.db'}", COURSE_ID) as gb:
        cells = {c.name: (c.source, c.checksum) for c in gb.find_notebook(chapter, chapter).source_cells}
    assert not any("HIDDEN" in src or "compare_with_reference" in src for src, _ in cells.values())
    for gid in changed:
        assert cells[gid] == (released[gid].source, compute_checksum(released[gid]))
        edited = nbformat.from_dict(json.loads(json.dumps(released[gid])))
        edited.source = "pass"
        assert compute_checksum(edited) != cells[gid][1]  # an edited cell is restored


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_preloaded_modules_exist(chapter):
    """The kernel launcher (and the class's zygote) import these once for the kernel and the
    trusted check; a misspelt name would be skipped there without a word."""
    import importlib.util

    from induction_course.course.grading.hidden_plan import preload_modules

    modules = preload_modules(chapter)
    assert "torch" in modules and f"induction_course.course.checks.ch{chapter[:2]}" in modules
    assert [m for m in modules if importlib.util.find_spec(m) is None] == []
