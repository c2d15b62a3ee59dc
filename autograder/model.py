"""The grading model: what a grade is made of, shared by the grader, the gradebook, feedback and export.

It imports neither torch nor the sandbox, so the gradebook, the feedback pages and the CSV export
work on a machine (or in a process) that never runs student code.

- :class:`Status` — how one part went; :class:`SubmissionStatus` — how the whole submission went.
- :class:`PartResult` — one graded part: a test cell (autograded) or a written answer (``manual``:
  graded by an instructor with ``python -m autograder manual``).
- :class:`Result` — the grade of one submission.
- :class:`GradeOptions` and :class:`Limits` — time and resource limits of a grading run.
- :class:`GradingTask` — one submission to grade (its SHA-256 computed once).
- :func:`zero_parts` — every part of a lab at zero points, for submissions that never ran.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path

from nbformat import NotebookNode

from autograder.notebook import is_manual, is_test, load_source, nbgrader_meta, points

ANSWER_TIMEOUT = 30  # seconds: an answer cell only defines functions
TEST_TIMEOUT = 120  # seconds for all the student's calls of one test cell
BASE_SEED = 1234
WORKER_MEMORY_BYTES = 8 * 2**30  # data memory of one grading worker process (autograder.distributed)


class Status(StrEnum):
    """How one part went. Values are the words shown in the CSV and the feedback."""

    PASSED = "passed"
    FAILED = "failed"  # a check found a wrong answer (or the answer is still the stub)
    ERROR = "error"  # the student's code raised
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out-of-memory"
    CRASHED = "crashed"  # the student's process died
    MISSING = "missing"  # no answer cell, or a submission that could not be run
    PENDING = "pending"  # a written answer waiting for the instructor's grade


#: statuses after which the student's process is replaced before grading goes on
KILLING = frozenset({Status.TIMEOUT, Status.CRASHED, Status.OUT_OF_MEMORY})


class SubmissionStatus(StrEnum):
    """How grading one submission went."""

    GRADED = "graded"
    INVALID = "invalid"  # not a readable notebook (or no notebook at all)
    INFRASTRUCTURE_ERROR = "infrastructure-error"  # the grader failed twice; nothing is scored


@dataclass
class PartResult:
    """One graded part: a test cell, or a written answer graded by hand (``manual``)."""

    grade_id: str
    max_points: float
    points: float
    status: Status
    reason: str = ""
    output: str = ""  # what the test printed (pass lines, the student's own prints)
    answer_id: str | None = None  # the answer cell the part grades (its code is in Result.answers)
    seed: int | None = None  # the student's process was seeded with it before the test cell
    hidden_seed: int | None = None  # the seed given to the hidden checks (autograder.seeds); None: defaults
    manual: bool = False  # graded by an instructor; not part of the autograde score
    # autograder.diagnosis: known mistakes (mutant name → its diagnosis) this failure behaves like;
    # earlier answer cells whose reference makes this part pass (the likely cause); earlier answer
    # cells replaced by the reference when this part was graded (the manifest's substitute_earlier)
    diagnosis: dict[str, str] = field(default_factory=dict)
    likely_cause: list[str] = field(default_factory=list)
    substituted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = Status(self.status)


@dataclass
class Result:
    """The grade of one submission. ``score``/``max_score`` are the autograde (manual parts excluded)."""

    student: str
    lab: str
    submission: str
    sha256: str = ""
    status: SubmissionStatus = SubmissionStatus.GRADED
    reason: str = ""
    parts: list[PartResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # answer grade_id → the student's code or text
    sandbox: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.status = SubmissionStatus(self.status)

    @property
    def auto_parts(self) -> list[PartResult]:
        return [p for p in self.parts if not p.manual]

    @property
    def manual_parts(self) -> list[PartResult]:
        return [p for p in self.parts if p.manual]

    @property
    def score(self) -> float:
        return sum(p.points for p in self.auto_parts)

    @property
    def max_score(self) -> float:
        return sum(p.max_points for p in self.auto_parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Result:
        """Rebuild a Result from :meth:`to_json`, ignoring fields this version does not know."""
        data = json.loads(text)
        part_fields = {f.name for f in fields(PartResult)}
        parts = [PartResult(**{k: v for k, v in p.items() if k in part_fields}) for p in data.get("parts", [])]
        known = {f.name for f in fields(cls)} - {"parts"}
        return cls(**{k: v for k, v in data.items() if k in known}, parts=parts)


@dataclass
class Limits:
    """Per-sandbox resource limits (see :mod:`autograder.sandbox`)."""

    memory_bytes: int = 6 * 2**30  # address space (torch reserves a lot of virtual memory)
    processes: int = 256  # threads count too
    file_bytes: int = 64 * 2**20
    open_files: int = 256
    cpu_seconds: int = 900
    disk_bytes: int = 256 * 2**20  # size of the private tmpfs working directory
    threads: int = 1


@dataclass
class GradeOptions:
    """Limits and resources of a grading run."""

    answer_timeout: int = ANSWER_TIMEOUT
    test_timeout: int = TEST_TIMEOUT
    retries: int = 1
    base_seed: int = BASE_SEED
    limits: Limits = field(default_factory=Limits)
    hidden: list[Path] = field(default_factory=list)  # extra folders the sandbox must not see
    prewarm: bool = True  # keep the next sandbox starting while this submission is graded
    # fork each notebook's process from one sandbox prepared per worker (trusted code only: validate)
    reuse_sandbox: bool = False
    # per-student hidden inputs (autograder.seeds): the instructor's secret (None: the checks' default
    # seeds, as in validate), and seeds already used per test grade_id (a regrade reuses them)
    secret: bytes | None = field(default=None, repr=False)
    hidden_seeds: dict[str, int] = field(default_factory=dict)
    diagnose: bool = True  # explain failed parts: known mistakes, earlier parts (autograder.diagnosis)


@dataclass(frozen=True)
class GradingTask:
    """One submission to grade: the lab, the raw bytes and who sent them."""

    lab: str
    raw: bytes = field(repr=False)
    student: str
    submission: str = ""
    options: GradeOptions | None = None
    invalid: str = ""  # why the submission is invalid before it is read (e.g. a symbolic link): never run
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.raw).hexdigest())


def zero_parts(source: str | NotebookNode, status: Status, reason: str) -> list[PartResult]:
    """Every part of a lab (its id or its source notebook) at zero points, with ``status`` and ``reason``.

    For submissions that never ran: unreadable, missing, or not graded because the grader failed.
    """
    if isinstance(source, str):
        from autograder.course import source_notebook

        source = load_source(source_notebook(source))
    return [PartResult(nbgrader_meta(c)["grade_id"], points(c), 0.0, status, reason, manual=is_manual(c))
            for c in source.cells if is_test(c) or is_manual(c)]
