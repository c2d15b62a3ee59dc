"""The sandbox and the wire: isolation, limits, plain data only, proxies for student objects."""

import math
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch

from autograder import wire
from autograder.model import Status
from autograder.proxy import Session
from autograder.sandbox import Crashed, Sandbox, Timeout, Zygote, bwrap_available
from autograder.seeds import load_secret, secret_path
from labsupport.checks import check_gradients

STUDENT = '''
import os, socket
import torch

class Rigged(int):
    def __eq__(self, other):
        return True

class Layer(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, 3)
        self.scale = 1.0
    def forward(self, x):
        return self.lin(x) * self.scale

def rigged():
    return Rigged(5)

def square(x):
    return x * x
'''


@pytest.fixture(scope="module")
def session():
    with Sandbox() as sb:
        s = Session(sb)
        s.deadline = time.monotonic() + 60
        s.ask({"op": "exec", "code": STUDENT, "name": "student"})
        yield s


def ask_name(session, name):
    return session.ask({"op": "getattr", "target": {"name": name}})


def test_wire_round_trip_gives_plain_builtin_types():
    class Sub(torch.Tensor):
        pass

    value = {"a": [1, 2.5, math.inf, (3, "x")], (1, 2): b"\xe2", "t": torch.arange(6).reshape(2, 3).as_subclass(Sub)}
    back = wire.decode(wire.encode(value))
    assert back[(1, 2)] == b"\xe2" and back["a"][:2] == [1, 2.5] and math.isinf(back["a"][2])
    assert type(back["t"]) is torch.Tensor and back["t"].shape == (2, 3)
    with pytest.raises(wire.WireError):
        wire.encode(object())


def test_rigged_equality_does_not_survive_the_wire(session):
    got = ask_name(session, "rigged")()
    assert type(got) is int and got == 5 and got != 6


def test_student_modules_are_proxies(session):
    layer = ask_name(session, "Layer")(4)
    w = torch.arange(12.0).reshape(3, 4)
    layer.load_state_dict({"lin.weight": w, "lin.bias": torch.zeros(3)})
    x = torch.ones(2, 4)
    assert torch.equal(layer(x), x @ w.T)
    layer.scale = 2.0
    assert torch.equal(layer(x), 2 * x @ w.T)
    assert [tuple(p.shape) for p in layer.parameters()] == [(3, 4), (3,)]


def test_gradients_are_computed_next_to_the_student_code(session):
    square = ask_name(session, "square")
    x = torch.randn(3, 2, dtype=torch.float64)
    check_gradients(square, lambda t: t * t, x, what="square")


def test_errors_timeouts_and_crashes():
    with Sandbox() as sb:
        s = Session(sb)
        s.deadline = time.monotonic() + 60
        with pytest.raises(ZeroDivisionError):
            s.ask({"op": "exec", "code": "1 / 0"})
        s.deadline = time.monotonic() + 2
        with pytest.raises(Timeout):
            s.ask({"op": "exec", "code": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                         "while True: pass"})
        sb.start()
        s.deadline = time.monotonic() + 60
        with pytest.raises(Crashed):
            s.ask({"op": "exec", "code": "import os\nos._exit(3)"})


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap isolation needs bwrap and root")
def test_isolation(session):
    from autograder.course import ROOT

    checks = {
        "uid": "os.getuid()",
        "repo": f"sorted(os.listdir({str(ROOT)!r}))",
        "network": "socket.socket().connect_ex(('127.0.0.1', 22))",
        "write_root": "os.access('/usr', os.W_OK)",
    }
    for name, expr in checks.items():
        session.ask({"op": "exec", "code": f"_{name} = {expr}"})
    got = {name: ask_name(session, f"_{name}") for name in checks}
    assert got["uid"] >= 100_000
    assert "solutions" not in got["repo"] and "labs" not in got["repo"]
    assert got["network"] != 0 and got["write_root"] is False


def test_zygote_copies_start_fresh_and_fail_like_sandboxes():
    """validate's prepared sandbox: each copy starts from the setup cells' state; a crash, a kill or a
    hang ends only that copy, with the same status a sandbox would give."""
    with Zygote() as z:
        z.prepare(["import torch\nX = 41"], 120)

        def copy(deadline: float = 60) -> Session:
            s = Session(z.spawn())
            s.deadline = time.monotonic() + deadline
            return s

        for _ in range(2):
            s = copy()
            s.ask({"op": "exec", "code": "X += 1"})
            assert s.name("X") == 42
            s.sandbox.kill()
        with pytest.raises(Crashed) as crash:
            copy().ask({"op": "exec", "code": "import os\nos._exit(3)"})
        assert crash.value.status == Status.CRASHED and "status 3" in str(crash.value)
        with pytest.raises(Crashed) as killed:
            copy().ask({"op": "exec", "code": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"})
        assert killed.value.status == Status.OUT_OF_MEMORY
        with pytest.raises(Timeout):
            copy(2).ask({"op": "exec", "code": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                               "while True: pass"})
        s = copy()
        assert s.name("X") == 41 and z.alive()


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap isolation needs bwrap and root")
def test_the_graders_secret_is_hidden_wherever_it_lives(monkeypatch):
    config = Path(tempfile.mkdtemp(dir="/var/tmp"))  # XDG_CONFIG_HOME outside the home, /tmp and the repository
    try:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
        monkeypatch.delenv("TRANSFORMERS_COURSE_GRADER_SECRET", raising=False)
        load_secret()
        folder = secret_path().parent
        assert folder.is_relative_to(config) and any(folder.iterdir())
        config.chmod(0o755)
        folder.chmod(0o755)  # loosened by hand: the folder must still be empty inside
        with Sandbox() as sb:
            s = Session(sb)
            s.deadline = time.monotonic() + 60
            s.ask({"op": "exec", "code": f"import os\n_seen = os.listdir({str(folder)!r})"})
            assert ask_name(s, "_seen") == []
    finally:
        shutil.rmtree(config)
