"""Mutation testing of a lab's checks: small automatic changes to the solution must lose points.

The hand-written mutants (:mod:`autograder.mutants`) are the mistakes students make. This pass asks
the complementary question — does *any* small change to the solution get caught? — with seeded
AST mutants of the solution's answer code (only the lines between ``### BEGIN SOLUTION`` and
``### END SOLUTION``):

- an arithmetic operator swapped (``+``↔``-``, ``*``↔``/``, ``//``→``/``, ``**``→``*``);
- a comparison swapped (``<``↔``<=``, ``>``↔``>=``, ``==``↔``!=``, ``is``↔``is not``, ``in``↔``not in``);
- a constant changed (``n``→``n + 1``, ``0``↔``1``, ``True``↔``False``, a float doubled);
- a unary minus or ``not`` removed, a condition negated;
- a statement removed (replaced by ``pass``; definitions and returns are kept);
- the first two positional arguments of a call swapped.

Each mutant has a stable id, e.g. ``merge:L7:Add->Sub``. A mutant is *killed* when its notebook
loses autograded points; the mutation score is killed / (mutants − equivalent). A survivor is
either caught by a better check, or listed as equivalent (the change cannot alter behaviour) with a
reason in the lab's manifest entry (``Lab.equivalent_mutants``).

    >>> [m.id for m in mutants_of_code("c", "def f(x):\\n    ### BEGIN SOLUTION\\n    return x + 1\\n"
    ...                                "    ### END SOLUTION\\n")]
    ['c:L3:Add->Sub', 'c:L3:const 1->0']
"""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass

from autograder.course import lab as lab_entry
from autograder.distributed import LocalPool
from autograder.model import GradeOptions, GradingTask, SubmissionStatus
from autograder.mutants import Mutant, mutant_notebook
from autograder.notebook import is_answer, load_source, nbgrader_meta

SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv,
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
KEPT_STATEMENTS = (ast.FunctionDef, ast.ClassDef, ast.Return, ast.Pass, ast.Import, ast.ImportFrom, ast.Global,
                   ast.Nonlocal)


@dataclass(frozen=True)
class AutoMutant:
    """One automatic change: ``id`` (cell:line:what) and the answer cell's mutated source."""

    id: str
    cell: str
    source: str

    def as_mutant(self) -> Mutant:
        return Mutant(self.id, f"automatic mutant {self.id}", {self.cell: self.source})


def _solution_lines(source: str) -> range:
    lines = source.splitlines()
    begin = next((i for i, ln in enumerate(lines) if "### BEGIN SOLUTION" in ln), None)
    end = next((i for i, ln in enumerate(lines) if "### END SOLUTION" in ln), len(lines))
    return range(begin + 2, end + 1) if begin is not None else range(0)  # 1-based line numbers


