"""Grade the adversarial corpus: each case gets its expected status, no case raises its score,
every case is in the export, suspicious code is flagged; and grading is deterministic."""

import csv
import json

import pytest

from autograder.grade import grade_notebook
from autograder.model import GradeOptions
from autograder.orchestrate import grade_folder
from tests.adversarial import CASES, LAB, build_all

pytestmark = pytest.mark.slow  # grades a corpus / starts servers: `make test-fast` skips it
OPTIONS = GradeOptions(answer_timeout=10, test_timeout=20)
BY_NAME = {c.name: c for c in CASES}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adversarial")
    for name, raw in build_all().items():
        (folder / f"{name}.ipynb").write_bytes(raw)
    out = tmp_path_factory.mktemp("out")
    results = grade_folder(LAB, folder, out, jobs=2, options=OPTIONS, progress=False)
    return {r.student: r for r in results}, out


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_case(graded, name):
    case, r = BY_NAME[name], graded[0][name]
    summary = [(p.grade_id, p.status, p.points, p.reason[:200]) for p in r.parts]
    assert r.status == case.status, (r.reason, summary)
    assert case.min_score <= r.score <= case.max_score, summary
    for gid, status in case.parts.items():
        part = next(p for p in r.parts if p.grade_id == gid)
        assert part.status == status, summary
        assert part.reason, "a part that loses points must say why"
    if case.flag:
        assert any(case.flag in f for f in r.flags), r.flags


def test_every_case_is_in_the_export(graded):
    _, out = graded
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert {row["student"] for row in rows} == set(BY_NAME)


def test_same_submission_five_times_same_scores():
    raw = build_all()["nondeterministic_answer"]
    runs = {json.dumps([(p.grade_id, p.status, p.points) for p in grade_notebook(LAB, raw, "x", options=OPTIONS).parts])
            for _ in range(5)}
    assert len(runs) == 1, runs
