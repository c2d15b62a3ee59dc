"""Read a submission safely and rebuild the notebook the grader runs.

The grader never runs the student's notebook as it is. It starts from the instructor *source*
(locked cells, test cells and hidden tests, always intact) and puts the student's code only into
the answer cells, matched by nbgrader ``grade_id``. So a deleted, edited or reordered test cell
cannot change a grade, and extra cells a student added (scratch work, long experiments) do not run.
Everything unusual is recorded as a note for the feedback and the report.
"""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

SKIP_TAG = "skip-grading"  # cells the grader never runs (experiments, "try it" cells)
MAX_SUBMISSION_BYTES = 256 * 1024 * 1024  # outputs are dropped, so big notebooks are fine up to here


class InvalidSubmission(ValueError):
    """The file is not a readable notebook; the message says why, in words a student understands."""


def nbgrader_meta(cell: NotebookNode) -> dict:
    """The cell's nbgrader metadata (empty dict when absent or malformed)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_answer(cell: NotebookNode) -> bool:
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))


def is_test(cell: NotebookNode) -> bool:
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def points(cell: NotebookNode) -> float:
    return float(nbgrader_meta(cell).get("points", 0) or 0)


def source_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def read_submission(raw: bytes) -> list[dict]:
    """The cells of a submitted notebook, tolerating anything that still holds cells.

    Raises :class:`InvalidSubmission` when no cells can be recovered.
    """
    if len(raw) > MAX_SUBMISSION_BYTES:
        raise InvalidSubmission(f"the file is {len(raw) / 2**20:.0f} MB; notebooks over "
                                f"{MAX_SUBMISSION_BYTES // 2**20} MB are not graded (clear the outputs and resubmit)")
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"")  # NUL bytes (e.g. a crashed editor) are never meaningful
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidSubmission(f"the file is not UTF-8 text (byte {e.start}): was it saved as a notebook?"
                                ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidSubmission(f"the file is not valid notebook JSON ({e.msg} at line {e.lineno}, "
                                f"column {e.colno}); open it in Jupyter, or re-download and redo the work"
                                ) from None
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, list):
        if isinstance(doc, dict) and isinstance(doc.get("worksheets"), list):  # nbformat 3
            cells = [c for ws in doc["worksheets"] for c in ws.get("cells", [])]
            for c in cells:
                c.setdefault("source", c.get("input", ""))
        else:
            raise InvalidSubmission("the file is JSON but not a notebook (no list of cells)")
    return [c for c in cells if isinstance(c, dict)]


def defined_names(code: str) -> list[str]:
    """Functions, classes and variables that ``code`` defines at top level (none if it does not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


@dataclass
class Assembled:
    """The notebook to run, and what was noticed while building it."""

    nb: NotebookNode
    notes: list[str] = field(default_factory=list)
    answers_found: dict[str, bool] = field(default_factory=dict)


def assemble(source: NotebookNode, submitted: list[dict]) -> Assembled:
    """The source notebook with each answer cell replaced by the student's code for it.

    Answer cells are matched by ``grade_id``; a cell whose metadata was stripped is recognised by
    the functions or classes it defines. A missing answer leaves the release stub in place.
    """
    nb = copy.deepcopy(source)
    notes: list[str] = []
    by_id: dict[str, list[dict]] = {}
    for cell in submitted:
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str):
            by_id.setdefault(gid, []).append(cell)
    source_ids = {nbgrader_meta(c)["grade_id"] for c in source.cells if nbgrader_meta(c).get("grade_id")}
    used: set[int] = set()
    found: dict[str, bool] = {}
    for cell in nb.cells:
        if not is_answer(cell):
            continue
        gid = nbgrader_meta(cell)["grade_id"]
        candidates = by_id.get(gid, [])
        if len(candidates) > 1:
            notes.append(f"answer cell `{gid}` appears {len(candidates)} times; the first one was graded")
        match = candidates[0] if candidates else None
        if match is not None and match.get("cell_type") != "code":
            notes.append(f"answer cell `{gid}` was changed to {match.get('cell_type')}; graded as code")
        if match is None:
            match = _find_by_definitions(cell, submitted, used, source_ids)
            if match is not None:
                notes.append(f"answer cell `{gid}` had lost its nbgrader metadata; found by the "
                             f"names it defines")
        if match is None:
            notes.append(f"answer cell `{gid}` is missing from the submission; graded as blank")
            cell.source = "raise NotImplementedError()  # the answer cell was missing"
            found[gid] = False
            continue
        used.add(id(match))
        cell.source = source_text(match)
        found[gid] = True
    for cell in nb.cells:
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
    extra = sum(1 for c in submitted if c.get("cell_type") == "code"
                and nbgrader_meta(c).get("grade_id") not in source_ids and id(c) not in used)
    if extra:
        notes.append(f"{extra} code cell(s) you added were not run by the grader: keep helpers "
                     "inside the answer cell that uses them")
    return Assembled(nb, notes, found)


def _find_by_definitions(cell: NotebookNode, submitted: list[dict], used: set[int],
                         source_ids: set) -> dict | None:
    wanted = set(defined_names(source_text(cell)))
    if not wanted:
        return None
    for cand in submitted:
        if (cand.get("cell_type") == "code" and id(cand) not in used
                and nbgrader_meta(cand).get("grade_id") not in source_ids
                and wanted <= set(defined_names(source_text(cand)))):
            return cand
    return None


def load_source(path: Path) -> NotebookNode:
    """The instructor source notebook (trusted, validated)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb
