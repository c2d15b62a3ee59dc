"""Run student code in an isolated process with resource limits, and talk to it.

Protections, strongest first (:func:`protections` says which are active on this machine):

- **bubblewrap** (Debian's ``bubblewrap``), when installed and the grader runs as root: new mount,
  PID, network, IPC and UTS namespaces. The whole file system is read-only; the course repository,
  the home directory, ``/tmp``, the folder of the grader's secret (:func:`autograder.seeds.secret_path`,
  wherever ``XDG_CONFIG_HOME`` puts it) and every folder given in ``hidden`` (submissions, gradebook, output)
  are replaced by empty directories, and only the Python installation and the ``labsupport`` and
  ``autograder`` packages are mounted back, read-only. So ``solutions/``, hidden tests, the
  gradebook and other submissions do not exist inside. The working directory is a private tmpfs of
  limited size. There is no network (only an unconnected loopback). The process then drops to an
  unprivileged user id of its own (no account, no capabilities, ``no_new_privs``), so the process
  limit applies to each sandbox separately.
- **Fallback** (no bubblewrap, or not root): the same process protocol with resource limits and a
  private working directory, but no file-system or network isolation — documented in the report.

Resource limits (both modes): address space, number of processes, file size, open files, CPU time;
wall time is enforced per request by the grader, which kills the whole process group.

**Prepared sandboxes for trusted code** (:class:`Zygote`, used by ``validate`` for the solution,
the release, mutants and alternatives): one sandbox runs the lab's setup cells once (imports, data),
then forks a fresh copy of itself for each notebook (:class:`Forked`), which saves the start-up of a
Python process with torch for every notebook. The copies share the zygote's namespaces, uid and
working directory one after the other, so students' submissions never use it: each gets its own
:class:`Sandbox`.
"""

from __future__ import annotations

import itertools
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import wire
from autograder.course import ROOT
from autograder.model import Limits, Status
from autograder.seeds import secret_path

SANDBOX_UIDS = 100_000  # each sandbox gets its own unused uid above this, so process limits are per sandbox
_next_uid = itertools.count()


class SandboxError(BaseException):
    """Base class of what can go wrong with the student's process; ``status`` is the part's status.

    A BaseException, like KeyboardInterrupt, so that checks (and hypothesis inside them) that catch
    ``Exception`` cannot swallow a timeout or a crash.
    """

    status: Status = Status.CRASHED


class Timeout(SandboxError):
    """A request ran past its wall-clock limit; the process was killed."""

    status = Status.TIMEOUT


class Crashed(SandboxError):
    """The process died (os._exit, a signal, a resource limit). The message says what is known;
    ``status`` is ``out-of-memory`` when it was killed by SIGKILL (the kernel's OOM killer), else
    ``crashed``."""

    def __init__(self, detail: str, status: Status = Status.CRASHED):
        super().__init__(detail)
        self.status = status


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None and os.geteuid() == 0 and shutil.which("setpriv") is not None


def protections() -> dict[str, bool]:
    """Which protections a sandbox started now would have."""
    strong = bwrap_available()
    return {"separate process, plain-data results": True, "resource limits (rlimits)": True,
            "private working directory": True, "file-system isolation (bubblewrap)": strong,
            "no network (network namespace)": strong, "PID namespace": strong,
            "unprivileged user (own uid, no capabilities)": strong}


def _python_roots() -> list[Path]:
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    return sorted(roots)


