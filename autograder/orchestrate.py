"""Grade a folder of submissions: find them, archive them, grade them in parallel, record, export.

Nothing is lost, and nothing is graded twice:

1. Before anything runs, every submission found is archived (its raw bytes, content-addressed as
   ``OUT/archive/SHA256.ipynb``, written atomically, never changed) and recorded in the gradebook
   (:mod:`autograder.gradebook`: SQLite ``OUT/gradebook.sqlite`` by default, or ``db=postgresql://…``).
2. Submissions whose student × lab × SHA-256 already has an autograde are skipped (``force=True``
   grades them again); results with status ``infrastructure-error`` are always graded again.
3. The rest are graded in parallel, one thread per core by default, or as tasks on a Dask cluster
   (``scheduler="tcp://HOST:PORT"``, see :mod:`autograder.distributed`). Each result is written to
   the gradebook, in its own transaction, as soon as it completes, and its feedback page with it. So
   a grader killed at any moment (even ``kill -9``) loses only the submissions in flight; running the
   same command again grades exactly those.
4. ``grades.csv`` is exported from the gradebook: one row per student (the latest submission), with
   the autograde, the manual adjustments TAs entered, and the total. Every student found is in it,
   as ``not graded`` if grading never finished.

Manual grades live in their own table; autograding, regrading included, never changes them.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from autograder.course import CourseError, source_notebook
from autograder.distributed import default_jobs, grading_pool, run_all
from autograder.feedback import write_feedback
from autograder.grade import GradeOptions, PartResult, Result
from autograder.gradebook import RETRY_STATUSES, Gradebook
from autograder.notebook import is_test, load_source, nbgrader_meta, points

NO_NOTEBOOK = "no notebook was found in the submission folder"


@dataclass
class Submission:
    student: str
    path: Path


def find_submissions(folder: Path, lab: str) -> list[Submission]:
    """Submissions in ``folder``: ``STUDENT.ipynb`` files, or nbgrader's ``STUDENT/LAB/*.ipynb``.

    A student folder without any notebook is still listed (it is graded as invalid), so nobody
    silently disappears from the gradebook.
    """
    subs = [Submission(p.stem, p) for p in sorted(folder.glob("*.ipynb"))]
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        nbs = sorted((d / lab).glob("*.ipynb")) if (d / lab).is_dir() else sorted(d.glob("*.ipynb"))
        preferred = [p for p in nbs if p.stem == lab] or nbs
        subs.append(Submission(d.name, preferred[0] if preferred else d))
    return subs


def archive_path(out: Path, digest: str) -> Path:
    return out / "archive" / f"{digest}.ipynb"


def archive(sub: Submission, raw: bytes, out: Path) -> str:
    """Store the raw bytes under their SHA-256 before grading; return the digest.

    Written to a temporary file, flushed to disk and renamed, so a kill never leaves half a file
    under a digest's name; an existing file is kept as it is (same name, same bytes).
    """
    digest = hashlib.sha256(raw).hexdigest()
    dest = archive_path(out, digest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    return digest


def zero_parts(lab: str, status: str, reason: str) -> list[PartResult]:
    """A zero-point part for every test cell of ``lab`` (a submission that was not run)."""
    return [PartResult(grade_id=nbgrader_meta(c)["grade_id"], max_points=points(c), points=0.0, status=status,
                       reason=reason) for c in load_source(source_notebook(lab)).cells if is_test(c)]


def no_notebook_result(lab: str, student: str, submission: str) -> Result:
    r = Result(student, lab, submission, hashlib.sha256(b"").hexdigest(), status="invalid", reason=NO_NOTEBOOK)
    r.parts = zero_parts(lab, "missing", NO_NOTEBOOK)
    return r


def grade_folder(lab: str, folder: Path, out: Path, jobs: int | None = None,
                 options: GradeOptions | None = None, progress: bool = True, *, db: str | None = None,
                 scheduler: str | None = None, force: bool = False, resources: dict[str, float] | None = None,
                 pool: str = "process") -> list[Result]:
    """Grade every submission of ``folder`` not graded yet; write the gradebook, CSV and feedback.

    ``jobs`` local worker processes (``pool="thread"``: threads) grade in parallel (default: all
    cores), or the Dask cluster at ``scheduler`` (``resources``, e.g. ``{"GPU": 1}``, restricts
    tasks to workers that advertise them). ``db`` is the gradebook (default ``OUT/gradebook.sqlite``).
    Returns the result of every submission found, in the folder's order: the new ones and those
    read back from the gradebook.
    """
    out.mkdir(parents=True, exist_ok=True)
    subs = find_submissions(folder, lab)
    options = options or GradeOptions()
    if scheduler is None and (jobs or default_jobs()) >= default_jobs():
        options = replace(options, prewarm=False)  # every core already grades: a spare sandbox only competes
    with Gradebook.open(db, out) as book:
        tasks = []  # (lab, raw, student, submission, options)
        for sub in subs:
            raw = sub.path.read_bytes() if sub.path.is_file() else b""
            digest = archive(sub, raw, out)
            book.record_submission(sub.student, lab, digest, str(sub.path), str(archive_path(out, digest)))
            tasks.append((lab, raw, sub.student, str(sub.path), options))
        known = {k: r for k, r in book.results(lab).items() if r.status not in RETRY_STATUSES}
        key = {t[2]: (t[2], hashlib.sha256(t[1]).hexdigest()) for t in tasks}
        todo = [t for t in tasks if force or key[t[2]] not in known]
        if progress:
            print(f"{lab}: {len(subs)} submissions, {len(subs) - len(todo)} already graded, {len(todo)} to grade",
                  file=sys.stderr)
        fresh = grade_tasks(book, out, todo, jobs=jobs, scheduler=scheduler, resources=resources, progress=progress,
                            pool=pool)
        book.export_csv(lab, out / "grades.csv")
    results = []
    for t in tasks:
        r = fresh.get(t[2]) or known[key[t[2]]]
        if t[2] not in fresh and not (out / "feedback" / f"{r.student}.html").is_file():
            write_feedback(r, out / "feedback" / f"{r.student}.html")
        results.append(r)
    return results


def grade_tasks(book: Gradebook, out: Path, tasks: Iterable[tuple], *, jobs: int | None = None,
                scheduler: str | None = None, resources: dict[str, float] | None = None,
                progress: bool = False, pool: str = "process") -> dict[str, Result]:
    """Grade ``(lab, raw, student, submission, options)`` tasks; record each result as it completes.

    A task that failed outside ``grade_notebook`` (a Dask worker lost too often) is returned as an
    ``infrastructure-error`` but not recorded, so the next run grades it again.
    """
    tasks = list(tasks)
    fresh: dict[str, Result] = {}
    bar = tqdm(total=len(tasks), desc=f"grading {tasks[0][0]}" if tasks else "grading", disable=not progress)

    def done(task: tuple, result: Result | None, error: str) -> None:
        lab, raw, student, submission, _ = task
        if result is None:
            result = Result(student, lab, submission, hashlib.sha256(raw).hexdigest(),
                            status="infrastructure-error", reason=f"the grading task failed: {error}")
            result.parts = zero_parts(lab, "missing", "not graded yet")
            tqdm.write(f"warning: {student}: {result.reason} (left ungraded; run again)", file=sys.stderr)
        else:
            book.record_result(result)
        write_feedback(result, out / "feedback" / f"{student}.html")
        fresh[student] = result
        bar.update()

    remote = []
    for task in tasks:
        lab, raw, student, submission, _ = task
        if not raw and not submission.endswith(".ipynb"):
            done(task, no_notebook_result(lab, student, submission), "")  # nothing to run
        else:
            remote.append(task)
    if remote:
        with grading_pool(jobs, scheduler, pool) as workers:
            run_all(workers, remote, done, resources=resources)
    bar.close()
    return fresh


def regrade_student(lab: str, student: str, out: Path, options: GradeOptions | None = None, *,
                    db: str | None = None, scheduler: str | None = None) -> Result:
    """Autograde ``student``'s latest submission of ``lab`` again, from the archive; manual grades stay."""
    with Gradebook.open(db, out) as book:
        sub = book.latest_submissions(lab).get(student)
        if sub is None:
            raise CourseError(f"no submission of {lab} by {student!r} in the gradebook {book.display_url}")
        path = Path(sub.archived_path)
        if not path.is_file():
            path = archive_path(out, sub.sha256)
        if not path.is_file():
            raise CourseError(f"the archived bytes of {student}'s submission are missing ({sub.archived_path})")
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != sub.sha256:
            raise CourseError(f"{path} does not hold the submission it should ({sub.sha256}): the archive was altered")
        fresh = grade_tasks(book, out, [(lab, raw, student, sub.path, options)], jobs=1, scheduler=scheduler,
                            pool="thread")
        book.export_csv(lab, out / "grades.csv")
    return fresh[student]


def export(lab: str, out: Path, *, db: str | None = None) -> Path:
    """Write ``OUT/grades.csv`` from the gradebook: autograde, manual adjustments and totals."""
    with Gradebook.open(db, out) as book:
        return book.export_csv(lab, out / "grades.csv")
