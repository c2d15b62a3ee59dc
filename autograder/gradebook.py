"""The gradebook: every submission, its autograde result and the TAs' manual grades, in one database.

SQLite by default (``OUT/gradebook.sqlite``, one file beside the archive and the feedback), PostgreSQL
when given a URL (``postgresql://user:password@host:port/dbname``, driver psycopg 3) so that several
labs and terms share one server. The same code runs on both through SQLAlchemy Core. Three tables:

``submissions``
    one row per student × lab × SHA-256 of the raw bytes: where it was found, where its bytes are
    archived (content-addressed, never changed), when it was first and last seen. The student's
    *latest* submission is the one seen most recently.
``autograde``
    one row per student × lab × SHA-256: status, score, max score, the parts as JSON (points, status,
    reason, seed of each), notes, the whole :class:`~autograder.model.Result` as JSON (so feedback can
    be rebuilt), the seed of its first part and when it was graded. A regrade replaces this row;
    nothing else does.
``manual_grades``
    adjustments a TA enters: ``points`` added to a part's (or, with any other ``grade_id`` such as
    ``late``, to the total; on a written answer, its grade), a comment, who and when. Append-only: the latest row per
    student × lab × grade_id counts, older ones stay as history. Autograding never writes this table.

Only the orchestrator process writes (one connection, one transaction per recorded result), so a
grader killed at any moment loses at most the results still in flight, and the next run grades
exactly those (see :func:`autograder.orchestrate.grade_folder`). The CSV is written by
:mod:`autograder.export`. Neither module imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from autograder.model import Result, SubmissionStatus

SQLITE_NAME = "gradebook.sqlite"
# the grader's failure, not the student's: graded again on resume
RETRY_STATUSES = {SubmissionStatus.INFRASTRUCTURE_ERROR}

metadata = sa.MetaData()
t_submissions = sa.Table(
    "submissions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("student", sa.String(200), nullable=False),
    sa.Column("lab", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("archived_path", sa.Text, nullable=False),
    sa.Column("first_seen", sa.String(40), nullable=False),
    sa.Column("last_seen", sa.String(40), nullable=False),
    sa.UniqueConstraint("student", "lab", "sha256"),
)
t_autograde = sa.Table(
    "autograde", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("student", sa.String(200), nullable=False),
    sa.Column("lab", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("parts", sa.Text, nullable=False),  # JSON list of PartResult (without the test output)
    sa.Column("notes", sa.Text, nullable=False),  # JSON list of strings
    sa.Column("result", sa.Text, nullable=False),  # JSON of the whole Result, to rebuild feedback
    sa.Column("seed", sa.BigInteger, nullable=True),
    sa.Column("graded_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("student", "lab", "sha256"),
)
t_manual = sa.Table(
    "manual_grades", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("student", sa.String(200), nullable=False),
    sa.Column("lab", sa.String(200), nullable=False),
    sa.Column("grade_id", sa.String(200), nullable=False),
    sa.Column("points", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("grader", sa.String(200), nullable=False, default=""),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Index("ix_manual_student_lab", "student", "lab"),
)


def now() -> str:
    """UTC time as ISO 8601 with microseconds: sorts as text, identical on SQLite and PostgreSQL."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def database_url(db: str | Path | None, out: Path) -> str:
    """SQLAlchemy URL for ``db``: None → ``OUT/gradebook.sqlite``; a path → that SQLite file;
    ``postgresql://…`` → PostgreSQL through psycopg 3; any other SQLAlchemy URL as it is."""
    if db is None:
        return f"sqlite:///{(out / SQLITE_NAME).resolve()}"
    db = str(db)
    for prefix in ("postgresql://", "postgres://"):
        if db.startswith(prefix):
            return "postgresql+psycopg://" + db[len(prefix):]
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).resolve()}"


@dataclass
class SubmissionRow:
    student: str
    lab: str
    sha256: str
    path: str
    archived_path: str
    first_seen: str
    last_seen: str


@dataclass
class ManualGrade:
    student: str
    lab: str
    grade_id: str
    points: float
    comment: str
    grader: str
    at: str


