"""Grade a folder of submissions: find them, archive them, grade them in parallel, export.

Every submission found ends up in the CSV, whatever happens to it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from autograder.course import source_notebook
from autograder.feedback import write_feedback
from autograder.grade import GradeOptions, Result, grade_notebook, parts_all
from autograder.notebook import load_source


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


def archive(sub: Submission, raw: bytes, out: Path) -> str:
    """Store the raw bytes under their SHA-256 before grading; return the digest."""
    digest = hashlib.sha256(raw).hexdigest()
    dest = out / "archive" / f"{digest}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        dest.write_bytes(raw)
    return digest


def grade_folder(lab: str, folder: Path, out: Path, jobs: int = 1,
                 options: GradeOptions | None = None, progress: bool = True) -> list[Result]:
    """Grade every submission of ``folder`` with ``jobs`` in parallel; write CSV and feedback."""
    out.mkdir(parents=True, exist_ok=True)
    subs = find_submissions(folder, lab)

    def one(sub: Submission) -> Result:
        raw = sub.path.read_bytes() if sub.path.is_file() else b""
        archive(sub, raw, out)
        if not sub.path.is_file():
            r = Result(sub.student, lab, str(sub.path), status="invalid",
                       reason="no notebook was found in the submission folder")
            r.parts = parts_all(load_source(source_notebook(lab)), 0.0, "missing", r.reason)
            return r
        return grade_notebook(lab, raw, sub.student, str(sub.path), options)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(tqdm(pool.map(one, subs), total=len(subs), desc=f"grading {lab}",
                            disable=not progress))
    write_csv(results, out / "grades.csv")
    for r in results:
        write_feedback(r, out / "feedback" / f"{r.student}.html")
    return results


def write_csv(results: Iterable[Result], path: Path) -> None:
    """One row per submission: totals, status, each part's points, and the reasons."""
    results = list(results)
    part_ids = list(dict.fromkeys(p.grade_id for r in results for p in r.parts))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "lab", "status", "score", "max_score", *part_ids, "reason", "notes",
                    "sha256", "submission"])
        for r in results:
            pts = {p.grade_id: p.points for p in r.parts}
            reasons = "; ".join(f"{p.grade_id}: {p.status} — {p.reason.splitlines()[0] if p.reason else ''}"
                                for p in r.parts if p.status != "passed")
            w.writerow([r.student, r.lab, r.status, f"{r.score:g}", f"{r.max_score:g}",
                        *(f"{pts.get(g, 0):g}" for g in part_ids), r.reason.splitlines()[0] if r.reason
                        else reasons, " | ".join(r.notes), r.sha256, r.submission])
