"""Prove a lab's graders: the solution runs and earns full marks, the blank release earns zero,
and every mutant loses points."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

from autograder.course import ROOT, release_notebook, source_notebook
from autograder.distributed import LocalPool
from autograder.grade import GradeOptions
from autograder.mutants import mutant_notebook, mutants_of


@dataclass
class Row:
    lab: str
    kind: str  # solution-run | solution | release | mutant:NAME
    expected: str
    got: str
    ok: bool
    seconds: float


def run_solution(lab: str, timeout: int = 600) -> Row:
    """Execute the source notebook top to bottom with nbval (lax: outputs not compared)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                           f"--nbval-cell-timeout={timeout}", str(source_notebook(lab))],
                          cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
    return Row(lab, "solution runs (nbval)", "no error", tail, proc.returncode == 0, took)


def validate_lab(lab: str, jobs: int = 2, run: bool = True) -> list[Row]:
    """All checks of one lab, as table rows."""
    options = GradeOptions()
    jobs_list = [("solution", source_notebook(lab).read_bytes()),
                 ("release", release_notebook(lab).read_bytes())]
    mutants = mutants_of(lab)
    jobs_list += [(f"mutant:{m.name}", mutant_notebook(source_notebook(lab), m)) for m in mutants]

    rows = [run_solution(lab)] if run else []
    # worker processes, not threads: lazily imported oracles (transformers) are not thread-safe
    pool = LocalPool(jobs, "process")
    try:
        futures = [pool.submit(lab, raw, kind, "", options) for kind, raw in jobs_list]
        graded = [(kind, f.result()) for (kind, _), f in zip(jobs_list, futures)]
    finally:
        pool.close()
    for kind, r in graded:
        got = f"{r.score:g}/{r.max_score:g}" + (f" ({r.status})" if r.status != "graded" else "")
        if kind == "solution":
            ok, expected = r.status == "graded" and r.score == r.max_score > 0, "full marks"
        elif kind == "release":
            ok, expected = r.status == "graded" and r.score == 0, "0"
        else:
            ok, expected = r.status == "graded" and r.score < r.max_score, "< full marks"
            lost = [p.grade_id for p in r.parts if p.points < p.max_points]
            got += f"  lost: {', '.join(lost) or 'nothing'}"
        rows.append(Row(lab, kind, expected, got, ok, r.seconds))
    if not mutants:
        rows.append(Row(lab, "mutants", "at least one", "none found", False, 0.0))
    return rows


def print_table(rows: list[Row]) -> None:
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("lab", "kind", "expected")]
    print(f"{'lab':<{widths[0]}}  {'check':<{widths[1]}}  {'expected':<{widths[2]}}  ok   time   got")
    for r in rows:
        print(f"{r.lab:<{widths[0]}}  {r.kind:<{widths[1]}}  {r.expected:<{widths[2]}}  "
              f"{'yes' if r.ok else 'NO ':<4} {r.seconds:5.1f}s  {r.got}")
    bad = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} checks passed" + (f"; {len(bad)} FAILED" if bad else ""))

