"""Explain a failed part: which known mistake it behaves like, and which earlier part is the likely cause.

Runs at the end of grading one submission (:func:`diagnose`, called by :mod:`autograder.grade` while
the student's process is still alive), only for parts whose test cell ran and failed (status
``failed`` or ``error``); a submission that passes everything costs nothing more.

**Known mistakes.** The *fingerprint* of a failed part is how its test cell behaves, statement by
statement (each named check, visible and hidden), on the checks' **default seeds**: ``pass``, or
``fail`` with the check's ``what`` and a coarse form of its ``got`` and ``detail`` (floats to 3
significant digits; a tensor as its shape, dtype and two statistics), or ``error`` with the
exception's name and message (without the answer-cell line number). The
student's failing test cell is run once more that way, whatever their per-student hidden seed was.
The lab's mutants (``autograder/mutants/LAB/*.py``: trusted, known-wrong answers) are graded once
the same way, their fingerprints cached on disk per lab (:func:`mutant_table`, keyed by the hash of
the mutants, the checks, the solution and this file). Where the student's fingerprint equals a
mutant's, the part records the mutant's name and docstring (``PartResult.diagnosis``) and the
feedback shows it. Several matches: those that change the part's own answer cell come first; at
most two are shown, none if more than two are equally good (then the match says too little).

**Earlier parts.** A failed part whose answer (or test cell) uses, directly or through other answer
cells, a name defined by an earlier answer cell whose own part failed is run again at its grading
seeds with that earlier cell replaced by the instructor's (``solutions/``). If it then passes, the
earlier cell is the likely cause (``PartResult.likely_cause``). With the manifest's
``Lab.substitute_earlier``, the part also earns its points that way (``PartResult.substituted``): one
bug in ``merge`` then costs only ``merge``'s part.

``python -m autograder diagnosis LAB...`` measures it: every mutant graded as a submission (with a
per-student seed: the mutant's name as the student) must be diagnosed as itself on every part it loses.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course import ROOT, source_notebook
from autograder.course import lab as lab_entry
from autograder.model import KILLING, PartResult, Status
from autograder.notebook import defined_names, load_source, nbgrader_meta
from autograder.proxy import student_ename
from autograder.sandbox import SandboxError

if TYPE_CHECKING:
    from autograder.grade import _Grading

RECORD = "__diagnosis_record__"
MAX_SHOWN = 2
DIAGNOSED = (Status.FAILED, Status.ERROR)
_LINE = re.compile(r"\s*\(line \d+ of [^)]*\)")
_FLOAT = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
_ADDRESS = re.compile(r"0x[0-9a-f]+")

_local = threading.local()  # .collect: a dict while the mutant table is being built (no lookups then)
_memo: dict[str, dict] = {}
_memo_lock = threading.Lock()


# ------------------------------------------------------------------ fingerprints
def _coarse(text: str, limit: int = 160) -> str:
    """Floats to 3 significant digits, memory addresses removed, at most ``limit`` characters."""
    text = _ADDRESS.sub("0x", _LINE.sub("", text))
    text = _FLOAT.sub(lambda m: f"{float(m.group()):.3g}", text)
    return text[:limit]


def _got(got: object) -> str:
    """What a check got, coarsely: a tensor as its shape, dtype and two statistics (3 digits)."""
    import torch

    from labsupport.checks import show

    if isinstance(got, torch.Tensor) and got.numel() and (got.is_floating_point() or got.is_complex()):
        x = got.detach().double().cpu().abs()
        return f"{show(got)}, mean |x| {x.mean().item():.3g}, max |x| {x.max().item():.3g}"
    return show(got)


def outcome(e: BaseException | None) -> str:
    """One statement of a test cell: ``pass``, ``fail|what|got`` or ``error|Name|message``."""
    if e is None:
        return "pass"
    if isinstance(e, AssertionError):
        what = getattr(e, "what", None)
        if what is not None:

            detail = [ln.split(":", 1)[1] for ln in str(e).splitlines() if ln.startswith("  detail:")]
            return (f"fail|{_coarse(str(what))}|{_coarse(_got(getattr(e, 'got', None)))}"
                    + (f"|{_coarse(detail[0].strip())}" if detail else ""))
        return f"fail|{_coarse(str(e).splitlines()[0] if str(e) else 'assert')}"
    name = student_ename(e) or type(e).__name__
    return f"error|{name}|{_coarse(str(e).splitlines()[0] if str(e) else '')}"


def statementwise(code: str) -> str:
    """``code`` with each top-level statement run on its own, its outcome given to ``__diagnosis_record__``."""
    tree = ast.parse(code)
    body: list[ast.stmt] = []
    for k, stmt in enumerate(tree.body):
        record = ast.parse(f"{RECORD}({k}, None)").body
        guarded = ast.parse(f"try:\n    pass\nexcept BaseException as __diag_e:\n    {RECORD}({k}, __diag_e)").body[0]
        guarded.body, guarded.orelse = [stmt], record
        body.append(guarded)
    tree.body = body
    return ast.unparse(ast.fix_missing_locations(tree))


def recorder(outcomes: dict[int, str]) -> Callable[[int, BaseException | None], None]:
    """The ``__diagnosis_record__`` that :func:`statementwise` code calls: statement k's :func:`outcome` goes into
    ``outcomes[k]``; the end of the student's process (or of the worker's memory) is raised, not recorded."""

    def record(k: int, e: BaseException | None) -> None:
        if isinstance(e, SandboxError | KeyboardInterrupt | SystemExit | MemoryError):
            raise e  # the student's process is gone (or the grader's worker is out of memory): stop here
        outcomes[k] = outcome(e)

    return record


def fingerprint(g: _Grading, test_index: int, seed: int) -> list[str] | None:
    """How test cell ``test_index`` behaves on the checks' default seeds, statement by statement."""
    code = g.nb.cells[test_index].source
    try:
        transformed = statementwise(code)
        n = len(ast.parse(code).body)
    except (SyntaxError, ValueError, RecursionError):
        return None
    outcomes: dict[int, str] = {}
    g.base_ns[RECORD] = recorder(outcomes)
    try:
        status, _reason, _output = g._run_test(transformed, seed, None)
    finally:
        g.base_ns.pop(RECORD, None)
    if status in KILLING:
        g._restart()
        return None
    return [outcomes.get(k, "missing") for k in range(n)]


