"""The course loop on JupyterHub: nbgrader's exchange for moving notebooks, our grader for grades.

One command per instructor step (``python -m autograder exchange STEP LAB``)::

    release   labs/LAB (the generated student version) -> the exchange      (nbgrader release_assignment)
    collect   the exchange -> COURSE/submitted/STUDENT/LAB/                (nbgrader collect --update)
    (grade)   python -m autograder grade LAB COURSE/submitted               (ours: sandbox, hidden tests)
    feedback  our feedback page of each graded submission -> the student   (nbgrader release_feedback)
    export    grades/LAB/grades.csv plus gradebook CSVs for Canvas and Moodle

``COURSE`` is nbgrader's course folder: ``autograder/`` of the instructor's checkout (its
``nbgrader_config.py`` points nbgrader at ``../solutions`` and ``../labs``). The exchange root and the
course id come from nbgrader's usual config files (on JupyterHub, ``deploy/setup.py`` writes them and
every user's server gets them through ``JUPYTER_CONFIG_PATH``), or from ``--exchange``/``--course``.

Students use nbgrader's own assignment list in JupyterLab (fetch, validate, submit, fetch feedback).

Feedback is **ours**, never nbgrader's ``generate_feedback``: that one renders the graded notebook,
hidden test cells included, so it would hand every student the hidden tests. We put our page
(:func:`autograder.feedback.render`: score, statuses, reasons, the student's own code; no test
source) where ``release_feedback`` expects it, ``COURSE/feedback/STUDENT/LAB/NOTEBOOK.html`` next to the
submission's ``timestamp.txt`` and ``submission_secret.txt``, so nbgrader files it under the hash only
that student's own submission can compute. A student whose collected notebook differs from the one
graded (a later submission collected but not graded yet) gets nothing until it is graded.

Formgrader's gradebook is not used for grades: its scores come from nbgrader's own autograder, which
runs the test cells, hidden ones included, inside the student's kernel with no sandbox. Our gradebook
(``grades/LAB/gradebook.sqlite`` or PostgreSQL) replaces it; ``grades.csv`` and the LMS files are its
views, and manual points go in with ``python -m autograder manual``. Formgrader stays useful to browse
submissions and to manage the course's assignments.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.course import AUTOGRADER_DIR, CourseError
from autograder.course import lab as lab_entry

COURSE_DIR = AUTOGRADER_DIR  # nbgrader's course root (see autograder/nbgrader_config.py)


@dataclass
class Exchange:
    """Where nbgrader's exchange and course folder are; ``None`` = nbgrader's config files decide."""

    course_dir: Path = COURSE_DIR
    course_id: str | None = None
    root: str | None = None

    def nbgrader(self, *args: str) -> subprocess.CompletedProcess:
        """Run ``nbgrader ARGS`` in the course folder (so its ``nbgrader_config.py`` applies)."""
        cmd = [sys.executable, "-m", "nbgrader", *args]
        if self.course_id:
            cmd.append(f"--CourseDirectory.course_id={self.course_id}")
        if self.root:
            cmd.append(f"--Exchange.root={self.root}")
        proc = subprocess.run(cmd, cwd=self.course_dir, capture_output=True, text=True)
        log = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0 or "[ERROR]" in log:
            raise CourseError(f"nbgrader {args[0]} failed:\n{log}")
        return proc

    @property
    def submitted(self) -> Path:
        return self.course_dir / "submitted"

    @property
    def feedback(self) -> Path:
        return self.course_dir / "feedback"


def release(lab: str, ex: Exchange, force: bool = False) -> str:
    """Publish ``labs/LAB`` to the exchange (checked to be in sync with ``solutions/`` first)."""
    from autograder.release import out_of_sync

    diffs = out_of_sync(lab)
    if diffs:
        raise CourseError(f"labs/{lab} is out of sync with solutions/ ({'; '.join(diffs)}): "
                          f"run `python -m autograder release {lab}` first")
    proc = ex.nbgrader("release_assignment", lab, *(["--force"] if force else []))
    return _last_info(proc) or f"released {lab}"


def collect(lab: str, ex: Exchange) -> list[str]:
    """Copy each student's latest submission into ``COURSE/submitted/STUDENT/LAB/``; return the students."""
    ex.nbgrader("collect", lab, "--update")
    return sorted(d.parent.name for d in ex.submitted.glob(f"*/{lab}") if d.is_dir())


@dataclass
class Returned:
    student: str
    score: str
    status: str  # "released" | why not


def return_feedback(lab: str, ex: Exchange, out: Path, db: str | None = None) -> list[Returned]:
    """Hand each student the feedback page of their collected, graded submission, through the exchange."""
    from autograder.feedback import render
    from autograder.gradebook import Gradebook
    from autograder.orchestrate import find_submissions, read_regular

    if not ex.submitted.is_dir():
        raise CourseError(f"nothing collected in {ex.submitted}: run `python -m autograder exchange collect {lab}`")
    report: list[Returned] = []
    with Gradebook.open(db, out) as book:
        graded, manual = book.results(lab), book.manual(lab)
        for sub in find_submissions(ex.submitted, lab):
            folder = ex.submitted / sub.student / lab
            try:
                raw = read_regular(sub.path)  # never follows a link planted in the exchange
            except OSError:
                raw = None
            if raw is None or not (folder / "submission_secret.txt").is_file():
                report.append(Returned(sub.student, "", "skipped: no notebook (as a regular file) or no submission "
                                                        "secret"))
                continue
            digest = hashlib.sha256(raw).hexdigest()
            result = graded.get((sub.student, digest))
            if result is None:
                report.append(Returned(sub.student, "", f"skipped: not graded yet (run `python -m autograder grade "
                                                        f"{lab} {ex.submitted}`)"))
                continue
            dest = ex.feedback / sub.student / lab
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for name in ("timestamp.txt", "submission_secret.txt"):
                shutil.copy2(folder / name, dest / name)
            (dest / f"{sub.path.stem}.html").write_text(render(result, manual.get(sub.student)), encoding="utf-8")
            report.append(Returned(sub.student, f"{result.score:g}/{result.max_score:g}", "released"))
    if any(r.status == "released" for r in report):
        ex.nbgrader("release_feedback", lab)
    return report


