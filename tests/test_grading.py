"""Grading a sample folder: every kind of submission keeps a row, with the right score and status."""

import csv
import html
import json

import nbformat
import pytest

from autograder.__main__ import main
from autograder.course import source_notebook
from autograder.feedback import STYLE
from autograder.grade import grade_notebook
from autograder.model import GradeOptions, Status
from autograder.mutants import mutants_of
from autograder.orchestrate import grade_folder
from tests.conftest import student_notebook, to_bytes

LAB = "lab01_tokenizers"
FAST = GradeOptions(answer_timeout=5, test_timeout=40)


def _with(answers, **changes):
    return {**answers, **changes}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, lab01_answers):
    folder = tmp_path_factory.mktemp("submissions")
    enc = next(m for m in mutants_of(LAB) if m.name == "encode_frequency_order").cells["encode"]
    cases = {
        "correct": lab01_answers,
        "blank": {},
        "wrong": _with(lab01_answers, encode=enc),
        "infinite_loop": _with(lab01_answers, merge="while True:\n    pass"),
        "ignores_interrupts": _with(lab01_answers, wordpiece_encode=(
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")),
        "os_exit": _with(lab01_answers, decode="import os\nos._exit(1)"),
        "warning_only": _with(lab01_answers, count_pairs=(
            "import sys, warnings\nwarnings.warn('this is only a warning')\n"
            "print('debug output', file=sys.stderr)\n" + lab01_answers["count_pairs"])),
    }
    for name, answers in cases.items():
        (folder / f"{name}.ipynb").write_bytes(to_bytes(student_notebook(LAB, answers)))
    (folder / "invalid_json.ipynb").write_bytes(to_bytes(student_notebook(LAB, lab01_answers))[:5000])
    deleted = student_notebook(LAB, lab01_answers)
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "encode_tests"]
    (folder / "deleted_test_cell.ipynb").write_bytes(to_bytes(deleted))
    stripped = student_notebook(LAB, lab01_answers)
    for c in stripped.cells:
        if c.metadata.get("nbgrader", {}).get("solution"):
            c.metadata = {}
    (folder / "stripped_metadata.ipynb").write_bytes(to_bytes(stripped))
    nested = folder / "dana" / LAB
    nested.mkdir(parents=True)
    (nested / f"{LAB}.ipynb").write_bytes(to_bytes(student_notebook(LAB, lab01_answers)))
    (folder / "erin").mkdir()  # a student folder with no notebook at all
    out = tmp_path_factory.mktemp("out")
    results = grade_folder(LAB, folder, out, jobs=2, options=FAST, progress=False)
    return {r.student: r for r in results}, out


EXPECTED = {  # student: (status, score, statuses of parts that lose points)
    "correct": ("graded", 45, {}),
    "blank": ("graded", 0, {"count_pairs_tests": "failed", "merge_tests": "failed"}),
    "wrong": ("graded", 35, {"encode_tests": "failed"}),
    "infinite_loop": ("graded", 20, {"merge_tests": "timeout"}),
    "ignores_interrupts": ("graded", 35, {"wordpiece_tests": "timeout"}),
    "os_exit": ("graded", 40, {"decode_tests": "crashed"}),
    "warning_only": ("graded", 45, {}),
    "invalid_json": ("invalid", 0, {"count_pairs_tests": "missing"}),
    "deleted_test_cell": ("graded", 45, {}),
    "stripped_metadata": ("graded", 45, {}),
    "dana": ("graded", 45, {}),
    "erin": ("invalid", 0, {}),
}


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_sample_submission(graded, student):
    results, _ = graded
    status, score, part_status = EXPECTED[student]
    r = results[student]
    parts = [(p.grade_id, p.status, p.reason) for p in r.parts]
    assert (r.status, r.score, r.max_score) == (status, score, 45), (r.reason, parts)
    for gid, st in part_status.items():
        part = next(p for p in r.parts if p.grade_id == gid)
        assert part.status == st and part.points == 0 and part.reason


def test_no_submission_is_lost_and_csv_is_complete(graded):
    results, out = graded
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert {row["student"] for row in rows} == set(EXPECTED)
    assert len(list((out / "archive").glob("*.ipynb"))) >= 10
    assert all((out / "feedback" / f"{s}.html").is_file() for s in EXPECTED)


def test_similarity_report_of_the_folder(graded):
    """Every sample is built from the solution: the report pairs them and names the reference; the
    blank and the unreadable ones are never compared."""
    _, out = graded
    flags = {row["student"]: row["flags"] for row in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    assert "similar to the reference solution" in flags["correct"] and "similar to dana" in flags["correct"]
    assert "similar" not in flags["blank"] + flags["invalid_json"] + flags["erin"]
    assert "correct ~ dana" in (out / "similarity.html").read_text(encoding="utf-8") or \
        "dana ~ correct" in (out / "similarity.html").read_text(encoding="utf-8")


def test_feedback_never_shows_hidden_tests(graded):
    _, out = graded
    for page in (out / "feedback").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "BEGIN HIDDEN TESTS" not in text and "_hidden(" not in text


def test_notes_explain_unusual_submissions(graded):
    results, _ = graded
    assert any("lost its nbgrader metadata" in n for n in results["stripped_metadata"].notes)
    assert "not valid notebook JSON" in results["invalid_json"].reason


def test_regrading_is_deterministic(lab01_answers):
    wrong = _with(lab01_answers, wordpiece_encode="def wordpiece_encode(*a):\n    return []")
    raw = to_bytes(student_notebook(LAB, wrong))
    scores = {json.dumps([(p.grade_id, p.points) for p in grade_notebook(LAB, raw, "x", options=FAST).parts])
              for _ in range(2)}
    assert len(scores) == 1


WRITTEN = {"grade": True, "solution": True, "locked": False, "points": 4, "grade_id": "written_check",
           "schema_version": 3, "task": False}


def test_written_answer_is_kept_pending_then_graded_by_hand(tmp_path, monkeypatch, lab01_answers, capsys):
    """A manually graded markdown answer: stored, out of the autograde, `pending` in the CSV until
    `python -m autograder manual` gives its points; the feedback shows the text and the grade."""
    source = nbformat.read(source_notebook(LAB), as_version=4)
    source.cells.append(nbformat.v4.new_markdown_cell("Model answer and rubric", metadata={"nbgrader": WRITTEN}))
    path = tmp_path / "source.ipynb"
    nbformat.write(source, path)
    for where in ("autograder.grade.source_notebook", "autograder.course.source_notebook"):
        monkeypatch.setattr(where, lambda lab: path)
    nb = student_notebook(LAB, lab01_answers)
    text = "Merging the most frequent pair first **because** it shortens the corpus most."
    nb.cells.append(nbformat.v4.new_markdown_cell(text, metadata={"nbgrader": WRITTEN}))
    folder, out = tmp_path / "subs", tmp_path / "out"
    folder.mkdir()
    (folder / "alice.ipynb").write_bytes(to_bytes(nb))
    (r,) = grade_folder(LAB, folder, out, jobs=1, options=FAST, progress=False, pool="thread")
    part = next(p for p in r.parts if p.grade_id == "written_check")
    assert (part.manual, part.status, part.points, part.max_points) == (True, Status.PENDING, 0, 4)
    assert r.answers["written_check"] == text
    assert r.score == r.max_score == sum(p.max_points for p in r.parts if not p.manual) > 0
    row = next(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert (row["written_check"], row["total"]) == ("pending", f"{r.score:g}")
    feedback = (out / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "to be graded by your instructor" in feedback and html.escape(text) in feedback

    assert main(["manual", LAB, "alice", "written_check", "5", "--out", str(out)]) == 2  # over its 4 points
    assert "0 to 4 points" in capsys.readouterr().err
    assert main(["manual", LAB, "alice", "written_check", "3", "--out", str(out), "--comment", "clear"]) == 0
    row = next(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert (row["written_check"], row["manual"], row["total"]) == ("3", "3", f"{r.score + 3:g}")
    feedback = (out / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "graded by your instructor" in feedback and "3 / 4" in feedback and "clear" in feedback


def test_feedback_styles_every_status():
    for status in Status:
        assert f".{status}{{" in STYLE, f"feedback.py's CSS has no rule for {status}"


def test_an_exception_shows_the_call_that_raised_it(lab01_answers):
    """The reason names the student's function and describes its arguments (not the data), and the
    line of the answer cell that raised."""
    broken = _with(lab01_answers, merge="def merge(ids, pair, new_id):\n    return [ids[len(ids)]]\n")
    r = grade_notebook(LAB, to_bytes(student_notebook(LAB, broken)), "x", options=FAST)
    part = next(p for p in r.parts if p.grade_id == "merge_tests")
    assert part.status == Status.ERROR
    assert "IndexError" in part.reason and "in the call merge(" in part.reason, part.reason
    assert "line 2 of answer cell merge" in part.reason, part.reason
