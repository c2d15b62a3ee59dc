"""``grades.csv``: one row per student, from the gradebook (autograde, manual grades, total).

Written atomically (a reader never sees half a file). Imports neither torch nor the grader, so an
instructor can export on any machine that reaches the gradebook.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from autograder.gradebook import Gradebook
from autograder.model import Status

SIMILARITY_JSON = "similarity.json"  # written by autograder.similarity after grading

PENDING = "pending"  # a written answer's column until an instructor grades it
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def safe_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula: text starting with ``= + - @``, a tab or a
    carriage return gets a leading apostrophe (OWASP's advice); numbers (``-2``) stay numbers.

    >>> safe_cell("=HYPERLINK(1)"), safe_cell("-2.5"), safe_cell("alice"), safe_cell(3)
    ("'=HYPERLINK(1)", '-2.5', 'alice', 3)
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def safe_row(row: dict) -> dict:
    """:func:`safe_cell` on every key and cell of a row (for every CSV written from student-controlled text)."""
    return {safe_cell(k): safe_cell(v) for k, v in row.items()}


def export_rows(book: Gradebook, lab: str) -> tuple[list[str], list[dict]]:
    """One row per student: the latest submission, its autograde, the manual adjustments, the total.

    A student whose latest submission has no autograde yet is listed with status ``not graded``;
    one with manual grades but no submission, with status ``no submission``. A written answer's
    column shows the points an instructor gave it (``python -m autograder manual``), else
    ``pending``.
    """
    latest = book.latest_submissions(lab)
    graded = book.results(lab)
    when = book.graded_at(lab)
    manual = book.manual(lab)
    part_ids = list(dict.fromkeys(p.grade_id for r in graded.values() for p in r.parts))
    header = ["student", "lab", "status", "score", "max_score", "manual", "total", *part_ids, "reason",
              "notes", "flags", "sandbox", "manual_notes", "sha256", "submission", "archived", "graded_at"]
    rows = []
    for student in sorted(set(latest) | set(manual)):
        sub = latest.get(student)
        r = graded.get((student, sub.sha256)) if sub else None
        adj = {g: m for g, m in manual.get(student, {}).items() if m.points or m.comment}
        extra = sum(m.points for m in adj.values())
        row = {"student": student, "lab": lab, "manual": f"{extra:g}",
               "manual_notes": " | ".join(f"{g}: {m.points:+g} {m.comment} ({m.grader or '?'}, {m.at[:16]})"
                                          for g, m in adj.items()),
               "sha256": sub.sha256 if sub else "", "submission": sub.path if sub else "",
               "archived": sub.archived_path if sub else ""}
        if r is None:
            row.update(status="not graded" if sub else "no submission", score="", max_score="",
                       total=f"{extra:g}", reason="not autograded yet: run grade again" if sub else "")
        else:
            pts = {p.grade_id: f"{p.points:g}" for p in r.auto_parts}
            for p in r.manual_parts:
                given = manual.get(student, {}).get(p.grade_id)
                pts[p.grade_id] = f"{given.points:g}" if given else (PENDING if p.status == Status.PENDING else "0")
            lost = "; ".join(f"{p.grade_id}: {p.status} — {p.reason.splitlines()[0] if p.reason else ''}"
                             for p in r.auto_parts if p.status != Status.PASSED)
            row.update(status=r.status, score=f"{r.score:g}", max_score=f"{r.max_score:g}",
                       total=f"{r.score + extra:g}", notes=" | ".join(r.notes),
                       flags=" | ".join(r.flags), sandbox=r.sandbox,
                       reason=r.reason.splitlines()[0] if r.reason else lost,
                       graded_at=when[(student, sub.sha256)],
                       **{g: pts.get(g, "0") for g in part_ids})
        rows.append(row)
    return header, rows


def similarity_flags(out: Path) -> dict[str, list[str]]:
    """Each student's review flags from ``OUT/similarity.json`` (:mod:`autograder.similarity`); none without one."""
    path = out / SIMILARITY_JSON
    return json.loads(path.read_text(encoding="utf-8"))["flags"] if path.is_file() else {}


def export_csv(book: Gradebook, lab: str, path: Path) -> Path:
    """Write :func:`export_rows` as CSV (atomically: a reader never sees half a file)."""
    header, rows = export_rows(book, lab)
    similar = similarity_flags(path.parent)
    for row in rows:
        row["flags"] = " | ".join(filter(None, [row.get("flags", ""), *similar.get(row["student"], [])]))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, [safe_cell(h) for h in header], restval="")
        w.writeheader()
        w.writerows(safe_row(row) for row in rows)
    tmp.replace(path)
    return path


def export(lab: str, out: Path, *, db: str | None = None) -> Path:
    """Write ``OUT/grades.csv`` from the gradebook (default ``OUT/gradebook.sqlite``)."""
    with Gradebook.open(db, out) as book:
        return export_csv(book, lab, out / "grades.csv")