# --- export for learning management systems ----------------------------------------------------------
def read_roster(path: Path | None) -> dict[str, dict[str, str]]:
    """username → the student's LMS fields (CSV columns: username, name, email, sis_id, lms_id, section)."""
    if path is None:
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["username"].strip(): {k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)}


def export_lms(lab: str, out: Path, db: str | None = None, roster: Path | None = None,
               column: str | None = None) -> dict[str, Path]:
    """Write ``grades.csv`` (ours) and the gradebook-import CSVs ``canvas.csv`` and ``moodle.csv``.

    The grade is the total: autograde plus manual adjustments; a student not graded yet has an empty
    grade (not 0). ``column`` names the grade column (default: "Lab N: Title"); for Canvas, append the
    assignment's Canvas id in parentheses ("Lab 1: Tokenizers (1234)") to update an existing assignment.
    Students are matched by login: Canvas's "SIS Login ID", Moodle's "Username" = the hub username,
    unless a roster gives other ids.
    """
    from autograder.export import export, export_rows, safe_cell
    from autograder.gradebook import Gradebook

    entry = lab_entry(lab)
    column = column or f"Lab {entry.number}: {entry.title}"
    people = read_roster(roster)
    ours = export(lab, out, db=db)
    with Gradebook.open(db, out) as book:
        _, rows = export_rows(book, lab)
    graded = [r for r in rows if r.get("max_score")]
    max_points = graded[0]["max_score"] if graded else ""

    def grade(row: dict) -> str:
        return row["total"] if row.get("max_score") else ""

    canvas = out / "canvas.csv"
    with open(canvas, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        w.writerow(["    Points Possible", "", "", "", "", max_points])
        for row in rows:
            p = people.get(row["student"], {})
            w.writerow([safe_cell(c) for c in (p.get("name") or row["student"], p.get("lms_id", ""),
                                               p.get("sis_id", ""), row["student"], p.get("section", ""), grade(row))])
    moodle = out / "moodle.csv"
    with open(moodle, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Username", "ID number", "Email address", "Full name", column, "Feedback"])
        for row in rows:
            p = people.get(row["student"], {})
            summary = (f"autograde {row['score']}/{row['max_score']}, manual {row['manual']}"
                       if row.get("max_score") else row["status"])
            w.writerow([safe_cell(c) for c in (row["student"], p.get("sis_id", ""), p.get("email", ""),
                                               p.get("name", ""), grade(row), summary)])
    return {"grades": ours, "canvas": canvas, "moodle": moodle}


# --- command line --------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    """Add ``exchange`` (release, collect, feedback, export) to ``python -m autograder``."""
    p = sub.add_parser("exchange", help="JupyterHub course loop: release to / collect from nbgrader's exchange, "
                                        "return our feedback, export for the LMS")
    steps = p.add_subparsers(dest="step", required=True)
    for name, help_ in (("release", "publish labs/LAB to the exchange (students fetch it in JupyterLab)"),
                        ("collect", "copy the latest submissions into COURSE/submitted/"),
                        ("feedback", "return our feedback page of each graded submission (never hidden tests)"),
                        ("export", "grades.csv plus canvas.csv and moodle.csv for the LMS gradebook")):
        s = steps.add_parser(name, help=help_)
        s.add_argument("lab")
        s.add_argument("--course-dir", type=Path, default=COURSE_DIR, help="nbgrader's course folder")
        s.add_argument("--course", help="course id (default: from nbgrader's config)")
        s.add_argument("--exchange", help="exchange root (default: from nbgrader's config)")
        if name in ("feedback", "export"):
            s.add_argument("--out", type=Path, help="the grade command's output folder (default: grades/LAB)")
            s.add_argument("--db", help="gradebook URL (default: SQLite OUT/gradebook.sqlite)")
        if name == "release":
            s.add_argument("--force", action="store_true", help="replace a release already in the exchange")
        if name == "export":
            s.add_argument("--roster", type=Path, help="CSV: username,name,email,sis_id,lms_id,section")
            s.add_argument("--column", help="the LMS grade column (default 'Lab N: Title')")


def cmd_exchange(args, labs: list[str]) -> int:
    lab = labs[0]
    ex = Exchange(args.course_dir.resolve(), args.course, args.exchange)
    out = getattr(args, "out", None) or Path("grades") / lab
    if args.step == "release":
        print(release(lab, ex, force=args.force))
    elif args.step == "collect":
        students = collect(lab, ex)
        print(f"{len(students)} submissions in {ex.submitted}: {', '.join(students) or 'none'}\n"
              f"next: python -m autograder grade {lab} {ex.submitted}")
    elif args.step == "feedback":
        for r in return_feedback(lab, ex, out, db=args.db):
            print(f"{r.student:<24} {r.score:<10} {r.status}")
    else:
        for kind, path in export_lms(lab, out, db=args.db, roster=args.roster, column=args.column).items():
            print(f"{kind:<7} {path}")
    return 0


def _last_info(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "[INFO]" in ln]
    return lines[-1].split("[INFO]", 1)[1].strip() if lines else ""
