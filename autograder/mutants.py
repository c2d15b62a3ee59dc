"""Mutants (known-wrong answers) and alternatives (other correct answers) that prove a lab's graders.

A **mutant** is a Python file ``autograder/mutants/LAB/NAME.py``: its docstring is the diagnosis a
student would read; then one line saying which test cells it must lose points on and with which
status; then sections, each starting with ``# %% ANSWER_GRADE_ID``, giving the full code of that
answer cell (answer cells not listed keep the solution)::

    '''Dropout is applied to the attention output instead of the attention weights.'''
    # expect: multihead_tests failed

    # %% multihead_attention
    class MultiHeadAttention(nn.Module):
        ...

Statuses: failed, error, timeout, crashed, out-of-memory, missing (:class:`~autograder.model.Status`).
``validate`` requires exactly that: the named parts lose points with that status, every other
part keeps full marks — so a mutant that breaks by a ``NameError`` no longer counts as caught.

An **alternative** is a file ``autograder/alternatives/LAB/NAME.py`` in the same format without
the ``# expect:`` line: an independent correct solution in another style (loops instead of
vectorised code, say). ``validate`` requires full marks.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import lab as lab_entry
from autograder.model import Status
from autograder.notebook import is_answer, load_source, nbgrader_meta

EXPECTABLE = (Status.FAILED, Status.ERROR, Status.TIMEOUT, Status.CRASHED, Status.OUT_OF_MEMORY, Status.MISSING)
EXPECT = re.compile(r"^#\s*expect:\s*(?P<body>.*)$")


class MutantError(ValueError):
    """A mutant or alternative file that does not follow the format; the message says how to fix it."""


@dataclass
class Mutant:
    name: str
    description: str
    cells: dict[str, str]
    expect: dict[str, Status] | None = None  # test grade_id → the status it must get; None: no `# expect:` line
    path: Path | None = None
    problems: list[str] = field(default_factory=list)  # format errors found while parsing


def parse_expect(body: str) -> dict[str, Status]:
    """``"a_tests failed, b_tests timeout"`` → ``{"a_tests": Status.FAILED, "b_tests": Status.TIMEOUT}``.

    >>> parse_expect("multihead_tests failed, block_tests error")
    {'multihead_tests': <Status.FAILED: 'failed'>, 'block_tests': <Status.ERROR: 'error'>}
    """
    expect: dict[str, Status] = {}
    for item in filter(None, (x.strip() for x in body.split(","))):
        words = item.split()
        if len(words) != 2 or words[1] not in {s.value for s in EXPECTABLE}:
            raise MutantError(f"`# expect:` entries are `TEST_GRADE_ID STATUS` with STATUS one of "
                              f"{', '.join(EXPECTABLE)}; got {item!r}")
        expect[words[0]] = Status(words[1])
    if not expect:
        raise MutantError("`# expect:` names no test cell")
    return expect


def parse_mutant(path: Path) -> Mutant:
    """Read one mutant or alternative file (format errors are collected in ``problems``)."""
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    try:
        description = (ast.get_docstring(ast.parse(text)) or "").strip()
    except SyntaxError as e:
        description, problems = "", [f"does not parse as Python: {e}"]
    cells: dict[str, str] = {}
    expect: dict[str, Status] | None = None
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("# %% "):
            current = line[5:].strip()
            cells[current] = ""
        elif current is not None:
            cells[current] += line
        elif m := EXPECT.match(line.strip()):
            try:
                expect = parse_expect(m["body"])
            except MutantError as e:
                problems.append(str(e))
    if not description:
        problems.append("has no docstring (the diagnosis a student would read)")
    if not cells:
        problems.append("has no `# %% ANSWER_GRADE_ID` section")
    return Mutant(path.stem, description, {k: v.strip("\n") for k, v in cells.items()}, expect, path, problems)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")


def mutants_of(lab: str) -> list[Mutant]:
    """The mutants of ``lab`` (``autograder/mutants/LAB/*.py``), by name."""
    return [parse_mutant(p) for p in _files(lab_entry(lab).mutants_dir)]


def alternatives_of(lab: str) -> list[Mutant]:
    """The alternative correct solutions of ``lab`` (``autograder/alternatives/LAB/*.py``), by name."""
    return [parse_mutant(p) for p in _files(lab_entry(lab).alternatives_dir)]


def mutant_notebook(source_path: Path, mutant: Mutant) -> bytes:
    """The solution notebook with the mutant's answer cells swapped in, as submission bytes."""
    nb = copy.deepcopy(load_source(source_path))
    ids = {nbgrader_meta(c).get("grade_id") for c in nb.cells if is_answer(c)}
    unknown = set(mutant.cells) - ids
    if unknown:
        raise MutantError(f"{mutant.name} names unknown answer cells {sorted(unknown)}; the lab's are {sorted(ids)}")
    for cell in nb.cells:
        if is_answer(cell) and nbgrader_meta(cell)["grade_id"] in mutant.cells:
            cell.source = mutant.cells[nbgrader_meta(cell)["grade_id"]]
    return json.dumps(nb).encode()
