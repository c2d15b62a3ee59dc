"""Benchmark: grading throughput, serial vs parallel, and the grader's overhead per submission.

    python benchmarks/grading_throughput.py [--n 40] [--jobs CORES]

Builds ``--n`` lab-1 submissions from the solution: half correct, half with one known bug each (the
lab's mutants in turn, so they lose points but never hang). Grades the same folder twice, in one run,
through :func:`autograder.orchestrate.grade_folder` with default limits, three times, each into a
fresh output folder with its own gradebook:

* *strictly serial*: ``jobs=1`` and no prewarmed sandbox — one submission at a time, nothing
  overlapped: the baseline for the parallel speed-up (goal: >= 1.8x on 2 cores);
* *serial*: ``jobs=1`` with the default prewarming (the next sandbox starts while a submission is
  graded, which already keeps a second core busy);
* *parallel*: ``jobs`` = the cores this process may use, default settings.

It prints submissions per minute for each and the ratios.

Overhead per submission, beyond the student's own compute:

* *direct*: the time to run the submission's code and checks directly in this process, with no
  grader at all: the source notebook's setup cell, the student's answer cells and every test cell
  (hidden tests included) executed with ``exec`` in one namespace, after one untimed warm-up run so
  that imports are not counted. This is the work any grader must do.
* *serial*: the (prewarmed) serial run's wall time divided by ``n``: what one submission costs end to end
  (archive, gradebook, sandbox start, replaying the answers, proxying every call of the student's
  functions, feedback page, worker pool start-up amortised over the run).
* overhead = serial − direct, per submission (mean over all ``n``), also shown as a share of the
  serial time. When the grader reports its own time per submission (``Result.seconds``), the
  overhead is split into the part inside ``grade_notebook`` and the part around it (orchestration).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autograder.course import ROOT, source_notebook
from autograder.distributed import default_jobs
from autograder.model import GradeOptions
from autograder.mutants import mutants_of
from autograder.notebook import SKIP_TAG, is_answer, is_test, load_source, nbgrader_meta
from autograder.orchestrate import grade_folder

sys.path.insert(0, str(ROOT))  # the submissions are built with the test suite's helpers
from tests.conftest import solution_answers, student_notebook, to_bytes

LAB = "lab01_tokenizers"


def submissions(n: int) -> dict[str, dict[str, str]]:
    """``n`` students' answers: even ones the solution, odd ones the solution with one mutant's bug."""
    correct, bugs = solution_answers(LAB), mutants_of(LAB)
    return {f"s{i:03d}": correct if i % 2 == 0 else {**correct, **bugs[(i // 2) % len(bugs)].cells}
            for i in range(n)}


def run_directly(answers: dict[str, str]) -> float:
    """Seconds to run setup, answers and all test cells of the lab in this process, errors ignored."""
    source = load_source(source_notebook(LAB))
    cells = [c for c in source.cells if c.cell_type == "code" and SKIP_TAG not in c.metadata.get("tags", [])]
    ns: dict = {"__name__": "__direct__"}
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for cell in cells:
            code = answers.get(nbgrader_meta(cell)["grade_id"], "") if is_answer(cell) else cell.source
            try:
                exec(compile(code, "<cell>", "exec"), ns)
            except Exception:  # a failing check of a buggy submission: part of its cost
                if not (is_test(cell) or is_answer(cell)):
                    raise
    return time.perf_counter() - t0


def timed_grading(folder: Path, jobs: int, prewarm: bool = True) -> tuple[float, list]:
    with tempfile.TemporaryDirectory(prefix=f"bench-out-{jobs}-") as out:
        t0 = time.perf_counter()
        results = grade_folder(LAB, folder, Path(out), jobs=jobs, options=GradeOptions(prewarm=prewarm),
                               progress=False)
        return time.perf_counter() - t0, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="number of submissions (default 40)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="parallel workers (default: all cores)")
    args = parser.parse_args()
    subs = submissions(args.n)
    with tempfile.TemporaryDirectory(prefix="bench-subs-") as tmp:
        folder = Path(tmp)
        for student, answers in subs.items():
            (folder / f"{student}.ipynb").write_bytes(to_bytes(student_notebook(LAB, answers)))
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            run_directly(subs["s000"])  # warm-up: imports, first-call caches
            direct = [run_directly(a) for a in subs.values()]
        finally:
            os.chdir(cwd)
        strict, _ = timed_grading(folder, 1, prewarm=False)
        serial, serial_results = timed_grading(folder, 1)
        parallel, parallel_results = timed_grading(folder, args.jobs)
    same = [(r.student, r.score) for r in serial_results] == [(r.student, r.score) for r in parallel_results]
    scores = [r.score for r in serial_results]
    rate_strict, rate_serial, rate_parallel = 60 * args.n / strict, 60 * args.n / serial, 60 * args.n / parallel
    per_sub, direct_mean = serial / args.n, statistics.mean(direct)
    print(f"{args.n} submissions of {LAB} ({sum(s == max(scores) for s in scores)} full marks, "
          f"mean score {statistics.mean(scores):.1f}); {os.cpu_count()} CPUs, {args.jobs} parallel workers")
    print(f"strictly serial (jobs=1, no prewarm): {strict:7.1f} s  {rate_strict:6.1f} submissions/min")
    print(f"serial (jobs=1, prewarmed sandbox)  : {serial:7.1f} s  {rate_serial:6.1f} submissions/min")
    print(f"{f'parallel (jobs={args.jobs})':<36}: {parallel:7.1f} s  {rate_parallel:6.1f} submissions/min")
    print(f"speed-up, parallel / strictly serial: {rate_parallel / rate_strict:7.2f}x   (goal: >= 1.8x on 2 cores)")
    print(f"speed-up, parallel / serial         : {rate_parallel / rate_serial:7.2f}x")
    print(f"same scores both ways    : {same}")
    print(f"per submission, serial   : {per_sub:7.2f} s end to end")
    print(f"  its checks, directly   : {direct_mean:7.2f} s (mean; min {min(direct):.2f}, max {max(direct):.2f})")
    print(f"  grader overhead        : {per_sub - direct_mean:7.2f} s ({100 * (1 - direct_mean / per_sub):.0f}% "
          "of the serial time)")
    inside = [getattr(r, "seconds", 0.0) for r in serial_results]
    if all(inside):
        print(f"    inside grade_notebook: {statistics.mean(inside) - direct_mean:7.2f} s (sandbox, proxies, replays)")
        print(f"    around it            : {per_sub - statistics.mean(inside):7.2f} s (pool, archive, gradebook, "
              "feedback)")


if __name__ == "__main__":
    main()
