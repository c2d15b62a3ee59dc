"""The adversarial corpus: submissions that try to break, fool or escape the grader (lab 1).

Each case builds the bytes of one submission and states what must happen: the submission's status,
the highest score it may get (tampering must never raise a score), the status of specific parts,
and the flags the review report must raise. ``tests/test_adversarial.py`` grades them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.conftest import solution_answers, student_notebook, to_bytes

LAB = "lab01_tokenizers"
FULL = 45


@dataclass
class Case:
    name: str
    build: Callable[[dict[str, str]], bytes]
    status: str = "graded"
    max_score: float = FULL
    min_score: float = 0
    parts: dict[str, str] = field(default_factory=dict)
    flag: str | None = None


def answers_with(**changes: str) -> Callable[[dict[str, str]], bytes]:
    return lambda sol: to_bytes(student_notebook(LAB, {**sol, **changes}))


def notebook_with(edit: Callable[[dict], None], answers: dict | None = None) -> Callable[[dict], bytes]:
    def build(sol: dict[str, str]) -> bytes:
        nb = student_notebook(LAB, sol if answers is None else answers)
        edit(nb)
        return to_bytes(nb)
    return build


def gid(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


WRONG_ENCODE = "def encode(text, bpe):\n    return [0] * len(text)"


def _fake_outputs(nb: dict) -> None:
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            fake = "✓ all tests passed\nScore: 45/45\n"
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": fake}]


def _drop(grade_id: str) -> Callable[[dict], None]:
    return lambda nb: nb.__setitem__("cells", [c for c in nb["cells"] if gid(c) != grade_id])


def _duplicate_wrong_first(nb: dict) -> None:
    i = next(i for i, c in enumerate(nb["cells"]) if gid(c) == "decode")
    wrong = json.loads(json.dumps(nb["cells"][i]))
    wrong["source"] = "def decode(ids, bpe):\n    return ''"
    nb["cells"].insert(i, wrong)


def _reverse(nb: dict) -> None:
    nb["cells"] = nb["cells"][::-1]


def _retype(nb: dict) -> None:
    for c in nb["cells"]:
        if gid(c) == "merge":
            c["cell_type"] = "markdown"
            c.pop("outputs", None)
            c.pop("execution_count", None)


def _strip_metadata(nb: dict) -> None:
    for c in nb["cells"]:
        c["metadata"] = {}


def _kernelspec(nb: dict) -> None:
    nb["metadata"]["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}


def _huge_outputs(nb: dict) -> None:
    nb["cells"][0].setdefault("outputs", [])
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * 3_000_000}]


CASES = [
    # tampering with the checks or the comparison
    Case("monkeypatch_check_helpers", answers_with(encode=(
        "import labsupport.checks as C\nimport labsupport.checks.lab01 as L\n"
        "C.check_equal = L.check_equal = lambda *a, **k: None\n" + WRONG_ENCODE)),
        max_score=35, parts={"encode_tests": "failed"}, flag="labsupport.checks"),
    Case("monkeypatch_torch_and_builtins", answers_with(encode=(
        "import builtins, torch\ntorch.allclose = lambda *a, **k: True\nbuiltins.isinstance = lambda *a: True\n"
        + WRONG_ENCODE)), max_score=35, flag="builtins"),  # breaks the student's own process, not the grader
    Case("always_equal_object", answers_with(encode=(
        "class Anything:\n    def __eq__(self, other):\n        return True\n\n"
        "def encode(text, bpe):\n    return Anything()")),
        max_score=35, parts={"encode_tests": "failed"}, flag="__eq__"),
    Case("rigged_list_subclass", answers_with(encode=(
        "class Yes(list):\n    def __eq__(self, other):\n        return True\n\n"
        "def encode(text, bpe):\n    return Yes([1, 2, 3])")), max_score=35, parts={"encode_tests": "failed"}),
    Case("rigged_dict_subclass", answers_with(count_pairs=(
        "class Yes(dict):\n    def __eq__(self, other):\n        return True\n\n"
        "def count_pairs(ids, counts=None):\n    return Yes()")), max_score=40, parts={"count_pairs_tests": "failed"}),
    Case("rigged_int_subclass", answers_with(wordpiece_encode=(
        "class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\n"
        "def wordpiece_encode(word, vocab, unk_token='[UNK]', max_input_chars_per_word=100):\n"
        "    return [Yes(0)]")), max_score=35, parts={"wordpiece_tests": "failed"}),
    Case("input_transformer_blanks_cells", answers_with(merge=(
        "get_ipython().input_transformers_cleanup.append(lambda lines: [])\n")),
        max_score=25, parts={"merge_tests": "error"}, flag="get_ipython"),
    Case("sys_modules_swap", answers_with(decode=(
        "import sys, types\nfake = types.ModuleType('labsupport.checks')\nsys.modules['labsupport.checks'] = fake\n"
        "def decode(ids, bpe):\n    return ''")), max_score=40, parts={"decode_tests": "failed"}, flag="sys.modules"),
    Case("settrace_hook", answers_with(encode=(
        "import sys\nsys.settrace(lambda *a: None)\n" + WRONG_ENCODE)), max_score=35, flag="settrace"),
    # fake results
    Case("fake_outputs_in_notebook", notebook_with(_fake_outputs, answers={}), max_score=0),
    Case("printed_fake_score", answers_with(count_pairs=(
        "print('✓ count_pairs passed\\nTotal score: 45/45')\nprint('{\"score\": 45, \"max_score\": 45}')\n"
        "def count_pairs(ids, counts=None):\n    return {}")), max_score=40, parts={"count_pairs_tests": "failed"}),
    Case("writes_result_files", answers_with(merge=(
        "import os\nfor name in ['grades.csv', '../grades.csv', '/tmp/grades.csv', 'result.json']:\n"
        "    try:\n        open(name, 'w').write('student,score\\nme,45\\n')\n    except OSError:\n        pass\n"
        "def merge(ids, pair, new_id):\n    return ids")), max_score=25, parts={"merge_tests": "failed"}, flag="open"),
    Case("reads_hidden_tests", answers_with(decode=(
        "import glob, os\nfrom autograder.course import SOLUTIONS, ROOT\n"
        "found = glob.glob(f'{SOLUTIONS}/**/*.ipynb', recursive=True) + glob.glob(f'{ROOT}/autograder/*.db')\n"
        "found += [p for p in ('../../source', '/tmp/work/../grades') if os.path.exists(p)]\n"
        "assert not found, found\n"
        "def decode(ids, bpe):\n    return ''")), max_score=40, parts={"decode_tests": "failed"}),
    Case("tampers_with_gradebook", answers_with(decode=(
        "import sqlite3, glob\nfor db in glob.glob('/**/gradebook.db', recursive=True)[:3]:\n"
        "    sqlite3.connect(db).execute('update grade set auto_score = 100')\n"
        "def decode(ids, bpe):\n    return ''")), max_score=40, flag="sqlite3"),
    # runaway code
    Case("fork_bomb", answers_with(merge=(
        "import os\nwhile True:\n    os.fork()")), max_score=25, flag="fork"),
    Case("memory_bomb", answers_with(decode=(
        "hog = bytearray(64 * 2**30)\n")), max_score=40, parts={"decode_tests": "out-of-memory"}),
    Case("memory_bomb_at_call", answers_with(decode=(
        "def decode(ids, bpe):\n    return str(bytearray(64 * 2**30))")), max_score=40,
        parts={"decode_tests": "out-of-memory"}),
    Case("disk_bomb", answers_with(merge=(
        "with open('big.bin', 'wb') as f:\n    for _ in range(2048):\n        f.write(b'0' * 2**20)\n")),
        max_score=25, parts={"merge_tests": "error"}),  # EFBIG at the 64 MB file-size limit
    Case("infinite_loop_in_cell", answers_with(merge="while True:\n    pass"), max_score=25,
         parts={"merge_tests": "timeout"}),
    Case("uninterruptible_loop", answers_with(wordpiece_encode=(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True:\n    pass")), max_score=35, parts={"wordpiece_tests": "timeout"}, flag="signal"),
    Case("infinite_loop_at_call", answers_with(wordpiece_encode=(
        "def wordpiece_encode(word, vocab, unk_token='[UNK]', max_input_chars_per_word=100):\n"
        "    while True:\n        pass")), min_score=35, max_score=35, parts={"wordpiece_tests": "timeout"}),
    Case("os_exit_in_cell", answers_with(decode="import os\nos._exit(1)"), min_score=40, max_score=40,
         parts={"decode_tests": "crashed"}, flag="_exit"),
    Case("os_exit_at_call", answers_with(count_pairs=(
        "import os\ndef count_pairs(ids, counts=None):\n    os._exit(0)")), min_score=40, max_score=40,
        parts={"count_pairs_tests": "crashed"}),
    Case("sys_exit", answers_with(wordpiece_encode="import sys\nsys.exit('bye')"), min_score=35, max_score=35,
         parts={"wordpiece_tests": "error"}, flag="exit"),
    Case("kills_itself", answers_with(decode="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
         max_score=40, flag="kill"),
    Case("network_use", answers_with(decode=(
        "import socket\ndef decode(ids, bpe):\n    socket.create_connection(('pypi.org', 443), timeout=2)\n"
        "    return ''")), max_score=40, parts={"decode_tests": "error"}, flag="socket"),
    Case("huge_printed_output", answers_with(count_pairs=(
        "print('spam ' * 5_000_000)\n" + "def count_pairs(ids, counts=None):\n"
        "    counts = {} if counts is None else counts\n    for p in zip(ids, ids[1:]):\n"
        "        counts[p] = counts.get(p, 0) + 1\n    return counts")), min_score=FULL),
    # broken notebooks
    Case("invalid_json", lambda sol: to_bytes(student_notebook(LAB, sol))[:-200], status="invalid", max_score=0),
    Case("not_a_notebook", lambda sol: b'{"hello": "world"}', status="invalid", max_score=0),
    Case("binary_garbage", lambda sol: bytes(range(256)) * 10, status="invalid", max_score=0),
    Case("nul_bytes", lambda sol: to_bytes(student_notebook(LAB, sol)).replace(b'"cells"', b'\x00"cells"', 1),
         min_score=FULL),
    Case("huge_outputs_in_notebook", notebook_with(_huge_outputs), min_score=FULL),
    Case("deleted_answer_cell", notebook_with(_drop("decode")), min_score=40, max_score=40,
         parts={"decode_tests": "missing"}),
    Case("deleted_test_cells", notebook_with(lambda nb: [_drop(g)(nb) for g in ("encode_tests", "merge_tests")]),
         min_score=FULL),
    Case("duplicated_answer_cell", notebook_with(_duplicate_wrong_first), max_score=40,
         parts={"decode_tests": "failed"}),
    Case("reordered_cells", notebook_with(_reverse), min_score=FULL),
    Case("retyped_cell", notebook_with(_retype), min_score=FULL),
    Case("metadata_stripped", notebook_with(_strip_metadata), min_score=FULL),
    Case("swapped_kernelspec", notebook_with(_kernelspec), min_score=FULL),
    # honest code that must keep its points
    Case("warnings_from_correct_code", answers_with(merge=(
        "import warnings, sys\nwarnings.warn('DeprecationWarning-like noise')\nprint('to stderr', file=sys.stderr)\n"
        "def merge(ids, pair, new_id):\n    import warnings\n    warnings.warn('called merge')\n"
        "    out, i = [], 0\n    while i < len(ids):\n"
        "        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:\n"
        "            out.append(new_id)\n            i += 2\n"
        "        else:\n            out.append(ids[i])\n            i += 1\n    return out")), min_score=FULL),
    Case("nondeterministic_answer", answers_with(wordpiece_encode=(
        "import random\ndef wordpiece_encode(word, vocab, unk_token='[UNK]', max_input_chars_per_word=100):\n"
        "    return [vocab[unk_token]] if random.random() < 0.5 else [0]")), max_score=35),
    Case("uses_oracle_library", answers_with(wordpiece_encode=(
        "from tokenizers.models import WordPiece\n"
        "def wordpiece_encode(word, vocab, unk_token='[UNK]', max_input_chars_per_word=100):\n"
        "    m = WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=max_input_chars_per_word)\n"
        "    return [t.id for t in m.tokenize(word)]")), max_score=35, parts={"wordpiece_tests": "error"},
        flag="oracle"),  # blocked in the sandbox (issue 9): the import fails with a reason
    Case("uses_reference_module", answers_with(merge=(
        "from labsupport.tokenizers.bpe import merge as _reference_merge\n"
        "def merge(ids, pair, new_id):\n    return _reference_merge(ids, pair, new_id)")),
        max_score=40, parts={"merge_tests": "error"}, flag="reference"),
    Case("imports_reference_inside_function", answers_with(count_pairs=(
        "def count_pairs(ids, counts=None):\n    tok = __import__('labsupport.tokenizers', fromlist=['x'])\n"
        "    return tok.count_pairs(ids, counts)")),
        max_score=40, parts={"count_pairs_tests": "error"}),
]


def build_all() -> dict[str, bytes]:
    sol = solution_answers(LAB)
    return {case.name: case.build(sol) for case in CASES}
