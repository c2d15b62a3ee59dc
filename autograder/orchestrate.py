"""Grade a folder of submissions: find them, archive them, grade them in parallel, record, export.

Nothing is lost, and nothing is graded twice:

1. Before anything runs, every submission found is archived (its raw bytes, content-addressed as
   ``OUT/archive/SHA256.ipynb``, written atomically, never changed) and recorded in the gradebook
   (:mod:`autograder.gradebook`: SQLite ``OUT/gradebook.sqlite`` by default, or ``db=postgresql://…``).
2. Submissions whose student × lab × SHA-256 already has an autograde are skipped (``force=True``
   grades them again); results with status ``infrastructure-error`` are always graded again.
3. The rest are graded in parallel, one worker process per core by default, or as tasks on a Dask cluster
   (``scheduler="tcp://HOST:PORT"``, see :mod:`autograder.distributed`). Each result is written to
   the gradebook, in its own transaction, as soon as it completes, and its feedback page with it. So
   a grader killed at any moment (even ``kill -9``) loses only the submissions in flight; running the
   same command again grades exactly those.
4. ``grades.csv`` is exported from the gradebook (:mod:`autograder.export`): one row per student
   (the latest submission), with the autograde, the manual adjustments TAs entered, and the total.
   Every student found is in it, as ``not graded`` if grading never finished.

Manual grades live in their own table; autograding, regrading included, never changes them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from autograder.course import CourseError
from autograder.distributed import default_jobs, grading_pool, run_all
from autograder.export import export_csv
from autograder.feedback import write_feedback
from autograder.gradebook import RETRY_STATUSES, Gradebook
from autograder.model import GradeOptions, GradingTask, Result, Status, SubmissionStatus, zero_parts
from autograder.similarity import report as similarity_report

NO_NOTEBOOK = "no notebook was found in the submission folder"


@dataclass
class Submission:
    student: str
    path: Path
    invalid: str = ""  # why it is invalid without being read (a symbolic link, a device, a fifo, ...)


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (fifo)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(folder: Path, depth: int = 1) -> list[str]:
    """Entries of a student's folder (and of its sub-folders, ``depth`` levels) that are not regular
    files or folders, as ``NAME (what it is)``. Never follows a link."""
    bad: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        return [f"{folder.name} (unreadable: {e.strerror})"]
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            if depth > 0:
                bad += [f"{entry.name}/{b}" for b in _not_regular(Path(entry.path), depth - 1)]
        elif not stat.S_ISREG(mode):
            bad.append(f"{entry.name} ({_kind(mode)})")
    return bad


def find_submissions(folder: Path, lab: str) -> list[Submission]:
    """Submissions in ``folder``: ``STUDENT.ipynb`` files, or nbgrader's ``STUDENT/LAB/*.ipynb``.

    A student folder without any notebook is still listed (it is graded as invalid), so nobody
    silently disappears from the gradebook. Nothing that is not a regular file is ever read or
    followed: a ``STUDENT.ipynb`` or a student folder that is a symbolic link, and a student folder
    holding a link, a device or a fifo, are listed as invalid with the reason.
    """
    subs: list[Submission] = []
    dirs: list[Path] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        mode = entry.stat(follow_symlinks=False).st_mode
        path = Path(entry.path)
        if entry.name.endswith(".ipynb"):
            why = "" if stat.S_ISREG(mode) else f"the submission {entry.name} is {_kind(mode)}, not a regular file"
            subs.append(Submission(path.stem, path, why))
        elif not entry.name.startswith((".", "_")):
            if stat.S_ISDIR(mode):
                dirs.append(path)
            elif stat.S_ISLNK(mode):
                subs.append(Submission(entry.name, path, f"the student folder {entry.name} is a symbolic link"))
    for d in dirs:
        bad = _not_regular(d)
        if bad:
            subs.append(Submission(d.name, d, "the submission folder holds what is not a regular file "
                                              f"(never read): {', '.join(bad[:5])}"))
            continue
        nbs = sorted((d / lab).glob("*.ipynb")) if (d / lab).is_dir() else sorted(d.glob("*.ipynb"))
        preferred = [p for p in nbs if p.stem == lab] or nbs
        subs.append(Submission(d.name, preferred[0] if preferred else d))
    return subs


def read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file, opened without following a link (``O_NOFOLLOW``,
    and checked on the open descriptor, so a file swapped for a link or a fifo meanwhile is refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def submission_task(sub: Submission, lab: str, options: GradeOptions | None) -> GradingTask:
    """The grading task of ``sub``: its bytes (read safely), or empty with the reason it is invalid."""
    if sub.invalid:
        return GradingTask(lab, b"", sub.student, str(sub.path), options, invalid=sub.invalid)
    if not sub.path.name.endswith(".ipynb"):
        return GradingTask(lab, b"", sub.student, str(sub.path), options)
    try:
        raw = read_regular(sub.path)
    except OSError as e:
        return GradingTask(lab, b"", sub.student, str(sub.path), options,
                           invalid=f"the submission could not be read as a regular file ({e.strerror or e})")
    return GradingTask(lab, raw, sub.student, str(sub.path), options)


def archive_path(out: Path, digest: str) -> Path:
    return out / "archive" / f"{digest}.ipynb"


def archive(task: GradingTask, out: Path) -> Path:
    """Store the raw bytes under their SHA-256 before grading; return where.

    Written to a temporary file, flushed to disk and renamed, so a kill never leaves half a file
    under a digest's name; an existing file is kept as it is (same name, same bytes).
    """
    dest = archive_path(out, task.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as f:
            f.write(task.raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    return dest


def no_notebook_result(task: GradingTask) -> Result:
    """The result of a submission with nothing to run: no notebook, or one that is not a regular file."""
    reason = task.invalid or NO_NOTEBOOK
    r = Result(task.student, task.lab, task.submission, task.sha256, status=SubmissionStatus.INVALID,
               reason=reason)
    r.parts = zero_parts(task.lab, Status.MISSING, reason)
    return r


def grade_folder(lab: str, folder: Path, out: Path, jobs: int | None = None,
                 options: GradeOptions | None = None, progress: bool = True, *, db: str | None = None,
                 scheduler: str | None = None, force: bool = False, resources: dict[str, float] | None = None,
                 pool: str = "process") -> list[Result]:
    """Grade every submission of ``folder`` not graded yet; write the gradebook, CSV, feedback and the
    similarity report (:mod:`autograder.similarity`).

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
        tasks = []
        for sub in subs:
            task = submission_task(sub, lab, options)
            book.record_submission(sub.student, lab, task.sha256, str(sub.path), str(archive(task, out)))
            tasks.append(task)
        known = {k: r for k, r in book.results(lab).items() if r.status not in RETRY_STATUSES}
        todo = [t for t in tasks if force or (t.student, t.sha256) not in known]
        if progress:
            print(f"{lab}: {len(subs)} submissions, {len(subs) - len(todo)} already graded, {len(todo)} to grade",
                  file=sys.stderr)
        fresh = grade_tasks(book, out, todo, jobs=jobs, scheduler=scheduler, resources=resources, progress=progress,
                            pool=pool)
        similarity_report(lab, book, out)  # OUT/similarity.html; its flags go into the CSV
        export_csv(book, lab, out / "grades.csv")
    results = []
    for t in tasks:
        r = fresh.get(t.student) or known[(t.student, t.sha256)]
        if t.student not in fresh and not (out / "feedback" / f"{r.student}.html").is_file():
            write_feedback(r, out / "feedback" / f"{r.student}.html")
        results.append(r)
    return results


