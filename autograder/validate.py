"""Prove the labs' graders, in one parallel run.

- the solution notebook runs top to bottom (nbval, in a subprocess that overlaps with the grading);
- the solution earns full marks (its written answers are left pending for an instructor);
- the blank release earns zero;
- every mutant (``autograder/mutants/LAB/``) loses points exactly where its ``# expect:`` line says,
  with that status, and keeps full marks everywhere else;
- every alternative (``autograder/alternatives/LAB/``) earns full marks.

The solution, the release, the mutants and the alternatives are graded by one pool of worker
processes (forked from one that has imported the grader). These notebooks are the instructor's, so
each worker runs the lab's setup cells once, in a :class:`~autograder.sandbox.Zygote`, and forks
every notebook's process from it (``GradeOptions.reuse_sandbox``): a fork takes milliseconds where
starting a sandboxed Python with torch takes seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from autograder.course import ROOT
from autograder.course import lab as lab_entry
from autograder.distributed import LocalPool
from autograder.model import GradeOptions, GradingTask, Result, SubmissionStatus
from autograder.mutants import Mutant, MutantError, alternatives_of, mutant_notebook, mutants_of


@dataclass
class Row:
    lab: str
    kind: str  # solution runs (nbval) | solution | release | mutant:NAME | alternative:NAME
    expected: str
    got: str
    ok: bool
    seconds: float


def run_solution(lab: str, timeout: int = 600, threads: int | None = None) -> Row:
    """Execute the source notebook top to bottom with nbval (lax: outputs not compared).

    ``threads`` caps the kernel's CPU threads (OpenMP/MKL; default: torch's own choice). On failure,
    ``got`` names each failing cell and its exception."""
    t0 = time.perf_counter()
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    ok, got = nbval_run(lab, timeout, env)
    return Row(lab, "solution runs (nbval)", "no error", got, ok, time.perf_counter() - t0)


def run_again_alone(row: Row) -> Row:
    """A failed solution run, repeated once with nothing else running: the solutions are seeded, so a
    failure that does not repeat came from the busy machine (load, memory, a lock). It then passes,
    and ``got`` still reports the first failure."""
    if row.ok:
        return row
    again = run_solution(row.lab)
    if not again.ok:
        return row
    return replace(again, got=f"{again.got}; the first run, beside the other work, failed: {row.got}",
                   seconds=row.seconds + again.seconds)


def nbval_run(lab: str, timeout: int, env: dict[str, str]) -> tuple[bool, str]:
    """One nbval run of the lab's source notebook: (passed, its summary line and failing cells)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:  # not a pipe: a long report never blocks it
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                               f"--nbval-cell-timeout={timeout}", str(lab_entry(lab).source_notebook)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        log.seek(0)
        output = log.read().strip()
    lines = output.splitlines()
    got = lines[-1] if lines else "no output"
    if proc.returncode != 0:
        got += "".join(f"; {failure}" for failure in nbval_failures(output))
    return proc.returncode == 0, got


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SECTION = re.compile(r"^_+ .*::(Cell \d+) _+$")


def nbval_failures(report: str) -> list[str]:
    """``Cell N: <the exception>`` for each failed cell of an nbval report: the last line of the
    cell's section (its traceback ends with the exception), colours removed.

    >>> nbval_failures("___ f.ipynb::Cell 1 ___\\nTraceback:\\nValueError: no\\n\\n=== short test summary ===\\n"
    ...                "FAILED f.ipynb::Cell 1 - Notebook cell execution failed")
    ['Cell 1: ValueError: no']
    """
    failures, cell, last = [], None, ""
    for line in [*_ANSI.sub("", report).splitlines(), "=== end"]:
        section = _SECTION.match(line)
        if section or line.startswith("==="):
            if cell:
                failures.append(f"{cell}: {last}"[:300])
            cell, last = (section.group(1) if section else None), ""
        elif line.strip():
            last = line.strip()
    return failures


def warm_matplotlib() -> None:
    """Build matplotlib's font cache in this process, once, before notebooks run side by side.

    On a fresh machine every process that imports matplotlib first builds the cache under a lock
    file; one that waits longer than matplotlib's few seconds for the lock fails its cell."""
    import matplotlib.font_manager  # noqa: F401 — imported for its side effect: the cache on disk


def _lost(r: Result) -> str:
    return ", ".join(f"{p.grade_id} {p.status}" for p in r.auto_parts if p.points < p.max_points) or "nothing"


def judge_mutant(m: Mutant, r: Result) -> tuple[bool, str]:
    """Did ``r`` lose points exactly where ``m.expect`` says, with those statuses? (ok, what happened)"""
    if r.status != SubmissionStatus.GRADED:
        return False, f"{r.status}: {r.reason.splitlines()[0] if r.reason else ''}"
    expect = m.expect or {}
    wrong = [f"no test cell {gid}" for gid in expect if gid not in {p.grade_id for p in r.auto_parts}]
    for p in r.auto_parts:
        want = expect.get(p.grade_id)
        if want is None and p.points < p.max_points:
            wrong.append(f"{p.grade_id} should keep full marks")
        elif want is not None and (p.points >= p.max_points or p.status != want):
            wrong.append(f"{p.grade_id} should be {want}")
    got = f"lost: {_lost(r)}"
    return not wrong, got + (f"  ({'; '.join(wrong)})" if wrong else "")


