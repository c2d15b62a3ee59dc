"""Shared fixtures: building student submissions from the release and the solution."""

from __future__ import annotations

import copy
import json
import os

import nbformat
import pytest

from autograder.course import release_notebook, source_notebook
from autograder.notebook import is_answer, nbgrader_meta
from autograder.seeds import SECRET_ENV

# the grader's secret for per-student hidden inputs: a fixed one for the tests (CLI runs included),
# so no test creates the instructor's secret file in the home directory
os.environ.setdefault(SECRET_ENV, "tests-only-grader-secret")


def solution_answers(lab: str) -> dict[str, str]:
    """The solution's code of each answer cell, with nbgrader's markers removed."""
    nb = nbformat.read(source_notebook(lab), as_version=4)
    answers = {}
    for cell in nb.cells:
        if is_answer(cell):
            lines = [ln for ln in cell.source.splitlines() if "### BEGIN SOLUTION" not in ln
                     and "### END SOLUTION" not in ln]
            answers[nbgrader_meta(cell)["grade_id"]] = "\n".join(lines)
    return answers


def student_notebook(lab: str, answers: dict[str, str] | None = None) -> dict:
    """The release notebook as a student would submit it, with ``answers`` typed into answer cells."""
    nb = copy.deepcopy(nbformat.read(release_notebook(lab), as_version=4))
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell) and answers and gid in answers:
            cell.source = answers[gid]
    return nb


def to_bytes(nb: dict) -> bytes:
    return json.dumps(nb, indent=1).encode()


@pytest.fixture(scope="session")
def lab01_answers() -> dict[str, str]:
    return solution_answers("lab01_tokenizers")
