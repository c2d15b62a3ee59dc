"""Grade one submission: its bytes in, a :class:`Result` out, never an exception.

How a submission is graded:

1. Its cells are read tolerantly and the graded notebook is rebuilt from the instructor source,
   taking only the student's answer cells (:mod:`autograder.notebook`).
2. The setup and answer cells run in a sandboxed process (:mod:`autograder.sandbox`); cells the
   student added that only define things (helpers) run before the answer cells. Once the setup
   cells have run, the student's code can no longer import the lab's ``blocked_modules``
   (:class:`autograder.runner.ImportGuard`).
3. Each test cell — hidden tests included — runs in *this* process with pristine imports. The names
   the answer cells define are bound to proxies: calling ``encode(text, bpe)`` sends the arguments to
   the sandbox, the student's function runs there, and its result comes back as plain data
   (:mod:`autograder.wire`). Every comparison with the oracle happens here, out of the student's
   reach. The student's process is re-seeded before each test cell (the seeds are recorded). With
   an instructor secret (``GradeOptions.secret``), the hidden checks get per-student seeds
   (:mod:`autograder.seeds`), recorded per part as ``hidden_seed``.
4. A timeout, crash or memory exhaustion kills the sandbox; a new one replays the setup and the
   answer cells that ran cleanly, and grading goes on: the failure costs only the parts it touches.

Statuses per part (:class:`~autograder.model.Status`): passed, failed (a check found a wrong
answer), error (the code raised), timeout, out-of-memory, crashed, missing (no answer cell), and
pending for a written answer (graded by an instructor, not part of the autograde score). Per
submission: graded, invalid (not a readable notebook), infrastructure-error (the grader failed
twice; nothing is scored). The model lives in :mod:`autograder.model`, the proxies in
:mod:`autograder.proxy`.
"""

from __future__ import annotations

import copy
import io
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from autograder.course import lab as lab_entry
from autograder.course import source_notebook
from autograder.diagnosis import diagnose
from autograder.model import (
    KILLING,
    GradeOptions,
    GradingTask,
    PartResult,
    Result,
    Status,
    SubmissionStatus,
    zero_parts,
)
from autograder.notebook import (
    SKIP_TAG,
    Assembled,
    InvalidSubmission,
    assemble,
    defined_names,
    is_answer,
    is_manual,
    is_test,
    load_source,
    nbgrader_meta,
    points,
    read_submission,
)
from autograder.proxy import Session, student_ename
from autograder.sandbox import Sandbox, SandboxError, Zygote
from autograder.scan import scan
from autograder.seeds import CALL_NAME, HiddenCall, part_seed, seed_hidden_calls

SETUP_TIMEOUT = 120
LARGE_SUBMISSION = 10 * 2**20
WRITTEN_STUB = "YOUR ANSWER HERE"  # nbgrader's text stub for written answers (autograder/nbgrader_config.py)


def grade_notebook(lab: str, raw: bytes, student: str, submission: str = "",
                   options: GradeOptions | None = None) -> Result:
    """Grade the bytes of one submitted notebook of ``lab``. Never raises."""
    return grade(GradingTask(lab, raw, student, submission, options))


def grade(task: GradingTask) -> Result:
    """Grade one task. Never raises: every failure is a status in the result."""
    options = task.options or GradeOptions()
    t0 = time.perf_counter()
    result = Result(task.student, task.lab, task.submission, task.sha256)
    source = load_source(source_notebook(task.lab))
    try:
        if task.invalid:
            raise InvalidSubmission(task.invalid)
        assembled = assemble(source, read_submission(task.raw))
    except Exception as e:  # noqa: BLE001 — whatever the bytes do, the notebook is invalid, never "run again"
        reason = (str(e) if isinstance(e, InvalidSubmission)
                  else f"the notebook's cells could not be read ({type(e).__name__})")
        result.status, result.reason = SubmissionStatus.INVALID, reason
        result.parts = zero_parts(source, Status.MISSING, "the notebook could not be read")
        return result
    for _attempt in range(options.retries + 1):
        try:
            result.parts, result.flags, result.answers = [], [], {}
            result.status, result.reason = SubmissionStatus.GRADED, ""
            _Grading(result, source, assembled, options).run()
            break
        except Exception:  # noqa: BLE001 — the grader's own failure (sandbox would not start, disk full, ...)
            result.status, result.reason = SubmissionStatus.INFRASTRUCTURE_ERROR, traceback.format_exc(limit=4)
    if result.status == SubmissionStatus.INFRASTRUCTURE_ERROR:
        result.parts = zero_parts(source, Status.MISSING, "not graded: infrastructure error (see the report)")
    if len(task.raw) > LARGE_SUBMISSION:
        result.notes.append(f"the notebook is {len(task.raw) / 2**20:.0f} MB, mostly outputs; outputs are never graded")
    result.seconds = time.perf_counter() - t0
    return result


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


