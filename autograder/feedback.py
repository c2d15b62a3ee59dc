"""Per-student feedback as one self-contained HTML page.

It shows the score, each part's status and the one-line reason, what the test printed (pass lines
and the failure message) and the student's own answer code. It never shows the test cells'
source, so hidden tests stay hidden (nbgrader's default feedback would reveal them).
"""

from __future__ import annotations

import html
from pathlib import Path

from autograder.grade import Result

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;
vertical-align:top}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
.passed{color:#1a7f37}.failed,.error,.timeout,.crashed,.missing{color:#cf222e}.note{color:#9a6700}
"""


def render(r: Result) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(p.grade_id)}</td><td class='{e(p.status)}'>{e(p.status)}</td>"
        f"<td>{p.points:g} / {p.max_points:g}</td><td>{e(p.reason.splitlines()[0] if p.reason else '')}"
        f"</td></tr>" for p in r.parts)
    details = "".join(
        f"<h3>{e(p.grade_id)} — <span class='{e(p.status)}'>{e(p.status)}</span></h3>"
        + (f"<p>Test output:</p><pre>{e(p.output)}</pre>" if p.output.strip() else "")
        + (f"<p>Message:</p><pre>{e(p.reason)}</pre>" if p.reason else "")
        + (f"<p>Your code (<code>{e(p.answer_id)}</code>):</p><pre>{e(r.answers.get(p.answer_id, ''))}</pre>"
           if p.answer_id else "")
        for p in r.parts)
    notes = "".join(f"<li class='note'>{e(n)}</li>" for n in r.notes)
    status = "" if r.status == "graded" else f"<p class='failed'><b>{e(r.status)}</b>: {e(r.reason)}</p>"
    return (f"<!doctype html><meta charset='utf-8'><title>{e(r.lab)} — {e(r.student)}</title>"
            f"<style>{STYLE}</style><h1>{e(r.lab)}: {r.score:g} / {r.max_score:g}</h1>"
            f"<p>Student: <b>{e(r.student)}</b> · submission SHA-256 <code>{e(r.sha256[:12])}</code></p>"
            f"{status}{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<table><tr><th>part</th><th>status</th><th>points</th><th>reason</th></tr>{rows}</table>"
            f"<h2>Details</h2>{details}"
            "<p><small>Hidden tests compare your code with reference libraries on inputs you have not "
            "seen; their code is not shown.</small></p>")


def write_feedback(r: Result, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(r), encoding="utf-8")