@dataclass
class Sandbox:
    """One student process. Start it, send requests, kill it. Use as a context manager."""

    limits: Limits = field(default_factory=Limits)
    hidden: list[Path] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    workdir: Path | None = None
    mode: str = ""

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()

    pending_setup: int = 0  # replies to setup cells sent at start that the grader has not read yet

    def _extra_fds(self) -> list[int]:
        """File descriptors the runner gets after its two pipes (see :class:`Zygote`)."""
        return []

    def start(self) -> None:
        self.kill()
        extra = self._extra_fds()
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()
        self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-")
        self.workdir = Path(self._tmp.name)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/work", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "OMP_NUM_THREADS": str(self.limits.threads), "MKL_NUM_THREADS": str(self.limits.threads),
               "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}
        python = [sys.executable, "-I", "-m", "autograder.runner", str(to_child_r), str(from_child_w), *map(str, extra)]
        if bwrap_available():
            self.mode = "bubblewrap"
            cmd = self._bwrap_command(python)
        else:
            self.mode = "rlimits"
            env["HOME"] = str(self.workdir)
            cmd = python
        self.proc = subprocess.Popen(
            cmd, pass_fds=(to_child_r, from_child_w, *extra), env=env,
            cwd=self.workdir if self.mode == "rlimits" else "/",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=self._limit)
        for fd in (to_child_r, from_child_w, *extra):
            os.close(fd)

    def _bwrap_command(self, python: list[str]) -> list[str]:
        hide = {ROOT, ROOT.parent, Path.home(), secret_path().parent, *self.hidden}
        cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp"]
        for path in sorted(p.resolve() for p in hide if p.exists() and p.resolve() != Path("/")):
            cmd += ["--tmpfs", str(path)]
        for path in [*_python_roots(), ROOT / "labsupport", ROOT / "autograder"]:
            cmd += ["--ro-bind", str(path), str(path)]
        uid = SANDBOX_UIDS + (os.getpid() * 1000 + next(_next_uid)) % 1_000_000
        cmd += ["--perms", "1777", "--size", str(self.limits.disk_bytes), "--tmpfs", "/tmp/work",
                "--chdir", "/tmp/work", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *python]
        return cmd

    def _limit(self) -> None:
        lim = self.limits
        for res, value in [(resource.RLIMIT_AS, lim.memory_bytes), (resource.RLIMIT_NPROC, lim.processes),
                           (resource.RLIMIT_FSIZE, lim.file_bytes), (resource.RLIMIT_NOFILE, lim.open_files),
                           (resource.RLIMIT_CPU, lim.cpu_seconds), (resource.RLIMIT_CORE, 0)]:
            resource.setrlimit(res, (value, value))

    def request(self, req: dict, timeout: float) -> dict:
        """Send one request; return the reply dict (``ok``, ``value`` or ``ename``/``evalue``, ``out``)."""
        self.send(req)
        return self.receive(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, req: dict) -> None:
        """Queue a request; its reply is read by :meth:`receive`, in order."""
        if not self.alive():
            raise self._death()
        try:
            wire.write_frame(self._to_child_w, wire.encode(req))
        except OSError:  # BrokenPipeError included: it died meanwhile
            raise self._death() from None

    def receive(self, timeout: float) -> dict:
        """The reply to the oldest request not yet answered (waiting at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        try:
            blob = wire.read_frame(lambda n: self._read_exact(n, deadline))
            return wire.decode(blob)
        except wire.WireError as e:
            self.kill()
            raise Crashed(f"the student's process sent a malformed reply ({e})") from None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child_r], [], [], left)[0]:
                self.kill()
                raise Timeout("no answer within the time limit")
            chunk = os.read(self._from_child_r, min(n - got, 1 << 20))
            if not chunk:
                raise self._death()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _death(self) -> Crashed:
        """What is known about why the process is gone, as the exception to raise."""
        if self.proc is None:
            return Crashed("the process was not running")
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return Crashed("the process stopped answering")
        return _crash(code)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            for fd in (self._to_child_w, self._from_child_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.proc = None
            self._tmp.cleanup()


def _crash(code: int) -> Crashed:
    """The exception for a process that ended with exit ``code`` (negative: killed by that signal)."""
    if code < 0:
        name = signal.Signals(-code).name
        why = {"SIGKILL": "killed (out of memory?)", "SIGXCPU": "CPU time limit reached",
               "SIGXFSZ": "file size limit reached", "SIGSEGV": "segmentation fault"}.get(name, name)
        status = Status.OUT_OF_MEMORY if name == "SIGKILL" else Status.CRASHED
        return Crashed(f"the Python process stopped: {why}", status)
    return Crashed(f"the Python process exited with status {code} (os._exit or sys.exit outside a function?)")


class Zygote(Sandbox):
    """A sandbox that has run a lab's setup cells and forks a fresh copy of itself per notebook.

    For trusted code only (see the module docstring). Start it, send the setup cells with
    :meth:`prepare`, then :meth:`spawn` a :class:`Forked` process per notebook, one at a time (a
    spawn ends the previous copy). The zygote takes orders on a Unix socket, which also carries the
    new copy's two pipes.
    """

    CONTROL_TIMEOUT = 30  # seconds for the zygote to fork, or to report how a copy ended

    def _extra_fds(self) -> list[int]:
        self._control, theirs = socket.socketpair()
        return [theirs.detach()]

    def prepare(self, setup: list[str], timeout: float) -> None:
        """Run the setup cells here (once), then switch to forking; raises RuntimeError if one fails."""
        for code in setup:
            reply = self.request({"op": "exec", "code": code, "name": "setup", "trusted": True}, timeout)
            if not reply["ok"]:
                raise RuntimeError(f"a setup cell failed in the sandbox: {reply['ename']}: {reply['evalue']}")
        self.request({"op": "zygote"}, timeout)

    def spawn(self) -> Forked:
        """A fresh copy of the prepared process, with its own pipes."""
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        try:
            self._control.settimeout(self.CONTROL_TIMEOUT)
            socket.send_fds(self._control, [b"fork"], [to_r, from_w])
            if self._control.recv(64) != b"ok":
                raise Crashed("the prepared sandbox did not fork")
        except OSError as e:
            for fd in (to_w, from_r):
                os.close(fd)
            raise Crashed(f"the prepared sandbox did not fork: {e}") from None
        finally:
            os.close(to_r)
            os.close(from_w)
        return Forked(self, to_w, from_r)

    def end_copy(self, kill: bool) -> int | None:
        """Wait for (``kill``: first kill) the current copy; its exit code, None if unknown."""
        if getattr(self, "_control", None) is None:
            return None
        try:
            self._control.sendall(b"kill" if kill else b"wait")
            answer = self._control.recv(64)
            return int(answer) if answer and answer != b"none" else None
        except (OSError, ValueError):
            self.kill()
            return None

    def kill(self) -> None:
        if getattr(self, "_control", None) is not None:
            self._control.close()
            self._control = None
        super().kill()


class Forked(Sandbox):
    """One copy of a :class:`Zygote`: the same interface as a :class:`Sandbox` (it cannot be restarted)."""

    def __init__(self, zygote: Zygote, to_child_w: int, from_child_r: int):
        super().__init__(zygote.limits, zygote.hidden, mode=zygote.mode)
        self.zygote, self._to_child_w, self._from_child_r = zygote, to_child_w, from_child_r
        self.ended = False

    def start(self) -> None:
        raise RuntimeError("a forked copy cannot be restarted: spawn another from its zygote")

    def alive(self) -> bool:
        return not self.ended and self.zygote.alive()

    def _death(self) -> Crashed:
        if self.ended:
            return Crashed("the process was not running")
        code = self.zygote.end_copy(kill=False)
        self._close()
        return Crashed("the process stopped answering") if code is None else _crash(code)

    def kill(self) -> None:
        if not self.ended:
            self.zygote.end_copy(kill=True)
            self._close()

    def _close(self) -> None:
        self.ended = True
        for fd in (self._to_child_w, self._from_child_r):
            try:
                os.close(fd)
            except OSError:
                pass