def grade_tasks(book: Gradebook, out: Path, tasks: Iterable[GradingTask], *, jobs: int | None = None,
                scheduler: str | None = None, resources: dict[str, float] | None = None,
                progress: bool = False, pool: str = "process") -> dict[str, Result]:
    """Grade ``tasks``; record each result as it completes; return them by student.

    A task that failed outside ``grade_notebook`` (a Dask worker lost too often) is returned as an
    ``infrastructure-error`` but not recorded, so the next run grades it again.
    """
    tasks = list(tasks)
    fresh: dict[str, Result] = {}
    bar = tqdm(total=len(tasks), desc=f"grading {tasks[0].lab}" if tasks else "grading", disable=not progress)

    def done(task: GradingTask, result: Result | None, error: str) -> None:
        if result is None:
            result = Result(task.student, task.lab, task.submission, task.sha256,
                            status=SubmissionStatus.INFRASTRUCTURE_ERROR, reason=f"the grading task failed: {error}")
            result.parts = zero_parts(task.lab, Status.MISSING, "not graded yet")
            tqdm.write(f"warning: {task.student}: {result.reason} (left ungraded; run again)", file=sys.stderr)
        else:
            book.record_result(result)
        write_feedback(result, out / "feedback" / f"{task.student}.html")
        fresh[task.student] = result
        bar.update()

    remote = []
    for task in tasks:
        if task.invalid or (not task.raw and not task.submission.endswith(".ipynb")):
            done(task, no_notebook_result(task), "")  # nothing to run
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
        # the hidden inputs of the first grading again (autograder.seeds), even if the secret changed
        before = book.results(lab).get((student, sub.sha256))
        if before is not None:
            used = {p.grade_id: p.hidden_seed for p in before.parts if p.hidden_seed is not None}
            options = replace(options or GradeOptions(), hidden_seeds=used)
            if not used:  # it was graded with the checks' default seeds: so is the regrade
                options = replace(options, secret=None)
        fresh = grade_tasks(book, out, [GradingTask(lab, raw, student, sub.path, options)], jobs=1,
                            scheduler=scheduler, pool="thread")
        export_csv(book, lab, out / "grades.csv")
    return fresh[student]
