"""The gradebook on a real PostgreSQL server behaves exactly as on SQLite.

The test starts its own server from Debian's ``postgresql`` package (``apt-get install -y postgresql``),
on 127.0.0.1 and a free port, in a temporary folder, and removes it afterwards. Without the package
the test fails (it does not skip): CI installs it.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.gradebook import Gradebook, database_url
from autograder.model import GradeOptions
from autograder.mutants import mutants_of
from autograder.orchestrate import grade_folder
from tests.conftest import student_notebook, to_bytes
from tests.test_gradebook import exercise_gradebook

pytestmark = pytest.mark.slow  # grades a corpus / starts servers: `make test-fast` skips it
LAB = "lab01_tokenizers"
FAST = GradeOptions(answer_timeout=5, test_timeout=40)
INSTALL = "apt-get install -y postgresql"


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).parent
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on "
                f"PATH: install them with `{INSTALL}`", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server; its URL (database ``grades``)."""
    import psycopg

    bindir = postgres_bin()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # it refuses to run as root
    base = Path(tempfile.mkdtemp(prefix="pg-test-"))
    data, port = base / "data", free_port()
    if as_user:
        shutil.chown(base, "postgres")

    def run(*cmd: str) -> None:
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {base} -F", "start")
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE grades")
        yield f"postgresql://postgres@127.0.0.1:{port}/grades"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def test_gradebook_semantics_match_sqlite(postgres_url, tmp_path):
    assert exercise_gradebook(database_url(postgres_url, tmp_path)) == exercise_gradebook(database_url(None, tmp_path))


def rows(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("archived", "graded_at")}
            for r in csv.DictReader(open(path, encoding="utf-8"))]


def test_grading_into_postgres_matches_sqlite_and_resumes(postgres_url, tmp_path, lab01_answers):
    folder = tmp_path / "subs"
    folder.mkdir()
    enc = next(m for m in mutants_of(LAB) if m.name == "encode_frequency_order").cells["encode"]
    for student, answers in {"alice": lab01_answers, "carol": {**lab01_answers, "encode": enc}}.items():
        (folder / f"{student}.ipynb").write_bytes(to_bytes(student_notebook(LAB, answers)))
    (folder / "erin").mkdir()
    pg_out, lite_out = tmp_path / "pg", tmp_path / "sqlite"
    on_pg = grade_folder(LAB, folder, pg_out, jobs=2, options=FAST, progress=False, db=postgres_url)
    on_lite = grade_folder(LAB, folder, lite_out, jobs=2, options=FAST, progress=False)
    assert not (pg_out / "gradebook.sqlite").exists()
    assert [(r.student, r.status, r.score) for r in on_pg] == [(r.student, r.status, r.score) for r in on_lite] == [
        ("alice", "graded", 45), ("carol", "graded", 35), ("erin", "invalid", 0)]
    assert rows(pg_out / "grades.csv") == rows(lite_out / "grades.csv")

    with Gradebook.open(postgres_url, pg_out) as book:  # lose carol's result, as a kill mid-grade would
        before = book.graded_at(LAB)
        carol = next(k for k in before if k[0] == "carol")
        book.delete_results(LAB, [carol])
        book.add_manual("alice", LAB, "late", -5, "two days late", "ta")
    grade_folder(LAB, folder, pg_out, jobs=2, options=FAST, progress=False, db=postgres_url)
    with Gradebook.open(postgres_url, pg_out) as book:
        after = book.graded_at(LAB)
    assert after[carol] > before[carol] and {k: v for k, v in after.items() if k != carol} == {
        k: v for k, v in before.items() if k != carol}
    assert main(["export", LAB, "--out", str(pg_out), "--db", postgres_url]) == 0
    exported = {r["student"]: r for r in rows(pg_out / "grades.csv")}
    assert (exported["alice"]["total"], exported["carol"]["total"], exported["erin"]["status"]) == (
        "40", "35", "invalid")
