"""``python -m autograder``: release, validate and grade the course's labs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.course import CourseError, all_labs, resolve_lab
from autograder.exchange import cmd_exchange
from autograder.exchange import register as register_exchange


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate labs/ (student versions) from solutions/")
    p.add_argument("lab", nargs="?", help="lab01, 1 or lab01_tokenizers (default: all)")
    p.add_argument("--check", action="store_true", help="only report whether labs/ is in sync")
    p = sub.add_parser("validate", help="solution full marks, release zero, every mutant caught")
    p.add_argument("lab", nargs="?", help="default: all labs")
    p.add_argument("--no-run", action="store_true", help="skip the nbval run of the whole solution")
    p.add_argument("--mutation", action="store_true",
                   help="also run the automatic mutation pass (autograder.mutation): score and survivors per lab")
    p.add_argument("--mutants", type=int, default=40, help="automatic mutants per lab, a seeded sample (default 40)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p = sub.add_parser("grade", help="autograde a folder of submissions into the gradebook, a CSV and feedback")
    p.add_argument("lab")
    p.add_argument("submissions", type=Path, help="STUDENT.ipynb files or nbgrader's submitted/ layout")
    _gradebook_options(p)
    p.add_argument("--jobs", type=int, default=None, help="parallel grading workers (default: all cores)")
    p.add_argument("--timeout", type=int, help="seconds per test cell (default 120)")
    p.add_argument("--force", action="store_true", help="grade again submissions already in the gradebook")
    p = sub.add_parser("regrade", help="autograde one student's latest submission again (manual grades stay)")
    p.add_argument("lab")
    p.add_argument("student")
    _gradebook_options(p)
    p.add_argument("--timeout", type=int, help="seconds per test cell (default 120)")
    p = sub.add_parser("export", help="write OUT/grades.csv from the gradebook (autograde + manual grades)")
    p.add_argument("lab")
    _gradebook_options(p, scheduler=False)
    p = sub.add_parser("similarity", help="write OUT/similarity.html: pairs of students whose own code is unusually "
                                          "alike, and answers like the reference (grade runs it too)")
    p.add_argument("lab")
    _gradebook_options(p, scheduler=False)
    p = sub.add_parser("manual", help="grade a written answer, or add a manual adjustment in points to a part "
                                      "(or 'late', ...) of a student")
    p.add_argument("lab")
    p.add_argument("student")
    p.add_argument("grade_id", help="a written answer (e.g. analysis), a part (e.g. encode_tests) or a label "
                                    "for the total (e.g. late)")
    p.add_argument("points", type=float, help="a written answer's points; otherwise points to add (negative to deduct)")
    p.add_argument("--comment", default="")
    p.add_argument("--grader", default=os.environ.get("USER", ""))
    _gradebook_options(p, scheduler=False)
    sub.add_parser("protections", help="say which sandbox protections are active on this machine")
    p = sub.add_parser("diagnosis", help="grade every mutant as a submission: is each diagnosed as itself?")
    p.add_argument("labs", nargs="*", help="default: all labs")
    register_exchange(sub)  # JupyterHub loop: exchange release|collect|feedback|export (autograder/exchange.py)
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
    from autograder.validate import print_table, validate_labs

    rows = validate_labs(labs, jobs=args.jobs, run=not args.no_run)
    print_table(rows)
    ok = all(r.ok for r in rows)
    if args.mutation:
        from autograder.mutation import GOAL, mutation_score, print_scores

        scores = [mutation_score(lab, args.mutants, jobs=args.jobs) for lab in labs]
        print()
        print_scores(scores)
        ok = ok and all(s.score >= GOAL and not s.stale for s in scores)
    return 0 if ok else 1


def _gradebook_options(p: argparse.ArgumentParser, scheduler: bool = True) -> None:
    p.add_argument("--out", type=Path, help="output folder: archive, feedback, grades.csv (default: grades/LAB)")
    p.add_argument("--db", help="gradebook URL, e.g. postgresql://user@host:5432/grades "
                                "(default: SQLite OUT/gradebook.sqlite)")
    if scheduler:
        p.add_argument("--scheduler", help="grade on a Dask cluster, e.g. tcp://10.0.0.5:8786 "
                                           "(default: an embedded pool on this machine)")


def cmd_grade(args, labs: list[str]) -> int:
    from autograder.model import GradeOptions
    from autograder.orchestrate import grade_folder
    from autograder.seeds import load_secret

    lab = labs[0]
    if not args.submissions.is_dir():
        raise CourseError(f"{args.submissions} is not a folder of submissions")
    out = args.out or Path("grades") / lab
    options = GradeOptions(**({"test_timeout": args.timeout} if args.timeout else {}), secret=load_secret())
    results = grade_folder(lab, args.submissions, out, jobs=args.jobs, options=options, db=args.db,
                           scheduler=args.scheduler, force=args.force)
    for r in results:
        print(f"{r.student:<24} {r.status:<22} {r.score:g}/{r.max_score:g}")
    print(f"\n{len(results)} submissions -> {out / 'grades.csv'}; feedback in {out / 'feedback'}")
    return 0


def cmd_regrade(args, labs: list[str]) -> int:
    from autograder.model import GradeOptions
    from autograder.orchestrate import regrade_student
    from autograder.seeds import load_secret

    lab = labs[0]
    out = args.out or Path("grades") / lab
    options = GradeOptions(**({"test_timeout": args.timeout} if args.timeout else {}), secret=load_secret())
    r = regrade_student(lab, args.student, out, options, db=args.db, scheduler=args.scheduler)
    for p in r.parts:
        print(f"{p.grade_id:<28} {p.status:<9} {p.points:g}/{p.max_points:g}")
    print(f"{r.student}: {r.status} {r.score:g}/{r.max_score:g} -> {out / 'grades.csv'}; "
          f"feedback {out / 'feedback' / (r.student + '.html')}")
    return 0


def cmd_export(args, labs: list[str]) -> int:
    from autograder.export import export

    out = args.out or Path("grades") / labs[0]
    print(export(labs[0], out, db=args.db))
    return 0


def cmd_similarity(args, labs: list[str]) -> int:
    from autograder.export import export
    from autograder.gradebook import Gradebook
    from autograder.similarity import report

    out = args.out or Path("grades") / labs[0]
    with Gradebook.open(args.db, out) as book:
        pairs = report(labs[0], book, out)
    for p in pairs:
        print(f"{p.first} ~ {p.second}: {p.similarity:.0%}")
    print(f"{len(pairs)} pair(s) over the threshold -> {out / 'similarity.html'}; {export(labs[0], out, db=args.db)}")
    return 0


def cmd_manual(args, labs: list[str]) -> int:
    from autograder.export import export
    from autograder.feedback import write_feedback
    from autograder.gradebook import Gradebook
    from autograder.model import Status, zero_parts

    lab, out = labs[0], args.out or Path("grades") / labs[0]
    written = {p.grade_id: p.max_points for p in zero_parts(lab, Status.PENDING, "") if p.manual}
    if args.grade_id in written and not 0 <= args.points <= written[args.grade_id]:
        raise CourseError(f"{args.grade_id} is a written answer worth 0 to {written[args.grade_id]:g} points, "
                          f"not {args.points:g}")
    with Gradebook.open(args.db, out) as book:
        book.add_manual(args.student, lab, args.grade_id, args.points, args.comment, args.grader)
        sub = book.latest_submissions(lab).get(args.student)
        result = book.results(lab).get((args.student, sub.sha256)) if sub else None
        if result is not None:  # the feedback page shows the instructor's grade from now on
            write_feedback(result, out / "feedback" / f"{args.student}.html", book.manual(lab).get(args.student))
    what = "given" if args.grade_id in written else "on"
    print(f"{args.student}: {args.points:+g} {what} {args.grade_id}; {export(lab, out, db=args.db)}")
    return 0


def cmd_diagnosis(args, labs: list[str]) -> int:
    from autograder.diagnosis import measure, print_rows

    rows = measure([resolve_lab(name) for name in args.labs] if args.labs else labs)
    print_rows(rows)
    return 0 if rows and sum(r.ok for r in rows) >= 0.9 * len(rows) else 1


def cmd_protections(args, labs: list[str]) -> int:
    from autograder.sandbox import protections

    for name, active in protections().items():
        print(f"{'active  ' if active else 'MISSING '} {name}")
    if not all(protections().values()):
        print("\nFor full isolation run the grader as root with Debian's bubblewrap installed "
              "(apt-get install bubblewrap).")
    return 0


COMMANDS = {"release": cmd_release, "validate": cmd_validate, "grade": cmd_grade, "regrade": cmd_regrade,
            "export": cmd_export, "similarity": cmd_similarity, "manual": cmd_manual,
            "protections": cmd_protections, "exchange": cmd_exchange, "diagnosis": cmd_diagnosis}

if __name__ == "__main__":
    sys.exit(main())
