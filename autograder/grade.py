"""Grade one submission: its bytes in, a :class:`Result` out, never an exception.

How a submission is graded:

1. Its cells are read tolerantly and the graded notebook is rebuilt from the instructor source,
   taking only the student's answer cells (:mod:`autograder.notebook`).
2. The setup and answer cells run in a sandboxed process (:mod:`autograder.sandbox`).
3. Each test cell — hidden tests included — runs in *this* process with pristine imports. The names
   the answer cells define are bound to proxies: calling ``encode(text, bpe)`` sends the arguments to
   the sandbox, the student's function runs there, and its result comes back as plain data
   (:mod:`autograder.wire`). Every comparison with the oracle happens here, out of the student's
   reach. The student's process is re-seeded before each test cell (the seeds are recorded).
4. A timeout, crash or memory exhaustion kills the sandbox; a new one replays the setup and the
   answer cells that ran cleanly, and grading goes on: the failure costs only the parts it touches.

Statuses per part: passed, failed (a check found a wrong answer), error (the code raised),
timeout, out-of-memory, crashed, missing (no answer cell). Per submission: graded, invalid (not a
readable notebook), infrastructure-error (the grader failed twice; nothing is scored).
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.course import source_notebook
from autograder.notebook import (
    SKIP_TAG,
    InvalidSubmission,
    assemble,
    defined_names,
    is_answer,
    is_test,
    load_source,
    nbgrader_meta,
    points,
    read_submission,
)
from autograder.sandbox import Crashed, Limits, Sandbox, SandboxError, Timeout
from autograder.scan import scan
from autograder.wire import Handle, WireError

ANSWER_TIMEOUT = 30  # seconds: an answer cell only defines functions
TEST_TIMEOUT = 120  # seconds for all the student's calls of one test cell
SETUP_TIMEOUT = 120
BASE_SEED = 1234
LARGE_SUBMISSION = 10 * 2**20


@dataclass
class PartResult:
    """One graded part (a test cell): its score and why."""

    grade_id: str
    max_points: float
    points: float
    status: str  # passed | failed | error | timeout | out-of-memory | crashed | missing
    reason: str = ""
    output: str = ""  # what the test printed (pass lines, the student's own prints)
    answer_id: str | None = None
    seed: int | None = None


@dataclass
class Result:
    """The grade of one submission."""

    student: str
    lab: str
    submission: str
    sha256: str = ""
    status: str = "graded"  # graded | invalid | infrastructure-error
    reason: str = ""
    parts: list[PartResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    sandbox: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(p.points for p in self.parts)

    @property
    def max_score(self) -> float:
        return sum(p.max_points for p in self.parts)


@dataclass
class GradeOptions:
    """Limits and resources of a grading run."""

    answer_timeout: int = ANSWER_TIMEOUT
    test_timeout: int = TEST_TIMEOUT
    retries: int = 1
    base_seed: int = BASE_SEED
    limits: Limits = field(default_factory=Limits)
    hidden: list[Path] = field(default_factory=list)  # extra folders the sandbox must not see
    prewarm: bool = True  # keep the next sandbox starting while this submission is graded


def grade_notebook(lab: str, raw: bytes, student: str, submission: str = "",
                   options: GradeOptions | None = None) -> Result:
    """Grade the bytes of one submitted notebook of ``lab``. Never raises."""
    options = options or GradeOptions()
    t0 = time.perf_counter()
    result = Result(student, lab, submission, hashlib.sha256(raw).hexdigest())
    source = load_source(source_notebook(lab))
    try:
        cells = read_submission(raw)
    except InvalidSubmission as e:
        result.status, result.reason = "invalid", str(e)
        result.parts = parts_all(source, "missing", "the notebook could not be read")
        return result
    for _attempt in range(options.retries + 1):
        try:
            result.parts, result.notes, result.flags = [], [], []
            result.status, result.reason = "graded", ""
            _Grading(result, source, cells, options).run()
            break
        except Exception:  # the grader's own failure (sandbox would not start, disk full, ...)
            result.status, result.reason = "infrastructure-error", traceback.format_exc(limit=4)
    if result.status == "infrastructure-error":
        result.parts = parts_all(source, "missing", "not graded: infrastructure error (see the report)")
    if len(raw) > LARGE_SUBMISSION:
        result.notes.append(f"the notebook is {len(raw) / 2**20:.0f} MB, mostly outputs; outputs are never graded")
    result.seconds = time.perf_counter() - t0
    return result


def parts_all(source, status: str, reason: str) -> list[PartResult]:
    """A zero-point part for every test cell of ``source`` (for submissions that cannot run)."""
    return [PartResult(nbgrader_meta(c)["grade_id"], points(c), 0.0, status, reason)
            for c in source.cells if is_test(c)]


def without_magics(code: str) -> tuple[str, bool]:
    """IPython magics and shell escapes are not Python: replace them by ``pass``."""
    lines, changed = [], False
    for line in code.splitlines():
        if line.lstrip().startswith(("%", "!")):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}pass  # {line.strip()[:40]} (removed by the grader)")
            changed = True
        else:
            lines.append(line)
    return "\n".join(lines), changed


# ------------------------------------------------------------------ proxies for the student's objects
def _student_exception(ename: str, evalue: str) -> BaseException:
    """A local exception standing for one the student's code raised (same built-in base class)."""
    base = getattr(builtins, ename, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    exc_type = type(f"Student{ename}", (base,), {"student_ename": ename})
    try:
        return exc_type(evalue)
    except Exception:  # noqa: BLE001 — exception classes with unusual constructors
        return Exception(f"{ename}: {evalue}")


class Remote:
    """Stands for a function or object living in the sandbox; calls and attributes go over the wire."""

    def __init__(self, session: _Session, target: dict, label: str):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_label", label)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.ask({"op": "call", "target": self._target, "args": list(args), "kwargs": kwargs})

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._session.ask({"op": "getattr", "target": {**self._target, "attr": attr}})

    def __setattr__(self, attr: str, value: Any) -> None:
        self._session.ask({"op": "setattr", "target": self._target, "attr": attr, "args": [value]})

    def __iter__(self):
        return iter(self._session.ask({"op": "items", "target": self._target}))

    def __len__(self) -> int:
        return self._session.ask({"op": "len", "target": self._target})

    def __getitem__(self, key: Any) -> Any:
        return self._session.ask({"op": "getitem", "target": self._target, "args": [key]})

    def __student_apply__(self, func: str, args: tuple, kwargs: dict) -> Any:
        """Run the trusted library function ``func`` where this object lives (see labsupport.checks)."""
        return self._session.ask({"op": "apply", "func": func, "args": list(args), "kwargs": kwargs})

    def __repr__(self) -> str:
        return f"<{self._label} (student code)>"


class _Session:
    """The grader's side of one sandbox: replies decoded, handles wrapped, failures raised."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.deadline = 0.0
        self.printed = io.StringIO()
        self.uploaded: dict[int, tuple[Any, Handle]] = {}

    def reset(self) -> None:
        """Forget handles: the student's process was restarted."""
        self.uploaded.clear()

    def ask(self, req: dict) -> Any:
        req = {**req, "args": [self.unwrap(a) for a in req.get("args", [])],
               "kwargs": {k: self.unwrap(v) for k, v in req.get("kwargs", {}).items()}}
        reply = self.sandbox.request(req, max(0.1, self.deadline - time.monotonic()))
        if reply.get("out"):
            self.printed.write(reply["out"])
        if not reply["ok"]:
            raise _student_exception(reply["ename"], reply["evalue"])
        return self.wrap(reply["value"])

    def wrap(self, value: Any) -> Any:
        if isinstance(value, Handle):
            return Remote(self, {"ref": value.ref}, value.type_name)
        if type(value) is list:
            return [self.wrap(v) for v in value]
        if type(value) is tuple:
            return tuple(self.wrap(v) for v in value)
        if type(value) is dict:
            return {k: self.wrap(v) for k, v in value.items()}
        return value


    def unwrap(self, value: Any) -> Any:
        """Arguments for the student's process: proxies become handles; course objects are sent once."""
        if isinstance(value, Remote):
            target = object.__getattribute__(value, "_target")
            if "ref" in target and "attr" not in target:
                return Handle(target["ref"], "")
            raise WireError("only whole student objects can be passed back to student code")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if id(value) not in self.uploaded:  # sent once per process; e.g. GPT-2's vocabulary
                left = max(1.0, self.deadline - time.monotonic())
                recipe = getattr(value, "recipe", None)  # rebuilt there by a library call: no 50,000-merge copy
                req = {"op": "keep", "func": recipe} if isinstance(recipe, str) else {"op": "keep", "args": [value]}
                reply = self.sandbox.request(req, left)
                if not reply["ok"]:
                    raise RuntimeError(f"could not send a {type(value).__name__}: {reply['evalue']}")
                self.uploaded[id(value)] = (value, Handle(reply["value"]["ref"], type(value).__name__))
            return self.uploaded[id(value)][1]
        if type(value) is list:
            return [self.unwrap(v) for v in value]
        if type(value) is tuple:
            return tuple(self.unwrap(v) for v in value)
        if type(value) is dict:
            return {k: self.unwrap(v) for k, v in value.items()}
        return value


class _ThreadStdout(io.TextIOBase):
    """sys.stdout that writes to a per-thread buffer while a test cell runs (graders share a process)."""

    local = threading.local()

    def __init__(self, fallback: Any):
        self.fallback = fallback

    def write(self, s: str) -> int:
        buf = getattr(self.local, "buf", None)
        return buf.write(s) if buf is not None else self.fallback.write(s)

    def flush(self) -> None:
        if getattr(self.local, "buf", None) is None:
            self.fallback.flush()


_install_lock = threading.Lock()


def _capture_stdout() -> type[_ThreadStdout]:
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadStdout):
            sys.stdout = _ThreadStdout(sys.stdout)
    return _ThreadStdout


