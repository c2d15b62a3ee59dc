"""Similar submissions: pairs of students whose own code is unusually alike, and answers like the reference.

After a folder is graded, each student's *own* code (the answer cells and the cells they added) is
fingerprinted with ``copydetect`` (winnowing over a token stream in which names and strings are
normalised, so renamed variables and edited comments do not hide a copy). The release's stubs are
boilerplate: fingerprints the release already has never count. A pair is reported when, for both
students, at least :data:`THRESHOLD` of their fingerprinted code is shared with the other; an
answer is "similar to the reference" when that holds against the instructor's solution cells.

The report is ``OUT/similarity.html`` (side by side, shared code highlighted; self-contained) and
``OUT/similarity.json``, whose flags the CSV's ``flags`` column carries. Similarity is a reason
to look, not a verdict: short parts leave little room to differ, and students may share a source
the course allows.

    >>> round(Pair("a", "b", 0.9, 0.8, "", "").similarity, 2)
    0.8
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

from autograder.course import lab as lab_entry
from autograder.export import SIMILARITY_JSON
from autograder.gradebook import Gradebook
from autograder.notebook import (
    InvalidSubmission,
    assemble,
    is_answer,
    load_source,
    read_submission,
    source_text,
)

NOISE = 25  # copydetect's noise threshold: shared runs shorter than this (normalised characters) never count
GUARANTEE = 30  # every shared run at least this long is found (winnowing window = GUARANTEE − NOISE + 1)
THRESHOLD = 0.8  # share of each side's fingerprinted code found in the other
MIN_CODE = 200  # normalised characters: shorter code (a blank or near-blank notebook) is never compared
REFERENCE = "(reference solution)"


@dataclass(frozen=True)
class Pair:
    """Two codes and how much of each is shared: ``share_first`` of the first's code is in the second's."""

    first: str
    second: str
    share_first: float
    share_second: float
    html_first: str
    html_second: str

    @property
    def similarity(self) -> float:
        """The smaller share: both students' code must be mostly shared for the pair to count."""
        return min(self.share_first, self.share_second)


def own_code(raw: bytes, lab: str) -> str:
    """The student's code: their answer cells and the cells they added that the grader ran."""
    try:
        assembled = assemble(load_source(lab_entry(lab).source_notebook), read_submission(raw))
    except InvalidSubmission:
        return ""
    answers = [c.source for c in assembled.nb.cells if is_answer(c)]
    return "\n\n".join(answers + assembled.helpers)


def _cells_code(path: Path) -> str:
    return "\n\n".join(source_text(c) for c in load_source(path).cells if is_answer(c))


def _fingerprint(name: str, code: str, boilerplate: list[int]) -> CodeFingerprint:
    return CodeFingerprint(f"{name}.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                           fp=io.StringIO(code))


def _compare(a: CodeFingerprint, b: CodeFingerprint, first: str, second: str) -> Pair:
    _, (share_a, share_b), (slices_a, slices_b) = compare_files(a, b)
    marked = [highlight_overlap(fp.raw_code, s, "<mark>", "</mark>", escape_html=True)[0] if share else
              str(html.escape(fp.raw_code)) for fp, s, share in ((a, slices_a, share_a), (b, slices_b, share_b))]
    return Pair(first, second, float(share_a), float(share_b), *marked)


def find_similar(lab: str, codes: dict[str, str]) -> list[Pair]:
    """Pairs of ``codes`` (student → own code) over :data:`THRESHOLD`, and codes like the reference."""
    entry = lab_entry(lab)
    boilerplate = list(_fingerprint("release", _cells_code(entry.release_notebook), []).hashes)
    reference = _fingerprint("reference", _cells_code(entry.source_notebook), boilerplate)  # markers are comments
    prints = {s: _fingerprint(s, code, boilerplate) for s, code in sorted(codes.items())}
    prints = {s: fp for s, fp in prints.items() if len(fp.filtered_code) >= MIN_CODE and fp.token_coverage}
    pairs = [_compare(prints[a], prints[b], a, b) for a, b in combinations(prints, 2)]
    pairs += [_compare(fp, reference, s, REFERENCE) for s, fp in prints.items()]
    return sorted((p for p in pairs if p.similarity >= THRESHOLD), key=lambda p: -p.similarity)


def flags(pairs: list[Pair]) -> dict[str, list[str]]:
    """The review flag of each student in ``pairs``."""
    out: dict[str, list[str]] = {}
    for p in pairs:
        for me, other in ((p.first, p.second), (p.second, p.first)):
            if me != REFERENCE:
                what = "the reference solution" if other == REFERENCE else other
                out.setdefault(me, []).append(f"similar to {what} ({p.similarity:.0%}): see similarity.html")
    return out


def write_report(lab: str, pairs: list[Pair], out: Path) -> Path:
    """``OUT/similarity.json`` (the flags) and ``OUT/similarity.html`` (the pairs side by side)."""
    (out / SIMILARITY_JSON).write_text(json.dumps({"lab": lab, "threshold": THRESHOLD, "flags": flags(pairs),
                                                     "pairs": [{k: v for k, v in asdict(p).items()
                                                                if not k.startswith("html")} for p in pairs]},
                                                    indent=1), encoding="utf-8")
    rows = "".join(
        f"<h2>{html.escape(p.first)} ~ {html.escape(p.second)}: {p.similarity:.0%}</h2>"
        f'<div class="pair"><pre>{p.html_first}</pre><pre>{p.html_second}</pre></div>' for p in pairs)
    page = (f"<!doctype html><meta charset=utf-8><title>Similarity — {html.escape(lab)}</title>"
            "<style>body{font-family:sans-serif;margin:1em}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}"
            "pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:12px}mark{background:#ffd54f}</style>"
            f"<h1>Similar submissions — {html.escape(lab)}</h1><p>Pairs whose own code shares at least "
            f"{THRESHOLD:.0%} on both sides (copydetect winnowing; names and strings normalised; the release's "
            "stubs ignored). Similarity is a reason to look, not a verdict.</p>"
            + (rows or "<p>No pair over the threshold.</p>"))
    path = out / "similarity.html"
    path.write_text(page, encoding="utf-8")
    return path


def report(lab: str, book: Gradebook, out: Path) -> list[Pair]:
    """Compare the latest archived submission of every student of ``lab``; write the report into ``out``."""
    latest = book.latest_submissions(lab)
    codes = {s: own_code(Path(sub.archived_path).read_bytes(), lab) for s, sub in latest.items()
             if sub.archived_path and Path(sub.archived_path).is_file()}
    pairs = find_similar(lab, codes)
    write_report(lab, pairs, out)
    return pairs
