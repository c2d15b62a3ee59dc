"""Per-student feedback as one self-contained HTML page.

It shows the score, each part's status and the one-line reason, what the test printed (pass lines
and the failure message) and the student's own answer code; for a written answer, the student's
text and, once an instructor has graded it, the points and comment. It never shows the test cells'
source, so hidden tests stay hidden (nbgrader's default feedback would reveal them). Imports
neither torch nor the grader.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autograder.model import Result, Status

FAILED_COLOR = "#cf222e"
STATUS_COLOR = {Status.PASSED: "#1a7f37", Status.PENDING: "#0969da"}
STYLE = (
    """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;
vertical-align:top}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap}.note{color:#9a6700}
.infrastructure-error,.invalid{color:#cf222e}.diagnosis{border-left:3px solid #9a6700;padding-left:.6rem}
"""
    + "".join(f".{s}{{color:{STATUS_COLOR.get(s, FAILED_COLOR)}}}" for s in Status)
)


def render(r: Result, manual: Mapping[str, Any] | None = None) -> str:
    """The page for ``r``; ``manual`` (grade_id → a ManualGrade) adds the instructor's grades."""
    e = html.escape
    manual = manual or {}

    def status(p) -> str:
        if p.manual:
            given = manual.get(p.grade_id)
            return "graded by your instructor" if given else "to be graded by your instructor"
        return p.status

    def score(p) -> str:
        if p.manual:
            given = manual.get(p.grade_id)
            return f"{given.points:g} / {p.max_points:g}" if given else f"– / {p.max_points:g}"
        return f"{p.points:g} / {p.max_points:g}"

    rows = "".join(
        f"<tr><td>{e(p.grade_id)}</td><td class='{e(p.status)}'>{e(status(p))}</td>"
        f"<td>{score(p)}</td><td>{e(p.reason.splitlines()[0] if p.reason else '')}"
        f"</td></tr>" for p in r.parts)
    details = "".join(
        f"<h3>{e(p.grade_id)} — <span class='{e(p.status)}'>{e(status(p))}</span></h3>"
        + (f"<p>Test output:</p><pre>{e(p.output)}</pre>" if p.output.strip() else "")
        + (f"<p>Message:</p><pre>{e(p.reason)}</pre>" if p.reason and not p.manual else "")
        + explain(p)
        + (f"<p>Your instructor's comment:</p><pre>{e(manual[p.grade_id].comment)}</pre>"
           if p.manual and p.grade_id in manual and manual[p.grade_id].comment else "")
        + (f"<p>Your {'answer' if p.manual else 'code'} (<code>{e(p.answer_id)}</code>):</p>"
           f"<pre>{e(r.answers.get(p.answer_id, ''))}</pre>" if p.answer_id else "")
        for p in r.parts)
    notes = "".join(f"<li class='note'>{e(n)}</li>" for n in r.notes)
    state = "" if r.status == "graded" else f"<p class='{e(r.status)}'><b>{e(r.status)}</b>: {e(r.reason)}</p>"
    written = sum(p.max_points for p in r.manual_parts)
    given = sum(manual[p.grade_id].points for p in r.manual_parts if p.grade_id in manual)
    title = f"{r.score:g} / {r.max_score:g}" + (
        f" autograded, written answers {given:g} / {written:g}" if written else "")
    return (f"<!doctype html><meta charset='utf-8'><title>{e(r.lab)} — {e(r.student)}</title>"
            f"<style>{STYLE}</style><h1>{e(r.lab)}: {title}</h1>"
            f"<p>Student: <b>{e(r.student)}</b> · submission SHA-256 <code>{e(r.sha256[:12])}</code></p>"
            f"{state}{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<table><tr><th>part</th><th>status</th><th>points</th><th>reason</th></tr>{rows}</table>"
            f"<h2>Details</h2>{details}"
            "<p><small>Hidden tests compare your code with reference libraries on inputs you have not "
            "seen; their code is not shown.</small></p>")


def explain(p) -> str:
    """What :mod:`autograder.diagnosis` found about a failed part: known mistakes, an earlier part to fix first."""
    e = html.escape
    out = "".join(f"<p class='diagnosis'>Your answer behaves like a known mistake: {e(text)}</p>"
                  for text in p.diagnosis.values())
    if p.likely_cause:
        names = " and ".join(f"<code>{e(a)}</code>" for a in p.likely_cause)
        out += (f"<p class='diagnosis'>With the reference {names}, this part passes: {names} is the likely "
                f"cause; fix it first.</p>" if not p.substituted else
                f"<p class='diagnosis'>Graded with the reference {names} in place of yours (this lab grades "
                f"each part on its own): fix {names} in its own part.</p>")
    return out


def write_feedback(r: Result, path: Path, manual: Mapping[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(r, manual), encoding="utf-8")
