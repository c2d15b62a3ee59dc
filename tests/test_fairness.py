"""Fairness of the grader (issue 9, item 5): helper cells a student added, files that are not regular
files, notebooks that cannot be parsed, spreadsheet formulas in the CSV, oversized results."""

import csv
import os
import subprocess
import sys

import nbformat
import pytest

from autograder import wire
from autograder.course import source_notebook
from autograder.export import export_csv, safe_cell
from autograder.grade import grade_notebook
from autograder.gradebook import Gradebook
from autograder.model import GradeOptions, GradingTask, PartResult, Result, Status, SubmissionStatus
from autograder.notebook import assemble, load_source, only_definitions, read_submission
from autograder.orchestrate import find_submissions, grade_folder, submission_task
from tests.conftest import student_notebook, to_bytes

LAB = "lab01_tokenizers"
FAST = GradeOptions(answer_timeout=10, test_timeout=40)


# ------------------------------------------------------------------ helper cells
def test_only_definitions():
    assert only_definitions('"""doc"""\nimport math\nfrom x import y as z\nK = 3\nN: int = -2\n'
                            "PAIRS = {(1, 2): 'a'}\ndef f(x):\n    return x\nclass C:\n    pass")
    for code in ("x = f(2)", "print('hi')", "import os\nos._exit(1)", "for i in range(3):\n    pass",
                 "K = [i for i in range(3)]", "", "def broken(:"):
        assert not only_definitions(code), code


def _with_added_cells(answers, *codes):
    nb = student_notebook(LAB, answers)
    idx = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "count_pairs")
    for code in reversed(codes):  # added after the answer cell that uses them, as students do
        nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(code))
    return nb


def test_assemble_keeps_only_definition_cells():
    source = load_source(source_notebook(LAB))
    nb = _with_added_cells({}, "def helper(x):\n    return x", "print(helper(3))")
    assembled = assemble(source, read_submission(to_bytes(nb)))
    assert assembled.helpers == ["def helper(x):\n    return x"]
    assert any("defining helper" in n and "run before the answer cells" in n for n in assembled.notes)
    assert any("1 code cell(s) you added were not run" in n for n in assembled.notes)
    # the release's own cells (try-it, experiment) are never counted as added
    assert assemble(source, read_submission(to_bytes(student_notebook(LAB)))).helpers == []


@pytest.mark.slow
def test_helper_cell_runs_before_answers_and_other_added_cells_do_not(lab01_answers):
    answers = dict(lab01_answers)
    answers["count_pairs"] = answers["count_pairs"].replace("def count_pairs(", "def _my_count_pairs(") + \
        "\n\ndef count_pairs(ids, counts=None):\n    return _count_with_helper(ids, counts)\n"
    helper = ("import collections\n\nDEFAULT = None\n\n"
              "def _count_with_helper(ids, counts=DEFAULT):\n    return _my_count_pairs(ids, counts)\n")
    nb = _with_added_cells(answers, helper, "import os\nos._exit(3)  # not only definitions: never run")
    r = grade_notebook(LAB, to_bytes(nb), "helper_user", options=FAST)
    assert (r.status, r.score) == (SubmissionStatus.GRADED, r.max_score), [(p.grade_id, p.reason) for p in r.parts]
    assert any("defining collections, DEFAULT, _count_with_helper" in n for n in r.notes), r.notes
    assert any("were not run" in n for n in r.notes)


# ------------------------------------------------------------------ files that are not regular files
def test_links_devices_and_fifos_are_invalid_and_never_read(tmp_path, lab01_answers):
    folder, out = tmp_path / "subs", tmp_path / "out"
    folder.mkdir()
    secret = tmp_path / "other_students_notebook.ipynb"
    secret.write_bytes(to_bytes(student_notebook(LAB, lab01_answers)))
    (folder / "linker.ipynb").symlink_to(secret)
    os.mkfifo(folder / "piper.ipynb")  # reading it would block forever
    (folder / "dirlink").symlink_to(tmp_path)
    nested = folder / "nested" / LAB
    nested.mkdir(parents=True)
    (nested / f"{LAB}.ipynb").symlink_to(secret)
    (folder / "devnull").mkdir()
    (folder / "devnull" / f"{LAB}.ipynb").symlink_to("/dev/zero")
    subs = {s.student: s for s in find_submissions(folder, LAB)}
    assert set(subs) == {"linker", "piper", "dirlink", "nested", "devnull"}
    assert all(s.invalid for s in subs.values()), subs
    assert "symbolic link" in subs["linker"].invalid and "fifo" in subs["piper"].invalid
    tasks = [submission_task(s, LAB, FAST) for s in subs.values()]
    assert all(t.raw == b"" and t.invalid for t in tasks)
    results = {r.student: r for r in grade_folder(LAB, folder, out, jobs=1, options=FAST, progress=False)}
    for r in results.values():
        assert r.status == SubmissionStatus.INVALID and r.score == 0 and "not a regular file" in r.reason \
            or "symbolic link" in r.reason, (r.student, r.reason)
    archived = list((out / "archive").glob("*.ipynb"))
    assert all(p.read_bytes() == b"" for p in archived)  # nothing behind a link was copied
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert {row["student"]: row["status"] for row in rows} == dict.fromkeys(subs, "invalid")


