"""The gradebook keeps everything: a grader killed with SIGKILL resumes where it stopped, every
submission is exported, and manual grades survive a regrade."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.course import ROOT
from autograder.export import export_rows
from autograder.gradebook import Gradebook, database_url
from autograder.model import GradeOptions, PartResult, Result
from autograder.mutants import mutants_of
from autograder.orchestrate import grade_folder
from tests.conftest import student_notebook, to_bytes

LAB = "lab01_tokenizers"
FAST = GradeOptions(answer_timeout=5, test_timeout=40)
EXPECTED = {"alice": ("graded", 45), "bob": ("graded", 0), "carol": ("graded", 35), "erin": ("invalid", 0)}


def read_csv(path: Path) -> dict[str, dict]:
    return {row["student"]: row for row in csv.DictReader(open(path, encoding="utf-8"))}


def write_submissions(folder: Path, answers: dict[str, str]) -> None:
    """alice: the solution; bob: the blank release; carol: one wrong answer; erin: a folder, no notebook."""
    enc = next(m for m in mutants_of(LAB) if m.name == "encode_frequency_order").cells["encode"]
    folder.mkdir(parents=True, exist_ok=True)
    for student, ans in {"alice": answers, "bob": {}, "carol": {**answers, "encode": enc}}.items():
        (folder / f"{student}.ipynb").write_bytes(to_bytes(student_notebook(LAB, ans)))
    (folder / "erin").mkdir(exist_ok=True)


def fake_result(student: str, sha: str, score: float, status: str = "graded") -> Result:
    parts = [PartResult("a_tests", 5, min(score, 5), "passed" if score >= 5 else "failed", output="printed",
                        answer_id="a", seed=1234),
             PartResult("b_tests", 10, max(score - 5, 0), "passed" if score >= 15 else "failed", reason="why\nmore",
                        answer_id="b", seed=1235)]
    return Result(student, "labX", f"/sub/{student}.ipynb", sha, status=status, parts=parts, notes=["a note"],
                  answers={"a": "def a(): pass"})


def exercise_gradebook(url: str) -> list[dict]:
    """Everything the gradebook promises, on any backend; returns the exported rows for comparison."""
    with Gradebook(url) as book:
        for s, sha in [("ann", "1" * 64), ("ben", "2" * 64), ("cat", "3" * 64), ("ann", "4" * 64)]:
            book.record_submission(s, "labX", sha, f"/sub/{s}.ipynb", f"/archive/{sha}.ipynb")
            time.sleep(0.002)  # ann's second submission is seen later: it is her latest
        book.record_submission("ben", "labX", "2" * 64, "/sub/ben.ipynb", "/archive/ben")  # seen again
        book.record_result(fake_result("ann", "1" * 64, 15))  # her old submission
        book.record_result(fake_result("ann", "4" * 64, 7))
        book.record_result(fake_result("ben", "2" * 64, 15, status="infrastructure-error"))
        book.record_result(fake_result("ben", "2" * 64, 15))  # a regrade replaces the row
        book.add_manual("ann", "labX", "b_tests", 3, "partial credit", "ta1")
        book.add_manual("ann", "labX", "late", -1, "one day late", "ta2")
        book.add_manual("ann", "labX", "b_tests", 2, "on reflection", "ta1")  # the latest counts
        book.add_manual("dan", "labX", "late", 0, "excused", "ta2")  # no submission, still listed
        header, rows = export_rows(book, "labX")
        stored = book.results("labX")
        assert len(stored) == 3 and stored[("ben", "2" * 64)].status == "graded"
        back = stored[("ann", "4" * 64)]
        assert (back.score, back.max_score, back.notes, back.answers) == (7, 15, ["a note"], {"a": "def a(): pass"})
        assert [p.seed for p in back.parts] == [1234, 1235] and back.parts[0].output == "printed"
    rows = {r["student"]: r for r in rows}
    assert header[:7] == ["student", "lab", "status", "score", "max_score", "manual", "total"]
    assert set(rows) == {"ann", "ben", "cat", "dan"}
    assert (rows["ann"]["sha256"], rows["ann"]["score"], rows["ann"]["manual"], rows["ann"]["total"]) == (
        "4" * 64, "7", "1", "8")
    assert "b_tests: +2 on reflection (ta1" in rows["ann"]["manual_notes"] and "late: -1" in rows["ann"]["manual_notes"]
    assert (rows["ben"]["status"], rows["ben"]["total"], rows["ben"]["a_tests"], rows["ben"]["b_tests"]) == (
        "graded", "15", "5", "10")
    assert rows["cat"]["status"] == "not graded" and rows["dan"]["status"] == "no submission"
    return [{k: v for k, v in r.items() if k not in ("graded_at", "manual_notes")} for r in rows.values()]


def test_gradebook_semantics_sqlite(tmp_path):
    exercise_gradebook(database_url(None, tmp_path))


def test_database_urls(tmp_path):
    assert database_url(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/gradebook.sqlite"
    assert database_url("postgresql://u:p@127.0.0.1:5433/g", tmp_path) == "postgresql+psycopg://u:p@127.0.0.1:5433/g"
    assert database_url(str(tmp_path / "x.db"), tmp_path) == f"sqlite:///{tmp_path.resolve()}/x.db"


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, lab01_answers):
    """Grade with the real command, SIGKILL it once two results are saved, then run it again."""
    folder, out = tmp_path_factory.mktemp("subs"), tmp_path_factory.mktemp("out")
    write_submissions(folder, lab01_answers)
    cmd = [sys.executable, "-m", "autograder", "grade", LAB, str(folder), "--out", str(out), "--jobs", "1",
           "--timeout", "40"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db, before, deadline = out / "gradebook.sqlite", {}, time.monotonic() + 300
    try:
        while len(before) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
            if db.exists():
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    try:
                        before = dict(conn.execute("SELECT student, graded_at FROM autograde").fetchall())
                    except sqlite3.OperationalError:  # the tables are being created
                        pass
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the grader and its worker processes, like a crash
        proc.wait()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:  # what was saved when it died
        before = dict(conn.execute("SELECT student, graded_at FROM autograde").fetchall())
    assert proc.returncode == -signal.SIGKILL and 2 <= len(before) < 4, (proc.returncode, before)
    archived = sorted(p.name for p in (out / "archive").glob("*.ipynb"))
    with Gradebook.open(None, out) as book:
        seen = {s.student for s in book.submissions(LAB)}
    t0 = time.time()
    results = grade_folder(LAB, folder, out, jobs=2, options=FAST, progress=False)
    return {"folder": folder, "out": out, "before": before, "archived": archived, "seen": seen,
            "results": {r.student: r for r in results}, "resumed_at": t0}


@pytest.mark.slow  # runs the grader, kills it and runs it again
def test_everything_is_archived_and_recorded_before_grading(killed_and_resumed):
    k = killed_and_resumed
    assert k["seen"] == set(EXPECTED)  # all four submissions were in the gradebook when it was killed
    assert len(k["archived"]) == 4
    with Gradebook.open(None, k["out"]) as book:
        for s in book.submissions(LAB):
            assert Path(s.archived_path).is_file() and Path(s.archived_path).stem == s.sha256


@pytest.mark.slow  # runs the grader, kills it and runs it again
def test_resume_grades_only_what_is_missing(killed_and_resumed):
    k = killed_and_resumed
    with Gradebook.open(None, k["out"]) as book:
        after = {s: t for (s, _), t in book.graded_at(LAB).items()}
    assert set(after) == set(EXPECTED)
    for student, t in k["before"].items():
        assert after[student] == t, f"{student} was graded again"
    resumed = datetime.fromtimestamp(k["resumed_at"], UTC).isoformat(timespec="microseconds")
    for student in set(EXPECTED) - set(k["before"]):
        assert after[student] > resumed  # graded by the second run
    got = {s: (r.status, r.score) for s, r in k["results"].items()}
    assert got == EXPECTED
    rows = read_csv(k["out"] / "grades.csv")
    assert {s: (r["status"], float(r["score"])) for s, r in rows.items()} == EXPECTED
    assert all((k["out"] / "feedback" / f"{s}.html").is_file() for s in EXPECTED)


@pytest.mark.slow  # runs the grader, kills it and runs it again
def test_a_third_run_grades_nothing(killed_and_resumed):
    k = killed_and_resumed
    with Gradebook.open(None, k["out"]) as book:
        before = book.graded_at(LAB)
        grade_folder(LAB, k["folder"], k["out"], jobs=2, options=FAST, progress=False)
        assert book.graded_at(LAB) == before


@pytest.mark.slow  # runs the grader, kills it and runs it again
def test_regrade_keeps_manual_grades_and_export_adds_them(killed_and_resumed, capsys):
    out = killed_and_resumed["out"]
    with Gradebook.open(None, out) as book:
        book.add_manual("alice", LAB, "encode_tests", -2, "hard-coded the vocabulary size", "ta1")
        book.add_manual("alice", LAB, "late", -5, "two days late", "ta2")
        book.add_manual("carol", LAB, "encode_tests", 4, "right idea", "ta1")
        old = book.graded_at(LAB)
    assert main(["regrade", LAB, "alice", "--out", str(out), "--timeout", "40"]) == 0
    with Gradebook.open(None, out) as book:
        new = book.graded_at(LAB)
        manual = book.manual(LAB)
    alice = next(k for k in old if k[0] == "alice")
    assert new[alice] > old[alice] and {k: t for k, t in new.items() if k != alice} == {
        k: t for k, t in old.items() if k != alice}
    assert {g: m.points for g, m in manual["alice"].items()} == {"encode_tests": -2, "late": -5}
    assert main(["export", LAB, "--out", str(out)]) == 0
    rows = read_csv(out / "grades.csv")
    assert set(rows) == set(EXPECTED)
    assert (rows["alice"]["score"], rows["alice"]["manual"], rows["alice"]["total"]) == ("45", "-7", "38")
    assert (rows["carol"]["score"], rows["carol"]["total"]) == ("35", "39")
    assert "two days late" in rows["alice"]["manual_notes"]
    assert "alice: graded 45/45" in capsys.readouterr().out


@pytest.mark.slow  # runs the grader, kills it and runs it again
def test_regrade_unknown_student_is_an_error(killed_and_resumed, capsys):
    assert main(["regrade", LAB, "nobody", "--out", str(killed_and_resumed["out"])]) == 2
    assert "no submission" in capsys.readouterr().err