# ------------------------------------------------------------------ the mutants' fingerprints, cached
def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "transformers-course" / "diagnosis"


def lab_key(lab: str) -> str:
    """Hash of everything a mutant fingerprint depends on: mutants, checks, solution, this file, and the
    modules that word the student's errors."""
    entry = lab_entry(lab)
    h = hashlib.sha256()
    here = Path(__file__).parent
    files = [*sorted(entry.mutants_dir.glob("*.py")), entry.source_notebook, Path(__file__),
             here / "proxy.py", here / "runner.py",
             ROOT / "labsupport" / "checks" / "__init__.py", ROOT / Path(*entry.checks.split(".")).with_suffix(".py")]
    for path in files:
        h.update(str(path.name).encode() + b"\0")
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()


def build_table(lab: str) -> dict:
    """Grade every mutant of ``lab`` (trusted code) and fingerprint each part it fails."""
    from autograder.grade import _SPARES, grade
    from autograder.model import GradeOptions, GradingTask
    from autograder.mutants import MutantError, mutant_notebook, mutants_of

    options = GradeOptions(reuse_sandbox=True, prewarm=False)  # trusted notebooks: forked from one zygote
    before = set(_SPARES.zygotes)
    table: dict[str, dict] = {}
    try:
        for m in mutants_of(lab):
            try:
                raw = mutant_notebook(lab_entry(lab).source_notebook, m)
            except MutantError:
                continue
            _local.collect = {}
            try:
                grade(GradingTask(lab, raw, f"mutant:{m.name}", "", options))
                parts = dict(_local.collect)
            finally:
                _local.collect = None
            table[m.name] = {"description": m.description, "cells": sorted(m.cells), "parts": parts}
    finally:  # the zygote started for this is not kept in a grading worker
        with _SPARES.lock:
            started = [k for k in _SPARES.zygotes if k not in before and k[0] == threading.get_ident()]
            for key in started:
                _SPARES.zygotes.pop(key).kill()
    return table


