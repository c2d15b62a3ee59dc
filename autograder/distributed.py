"""Where grading runs: embedded worker processes (the default) or a Dask cluster (``--scheduler``).

Both offer the same two calls, ``submit`` and ``as_completed``, so the orchestrator records each
result the moment it arrives, whichever finishes first. The orchestrator is the only process that
touches the gradebook; workers only turn a :class:`~autograder.model.GradingTask` (the lab, the raw
bytes, who sent them, the options) into a :class:`~autograder.model.Result`.

Embedded (default)
    ``python -m autograder grade LAB FOLDER`` runs one grading worker process per core (no server,
    nothing to set up); ``--jobs N`` for another number. See :class:`LocalPool`.

Dask
    ``python -m autograder grade LAB FOLDER --scheduler tcp://HOST:8786`` sends one task per
    submission (:func:`grade_task` with its :class:`~autograder.model.GradingTask`) to a running Dask
    scheduler and collects results as they complete. Workers need the same course checkout (same
    ``solutions/``, ``labsupport`` and ``autograder``); each task checks a fingerprint of those files
    and returns ``infrastructure-error`` (graded again on the next run) from a worker whose copy
    differs. Run workers with one thread each, ``--nthreads 1``: a grading task already uses a whole
    core through its kernel. A worker that dies mid-task has its task rerun elsewhere by Dask; a task
    that keeps failing is reported and left ungraded in the gradebook, so the next run retries it.

    By hand (any machines that reach each other)::

        dask scheduler --host 10.0.0.5 --port 8786
        dask worker tcp://10.0.0.5:8786 --nworkers 8 --nthreads 1      # on each grading machine
        python -m autograder grade lab01 submitted/ --scheduler tcp://10.0.0.5:8786

    Kubernetes (dask-kubernetes operator; the image is the course repo with ``make install`` done)::

        from dask_kubernetes.operator import KubeCluster
        cluster = KubeCluster(name="grading", image="registry.example.org/course:2025",
                              n_workers=20, resources={"requests": {"cpu": "1", "memory": "4Gi"},
                                                       "limits": {"cpu": "1", "memory": "4Gi"}},
                              worker_command=["dask", "worker", "--nthreads", "1"])
        print(cluster.scheduler_address)   # expose it (port-forward or a Service), then --scheduler

    Slurm with GPU nodes (dask-jobqueue; labs whose hidden tests want a GPU)::

        from dask_jobqueue import SLURMCluster
        cluster = SLURMCluster(queue="gpu", cores=8, processes=8, memory="64GB", walltime="02:00:00",
                               job_extra_directives=["--gres=gpu:1"],
                               worker_extra_args=["--resources", "GPU=1"],
                               job_script_prologue=["cd $HOME/course", ". .venv/bin/activate"])
        cluster.scale(jobs=4)              # 4 nodes, 8 single-threaded workers each
        print(cluster.scheduler_address)   # then: --scheduler <that address>

    Either way the orchestrator runs where the submissions and the gradebook are (the course
    server), with ``--db postgresql://…`` for a shared gradebook. Pass ``resources={"GPU": 1}`` to
    :func:`autograder.orchestrate.grade_folder` to place each task on a worker that advertises a GPU.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from functools import cache
from typing import Any

from autograder.course import AUTOGRADER_DIR, ROOT, CourseError, source_notebook
from autograder.grade import grade
from autograder.model import WORKER_MEMORY_BYTES, GradingTask, Result, SubmissionStatus


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@cache
def code_fingerprint(lab: str) -> str:
    """SHA-256 over what decides a grade: the lab's source notebook, ``labsupport`` and ``autograder``."""
    files = [source_notebook(lab), *sorted((ROOT / "labsupport").rglob("*.py")),
             *sorted(p for p in AUTOGRADER_DIR.glob("*.py"))]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def grade_task(task: GradingTask, fingerprint: str) -> Result:
    """A grading task on a Dask worker: check the worker's code matches, then grade. Never raises."""
    try:
        mine = code_fingerprint(task.lab)
    except OSError as e:
        mine = f"unreadable: {e}"
    if mine != fingerprint:
        return Result(task.student, task.lab, task.submission, task.sha256,
                      status=SubmissionStatus.INFRASTRUCTURE_ERROR,
                      reason=f"worker {os.uname().nodename} has a different version of the course "
                             f"({mine[:12]} instead of {fingerprint[:12]}): update it and grade again")
    return grade(task)