class Gradebook:
    """One database of submissions, autograde results and manual grades (see the module docstring)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    @classmethod
    def open(cls, db: str | Path | None, out: Path) -> Gradebook:
        out.mkdir(parents=True, exist_ok=True)
        return cls(database_url(db, out))

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- submissions -------------------------------------------------------------------------------
    def record_submission(self, student: str, lab: str, sha256: str, path: str, archived_path: str) -> None:
        """Note that ``student`` submitted these bytes (seen now); the first sighting is kept."""
        t = now()
        key = (t_submissions.c.student == student) & (t_submissions.c.lab == lab) & (t_submissions.c.sha256 == sha256)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t_submissions.c.id).where(key)).first():
                conn.execute(t_submissions.update().where(key).values(
                    path=path, archived_path=archived_path, last_seen=t))
            else:
                conn.execute(t_submissions.insert().values(
                    student=student, lab=lab, sha256=sha256, path=path, archived_path=archived_path,
                    first_seen=t, last_seen=t))

    def submissions(self, lab: str) -> list[SubmissionRow]:
        """Every submission of ``lab``, oldest sighting first."""
        cols = [t_submissions.c[f.name] for f in fields(SubmissionRow)]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols).where(t_submissions.c.lab == lab)
                                .order_by(t_submissions.c.last_seen, t_submissions.c.id)).all()
        return [SubmissionRow(*row) for row in rows]

    def latest_submissions(self, lab: str) -> dict[str, SubmissionRow]:
        """Each student's most recently seen submission of ``lab``."""
        return {s.student: s for s in self.submissions(lab)}

    # --- autograde ---------------------------------------------------------------------------------
    def record_result(self, result: Result) -> None:
        """Store (or replace) the autograde of ``result.student × result.lab × result.sha256``."""
        data = asdict(result)
        parts = [{k: v for k, v in p.items() if k != "output"} for p in data["parts"]]
        # the grader seeds each part; the first part's seed identifies the run
        seed = next((p.get("seed") for p in parts if p.get("seed") is not None), None)
        key = ((t_autograde.c.student == result.student) & (t_autograde.c.lab == result.lab)
               & (t_autograde.c.sha256 == result.sha256))
        with self.engine.begin() as conn:
            conn.execute(t_autograde.delete().where(key))
            conn.execute(t_autograde.insert().values(
                student=result.student, lab=result.lab, sha256=result.sha256, status=str(result.status),
                reason=result.reason, score=result.score, max_score=result.max_score,
                parts=json.dumps(parts), notes=json.dumps(result.notes), result=result.to_json(),
                seed=seed if isinstance(seed, int) else None, graded_at=now()))

    def results(self, lab: str) -> dict[tuple[str, str], Result]:
        """Autograde results of ``lab`` keyed by (student, sha256)."""
        a = t_autograde.c
        query = sa.select(a.student, a.sha256, a.result).where(a.lab == lab)
        with self.engine.connect() as conn:
            return {(s, h): Result.from_json(j) for s, h, j in conn.execute(query)}

    def graded_at(self, lab: str) -> dict[tuple[str, str], str]:
        """When each (student, sha256) of ``lab`` was autograded."""
        with self.engine.connect() as conn:
            return {(s, h): t for s, h, t in conn.execute(
                sa.select(t_autograde.c.student, t_autograde.c.sha256, t_autograde.c.graded_at)
                .where(t_autograde.c.lab == lab))}

    def delete_results(self, lab: str, keys: Iterable[tuple[str, str]]) -> None:
        """Forget some autograde results (they will be graded again); manual grades stay."""
        with self.engine.begin() as conn:
            for student, sha in keys:
                conn.execute(t_autograde.delete().where((t_autograde.c.lab == lab) & (t_autograde.c.student == student)
                                                      & (t_autograde.c.sha256 == sha)))

    # --- manual grades -----------------------------------------------------------------------------
    def add_manual(self, student: str, lab: str, grade_id: str, points: float, comment: str = "",
                   grader: str = "") -> None:
        """Add a manual adjustment: ``points`` (may be negative) on part ``grade_id`` or on the total.

        The latest adjustment per student × lab × grade_id counts; enter 0 to cancel one.
        """
        with self.engine.begin() as conn:
            conn.execute(t_manual.insert().values(
                student=student, lab=lab, grade_id=grade_id, points=float(points), comment=comment,
                grader=grader, at=now()))

    def manual(self, lab: str) -> dict[str, dict[str, ManualGrade]]:
        """The adjustments in force for ``lab``: student → grade_id → latest ManualGrade."""
        cols = [t_manual.c[f.name] for f in fields(ManualGrade)]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols).where(t_manual.c.lab == lab).order_by(t_manual.c.id))
            latest: dict[str, dict[str, ManualGrade]] = {}
            for row in rows:
                m = ManualGrade(*row)
                latest.setdefault(m.student, {})[m.grade_id] = m
        return latest


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (an instructor's export) never block the grader
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
