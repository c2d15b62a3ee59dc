"""The manifest (``autograder/course.py``) and the tree agree: every lab has all its files, every lab
folder is in the manifest, every mutant says what it must lose. Fast: nothing is executed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import yaml

from autograder.course import ALTERNATIVES, LABS, LABS_DIR, MUTANTS, ROOT, SOLUTIONS, Lab
from autograder.mutants import alternatives_of, mutants_of
from autograder.notebook import is_answer, is_test, load_source, nbgrader_meta

MIN_MUTANTS = 5
IDS = [entry.id for entry in LABS]


def _toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.add(str(node["file"]).removesuffix(".md").removesuffix(".ipynb"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return files


def _bibfiles() -> list[str]:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")).get("bibtex_bibfiles", [])


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def missing_files(entry: Lab) -> list[str]:
    """Everything the manifest promises for ``entry`` that the tree lacks, in words."""
    missing = []
    if not (ROOT / entry.chapter).is_file():
        missing.append(f"chapter file {entry.chapter}")
    if entry.chapter.removesuffix(".md") not in _toc_files():
        missing.append(f"_toc.yml entry `- file: {entry.chapter.removesuffix('.md')}`")
    if not (ROOT / entry.bib).is_file():
        missing.append(f"bib file {entry.bib}")
    if entry.bib not in _bibfiles():
        missing.append(f"{entry.bib} in _config.yml's bibtex_bibfiles")
    for kind, names in (("checks module", (entry.checks,)), ("reference module", entry.references),
                        ("module it uses", entry.uses)):
        missing += [f"{kind} {name}" for name in names if not _module_exists(name)]
    missing += [f"oracle library {name} (not installed)" for name in entry.oracles if not _module_exists(name)]
    if not entry.source_notebook.is_file():
        missing.append(f"solution notebook {entry.source_notebook.relative_to(ROOT)}")
    if not entry.release_notebook.is_file():
        missing.append(f"release {entry.release_notebook.relative_to(ROOT)} "
                       f"(run `python -m autograder release {entry.short}`)")
    n = len(mutants_of(entry.id))
    if n < MIN_MUTANTS:
        missing.append(f"mutants: {n} in {entry.mutants_dir.relative_to(ROOT)}, at least {MIN_MUTANTS} wanted")
    if not entry.tests:
        missing.append("test files (the `tests` field is empty)")
    missing += [f"test file {t}" for t in entry.tests if not (ROOT / t).is_file()]
    return missing


@pytest.mark.parametrize("lab", IDS)
def test_lab_has_all_its_files(lab):
    entry = next(e for e in LABS if e.id == lab)
    missing = missing_files(entry)
    assert not missing, f"{lab} lacks: " + "; ".join(missing)


def test_manifest_is_well_formed():
    assert IDS, "the manifest has no lab"
    assert len(set(IDS)) == len(IDS), "a lab id appears twice in LABS"
    numbers = [e.number for e in LABS]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), f"LABS out of order: {IDS}"
    for e in LABS:
        chapter = e.chapter.removeprefix("book/")
        assert chapter[:2] == f"{e.number:02d}", f"{e.id}: chapter {e.chapter} does not have number {e.number:02d}"
        assert "torch" not in e.oracles, f"{e.id}: torch is never an oracle (every lab uses it)"
        assert not set(e.references) & set(e.uses), f"{e.id}: a module is both a reference and used"


@pytest.mark.parametrize("folder", [SOLUTIONS, LABS_DIR, MUTANTS, ALTERNATIVES], ids=lambda p: p.name)
def test_every_lab_folder_is_in_the_manifest(folder):
    if not folder.is_dir():
        return
    strays = sorted(p.name for p in folder.iterdir()
                    if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in IDS)
    assert not strays, f"folders in {folder.relative_to(ROOT)} without a Lab entry in autograder/course.py: {strays}"


@pytest.mark.parametrize("lab", IDS)
def test_mutants_and_alternatives_are_well_formed(lab):
    """Each mutant has its docstring, its ``# expect:`` line naming real test cells, and sections naming
    real answer cells; alternatives likewise (no ``# expect:``). ``validate`` then grades them."""
    entry = next(e for e in LABS if e.id == lab)
    if not entry.source_notebook.is_file():
        pytest.skip("no solution notebook (reported by test_lab_has_all_its_files)")
    cells = load_source(entry.source_notebook).cells
    answers = {nbgrader_meta(c)["grade_id"] for c in cells if is_answer(c)}
    tests = {nbgrader_meta(c)["grade_id"] for c in cells if is_test(c)}
    problems = []
    for kind, group in (("mutant", mutants_of(lab)), ("alternative", alternatives_of(lab))):
        for m in group:
            where = f"{kind} {m.path.relative_to(ROOT)}"
            problems += [f"{where} {p}" for p in m.problems]
            if kind == "mutant" and m.expect is None:
                problems.append(f"{where} has no `# expect: TEST_GRADE_ID STATUS` line after its docstring")
            if kind == "alternative" and m.expect is not None:
                problems.append(f"{where} has an `# expect:` line: alternatives must earn full marks")
            problems += [f"{where} expects unknown test cell {g!r} (the lab's: {sorted(tests)})"
                         for g in (m.expect or {}) if g not in tests]
            problems += [f"{where} replaces unknown answer cell {g!r} (the lab's: {sorted(answers)})"
                         for g in m.cells if g not in answers]
    assert not problems, "\n".join(problems)


def test_grading_model_imports_without_torch():
    """The gradebook, feedback and export work where torch is not installed (an instructor's laptop)."""
    code = ("import sys; import autograder.gradebook, autograder.feedback, autograder.export, autograder.model; "
            "bad = sorted(m for m in ('torch', 'numpy', 'autograder.sandbox', 'autograder.wire') if m in sys.modules); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"importing the grading model pulled in {proc.stdout}{proc.stderr}"


def test_review_flags_come_from_the_manifest():
    """An answer importing what its lab asks to build (references, oracles) is flagged; what it builds on is not."""
    from autograder.course import lab
    from autograder.scan import scan

    blocked = lab("lab03").blocked_modules
    subclass = "from labsupport.multihead import MultiHeadAttention as Base\nclass MultiHeadAttention(Base): pass"
    assert scan("multihead_attention", subclass, blocked) == [
        "multihead_attention, line 1: imports labsupport.multihead (uses the course's reference implementation)"]
    assert scan("mha", "from labsupport import multihead", blocked)
    assert not scan("mha", "from labsupport.attention import scaled_dot_product_attention", blocked)
    assert scan("bpe", "import transformers", lab("lab01").blocked_modules)
