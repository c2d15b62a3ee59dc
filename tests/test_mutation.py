"""Automatic mutation testing (issue 9, item 6): seeded AST mutants of the solutions' answer code."""

import pytest

from autograder.course import LABS
from autograder.mutation import lab_mutants, mutants_of_code, mutation_score

CELL = '''def f(xs, k):
    """Only the solution region is mutated."""
    y = 1 + 2
    ### BEGIN SOLUTION
    total = 0
    for x in xs:
        if x < k:
            total += max(x, 0)
    return -total
    ### END SOLUTION
'''


def test_operators_constants_statements_and_arguments():
    by_id = {m.id: m.source for m in mutants_of_code("f", CELL)}
    assert "total -= max(x, 0)" in by_id["f:L8:Add->Sub"]
    assert "if x <= k:" in by_id["f:L7:Lt->LtE"]
    assert "total = 1" in by_id["f:L5:const 0->1"] and "max(x, 1)" in by_id["f:L8:const 0->1"]
    assert "max(0, x)" in by_id["f:L8:swap arguments"]
    assert "return total" in by_id["f:L9:drop USub"]
    assert "if not x < k:" in by_id["f:L7:negate condition"]
    assert "for" not in by_id["f:L6:remove For"] and "+=" not in by_id["f:L8:remove AugAssign"]
    assert all("y = 1 + 2" in src for src in by_id.values())  # outside the solution: never mutated
    assert len({m.id for m in mutants_of_code("f", CELL)}) == len(mutants_of_code("f", CELL))  # ids unique


def test_sample_is_seeded_and_ids_are_stable():
    assert [m.id for m in lab_mutants("lab01", 10, seed=3)] == [m.id for m in lab_mutants("lab01", 10, seed=3)]
    assert [m.id for m in lab_mutants("lab01", 10, seed=3)] != [m.id for m in lab_mutants("lab01", 10, seed=4)]
    every = {m.id for m in lab_mutants("lab01", None)}
    assert {m.id for m in lab_mutants("lab01", 10)} <= every


@pytest.mark.parametrize("lab", [entry for entry in LABS if entry.equivalent_mutants], ids=lambda e: e.id)
def test_equivalent_entries_name_generated_mutants(lab):
    generated = {m.id for m in lab_mutants(lab.id, None)}
    assert set(lab.equivalent_mutants) <= generated and all(lab.equivalent_mutants.values())


@pytest.mark.slow
def test_mutation_pass_kills_and_honours_equivalents():
    score = mutation_score("lab02", limit=None, jobs=2)
    assert "scaled_dot_product_attention:L13:swap arguments" in score.equivalent  # the manifest's entry
    assert not score.stale and score.score >= 0.9, [m.id for m in score.survived]
    assert len(score.killed) >= 15
