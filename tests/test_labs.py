"""Every lab: labs/ in sync with solutions/, and its graders proven (python -m autograder validate)."""

from dataclasses import replace

import pytest

from autograder import validate
from autograder.course import all_labs
from autograder.model import PartResult, Result, Status
from autograder.mutants import Mutant, MutantError, parse_expect, parse_mutant
from autograder.release import out_of_sync
from autograder.validate import judge_mutant, run_again_alone, validate_labs

LABS = all_labs()


def test_there_are_labs():
    assert "lab01_tokenizers" in LABS


@pytest.mark.parametrize("lab", LABS)
def test_release_is_in_sync(lab):
    diffs = out_of_sync(lab)
    assert not diffs, f"labs/{lab} is out of sync with solutions/ — run `python -m autograder release {lab}`: {diffs}"


def _result(*parts: tuple[str, Status]) -> Result:
    return Result("m", "labX", "", parts=[PartResult(gid, 5, 5 if st == Status.PASSED else 0, st) for gid, st in parts])


def test_a_mutant_counts_only_where_and_how_it_declares():
    m = Mutant("m", "a bug", {"a": "..."}, expect={"a_tests": Status.FAILED})
    assert judge_mutant(m, _result(("a_tests", Status.FAILED), ("b_tests", Status.PASSED)))[0]
    # broken by a NameError (status error), not caught by the checks: not a caught mutant
    ok, got = judge_mutant(m, _result(("a_tests", Status.ERROR), ("b_tests", Status.PASSED)))
    assert not ok and "a_tests should be failed" in got
    ok, got = judge_mutant(m, _result(("a_tests", Status.FAILED), ("b_tests", Status.FAILED)))
    assert not ok and "b_tests should keep full marks" in got
    unknown = Mutant("m", "", {}, expect={"zz_tests": Status.FAILED})
    assert not judge_mutant(unknown, _result(("a_tests", Status.PASSED)))[0]


def test_a_solution_failure_that_does_not_repeat_alone_passes_and_is_reported(monkeypatch):
    first = validate.Row("lab03", "solution runs (nbval)", "no error", "1 failed, 8 passed; Cell 8: OSError: lock",
                         False, 30.0)
    monkeypatch.setattr(validate, "nbval_run", lambda *args: (True, "9 passed"))
    row = run_again_alone(first)
    assert row.ok and row.got == "9 passed; the first run, beside the other work, failed: " + first.got
    calls = []
    monkeypatch.setattr(validate, "nbval_run", lambda *args: calls.append(args) or (False, "Cell 8: ValueError: x"))
    assert run_again_alone(first) == first and len(calls) == 1  # a failure that repeats stays a failure
    assert run_again_alone(replace(first, ok=True)).ok and len(calls) == 1  # a passing run is not repeated


def test_mutant_format(tmp_path):
    assert parse_expect("a_tests failed, b_tests out-of-memory") == {"a_tests": Status.FAILED,
                                                                   "b_tests": Status.OUT_OF_MEMORY}
    for bad in ("a_tests", "a_tests passed", "", "a_tests wrong"):
        with pytest.raises(MutantError):
            parse_expect(bad)
    f = tmp_path / "bug.py"
    f.write_text('"""Off by one."""\n# expect: a_tests failed\n\n# %% a\ndef a():\n    return 1\n')
    m = parse_mutant(f)
    assert (m.description, m.expect, m.cells, m.problems) == ("Off by one.", {"a_tests": Status.FAILED},
                                                              {"a": "def a():\n    return 1"}, [])
    f.write_text("# %% a\ndef a():\n    return 1\n")
    m = parse_mutant(f)
    assert m.expect is None and m.problems == ["has no docstring (the diagnosis a student would read)"]


@pytest.fixture(scope="session")
def validated(request) -> dict[str, list]:
    """``validate`` of every lab whose test_validate was selected, in one parallel run (no core idles
    between labs: the next lab's notebooks are graded while the previous solution still runs)."""
    wanted = [item.callspec.params["lab"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_validate" and hasattr(item, "callspec")]
    rows = validate_labs(wanted or LABS, jobs=2)
    return {lab: [r for r in rows if r.lab == lab] for lab in wanted or LABS}


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_validate(lab, validated):
    rows = validated[lab]
    bad = [f"{r.kind}: expected {r.expected}, got {r.got}" for r in rows if not r.ok]
    assert rows and not bad, "\n".join(bad)
