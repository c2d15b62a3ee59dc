"""Shortcuts blocked (issue 9, item 2): in the sandbox of a lab, the student's code cannot import the
lab's reference modules or oracle libraries; the setup cells, the earlier chapters' modules (``uses``)
and trusted helpers keep working."""

import time

import pytest

from autograder.course import lab
from autograder.proxy import Session
from autograder.sandbox import Sandbox

LAB3 = lab("lab03")
SETUP = "from labsupport.multihead import EncoderBlockConfig, MultiHeadConfig\nimport torch\n"


@pytest.fixture(scope="module")
def session():
    with Sandbox() as sandbox:
        s = Session(sandbox)
        s.deadline = time.monotonic() + 600
        assert sandbox.request({"op": "exec", "code": SETUP, "name": "setup", "trusted": True}, 120)["ok"]
        reply = sandbox.request({"op": "block", "modules": list(LAB3.blocked_modules), "lab": LAB3.short,
                                 "uses": list(LAB3.uses)}, 30)
        assert reply["ok"]
        yield s


def _exec(session, code, name="answer"):
    return session.sandbox.request({"op": "exec", "code": code, "name": name}, 60)


@pytest.mark.parametrize("code", [
    "import labsupport.multihead",
    "from labsupport.multihead import MultiHeadAttention",
    "from labsupport import multihead",
    "import labsupport.multihead as m",
    "def f():\n    import labsupport.multihead\nf()",
    "__import__('labsupport.multihead')",
    "exec('import labsupport.multihead')",
])
def test_answer_cells_cannot_import_the_labs_reference(session, code):
    reply = _exec(session, code)
    assert not reply["ok"] and reply["ename"] == "ImportError", reply
    assert "not allowed when lab03 is graded" in reply["evalue"] and "reference implementation" in reply["evalue"]


def test_oracle_libraries_are_blocked_too():
    entry = lab("lab06")
    with Sandbox() as sandbox:
        assert sandbox.request({"op": "exec", "code": "from labsupport.gpt import GPTConfig", "name": "setup",
                                "trusted": True}, 120)["ok"]
        assert sandbox.request({"op": "block", "modules": list(entry.blocked_modules), "lab": entry.short,
                                "uses": list(entry.uses)}, 30)["ok"]
        for code in ("import transformers", "from transformers import GPT2Model", "from labsupport.gpt import GPT"):
            reply = sandbox.request({"op": "exec", "code": code, "name": "gpt"}, 60)
            assert not reply["ok"] and reply["ename"] == "ImportError", (code, reply)
        reply = sandbox.request({"op": "exec", "code": "cfg = GPTConfig\nimport labsupport.multihead", "name": "gpt"},
                                60)
        assert reply["ok"], reply  # the setup's names and an earlier chapter's module stay usable


def test_setup_names_earlier_chapters_and_trusted_helpers_still_work(session):
    assert _exec(session, "cfg = MultiHeadConfig\nfrom labsupport.attention import attention\n"
                          "import torch.nn.functional as F\nimport labsupport.checks")["ok"]
    # a trusted helper (on_student_side) runs in the sandbox and imports the reference freely
    value = session.ask({"op": "apply", "func": "labsupport.multihead.merge_heads",
                         "args": [__import__("torch").zeros(2, 3, 4, 5)]})
    assert tuple(value.shape) == (2, 4, 15)
