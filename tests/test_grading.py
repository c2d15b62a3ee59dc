"""Grading a sample folder: every kind of submission keeps a row, with the right score and status."""

import csv
import json

import pytest

from autograder.grade import GradeOptions, grade_notebook
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
