"""Every lab: labs/ in sync with solutions/, and its graders proven (python -m autograder validate)."""

import pytest

from autograder.course import all_labs
from autograder.release import out_of_sync
from autograder.validate import validate_lab

LABS = all_labs()


def test_there_are_labs():
    assert "lab01_tokenizers" in LABS


@pytest.mark.parametrize("lab", LABS)
def test_release_is_in_sync(lab):
    diffs = out_of_sync(lab)
    assert not diffs, f"labs/{lab} is out of sync with solutions/ — run `python -m autograder release {lab}`: {diffs}"


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_validate(lab):
    rows = validate_lab(lab, jobs=2)
    bad = [f"{r.kind}: expected {r.expected}, got {r.got}" for r in rows if not r.ok]
    assert not bad, "\n".join(bad)