def mutant_table(lab: str) -> dict:
    """The fingerprints of ``lab``'s mutants: from memory, from the disk cache, or built (under a lock)."""
    key = lab_key(lab)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{lab}-{key[:20]}.json"
        with open(folder / f"{lab}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process builds it; the others wait and read it
            if path.exists():
                table = json.loads(path.read_text(encoding="utf-8"))
            else:
                table = build_table(lab)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(table, indent=1), encoding="utf-8")
                tmp.replace(path)
        _memo[key] = table
        return table


def match(table: dict, part: str, answer_id: str | None, fp: list[str],
          cause: list[str] | None = None) -> dict[str, str]:
    """The mutants (name → diagnosis) whose fingerprint of ``part`` equals ``fp``: at most two.

    Those that change the earlier ``cause`` cells come first (when the part fails because of an
    earlier one), then those that change the part's own answer cell, then the others."""
    if all(o == "pass" for o in fp):
        return {}
    found = [name for name, m in table.items() if m["parts"].get(part) == fp]
    by_cause = [name for name in found if set(cause or ()) & set(table[name]["cells"])]
    home = [name for name in found if answer_id in table[name]["cells"]]
    best = by_cause or ([] if cause else home) or found
    if not best or len(best) > MAX_SHOWN:
        return {}
    return {name: table[name]["description"] for name in best}


# ------------------------------------------------------------------ earlier parts
def _names_used(code: str) -> set[str]:
    try:
        return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    except (SyntaxError, ValueError, RecursionError):
        return set()


@dataclass
class _Cells:
    """The answer cells of one graded notebook: their index, grade_id, the student's and the reference code."""

    index: dict[str, int] = field(default_factory=dict)
    student: dict[str, str] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)

    def defines(self, aid: str) -> set[str]:
        return set(defined_names(self.student.get(aid, ""))) | set(defined_names(self.reference.get(aid, "")))

    def depends(self, aid: str, test_code: str) -> list[str]:
        """Earlier answer cells ``aid`` (or its test) uses, directly or through other answer cells."""
        order = sorted(self.index, key=self.index.get)
        earlier = [a for a in order if self.index[a] < self.index[aid]]
        used, todo, seen = set(), [aid], {aid}
        names = _names_used(test_code)
        while todo:
            names |= _names_used(self.student.get(todo.pop(), ""))
            for a in earlier:
                if a not in seen and self.defines(a) & names:
                    seen.add(a)
                    used.add(a)
                    todo.append(a)
        return [a for a in earlier if a in used]


def _cells(g: _Grading) -> _Cells:
    from autograder.notebook import is_answer

    c = _Cells()
    for i in g.answers:
        aid = nbgrader_meta(g.nb.cells[i])["grade_id"]
        c.index[aid], c.student[aid] = i, g.nb.cells[i].source
    for cell in load_source(source_notebook(g.result.lab)).cells:
        if is_answer(cell):
            c.reference[nbgrader_meta(cell)["grade_id"]] = cell.source
    return c


def _restore(g: _Grading) -> None:
    """Back to the student's own definitions: their helper cells and answer cells, in order."""
    for n in g.helpers_ok:
        g._exec_code(g.helpers[n], f"added cell {n + 1}", g.options.answer_timeout)
    for i in sorted(g.ran_ok):
        g._exec(i, g.options.answer_timeout)