def _changes(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(what, replacement) for each way of mutating ``node`` itself."""
    if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in SWAPS:
        new = copy.copy(node)
        new.op = SWAPS[type(node.op)]()
        yield f"{type(node.op).__name__}->{type(new.op).__name__}", new
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAPS:
        new = copy.copy(node)
        new.ops = [SWAPS[type(node.ops[0])]()]
        yield f"{type(node.ops[0]).__name__}->{type(new.ops[0]).__name__}", new
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        v = node.value
        new_v = (not v) if isinstance(v, bool) else (1 - v if v in (0, 1) else v + 1) if isinstance(v, int) else v * 2
        yield f"const {v!r}->{new_v!r}", ast.Constant(new_v)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        yield f"drop {type(node.op).__name__}", node.operand
    elif isinstance(node, ast.If | ast.While):
        new = copy.copy(node)
        new.test = ast.UnaryOp(ast.Not(), node.test)
        yield "negate condition", new
    if isinstance(node, ast.stmt) and not isinstance(node, KEPT_STATEMENTS):
        yield f"remove {type(node).__name__}", ast.Pass()
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args):
        new = copy.copy(node)
        new.args = [node.args[1], node.args[0], *node.args[2:]]
        yield "swap arguments", new


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST):
        self.target, self.replacement = target, replacement

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return self.replacement
        return self.generic_visit(node)


def mutants_of_code(cell: str, source: str) -> list[AutoMutant]:
    """Every automatic mutant of one answer cell (in source order), skipping changes that leave the
    code as it was or do not compile."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines, original = _solution_lines(source), ast.unparse(tree)
    out: list[AutoMutant] = []
    seen: set[str] = set()
    for i, node in enumerate(ast.walk(tree)):
        if getattr(node, "lineno", 0) not in lines:
            continue
        for k in range(len(list(_changes(node)))):
            twin_tree = copy.deepcopy(tree)  # ast.walk visits a copy in the same order: node i is the twin
            twin = next(n for j, n in enumerate(ast.walk(twin_tree)) if j == i)
            what, replacement = list(_changes(twin))[k]
            code = ast.unparse(ast.fix_missing_locations(_Replace(twin, replacement).visit(twin_tree)))
            try:
                compile(code, "<mutant>", "exec")
            except SyntaxError:
                continue
            if code != original and code not in seen:
                seen.add(code)
                name = f"{cell}:L{node.lineno}:{what}"
                same = sum(m.id == name or m.id.startswith(name + "#") for m in out)
                out.append(AutoMutant(name + (f"#{same + 1}" if same else ""), cell, code))
    return sorted(out, key=lambda m: int(m.id.split(":L")[1].split(":")[0]))


def lab_mutants(lab: str, limit: int | None = 40, seed: int = 0) -> list[AutoMutant]:
    """A seeded sample of at most ``limit`` automatic mutants of ``lab``'s answer cells (all: None)."""
    nb = load_source(lab_entry(lab).source_notebook)
    every = [m for c in nb.cells if is_answer(c) for m in mutants_of_code(nbgrader_meta(c)["grade_id"], c.source)]
    if limit is None or len(every) <= limit:
        return every
    return sorted(random.Random(seed).sample(every, limit), key=every.index)


@dataclass(frozen=True)
class Score:
    """The mutation pass of one lab: killed and surviving ids, those the manifest marks equivalent."""

    lab: str
    killed: tuple[str, ...]
    survived: tuple[AutoMutant, ...]
    equivalent: tuple[str, ...]
    stale: tuple[str, ...]  # marked equivalent in the manifest but no longer generated, or now killed

    @property
    def score(self) -> float:
        counted = len(self.killed) + len(self.survived)
        return len(self.killed) / counted if counted else 1.0


GOAL = 0.9  # mutation score per lab

# an automatic mutant is the instructor's code: a short leash, an infinite loop costs seconds
MUTANT_OPTIONS = GradeOptions(answer_timeout=10, test_timeout=30, reuse_sandbox=True, prewarm=False,
                              diagnose=False)


def mutation_score(lab: str, limit: int | None = 40, seed: int = 0, jobs: int = 2) -> Score:
    """Grade a seeded sample of ``lab``'s automatic mutants; a mutant that loses points is killed."""
    entry = lab_entry(lab)
    sample = lab_mutants(entry.id, limit, seed)
    equivalent = entry.equivalent_mutants
    pool = LocalPool(jobs, "process")
    try:
        futures = [pool.submit(GradingTask(entry.id, mutant_notebook(entry.source_notebook, m.as_mutant()), m.id, "",
                                           MUTANT_OPTIONS)) for m in sample]
        results = [f.result() for f in futures]
    finally:
        pool.close()
    killed = [m.id for m, r in zip(sample, results)
              if r.status != SubmissionStatus.GRADED or r.score < r.max_score]
    survived = [m for m in sample if m.id not in killed and m.id not in equivalent]
    generated = {m.id for m in lab_mutants(entry.id, None)}
    stale = [i for i in equivalent if i not in generated or i in killed]
    return Score(entry.id, tuple(killed), tuple(survived), tuple(i for i in equivalent if i in generated),
                 tuple(stale))


def print_scores(scores: list[Score]) -> None:
    """The table ``validate --mutation`` prints: one row per lab, then each survivor's id and code line."""
    print(f"{'lab':<30} {'mutants':>8} {'killed':>7} {'equiv.':>7} {'survived':>9} {'score':>7}")
    for s in scores:
        total = len(s.killed) + len(s.survived) + len(s.equivalent)
        print(f"{s.lab:<30} {total:>8} {len(s.killed):>7} {len(s.equivalent):>7} {len(s.survived):>9} "
              f"{s.score:>7.0%}")
    for s in scores:
        for m in s.survived:
            line = int(m.id.split(":L")[1].split(":")[0])
            print(f"  survived {m.id}: {_line(s.lab, m.cell, line)}")
        for i in s.stale:
            print(f"  stale equivalent entry {s.lab}: {i} (no longer generated, or now killed)")


def _line(lab: str, cell: str, line: int) -> str:
    nb = load_source(lab_entry(lab).source_notebook)
    source = next(c.source for c in nb.cells if is_answer(c) and nbgrader_meta(c)["grade_id"] == cell)
    return source.splitlines()[line - 1].strip()