# ------------------------------------------------------------------ one grading run
class _Grading:
    def __init__(self, result: Result, source, cells: list[dict], options: GradeOptions):
        self.result, self.options = result, options
        assembled = assemble(source, cells)
        self.nb, result.notes = assembled.nb, assembled.notes
        self.found = assembled.answers_found
        code_cells = [(i, c) for i, c in enumerate(self.nb.cells)
                      if c.cell_type == "code" and SKIP_TAG not in c.metadata.get("tags", [])]
        self.setup = [i for i, c in code_cells if not is_answer(c) and not is_test(c)]
        self.answers = [i for i, c in code_cells if is_answer(c)]
        self.tests = [i for i, c in code_cells if is_test(c)]
        self.ran_ok: set[int] = set()
        self.answer_outcome: dict[int, tuple[str, str]] = {}
        for i in self.answers:
            gid = nbgrader_meta(self.nb.cells[i])["grade_id"]
            code, changed = without_magics(self.nb.cells[i].source)
            if changed:
                result.notes.append(f"answer cell `{gid}`: IPython magics and shell commands were not run")
            self.nb.cells[i].source = code
            result.answers[gid] = code
            result.flags += scan(gid, code)

    def run(self) -> None:
        _capture_stdout()
        self.session = _Session(self._fresh_sandbox())
        try:
            self.result.sandbox = self.session.sandbox.mode
            self.base_ns = self._grader_namespace()
            for i in self.answers:
                status, reason = self.answer_outcome[i] = self._exec(i, self.options.answer_timeout)
                if status == "ok":
                    self.ran_ok.add(i)
                elif status in ("timeout", "crashed", "out-of-memory"):
                    self._restart()
            for n, i in enumerate(self.tests):
                self.result.parts.append(self._grade_test(i, self.options.base_seed + n))
        finally:
            self.session.sandbox.kill()

    def _fresh_sandbox(self) -> Sandbox:
        """A student process that has run the setup cells (taken ready-made from the spares)."""
        codes = [self.nb.cells[i].source for i in self.setup]
        sandbox = _SPARES.take(self.result.lab, codes, self.options)
        for _ in codes:
            try:
                reply = sandbox.receive(SETUP_TIMEOUT)
            except SandboxError as e:
                sandbox.kill()
                raise RuntimeError(f"the setup cells did not run in the sandbox: {e}") from None
            if not reply["ok"]:
                sandbox.kill()
                raise RuntimeError(f"a setup cell failed in the sandbox: {reply['ename']}: {reply['evalue']}")
        return sandbox

    def _grader_namespace(self) -> dict[str, Any]:
        """The setup cells run here too (trusted code): the test cells' imports and shared values."""
        ns: dict[str, Any] = {"__name__": "__grader__"}
        _ThreadStdout.local.buf = io.StringIO()
        try:
            for i in self.setup:
                exec(compile(self.nb.cells[i].source, "<setup cell>", "exec"), ns)
        finally:
            _ThreadStdout.local.buf = None
        return ns

    def _restart(self) -> None:
        """A fresh student process: setup cells, then the answer cells that ran cleanly."""
        self.session.sandbox.kill()
        self.session.sandbox = self._fresh_sandbox()
        self.session.reset()
        for i in sorted(self.ran_ok):
            self._exec(i, self.options.answer_timeout)

    def _exec(self, i: int, timeout: int) -> tuple[str, str]:
        cell = self.nb.cells[i]
        self.session.deadline = time.monotonic() + timeout
        try:
            self.session.ask({"op": "exec", "code": cell.source,
                              "name": nbgrader_meta(cell).get("grade_id", "setup")})
            return "ok", ""
        except SandboxError as e:
            return _sandbox_status(e), str(e)
        except Exception as e:  # noqa: BLE001 — the student's exception, rebuilt locally
            ename = getattr(type(e), "student_ename", type(e).__name__)
            status = "out-of-memory" if ename == "MemoryError" else "error"
            return (status, "not-attempted") if ename == "NotImplementedError" else (status, f"{ename}: {e}")

    def _owner(self, test_index: int) -> int | None:
        before = [i for i in self.answers if i < test_index]
        return before[-1] if before else None

    def _grade_test(self, i: int, seed: int) -> PartResult:
        cell = self.nb.cells[i]
        owner = self._owner(i)
        answer_id = nbgrader_meta(self.nb.cells[owner])["grade_id"] if owner is not None else None
        part = PartResult(nbgrader_meta(cell)["grade_id"], points(cell), 0.0, "passed", answer_id=answer_id,
                          seed=seed)
        if owner is not None:
            status, reason = self.answer_outcome.get(owner, ("ok", ""))
            if not self.found.get(answer_id, True):
                part.status, part.reason = "missing", f"answer cell `{answer_id}` is missing"
                return part
            if reason == "not-attempted":
                part.status, part.reason = "failed", f"not attempted: answer cell `{answer_id}` is still the stub"
                return part
            if status != "ok":
                part.status, part.reason = status, f"your answer cell `{answer_id}`: {reason}"
                return part
        part.status, part.reason, part.output = self._run_test(cell.source, seed)
        if part.status == "passed":
            part.points = part.max_points
        elif part.status in ("timeout", "crashed", "out-of-memory"):
            self._restart()
        return part

    def _run_test(self, code: str, seed: int) -> tuple[str, str, str]:
        """Run one test cell here, with the student's names bound to proxies. (status, reason, output)"""
        session = self.session
        session.printed = io.StringIO()
        session.deadline = time.monotonic() + self.options.test_timeout
        ns = dict(self.base_ns)
        buf = io.StringIO()
        _ThreadStdout.local.buf = buf
        try:
            session.ask({"op": "seed", "seed": seed})
            for i in self.answers:
                for name in defined_names(self.nb.cells[i].source):
                    ns[name] = self._bind(name)
            exec(compile(code, "<test cell>", "exec"), ns)
            status, reason = "passed", ""
        except SandboxError as e:
            status, reason = _sandbox_status(e), str(e)
        except AssertionError as e:  # CheckFailed and plain asserts: a wrong answer
            status, reason = "failed", str(e)
        except Exception as e:  # noqa: BLE001
            ename = getattr(type(e), "student_ename", None)
            if ename == "MemoryError":
                status, reason = "out-of-memory", "your code ran out of memory"
            elif ename is not None:
                status, reason = "error", f"your code raised {ename}: {e}"
            else:
                status, reason = "error", f"{type(e).__name__}: {e}"
        finally:
            _ThreadStdout.local.buf = None
        printed = session.printed.getvalue()
        output = buf.getvalue() + (f"\n--- your code printed ---\n{printed[:4000]}" if printed.strip() else "")
        return status, reason, output

    def _bind(self, name: str) -> Any:
        """The student's object called ``name``: a proxy, a plain value, or a stand-in that raises NameError."""
        try:
            value = self.session.ask({"op": "getattr", "target": {"name": name}})
        except KeyError:
            return _Undefined(name)
        return value


