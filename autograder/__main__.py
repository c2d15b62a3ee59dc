"""``python -m autograder``: release, validate and grade the course's labs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.course import CourseError, all_labs, resolve_lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate labs/ (student versions) from solutions/")
    p.add_argument("lab", nargs="?", help="lab01, 1 or lab01_tokenizers (default: all)")
    p.add_argument("--check", action="store_true", help="only report whether labs/ is in sync")
    p = sub.add_parser("validate", help="solution full marks, release zero, every mutant caught")
    p.add_argument("lab", nargs="?", help="default: all labs")
    p.add_argument("--no-run", action="store_true", help="skip the nbval run of the whole solution")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p = sub.add_parser("grade", help="autograde a folder of submissions into a CSV and feedback")
    p.add_argument("lab")
    p.add_argument("submissions", type=Path, help="STUDENT.ipynb files or nbgrader's submitted/ layout")
    p.add_argument("--out", type=Path, help="output folder (default: grades/LAB)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel kernels")
    p.add_argument("--timeout", type=int, help="seconds per test cell (default 120)")
    args = parser.parse_args(argv)
    try:
        labs = [resolve_lab(args.lab)] if getattr(args, "lab", None) else all_labs()
        return COMMANDS[args.command](args, labs)
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def cmd_release(args, labs: list[str]) -> int:
    from autograder.release import out_of_sync, release

    bad = 0
    for lab in labs:
        if args.check:
            diffs = out_of_sync(lab)
            bad += bool(diffs)
            print(f"{lab}: {'in sync' if not diffs else 'OUT OF SYNC: ' + '; '.join(diffs)}")
        else:
            print(f"released {lab} -> {release(lab)}")
    return 1 if bad else 0


def cmd_validate(args, labs: list[str]) -> int:
    from autograder.validate import print_table, validate_lab

    rows = [row for lab in labs for row in validate_lab(lab, jobs=args.jobs, run=not args.no_run)]
    print_table(rows)
    return 0 if all(r.ok for r in rows) else 1


def cmd_grade(args, labs: list[str]) -> int:
    from autograder.grade import GradeOptions
    from autograder.orchestrate import grade_folder

    lab = labs[0]
    if not args.submissions.is_dir():
        raise CourseError(f"{args.submissions} is not a folder of submissions")
    out = args.out or Path("grades") / lab
    options = GradeOptions(**({"test_timeout": args.timeout} if args.timeout else {}))
    results = grade_folder(lab, args.submissions, out, jobs=args.jobs, options=options)
    for r in results:
        print(f"{r.student:<24} {r.status:<22} {r.score:g}/{r.max_score:g}")
    print(f"\n{len(results)} submissions -> {out / 'grades.csv'}; feedback in {out / 'feedback'}")
    return 0


COMMANDS = {"release": cmd_release, "validate": cmd_validate, "grade": cmd_grade}

if __name__ == "__main__":
    sys.exit(main())
