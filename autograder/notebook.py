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


def is_manual(cell: NotebookNode) -> bool:
    """A written answer graded by an instructor: nbgrader's "manually graded answer" (markdown)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


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
    except RecursionError:
        raise InvalidSubmission("the file's JSON is nested too deeply to be a notebook") from None
    except (ValueError, MemoryError) as e:  # e.g. an integer literal too long to convert
        raise InvalidSubmission(f"the file is not readable notebook JSON ({type(e).__name__})") from None
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, list):
        if isinstance(doc, dict) and isinstance(doc.get("worksheets"), list):  # nbformat 3
            cells = [c for ws in doc["worksheets"] if isinstance(ws, dict)
                     for c in (ws.get("cells") if isinstance(ws.get("cells"), list) else [])]
            cells = [{**c, "source": c.get("source", c.get("input", ""))} for c in cells if isinstance(c, dict)]
        else:
            raise InvalidSubmission("the file is JSON but not a notebook (no list of cells)")
    return [_clean_cell(c) for c in cells if isinstance(c, dict)]


NBGRADER_KEYS = ("grade_id", "solution", "grade", "locked", "points", "task", "schema_version")


def _clean_cell(cell: dict) -> dict:
    """Only what the grader reads of a submitted cell, as plain shallow data: its type, its source
    text and its nbgrader flags. Outputs and any other metadata (however deeply nested) are dropped."""
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(x for x in src if isinstance(x, str))
    elif not isinstance(src, str):
        src = ""
    meta = cell.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    nb_meta = meta.get("nbgrader")
    clean_meta: dict = {}
    if isinstance(nb_meta, dict):
        clean_meta["nbgrader"] = {k: nb_meta[k] for k in NBGRADER_KEYS
                                  if isinstance(nb_meta.get(k), str | int | float | bool)}
    tags = meta.get("tags")
    if isinstance(tags, list):
        clean_meta["tags"] = [t for t in tags if isinstance(t, str)]
    cell_type = cell.get("cell_type")
    return {"cell_type": cell_type if isinstance(cell_type, str) else "code", "source": src, "metadata": clean_meta}


def only_definitions(code: str) -> bool:
    r"""Does ``code`` only define things: functions, classes, imports, constants (literal values)?

    Such a cell a student added (a helper) is run before the answer cells; any other added cell
    (experiments, prints, training) is not.

    >>> only_definitions("import math\nK = 3\ndef f(x):\n    return x * K")
    True
    >>> only_definitions("x = f(2)")
    False
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False

    def constant(node: ast.AST | None) -> bool:
        if node is None:
            return True
        try:
            ast.literal_eval(node)
            return True
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return False

    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    for node in tree.body:
        if isinstance(node, definitions):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) \
                and constant(node.value):
            continue
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and constant(node.value):
            continue
        return False
    return bool(tree.body)


def defined_names(code: str, imports: bool = False) -> list[str]:
    """Functions, classes and variables that ``code`` defines at top level (none if it does not parse);
    with ``imports``, the names its imports bind too."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names.append(node.target.id)
        elif imports and isinstance(node, ast.Import | ast.ImportFrom):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
    return names


@dataclass
class Assembled:
    """The notebook to run, and what was noticed while building it."""

    nb: NotebookNode
    notes: list[str] = field(default_factory=list)
    answers_found: dict[str, bool] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)  # written answers (manually graded): grade_id → text
    helpers: list[str] = field(default_factory=list)  # cells the student added that only define things


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
    written: dict[str, str] = {}
    for cell in nb.cells:
        if is_manual(cell):
            gid = nbgrader_meta(cell)["grade_id"]
            candidates = by_id.get(gid, [])
            if not candidates:
                notes.append(f"written answer `{gid}` is missing from the submission")
            written[gid] = source_text(candidates[0]) if candidates else ""
            cell.source = written[gid]
    for cell in nb.cells:
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
    source_texts = {source_text(c).strip() for c in source.cells}
    added = [c for c in submitted if c.get("cell_type") == "code" and id(c) not in used
             and nbgrader_meta(c).get("grade_id") not in source_ids
             and source_text(c).strip() and source_text(c).strip() not in source_texts]
    helpers = [source_text(c) for c in added if only_definitions(source_text(c))]
    for code in helpers:
        names = ", ".join(defined_names(code, imports=True)) or "nothing"
        notes.append(f"a code cell you added (defining {names}) only defines functions, classes, "
                     "constants or imports: it was run before the answer cells")
    skipped = len(added) - len(helpers)
    if skipped:
        notes.append(f"{skipped} code cell(s) you added were not run by the grader (they do more than define "
                     "functions, classes, constants or imports): keep such code out of your answers")
    return Assembled(nb, notes, found, written, helpers)


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