class _Spares:
    """One student process kept ready per lab and limits: started, with the lab's setup cells (the
    instructor's code, the same for every student) already sent, while the previous submission is
    graded. Taking one starts the next, so the start-up cost overlaps with grading."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ready: dict[tuple, Sandbox] = {}

    def take(self, lab: str, setup: list[str], options: GradeOptions) -> Sandbox:
        key = (lab, tuple(setup), repr(options.limits), tuple(map(str, options.hidden)))
        with self.lock:
            sandbox = self.ready.pop(key, None)
            if options.prewarm:
                self.ready[key] = self._start(setup, options)
        if sandbox is None or not sandbox.alive():
            if sandbox is not None:
                sandbox.kill()
            sandbox = self._start(setup, options)
        return sandbox

    @staticmethod
    def _start(setup: list[str], options: GradeOptions) -> Sandbox:
        sandbox = Sandbox(options.limits, options.hidden)
        sandbox.start()
        for code in setup:
            sandbox.send({"op": "exec", "code": code, "name": "setup"})
        return sandbox


_SPARES = _Spares()


class _Undefined:
    """An answer name the student's code did not define: using it raises a clear NameError."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NameError(f"name '{self.name}' is not defined: your answer cell must define it")

    def __getattr__(self, attr: str) -> Any:
        raise NameError(f"name '{self.name}' is not defined: your answer cell must define it")


def _sandbox_status(e: BaseException) -> str:
    if isinstance(e, Timeout):
        return "timeout"
    if isinstance(e, Crashed) and ("memory" in str(e) or "SIGKILL" in str(e)):
        return "out-of-memory"
    return "crashed"