# ------------------------------------------------------------------ what test cells print
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
@dataclass(frozen=True)
class Outcome:
    """How running one answer cell went."""

    status: Status | None = None  # None: it ran cleanly
    reason: str = ""
    stub: bool = False  # it raised NotImplementedError: still the release's stub, not attempted

    @property
    def ok(self) -> bool:
        return self.status is None


class _Grading:
    def __init__(self, result: Result, source, assembled: Assembled, options: GradeOptions):
        self.result, self.options = result, options
        self.nb, result.notes = copy.deepcopy(assembled.nb), list(assembled.notes)
        self.found = assembled.answers_found
        self.written = assembled.written
        code_cells = [(i, c) for i, c in enumerate(self.nb.cells)
                      if c.cell_type == "code" and SKIP_TAG not in c.metadata.get("tags", [])]
        self.setup = [i for i, c in code_cells if not is_answer(c) and not is_test(c)]
        self.answers = [i for i, c in code_cells if is_answer(c)]
        self.tests = [i for i, c in code_cells if is_test(c)]
        self.graded = [i for i, c in enumerate(self.nb.cells) if i in self.tests or is_manual(c)]
        self.ran_ok: set[int] = set()
        self.answer_outcome: dict[int, Outcome] = {}
        blocked = lab_entry(result.lab).blocked_modules
        # cells the student added that only define things (helpers): run before the answer cells
        self.helpers = [without_magics(code)[0] for code in assembled.helpers]
        self.helpers_ok: list[int] = []
        for n, code in enumerate(self.helpers):
            result.flags += scan(f"added cell {n + 1}", code, blocked)
        for i in self.answers:
            gid = nbgrader_meta(self.nb.cells[i])["grade_id"]
            code, changed = without_magics(self.nb.cells[i].source)
            if changed:
                result.notes.append(f"answer cell `{gid}`: IPython magics and shell commands were not run")
            self.nb.cells[i].source = code
            result.answers[gid] = code
            result.flags += scan(gid, code, blocked)

    def run(self) -> None:
        _capture_stdout()
        self.session = Session(self._fresh_sandbox())
        try:
            self.result.sandbox = self.session.sandbox.mode
            self.base_ns = self._grader_namespace()
            for n, code in enumerate(self.helpers):
                outcome = self._exec_code(code, f"added cell {n + 1}", self.options.answer_timeout)
                if outcome.ok:
                    self.helpers_ok.append(n)
                else:
                    self.result.notes.append(f"a code cell you added (cell {n + 1} of those run) failed: "
                                             f"{outcome.reason.splitlines()[0] if outcome.reason else outcome.status}")
                    if outcome.status in KILLING:
                        self._restart()
            for i in self.answers:
                outcome = self.answer_outcome[i] = self._exec(i, self.options.answer_timeout)
                if outcome.ok:
                    self.ran_ok.add(i)
                elif outcome.status in KILLING:
                    self._restart()
            seeds = {i: self.options.base_seed + n for n, i in enumerate(self.tests)}
            for i in self.graded:
                part = self._grade_test(i, seeds[i]) if i in seeds else self._written(i)
                self.result.parts.append(part)
            diagnose(self)  # failed parts: known mistakes, earlier parts as likely cause (autograder.diagnosis)
        finally:
            self.session.sandbox.kill()

    def _written(self, i: int) -> PartResult:
        """A written answer: stored for the instructor, who grades it (``python -m autograder manual``)."""
        cell = self.nb.cells[i]
        gid = nbgrader_meta(cell)["grade_id"]
        text = self.written.get(gid, "")
        self.result.answers[gid] = text
        blank = not text.strip() or text.strip() == WRITTEN_STUB
        reason = "graded by your instructor" + (" (no answer was written)" if blank else "")
        return PartResult(gid, points(cell), 0.0, Status.PENDING, reason, answer_id=gid, manual=True)

    def _fresh_sandbox(self) -> Sandbox:
        """A student process that has run the setup cells (taken ready-made from the spares)."""
        codes = [self.nb.cells[i].source for i in self.setup]
        sandbox = _SPARES.take(self.result.lab, codes, self.options)
        for _ in range(sandbox.pending_setup):
            try:
                reply = sandbox.receive(SETUP_TIMEOUT)
            except SandboxError as e:
                sandbox.kill()
                raise RuntimeError(f"the setup cells did not run in the sandbox: {e}") from None
            if not reply["ok"]:
                sandbox.kill()
                raise RuntimeError(f"a setup cell failed in the sandbox: {reply['ename']}: {reply['evalue']}")
        entry = lab_entry(self.result.lab)  # from now on, the student's code cannot import the lab's answers
        try:
            reply = sandbox.request({"op": "block", "modules": list(entry.blocked_modules), "lab": entry.short,
                                     "uses": list(entry.uses)}, SETUP_TIMEOUT)
        except SandboxError as e:
            sandbox.kill()
            raise RuntimeError(f"the sandbox did not take the lab's blocked modules: {e}") from None
        if not reply["ok"]:
            sandbox.kill()
            raise RuntimeError(f"the sandbox did not take the lab's blocked modules: {reply['evalue']}")
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
        for n in self.helpers_ok:
            self._exec_code(self.helpers[n], f"added cell {n + 1}", self.options.answer_timeout)
        for i in sorted(self.ran_ok):
            self._exec(i, self.options.answer_timeout)

    def _exec(self, i: int, timeout: int) -> Outcome:
        cell = self.nb.cells[i]
        return self._exec_code(cell.source, nbgrader_meta(cell).get("grade_id", "setup"), timeout)

    def _exec_code(self, code: str, name: str, timeout: int) -> Outcome:
        self.session.deadline = time.monotonic() + timeout
        try:
            self.session.ask({"op": "exec", "code": code, "name": name})
            return Outcome()
        except SandboxError as e:
            return Outcome(e.status, str(e))
        except Exception as e:  # noqa: BLE001 — the student's exception, rebuilt locally
            ename = student_ename(e) or type(e).__name__
            status = Status.OUT_OF_MEMORY if ename == "MemoryError" else Status.ERROR
            return Outcome(status, f"{ename}: {e}", stub=ename == "NotImplementedError")

    def _owner(self, test_index: int) -> int | None:
        before = [i for i in self.answers if i < test_index]
        return before[-1] if before else None

    def _grade_test(self, i: int, seed: int) -> PartResult:
        cell = self.nb.cells[i]
        owner = self._owner(i)
        answer_id = nbgrader_meta(self.nb.cells[owner])["grade_id"] if owner is not None else None
        gid = nbgrader_meta(cell)["grade_id"]
        hidden_seed = self.options.hidden_seeds.get(gid)
        if hidden_seed is None and self.options.secret:
            hidden_seed = part_seed(self.options.secret, self.result.student, self.result.lab, gid)
        part = PartResult(gid, points(cell), 0.0, Status.PASSED, answer_id=answer_id, seed=seed,
                          hidden_seed=hidden_seed)
        if owner is not None:
            outcome = self.answer_outcome.get(owner, Outcome())
            if not self.found.get(answer_id, True):
                part.status, part.reason = Status.MISSING, f"answer cell `{answer_id}` is missing"
                return part
            if outcome.stub:
                part.status, part.reason = Status.FAILED, f"not attempted: answer cell `{answer_id}` is still the stub"
                return part
            if not outcome.ok:
                part.status, part.reason = outcome.status, f"your answer cell `{answer_id}`: {outcome.reason}"
                return part
        part.status, part.reason, part.output = self._run_test(cell.source, seed, hidden_seed)
        if part.status == Status.PASSED:
            part.points = part.max_points
        elif part.status in KILLING:
            self._restart()
        return part

    def _run_test(self, code: str, seed: int, hidden_seed: int | None = None) -> tuple[Status, str, str]:
        """Run one test cell here, with the student's names bound to proxies. (status, reason, output)

        With a ``hidden_seed``, the hidden block's checks get seeds derived from it (:mod:`autograder.seeds`).
        """
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
                    ns[name] = session.name(name)
            if hidden_seed is not None:
                ns[CALL_NAME] = HiddenCall(hidden_seed)
                exec(compile(seed_hidden_calls(code), "<test cell>", "exec"), ns)
            else:
                exec(compile(code, "<test cell>", "exec"), ns)
            status, reason = Status.PASSED, ""
        except SandboxError as e:
            status, reason = e.status, str(e)
        except AssertionError as e:  # CheckFailed and plain asserts: a wrong answer
            status, reason = Status.FAILED, str(e)
        except MemoryError:  # the grader's own (its worker's memory limit): what came back was too large
            status, reason = Status.OUT_OF_MEMORY, ("the grader ran out of memory handling what your code "
                                                    "returned: is a result far larger than it should be?")
        except Exception as e:  # noqa: BLE001 — the student's exceptions, and the grader's own: both cost the part
            ename = student_ename(e)
            if ename == "MemoryError":
                status, reason = Status.OUT_OF_MEMORY, "your code ran out of memory"
            elif ename is not None:
                status, reason = Status.ERROR, f"your code raised {ename}: {e}"
            else:
                status, reason = Status.ERROR, f"{type(e).__name__}: {e}"
        finally:
            _ThreadStdout.local.buf = None
        printed = session.printed.getvalue()
        output = buf.getvalue() + (f"\n--- your code printed ---\n{printed[:4000]}" if printed.strip() else "")
        return status, reason, output


