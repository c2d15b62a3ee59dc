"""Mutants: known-wrong student answers that the graders must mark down.

A mutant is a Python file in ``autograder/mutants/LAB/NAME.py``. Its docstring says what bug it
models; then one or more sections, each starting with ``# %% GRADE_ID``, give the full code of that
answer cell. Answer cells not listed keep the solution.
"""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass
from pathlib import Path

from autograder.course import MUTANTS
from autograder.notebook import is_answer, load_source, nbgrader_meta


@dataclass
class Mutant:
    name: str
    description: str
    cells: dict[str, str]


def parse_mutant(path: Path) -> Mutant:
    text = path.read_text(encoding="utf-8")
    description = (ast.get_docstring(ast.parse(text)) or "").strip()
    cells: dict[str, str] = {}
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("# %% "):
            current = line[5:].strip()
            cells[current] = ""
        elif current is not None:
            cells[current] += line
    return Mutant(path.stem, description, {k: v.strip("\n") for k, v in cells.items()})


def mutants_of(lab: str) -> list[Mutant]:
    return [parse_mutant(p) for p in sorted((MUTANTS / lab).glob("*.py")) if p.name != "__init__.py"]


def mutant_notebook(source_path: Path, mutant: Mutant) -> bytes:
    """The solution notebook with the mutant's answer cells swapped in, as submission bytes."""
    nb = copy.deepcopy(load_source(source_path))
    ids = {nbgrader_meta(c).get("grade_id") for c in nb.cells if is_answer(c)}
    unknown = set(mutant.cells) - ids
    if unknown:
        raise ValueError(f"mutant {mutant.name} names unknown answer cells {sorted(unknown)}")
    for cell in nb.cells:
        if is_answer(cell) and nbgrader_meta(cell)["grade_id"] in mutant.cells:
            cell.source = mutant.cells[nbgrader_meta(cell)["grade_id"]]
    return json.dumps(nb).encode()
