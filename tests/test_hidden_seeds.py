"""Per-student hidden inputs (issue 9, item 1): seeds from an instructor secret, the student, the lab
and the part; stored per part; reused on regrade; an answer hard-coded for the default seeds fails."""

import os
import stat
import types

import pytest

from autograder import seeds
from autograder.grade import grade_notebook
from autograder.model import GradeOptions, Status
from autograder.orchestrate import grade_folder, regrade_student
from labsupport.checks import lab01 as check
from labsupport.tokenizers import merge as reference_merge
from tests.conftest import student_notebook, to_bytes

LAB = "lab01_tokenizers"
FAST = GradeOptions(answer_timeout=10, test_timeout=60)


def _fake_checks(calls):
    mod = types.ModuleType("labsupport.checks.fake")

    def make(name, with_seed):
        if with_seed:
            def f(fn, seed: int = 7):
                calls.append((name, seed))
        else:
            def f(fn):
                calls.append((name, None))
        f.__module__ = mod.__name__
        return f

    mod.a_examples, mod.a_hidden = make("a_examples", True), make("a_hidden", True)
    mod.b_hidden, mod.c_hidden = make("b_hidden", True), make("c_hidden", False)
    return mod


CELL = """check.a_examples(f)
### BEGIN HIDDEN TESTS
check.a_hidden(f)
check.b_hidden(f, seed=5)
check.c_hidden(print)
len([1])
### END HIDDEN TESTS
"""


def test_hidden_calls_get_the_part_seed_visible_ones_do_not():
    calls = []
    ns = {"check": _fake_checks(calls), "f": None, seeds.CALL_NAME: seeds.HiddenCall(1000)}
    exec(compile(seeds.seed_hidden_calls(CELL), "<test cell>", "exec"), ns)
    assert calls == [("a_examples", 7), ("a_hidden", 1000), ("b_hidden", 1001), ("c_hidden", None)]
    assert seeds.seed_hidden_calls("check.a_examples(f)") == "check.a_examples(f)"  # no hidden block


def test_part_seed_depends_on_secret_student_lab_part():
    base = seeds.part_seed(b"s", "alice", LAB, "merge_tests")
    assert base == seeds.part_seed(b"s", "alice", LAB, "merge_tests")
    others = [seeds.part_seed(b"t", "alice", LAB, "merge_tests"), seeds.part_seed(b"s", "bob", LAB, "merge_tests"),
              seeds.part_seed(b"s", "alice", "lab02_attention", "merge_tests"),
              seeds.part_seed(b"s", "alice", LAB, "encode_tests")]
    assert base not in others and 0 <= base < 2**31


def test_secret_is_created_private_once_and_env_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv(seeds.SECRET_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    first = seeds.load_secret()
    path = tmp_path / "transformers-course" / "grader_secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(first) == 64
    assert seeds.load_secret() == first
    monkeypatch.setenv(seeds.SECRET_ENV, "from-ci")
    assert seeds.load_secret() == b"from-ci"


def _recorded_merge_table() -> dict:
    """Every merge input the lab-1 checks use with their default seeds, with its answer."""
    table = {}

    def recording(ids, pair, new_id):
        out = reference_merge(list(ids), tuple(pair), new_id)
        table[(tuple(ids), tuple(pair), new_id)] = out
        return out

    check.merge_examples(recording)
    check.merge_hidden(recording)
    return table


@pytest.mark.slow
def test_students_get_their_own_hidden_inputs_and_keep_them_on_regrade(tmp_path, lab01_answers):
    table = _recorded_merge_table()
    hard_coded = (f"TABLE = {table!r}\n\n\ndef merge(ids, pair, new_id):\n"
                  "    return list(TABLE.get((tuple(ids), tuple(pair), new_id), ids))\n")
    raw = to_bytes(student_notebook(LAB, {**lab01_answers, "merge": hard_coded}))

    # default seeds (validate, or no secret): the hard-coded answer passes — the hole this closes
    r = grade_notebook(LAB, raw, "cheater", options=FAST)
    merge_part = next(p for p in r.parts if p.grade_id == "merge_tests")
    assert merge_part.status == Status.PASSED and merge_part.hidden_seed is None

    folder, out = tmp_path / "subs", tmp_path / "out"
    folder.mkdir()
    for student in ("alice", "bob"):
        (folder / f"{student}.ipynb").write_bytes(raw)
    options = GradeOptions(answer_timeout=10, test_timeout=20, secret=b"instructor-secret")
    results = {r.student: r for r in grade_folder(LAB, folder, out, jobs=1, options=options, progress=False,
                                                  pool="thread")}
    parts = {s: {p.grade_id: p for p in r.parts} for s, r in results.items()}
    for s in ("alice", "bob"):
        assert parts[s]["merge_tests"].status == Status.FAILED, parts[s]["merge_tests"].reason
        assert parts[s]["count_pairs_tests"].status == Status.PASSED  # correct answers still pass
        assert parts[s]["merge_tests"].hidden_seed == seeds.part_seed(b"instructor-secret", s, LAB, "merge_tests")
    # different students, different hidden inputs (the failing input is in the message)
    assert parts["alice"]["merge_tests"].hidden_seed != parts["bob"]["merge_tests"].hidden_seed
    assert parts["alice"]["merge_tests"].reason != parts["bob"]["merge_tests"].reason

    # a regrade reuses the stored seeds, even under another secret: the same inputs, the same verdict
    again = regrade_student(LAB, "alice", out, GradeOptions(answer_timeout=10, test_timeout=20, secret=b"other"))
    part = next(p for p in again.parts if p.grade_id == "merge_tests")
    assert (part.hidden_seed, part.reason) == (parts["alice"]["merge_tests"].hidden_seed,
                                               parts["alice"]["merge_tests"].reason)
    page = (out / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "instructor-secret" not in page and str(part.hidden_seed) not in page


def test_every_hidden_check_takes_a_seed():
    """Every `*_hidden` check of every lab accepts `seed` (the grader passes each student's)."""
    import importlib
    import inspect

    from autograder.course import LABS

    missing = [f"{entry.checks}.{name}" for entry in LABS
               for name, fn in vars(importlib.import_module(entry.checks)).items()
               if name.endswith("_hidden") and callable(fn) and "seed" not in inspect.signature(fn).parameters]
    assert not missing, missing
