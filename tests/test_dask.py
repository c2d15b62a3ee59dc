"""Grading on a real Dask cluster (a scheduler and two workers, local processes) gives the same
grades as the embedded pool, and the orchestrator records them in its gradebook."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.course import ROOT
from autograder.distributed import DaskPool, code_fingerprint, grade_task
from autograder.gradebook import Gradebook
from autograder.model import GradeOptions, GradingTask
from autograder.mutants import mutants_of
from autograder.orchestrate import grade_folder
from tests.conftest import student_notebook, to_bytes

pytestmark = pytest.mark.slow  # grades a corpus / starts servers: `make test-fast` skips it
LAB = "lab01_tokenizers"
DASK = str(Path(sys.executable).parent / "dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, lab01_answers) -> Path:
    folder = tmp_path_factory.mktemp("subs")
    bugs = {m.name: m.cells for m in mutants_of(LAB)}
    cases = {"alice": lab01_answers, "bob": {}, "carol": {**lab01_answers, **bugs["encode_frequency_order"]},
             "dave": {**lab01_answers, **bugs["decode_drops_invalid_utf8"]}}
    for student, answers in cases.items():
        (folder / f"{student}.ipynb").write_bytes(to_bytes(student_notebook(LAB, answers)))
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes, one thread each, on 127.0.0.1 only."""
    from distributed import Client

    work = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    common = {"cwd": ROOT, "start_new_session": True, "stdout": subprocess.DEVNULL}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard"], stderr=open(work / "scheduler.log", "wb"), **common)]
    for n in range(2):
        procs.append(subprocess.Popen(
            [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
             "--name", f"w{n}", "--local-directory", str(work / f"w{n}"), "--death-timeout", "120"],
            stderr=open(work / f"worker{n}.log", "wb"), **common))
    try:
        with Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
            yield address, client
    finally:
        for p in reversed(procs):  # workers first, then the scheduler; each with its children
            with_timeout_kill(p)


def with_timeout_kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    except ProcessLookupError:
        pass


def summary(results) -> dict:
    return {r.student: (r.status, r.score, [(p.grade_id, p.status, p.points) for p in r.parts]) for r in results}


def test_dask_cluster_grades_like_the_embedded_pool(folder, cluster, tmp_path):
    address, client = cluster
    out = tmp_path / "dask"
    assert main(["grade", LAB, str(folder), "--out", str(out), "--scheduler", address, "--timeout", "40"]) == 0
    executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sorted(executed.values()) != [0, 4] and sum(executed.values()) == 4, executed  # both workers graded
    with Gradebook.open(None, out) as book:
        on_dask = list(book.results(LAB).values())
    assert len(on_dask) == 4
    embedded = grade_folder(LAB, folder, tmp_path / "embedded", jobs=2, options=GradeOptions(test_timeout=40),
                            progress=False)
    assert summary(on_dask) == summary(embedded)
    assert {r.student: r.score for r in embedded} == {"alice": 45, "bob": 0, "carol": 35, "dave": 40}


def test_a_worker_with_other_code_refuses_to_grade(folder):
    raw = (folder / "alice.ipynb").read_bytes()
    r = grade_task(GradingTask(LAB, raw, "alice", "alice.ipynb"), "0" * 64)
    assert r.status == "infrastructure-error" and "different version" in r.reason
    assert len(code_fingerprint(LAB)) == 64


def test_unreachable_scheduler_is_a_clear_error_and_nothing_is_lost(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(DaskPool, "CONNECT_TIMEOUT", 2)
    t0 = time.monotonic()
    code = main(["grade", LAB, str(folder), "--out", str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{free_port()}"])
    assert code == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert time.monotonic() - t0 < 60
    with Gradebook.open(None, tmp_path) as book:
        assert {s.student for s in book.submissions(LAB)} == {"alice", "bob", "carol", "dave"}
        assert book.results(LAB) == {}