def limit_memory(limit: int) -> None:
    """Cap this process's data memory (heap and private mappings: ``RLIMIT_DATA``) at ``limit`` bytes.

    A grading worker runs under it, so a result that would take gigabytes to rebuild raises
    ``MemoryError`` in one part instead of growing the worker until the machine swaps. A lower
    existing limit is kept."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def start_worker(memory_bytes: int, threads: int) -> None:
    """Prepare a local grading worker: its memory limit, and its share of the cores for torch.

    Workers already run side by side, one per core: torch's default of one thread per core in each of
    them oversubscribes the machine, and its spinning threads then cost several times the work
    (``validate lab06`` on 2 cores: 75 s with the default, 30 s with one thread per worker)."""
    import torch

    limit_memory(memory_bytes)
    torch.set_num_threads(threads)


class LocalPool:
    """Worker processes on this machine (``kind="process"``, the default) or threads (``"thread"``).

    Processes, because the grader runs each test cell's oracle comparisons in its own process while
    the student's code runs in a sandbox: with threads those comparisons would share one GIL. Workers
    come from a fork server that has imported the grader once, so starting one is cheap. (Workers
    are not recycled with ``max_tasks_per_child``: on Python 3.11 the pool then hangs when it
    replaces the first worker (seen here); the student's code runs in a fresh sandbox anyway.)
    Threads have a second catch: lazily imported oracle libraries (``transformers``) can fail to
    import when two test cells first use them at the same moment (seen here), so prefer processes.
    """

    def __init__(self, jobs: int, kind: str = "process"):
        if kind == "thread":
            self.executor: Executor = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="grade")
        elif kind == "process":
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["autograder.grade"])
            threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
            self.executor = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=start_worker,
                                                initargs=(WORKER_MEMORY_BYTES, threads))
        else:
            raise ValueError(f"unknown pool kind {kind!r}: process or thread")

    def submit(self, task: GradingTask, resources: dict[str, float] | None = None) -> Future:
        """Grade ``task`` in a worker (``resources`` only means something on a Dask cluster)."""
        return self.executor.submit(grade, task)

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        return as_completed(list(futures))

    def close(self, cancel: bool = False) -> None:
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)


class DaskPool:
    """Tasks on a Dask distributed cluster reached at ``address``."""

    CONNECT_TIMEOUT = 30  # seconds

    def __init__(self, address: str):
        from distributed import Client

        try:
            self.client = Client(address, timeout=self.CONNECT_TIMEOUT, set_as_default=False)
        except OSError as e:
            raise CourseError(f"cannot reach the Dask scheduler at {address}: {e}") from e

    def submit(self, task: GradingTask, resources: dict[str, float] | None = None) -> Any:
        return self.client.submit(grade_task, task, code_fingerprint(task.lab),
                                  key=f"grade-{task.lab}-{task.student}-{uuid.uuid4().hex[:12]}", pure=False,
                                  resources=resources)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed as dask_as_completed

        return iter(dask_as_completed(list(futures), loop=self.client.loop))

    def close(self, cancel: bool = False) -> None:
        self.client.close()


@contextmanager
def grading_pool(jobs: int | None = None, scheduler: str | None = None,
                 kind: str = "process") -> Iterator[LocalPool | DaskPool]:
    """A pool for grading: Dask when ``scheduler`` is an address, else ``jobs`` local workers (all cores)."""
    pool = DaskPool(scheduler) if scheduler else LocalPool(jobs or default_jobs(), kind)
    try:
        yield pool
    except BaseException:
        pool.close(cancel=True)  # Ctrl-C: queued submissions are dropped (the next run grades them)
        raise
    pool.close()


def run_all(pool: LocalPool | DaskPool, tasks: Iterable[GradingTask],
            on_done: Callable[[GradingTask, Result | None, str], None],
            resources: dict[str, float] | None = None) -> None:
    """Submit every task; call ``on_done(task, result, error)`` as each completes, in the calling
    thread. ``result`` is None when the task itself failed."""
    pending = {}
    for task in tasks:
        pending[pool.submit(task, resources=resources)] = task
    for fut in pool.as_completed(pending):
        task = pending.pop(fut)
        try:
            result, error = fut.result(), ""
        except Exception as e:  # noqa: BLE001 — a lost worker, a task killed too often: not the student's fault
            result, error = None, f"{type(e).__name__}: {e}"
        on_done(task, result, error)