class _Spares:
    """One student process kept ready per lab and limits: started, with the lab's setup cells (the
    instructor's code, the same for every student) already sent, while the previous submission is
    graded. Taking one starts the next, so the start-up cost overlaps with grading.

    With ``options.reuse_sandbox`` (trusted notebooks only: ``validate``), a copy forked from a
    :class:`~autograder.sandbox.Zygote` that ran the setup cells once, one zygote per thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ready: dict[tuple, Sandbox] = {}
        self.zygotes: dict[tuple, Zygote] = {}

    def take(self, lab: str, setup: list[str], options: GradeOptions) -> Sandbox:
        key = (lab, tuple(setup), repr(options.limits), tuple(map(str, options.hidden)))
        if options.reuse_sandbox:
            return self._copy((threading.get_ident(), *key), setup, options)
        with self.lock:
            sandbox = self.ready.pop(key, None)
            if options.prewarm:
                self.ready[key] = self._start(setup, options)
        if sandbox is None or not sandbox.alive():
            if sandbox is not None:
                sandbox.kill()
            sandbox = self._start(setup, options)
        return sandbox

    def _copy(self, key: tuple, setup: list[str], options: GradeOptions) -> Sandbox:
        with self.lock:
            zygote = self.zygotes.get(key)
        for _attempt in range(2):
            if zygote is None or not zygote.alive():
                zygote = Zygote(options.limits, options.hidden)
                try:
                    zygote.start()
                    zygote.prepare(setup, SETUP_TIMEOUT)
                except SandboxError as e:
                    zygote.kill()
                    raise RuntimeError(f"the setup cells did not run in the sandbox: {e}") from None
                except RuntimeError:  # a setup cell failed
                    zygote.kill()
                    raise
                with self.lock:  # one zygote per thread: the one of the lab it graded before goes
                    for other in [k for k in self.zygotes if k[0] == key[0] and k != key]:
                        self.zygotes.pop(other).kill()
                    self.zygotes[key] = zygote
            try:
                return zygote.spawn()
            except SandboxError:
                zygote.kill()
                zygote = None
        raise RuntimeError("the prepared sandbox would not fork")

    @staticmethod
    def _start(setup: list[str], options: GradeOptions) -> Sandbox:
        sandbox = Sandbox(options.limits, options.hidden)
        sandbox.start()
        for code in setup:
            sandbox.send({"op": "exec", "code": code, "name": "setup", "trusted": True})
        sandbox.pending_setup = len(setup)
        return sandbox


_SPARES = _Spares()
