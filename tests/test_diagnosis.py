"""Diagnosis of failed parts (autograder/diagnosis.py): known mistakes from the mutants, earlier parts
as the likely cause, the manifest's ``substitute_earlier``, and the measurement over labs 1–4."""

from dataclasses import replace

import pytest

import autograder.diagnosis as diagnosis
from autograder.course import lab as lab_entry
from autograder.feedback import render
from autograder.grade import grade_notebook
from autograder.model import GradeOptions, Result, Status
from autograder.mutants import mutants_of
from labsupport.checks import CheckFailed
from tests.conftest import student_notebook, to_bytes

LAB = "lab01_tokenizers"
SECRET = GradeOptions(secret=b"test-diagnosis", answer_timeout=10, test_timeout=60)
# a bug that is none of the mutants: merge replaces only the first occurrence of the pair
OWN_MERGE_BUG = """def merge(ids, pair, new_id):
    ids = list(ids)
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return ids[:i] + [new_id] + ids[i + 2:]
    return ids"""


def _mutant(name: str) -> dict[str, str]:
    return next(m for m in mutants_of(LAB) if m.name == name).cells


def _grade(answers: dict[str, str], student: str = "sam", options: GradeOptions = SECRET):
    r = grade_notebook(LAB, to_bytes(student_notebook(LAB, answers)), student, options=options)
    return r, {p.grade_id: p for p in r.parts}


def test_statementwise_records_each_statement():
    got: dict[int, str] = {}
    ns = {diagnosis.RECORD: diagnosis.recorder(got)}
    exec(diagnosis.statementwise("x = 1\nassert x == 2\ny = x + 1\nraise ValueError('bad (line 3 of answer cell f)')"),
         ns)
    assert got == {0: "pass", 1: "fail|assert", 2: "pass", 3: "error|ValueError|bad"}
    assert ns["y"] == 2  # statements after a failure still run


def test_outcome_is_coarse():
    e = CheckFailed("f(1): values differ", expected=0.123456, got=0.98765432)
    assert diagnosis.outcome(e) == "fail|f(1): values differ|0.988"


def test_match_prefers_the_cause_then_the_own_cell_and_shows_at_most_two():
    fp = ["pass", "fail|x|1"]
    table = {name: {"description": name.upper(), "cells": cells, "parts": {"p": fp}}
             for name, cells in [("a", ["mine"]), ("b", ["earlier"]), ("c", ["other"])]}
    assert diagnosis.match(table, "p", "mine", fp) == {"a": "A"}
    assert diagnosis.match(table, "p", "mine", fp, cause=["earlier"]) == {"b": "B"}
    assert diagnosis.match(table, "p", "nobody", fp) == {}  # three equally good: says too little
    assert diagnosis.match(table, "p", "mine", ["pass", "pass"]) == {}


def test_known_mistake_and_earlier_part_are_explained(lab01_answers):
    r, parts = _grade({**lab01_answers, **_mutant("merge_overlapping")})
    assert parts["merge_tests"].diagnosis.keys() == {"merge_overlapping"}
    for gid in ("train_bpe_tests", "encode_tests"):
        assert parts[gid].status == Status.FAILED and parts[gid].points == 0
        assert parts[gid].likely_cause == ["merge"] and not parts[gid].substituted
    assert not parts["merge_tests"].likely_cause and not parts["decode_tests"].diagnosis
    page = render(r)
    assert "behaves like a known mistake: Merge does not skip past a replaced pair" in page
    assert "With the reference <code>merge</code>, this part passes" in page
    back = Result.from_json(r.to_json())  # archived in the gradebook with the result
    assert back.parts == r.parts


def test_unknown_mistake_gets_no_diagnosis_but_still_a_cause(lab01_answers):
    _, parts = _grade({**lab01_answers, "merge": OWN_MERGE_BUG})
    assert parts["merge_tests"].status == Status.FAILED and parts["merge_tests"].diagnosis == {}
    assert parts["train_bpe_tests"].likely_cause == ["merge"] and parts["train_bpe_tests"].diagnosis == {}


def test_substitute_earlier_grades_later_parts_with_the_reference(lab01_answers, monkeypatch):
    entry = replace(lab_entry(LAB), substitute_earlier=True)
    monkeypatch.setattr(diagnosis, "lab_entry", lambda name: entry)
    r, parts = _grade({**lab01_answers, "merge": OWN_MERGE_BUG})
    assert parts["merge_tests"].points == 0
    part = parts["train_bpe_tests"]
    assert part.status == Status.PASSED and part.points == part.max_points and part.substituted == ["merge"]
    assert r.score == r.max_score - parts["merge_tests"].max_points
    assert "Graded with the reference <code>merge</code> in place of yours" in render(r)


def test_passing_submission_costs_nothing(lab01_answers, monkeypatch):
    monkeypatch.setattr(diagnosis, "mutant_table", lambda lab: pytest.fail("no table needed"))
    r, _ = _grade(lab01_answers)
    assert r.score == r.max_score and not any(p.diagnosis or p.likely_cause for p in r.parts)


def test_diagnosis_can_be_switched_off(lab01_answers):
    _, parts = _grade({**lab01_answers, **_mutant("merge_overlapping")}, options=replace(SECRET, diagnose=False))
    assert parts["merge_tests"].diagnosis == {} and parts["encode_tests"].likely_cause == []


@pytest.mark.slow
def test_mutants_of_labs_1_to_4_are_diagnosed_as_themselves():
    rows = diagnosis.measure(["lab01_tokenizers", "lab02_attention", "lab03_multihead_attention",
                              "lab04_positional_encodings"])
    for lab in {r.lab for r in rows}:
        mine = [r for r in rows if r.lab == lab]
        assert diagnosis.share(mine) >= 0.9, [(r.mutant, r.diagnosed) for r in mine if not r.ok]


REWRITTEN = {  # known mistakes written in another style than their mutant: (lab, answer cell, code, mutant)
    "no_scaling": ("lab02_attention", "scaled_dot_product_attention", """\
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.einsum('...qd,...kd->...qk', q, k)
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, float('-inf')))
    w = torch.softmax(scores, dim=-1)
    w = torch.where(torch.isnan(w), torch.zeros_like(w), w)
    return torch.einsum('...qk,...kd->...qd', w, v), w"""),
    "heads_split_wrong_dim": ("lab03_multihead_attention", "split_merge_heads", """\
def split_heads(x, n_heads):
    return x.reshape(x.shape[0], n_heads, x.shape[1], -1)

def merge_heads(x):
    return x.permute(0, 2, 1, 3).flatten(2)"""),
}


@pytest.mark.parametrize("mutant", sorted(REWRITTEN))
def test_a_known_mistake_written_differently_is_recognised(mutant):
    from tests.conftest import solution_answers

    lab, aid, code = REWRITTEN[mutant]
    answers = {**solution_answers(lab), aid: code}
    r = grade_notebook(lab, to_bytes(student_notebook(lab, answers)), "robin", options=SECRET)
    lost = [p for p in r.auto_parts if p.points < p.max_points]
    assert lost and all(list(p.diagnosis) == [mutant] for p in lost)
    assert all(p.likely_cause == [aid] for p in lost if p.answer_id != aid)