def _with_reference(g: _Grading, cells: _Cells, replaced: list[str], test_index: int, part: PartResult) -> bool:
    """Does the part pass (at its grading seeds) with the reference code of the ``replaced`` cells?"""
    try:
        for aid in replaced:
            if not g._exec_code(cells.reference[aid], f"reference {aid}", g.options.answer_timeout).ok:
                return False
        # the student's later cells come back, except where they define a name the reference cells define
        names = set().union(*(cells.defines(a) for a in replaced))
        first = min(cells.index[a] for a in replaced)
        for i in sorted(g.ran_ok):
            if i > first and not set(defined_names(g.nb.cells[i].source)) & names:
                g._exec(i, g.options.answer_timeout)
        status, _, _ = g._run_test(g.nb.cells[test_index].source, part.seed or 0, part.hidden_seed)
        if status in KILLING:
            g._restart()
            return False
        return status == Status.PASSED
    finally:
        _restore(g)


def _likely_cause(g: _Grading, cells: _Cells, test_index: int, part: PartResult,
                  failed_answers: set[str]) -> list[str]:
    if part.answer_id not in cells.index:
        return []
    candidates = [a for a in cells.depends(part.answer_id, g.nb.cells[test_index].source)
                  if a in failed_answers and a in cells.reference]
    for aid in candidates:
        if _with_reference(g, cells, [aid], test_index, part):
            return [aid]
    if len(candidates) > 1 and _with_reference(g, cells, candidates, test_index, part):
        return candidates
    return []


# ------------------------------------------------------------------ the entry point
def diagnose(g: _Grading) -> None:
    """Explain the failed parts of ``g`` (a graded submission whose process is still alive). Never raises."""
    if not g.options.diagnose:
        return
    tests = {nbgrader_meta(g.nb.cells[i])["grade_id"]: i for i in g.tests}
    failed = [p for p in g.result.auto_parts
              if p.status in DIAGNOSED and p.grade_id in tests and p.seed is not None
              and not p.reason.startswith(("your answer cell", "not attempted", "answer cell"))
              and ": not implemented yet" not in p.reason.splitlines()[0]]  # a stub left in: nothing to explain
    if not failed:
        return
    collect = getattr(_local, "collect", None)
    try:
        if collect is not None:  # building the mutant table: fingerprints only
            for p in failed:
                fp = fingerprint(g, tests[p.grade_id], p.seed)
                if fp is not None:
                    collect[p.grade_id] = fp
            return
        table = mutant_table(g.result.lab)
        prints = {p.grade_id: fingerprint(g, tests[p.grade_id], p.seed) for p in failed}
        _earlier(g, tests, failed)
        for p in failed:
            if prints[p.grade_id] is not None:
                p.diagnosis = match(table, p.grade_id, p.answer_id, prints[p.grade_id], p.likely_cause)
    except Exception as e:  # noqa: BLE001 — a diagnosis that fails must never cost the grade
        g.result.notes.append(f"the grader could not explain the failed parts ({type(e).__name__})")


def _earlier(g: _Grading, tests: dict[str, int], failed: list[PartResult]) -> None:
    cells = _cells(g)
    failed_answers = {p.answer_id for p in g.result.auto_parts if p.status != Status.PASSED and p.answer_id}
    substitute = lab_entry(g.result.lab).substitute_earlier
    for p in failed:
        cause = _likely_cause(g, cells, tests[p.grade_id], p, failed_answers - {p.answer_id})
        p.likely_cause = cause
        if cause and substitute:
            p.substituted = cause
            p.status, p.points = Status.PASSED, p.max_points
            p.reason = (f"passed with the reference {', '.join(f'`{a}`' for a in cause)} in place of yours "
                        f"(this lab grades each part on its own); your first run failed: "
                        f"{p.reason.splitlines()[0] if p.reason else ''}")