def _prepare(lab: str) -> tuple[list[Row], list[tuple[str, Mutant | None, bytes]]]:
    """What to grade for ``lab`` (solution, release, mutants, alternatives), and rows for malformed files."""
    entry = lab_entry(lab)
    source = entry.source_notebook
    rows: list[Row] = []
    items: list[tuple[str, Mutant | None, bytes]] = [("solution", None, source.read_bytes()),
                                                     ("release", None, entry.release_notebook.read_bytes())]
    mutants = mutants_of(lab)
    for kind, group in (("mutant", mutants), ("alternative", alternatives_of(lab))):
        for m in group:
            problems = list(m.problems)
            if kind == "mutant" and m.expect is None and not problems:
                problems.append(f"has no `# expect: TEST_GRADE_ID STATUS` line after its docstring ({m.path})")
            try:
                raw = mutant_notebook(source, m) if not problems else b""
            except MutantError as e:
                problems.append(str(e))
            if problems:
                rows.append(Row(lab, f"{kind}:{m.name}", "a valid file", "; ".join(problems), False, 0.0))
            else:
                items.append((f"{kind}:{m.name}", m, raw))
    if not mutants:
        rows.append(Row(lab, "mutants", "at least one", "none found", False, 0.0))
    return rows, items


def _judge(lab: str, kind: str, m: Mutant | None, r: Result) -> Row:
    got = f"{r.score:g}/{r.max_score:g}" + (f" ({r.status})" if r.status != SubmissionStatus.GRADED else "")
    if kind == "solution" or kind.startswith("alternative:"):
        ok, expected = r.status == SubmissionStatus.GRADED and r.score == r.max_score > 0, "full marks"
        if not ok:
            got += f"  lost: {_lost(r)}"
    elif kind == "release":
        ok, expected = r.status == SubmissionStatus.GRADED and r.score == 0, "0"
    else:
        expected = "lost: " + ", ".join(f"{gid} {st}" for gid, st in m.expect.items())
        ok, lost = judge_mutant(m, r)
        got += f"  {lost}"
    return Row(lab, kind, expected, got, ok, r.seconds)


def validate_labs(labs: list[str], jobs: int = 2, run: bool = True,
                  options: GradeOptions | None = None) -> list[Row]:
    """All checks of ``labs``, as table rows (each lab's nbval run first), in one parallel run.

    ``jobs`` grading workers take the notebooks of every lab in turn, while up to ``jobs`` nbval runs
    execute the solutions, so no core idles until the last lab is done. The cores are shared out
    (each nbval kernel gets its share of threads): oversubscribed torch threads spin and waste them.
    """
    # trusted notebooks: each worker forks every notebook's process from one prepared sandbox
    # (the diagnosis of failed parts is measured on its own: python -m autograder diagnosis)
    options = replace(options or GradeOptions(), reuse_sandbox=True, prewarm=False, diagnose=False)
    prepared = {lab: _prepare(lab) for lab in labs}
    if run:
        warm_matplotlib()
    runner = ThreadPoolExecutor(max_workers=max(1, jobs)) if run else None
    threads = max(1, (os.cpu_count() or 1) // (2 * max(1, jobs)))
    solution_runs = {lab: runner.submit(run_solution, lab, threads=threads) for lab in labs} if runner else {}
    # worker processes, not threads: lazily imported oracles (transformers) are not thread-safe
    pool = LocalPool(jobs, "process")
    try:
        futures = {lab: [pool.submit(GradingTask(lab, raw, kind, "", options)) for kind, _, raw in items]
                   for lab, (_, items) in prepared.items()}
        graded = {lab: [_judge(lab, kind, m, f.result()) for (kind, m, _), f in zip(prepared[lab][1], futures[lab])]
                  for lab in labs}
    finally:
        pool.close()
        if runner is not None:
            runner.shutdown(wait=True)
    rows: list[Row] = []
    for lab in labs:
        rows += [run_again_alone(solution_runs[lab].result())] if run else []
        rows += prepared[lab][0] + graded[lab]
    return rows


def validate_lab(lab: str, jobs: int = 2, run: bool = True, options: GradeOptions | None = None) -> list[Row]:
    """All checks of one lab, as table rows (the nbval run first)."""
    return validate_labs([lab], jobs, run, options)


def print_table(rows: list[Row]) -> None:
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("lab", "kind", "expected")]
    print(f"{'lab':<{widths[0]}}  {'check':<{widths[1]}}  {'expected':<{widths[2]}}  ok   time   got")
    for r in rows:
        print(f"{r.lab:<{widths[0]}}  {r.kind:<{widths[1]}}  {r.expected:<{widths[2]}}  "
              f"{'yes' if r.ok else 'NO ':<4} {r.seconds:5.1f}s  {r.got}")
    bad = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} checks passed" + (f"; {len(bad)} FAILED" if bad else ""))
