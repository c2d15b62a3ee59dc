"""Grade one submission: its bytes in, a :class:`Result` out, never an exception.

A file that is not a notebook gets status ``invalid`` with the reason; a grader failure gets
``infrastructure-error`` (after a retry); otherwise ``graded``, with a status per part (passed,
failed, error, timeout, crashed, missing) and a one-line reason.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import source_notebook
from autograder.execute import run_cells
from autograder.notebook import (
    SKIP_TAG,
    InvalidSubmission,
    assemble,
    is_answer,
    is_test,
    load_source,
    nbgrader_meta,
    points,
    read_submission,
)

ANSWER_TIMEOUT = 30  # seconds: an answer cell only defines functions
TEST_TIMEOUT = 120  # seconds: hidden tests may train a small tokenizer or model
SETUP_TIMEOUT = 120
STUDENT_FAULTS = {"passed", "failed", "error", "timeout", "crashed", "missing"}


@dataclass
class PartResult:
    """One graded part (a test cell): its score and why."""

    grade_id: str
    max_points: float
    points: float
    status: str  # passed | failed | error | timeout | crashed | missing
    reason: str = ""
    output: str = ""  # what the test cell printed (pass lines, the failure message)
    answer_id: str | None = None


@dataclass
class Result:
    """The grade of one submission."""

    student: str
    lab: str
    submission: str
    sha256: str = ""
    status: str = "graded"  # graded | invalid | infrastructure-error
    reason: str = ""
    parts: list[PartResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(p.points for p in self.parts)

    @property
    def max_score(self) -> float:
        return sum(p.max_points for p in self.parts)


@dataclass
class GradeOptions:
    """Limits and resources of a grading run."""

    answer_timeout: int = ANSWER_TIMEOUT
    test_timeout: int = TEST_TIMEOUT
    threads: int = 1
    retries: int = 1


def grade_notebook(lab: str, raw: bytes, student: str, submission: str = "",
                   options: GradeOptions | None = None) -> Result:
    """Grade the bytes of one submitted notebook of ``lab``. Never raises."""
    options = options or GradeOptions()
    result = Result(student, lab, submission, hashlib.sha256(raw).hexdigest())
    source = load_source(source_notebook(lab))
    try:
        cells = read_submission(raw)
    except InvalidSubmission as e:
        result.status, result.reason = "invalid", str(e)
        result.parts = parts_all(source, 0.0, "missing", "the notebook could not be read")
        return result
    for _attempt in range(options.retries + 1):
        try:
            _grade_cells(result, source, cells, options)
            return result
        except Exception:  # the grader's own failure (kernel would not start, disk full, ...)
            result.parts, result.notes = [], []
            result.status, result.reason = "infrastructure-error", traceback.format_exc(limit=3)
    result.parts = parts_all(source, 0.0, "missing", "not graded: infrastructure error")
    return result


def parts_all(source, pts: float, status: str, reason: str) -> list[PartResult]:
    return [PartResult(nbgrader_meta(c)["grade_id"], points(c), pts, status, reason)
            for c in source.cells if is_test(c)]


def _grade_cells(result: Result, source, cells: list[dict], options: GradeOptions) -> None:
    assembled = assemble(source, cells)
    nb = assembled.nb
    result.notes = assembled.notes
    order = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and SKIP_TAG not in c.metadata.get("tags", [])]
    owner: dict[int, int | None] = {}  # test cell -> the answer cell it grades
    last_answer = None
    for i, cell in enumerate(nb.cells):
        if is_answer(cell):
            last_answer = i
        elif is_test(cell):
            owner[i] = last_answer

    def timeout_for(i: int) -> int:
        cell = nb.cells[i]
        return options.answer_timeout if is_answer(cell) else (
            options.test_timeout if is_test(cell) else SETUP_TIMEOUT)

    def replay(i: int) -> bool:
        return not is_test(nb.cells[i])

    with tempfile.TemporaryDirectory(prefix=f"grade-{result.lab}-") as work:
        _copy_lab_files(result.lab, Path(work))
        outcomes = run_cells(nb, order, cwd=Path(work), timeout_for=timeout_for, replay=replay,
                             threads=options.threads)
    result.answers = {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if is_answer(c)}
    for i, cell in enumerate(nb.cells):
        if not is_test(cell):
            continue
        outcome, answer = outcomes[i], owner.get(i)
        answer_out = outcomes.get(answer) if answer is not None else None
        answer_id = nbgrader_meta(nb.cells[answer])["grade_id"] if answer is not None else None
        part = PartResult(nbgrader_meta(cell)["grade_id"], points(cell), 0.0, "passed",
                          answer_id=answer_id, output=_stream_text(cell))
        if answer_out is not None and answer_out.ename == "NotImplementedError":
            part.status, part.reason = "failed", f"not attempted: answer cell `{answer_id}` is still the stub"
        elif answer_out is not None and answer_out.status in ("timeout", "crashed", "error"):
            part.status, part.reason = answer_out.status, f"your answer cell `{answer_id}` {_describe(answer_out)}"
        elif answer_id is not None and not assembled.answers_found.get(answer_id, True):
            part.status, part.reason = "missing", f"answer cell `{answer_id}` is missing"
        elif outcome.status == "ok":
            part.points = part.max_points
        elif outcome.status == "error":
            part.status = "failed" if outcome.ename in ("CheckFailed", "AssertionError") else "error"
            part.reason = f"{outcome.ename}: {outcome.evalue}".strip()
        else:
            part.status, part.reason = outcome.status, _describe(outcome)
        result.parts.append(part)


def _describe(outcome) -> str:
    if outcome.status == "error":
        return f"raised {outcome.ename}: {outcome.evalue}".strip()
    if outcome.status == "timeout":
        return f"timed out: {outcome.evalue} (an infinite loop, or far too slow)"
    return f"crashed: {outcome.evalue}"


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _copy_lab_files(lab: str, work: Path) -> None:
    """Copy the release's extra files (data a lab ships beside its notebook) into the work folder."""
    from autograder.course import LABS

    folder = LABS / lab
    if folder.is_dir():
        for f in folder.iterdir():
            if f.is_file() and f.suffix != ".ipynb":
                shutil.copy2(f, work / f.name)