# ------------------------------------------------------------------ the measurement
@dataclass
class Row:
    lab: str
    mutant: str
    lost: str  # the parts it lost
    diagnosed: str  # per lost part: the mutants it was diagnosed as (and the likely cause)
    ok: bool  # diagnosed as itself on every part it lost
    seconds: float  # grading it, diagnosis included
    added: float  # of which the diagnosis (the same grading without it, subtracted)
    # leave-one-out, as if this mistake were unknown: the other mutants it would be diagnosed as
    # (per lost part), "" where none (then the feedback says nothing more, as it should)
    unknown: str = ""


def measure(labs: Iterable[str], secret: bytes = b"diagnosis-measurement") -> list[Row]:
    """Grade every mutant of ``labs`` as a submission (student = its name, per-student hidden seeds)."""
    from autograder.grade import grade
    from autograder.model import GradeOptions, GradingTask
    from autograder.mutants import MutantError, mutant_notebook, mutants_of

    rows: list[Row] = []
    for lab in labs:
        table = mutant_table(lab)  # built once, before the clock starts for each mutant
        for m in mutants_of(lab):
            try:
                raw = mutant_notebook(lab_entry(lab).source_notebook, m)
            except MutantError:
                continue
            options = GradeOptions(secret=secret, reuse_sandbox=True, prewarm=False)
            if not rows or rows[-1].lab != lab:  # warm up (the prepared sandbox) outside the clock
                grade(GradingTask(lab, raw, m.name, "", replace(options, diagnose=False)))
            t0 = time.perf_counter()
            r = grade(GradingTask(lab, raw, m.name, "", options))
            seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            grade(GradingTask(lab, raw, m.name, "", replace(options, diagnose=False)))
            added = seconds - (time.perf_counter() - t0)
            lost = [p for p in r.auto_parts if p.points < p.max_points]
            said = [f"{p.grade_id}: {'/'.join(p.diagnosis) or '—'}"
                    + (f" (cause {'/'.join(p.likely_cause)})" if p.likely_cause else "") for p in lost]
            ok = bool(lost) and all(m.name in p.diagnosis for p in lost)
            others = {k: v for k, v in table.items() if k != m.name}
            own = table.get(m.name, {}).get("parts", {})
            unknown = "; ".join(f"{p.grade_id}: {'/'.join(found)}" for p in lost if own.get(p.grade_id) and (
                found := match(others, p.grade_id, p.answer_id, own[p.grade_id], p.likely_cause)))
            rows.append(Row(lab, m.name, ", ".join(f"{p.grade_id} {p.status}" for p in lost) or "nothing",
                            "; ".join(said), ok, seconds, added, unknown))
    return rows


def print_rows(rows: list[Row]) -> None:
    width = max((len(r.mutant) for r in rows), default=6)
    print(f"{'lab':<27} {'mutant':<{width}}  itself  graded  added   diagnosed as")
    for r in rows:
        print(f"{r.lab:<27} {r.mutant:<{width}}  {'yes' if r.ok else 'NO ':<6}  {r.seconds:5.1f}s  {r.added:+5.1f}s  "
              f"{r.diagnosed}")
    print()
    for lab in dict.fromkeys(r.lab for r in rows):
        mine = [r for r in rows if r.lab == lab]
        good = sum(r.ok for r in mine)
        added = sum(r.added for r in mine) / len(mine)
        print(f"{lab}: {good} of {len(mine)} mutants diagnosed as themselves ({100 * good / len(mine):.0f} %); "
              f"diagnosis adds {added:.2f} s per failing submission on average; left out of the table, "
              f"{sum(bool(r.unknown) for r in mine)} would be diagnosed as another mutant")
    for r in rows:
        if r.unknown:
            print(f"  {r.lab} {r.mutant}, if unknown: {r.unknown}")
    good = sum(r.ok for r in rows)
    if rows:
        print(f"all: {good} of {len(rows)} ({100 * good / len(rows):.0f} %)")


def share(rows: list[Row]) -> float:
    return sum(r.ok for r in rows) / len(rows) if rows else 0.0
