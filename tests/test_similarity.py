"""The similarity report (issue 9, item 3): copies are paired, independent styles are not, the
reference is recognised, blanks never count, the page escapes student code, the CSV flag is safe."""

import csv
import re

from autograder.course import lab as lab_entry
from autograder.export import export_csv
from autograder.gradebook import Gradebook
from autograder.mutants import alternatives_of, mutant_notebook
from autograder.similarity import REFERENCE, THRESHOLD, find_similar, own_code, write_report
from tests.conftest import solution_answers, student_notebook, to_bytes

LAB = "lab01_tokenizers"


def _rename(code: str) -> str:
    """What a student who copies does: other names, other comments, other blank lines."""
    for old, new in (("ids", "tokens"), ("pair", "bigram"), ("counts", "tally"), ("new_id", "fresh")):
        code = re.sub(rf"\b{old}\b", new, code)
    return re.sub(r"#.*", "# my own words", code).replace("\n\n", "\n")


def _codes() -> dict[str, str]:
    entry = lab_entry(LAB)
    answers = solution_answers(LAB)
    alternative = alternatives_of(LAB)[0]
    return {
        "original": own_code(entry.source_notebook.read_bytes(), LAB),
        "copier": own_code(to_bytes(student_notebook(LAB, {k: _rename(v) for k, v in answers.items()})), LAB),
        "independent": own_code(mutant_notebook(entry.source_notebook, alternative), LAB),
        "blank": own_code(entry.release_notebook.read_bytes(), LAB),
    }


def test_copies_are_paired_independent_styles_and_blanks_are_not():
    pairs = find_similar(LAB, _codes())
    found = {frozenset((p.first, p.second)) for p in pairs}
    assert frozenset(("original", "copier")) in found
    assert frozenset(("original", REFERENCE)) in found  # the solution pasted: like the reference
    assert not any("independent" in f or "blank" in f for f in found), found
    assert all(p.similarity >= THRESHOLD for p in pairs)


def test_report_escapes_code_and_flags_reach_the_csv_safely(tmp_path):
    hostile = "=HYPERLINK(\"x\")"
    code = own_code(lab_entry(LAB).source_notebook.read_bytes(), LAB) + "\n# </pre><script>alert(1)</script>\n"
    pairs = find_similar(LAB, {hostile: code, "bob": code})
    page = write_report(LAB, pairs, tmp_path).read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    with Gradebook.open(None, tmp_path) as book:
        for student in (hostile, "bob"):
            book.record_submission(student, LAB, "0" * 64, "x.ipynb", "")
        export_csv(book, LAB, tmp_path / "grades.csv")
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "grades.csv", encoding="utf-8"))}
    assert "similar to bob" in rows["'" + hostile]["flags"]
    assert f"similar to {hostile}" in rows["bob"]["flags"] and not rows["bob"]["flags"].startswith("=")