def test_regular_file_is_still_read(tmp_path):
    (tmp_path / "alice.ipynb").write_bytes(b"{}")
    (sub,) = find_submissions(tmp_path, LAB)
    assert not sub.invalid and submission_task(sub, LAB, None).raw == b"{}"


# ------------------------------------------------------------------ notebooks that cannot be parsed
@pytest.mark.parametrize("raw", [
    b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # RecursionError in json
    b'{"cells": [{"cell_type": "code", "source": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}",
    b'{"cells": [1, 2, {"cell_type": 3, "source": {"a": 1}, "metadata": []}]}',
    b'{"cells": [{"cell_type": "code", "source": "x", "metadata": {"nbgrader": "' + b"9" * 10_000 + b'"}}]}',
    b'{"nbformat": 4, "cells": {"not": "a list"}}',
    b"\xff\xfe not utf-8",
    b'{"worksheets": [1, {"cells": "x"}]}',
])
def test_unparseable_notebooks_are_invalid_never_run_again(raw):
    task = GradingTask(LAB, raw, "mallory")
    from autograder.grade import grade

    r = grade(task)
    if r.status == SubmissionStatus.GRADED:  # tolerated: shapes that still hold cells, graded as blank
        assert r.score == 0
    else:
        assert r.status == SubmissionStatus.INVALID and r.reason, r.reason
        assert all(p.status == Status.MISSING for p in r.parts)


def test_deep_json_reason_says_so():
    r = grade_notebook(LAB, b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "mallory")
    assert r.status == SubmissionStatus.INVALID and "nested too deeply" in r.reason


def test_deep_metadata_is_dropped_not_fatal():
    deep = "{" + '"a": {' * 500 + "}" * 500 + "}"
    raw = ('{"cells": [{"cell_type": "code", "source": "x = 1", "metadata": ' + deep + '}]}').encode()
    (cell,) = read_submission(raw)
    assert cell == {"cell_type": "code", "source": "x = 1", "metadata": {}}


# ------------------------------------------------------------------ spreadsheet formulas
def test_csv_cells_never_start_a_formula(tmp_path):
    assert [safe_cell(v) for v in ("=1+1", "+cmd", "-x", "@SUM(A1)", "\tx", "\rx", "-3", "2", "ok")] == \
        ["'=1+1", "'+cmd", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "-3", "2", "ok"]
    with Gradebook.open(None, tmp_path) as book:
        r = Result("=HYPERLINK(\"http://x\")", LAB, "-sub", "ab" * 32, reason="")
        r.parts = [PartResult("count_pairs_tests", 5, 0, Status.FAILED, "@evil reason")]
        r.notes = ["+note"]
        book.record_submission(r.student, LAB, r.sha256, "=path", "=archived")
        book.record_result(r)
        book.add_manual(r.student, LAB, "late", -2, "-1 day")
        export_csv(book, LAB, tmp_path / "grades.csv")
    (row,) = list(csv.DictReader(open(tmp_path / "grades.csv", encoding="utf-8")))
    assert row["student"] == "'=HYPERLINK(\"http://x\")" and row["submission"] == "'=path"
    assert row["notes"] == "'+note" and row["manual"] == "-2" and row["total"] == "-2"
    for value in row.values():
        assert not value.startswith(("=", "+", "@", "\t", "\r")), row


# ------------------------------------------------------------------ oversized results
def test_wire_caps_items_and_bytes():
    with pytest.raises(wire.WireError, match="too large"):
        wire.encode(list(range(wire.MAX_ITEMS + 10)))
    with pytest.raises(wire.WireError, match="too large"):
        wire.encode("x" * (wire.MAX_HEADER_BYTES + 1))
    assert wire.decode(wire.encode(list(range(1000)))) == list(range(1000))
    # a forged message (the student's process is not trusted): refused before it is rebuilt
    import json
    import struct

    header = json.dumps([0] * (wire.MAX_ITEMS + 1)).encode()
    with pytest.raises(wire.WireError):
        wire.decode(struct.pack("<QQQ", len(header), 0, 0) + header)
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(wire.WireError):
        wire.decode(struct.pack("<QQQ", len(deep), 0, 0) + deep)


def test_worker_memory_limit():
    code = ("from autograder.distributed import limit_memory\nlimit_memory(300 * 2**20)\n"
            "try:\n    x = bytearray(600 * 2**20)\nexcept MemoryError:\n    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "refused", out.stderr


@pytest.mark.slow
def test_oversized_answer_fails_its_part_fast(lab01_answers):
    answers = {**lab01_answers, "encode": "def encode(text, bpe):\n    return [0] * 30_000_000"}
    r = grade_notebook(LAB, to_bytes(student_notebook(LAB, answers)), "big", options=FAST)
    part = next(p for p in r.parts if p.grade_id == "encode_tests")
    assert part.status == Status.ERROR and "too large" in part.reason, part.reason
    lost = {p.grade_id for p in r.auto_parts if p.points < p.max_points}
    assert lost == {"encode_tests"}, [(p.grade_id, p.status, p.reason[:100]) for p in r.parts]
    assert r.seconds < 90
