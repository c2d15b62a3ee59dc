"""Run student code in an isolated process with resource limits, and talk to it.

Protections, strongest first (:func:`protections` says which are active on this machine):

- **bubblewrap** (Debian's ``bubblewrap``), when installed and the grader runs as root: new mount,
  PID, network, IPC and UTS namespaces. The whole file system is read-only; the course repository,
  the home directory, ``/tmp`` and every folder given in ``hidden`` (submissions, gradebook, output)
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
"""

from __future__ import annotations

import itertools
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import wire
from autograder.course import ROOT

SANDBOX_UIDS = 100_000  # each sandbox gets its own unused uid above this, so process limits are per sandbox
_next_uid = itertools.count()


@dataclass
class Limits:
    """Per-sandbox resource limits."""

    memory_bytes: int = 6 * 2**30  # address space (torch reserves a lot of virtual memory)
    processes: int = 256  # threads count too
    file_bytes: int = 64 * 2**20
    open_files: int = 256
    cpu_seconds: int = 900
    disk_bytes: int = 256 * 2**20  # size of the private tmpfs working directory
    threads: int = 1


class SandboxError(BaseException):
    """Base class of what can go wrong with the student's process.

    A BaseException, like KeyboardInterrupt, so that checks (and hypothesis inside them) that catch
    ``Exception`` cannot swallow a timeout or a crash.
    """


class Timeout(SandboxError):
    """A request ran past its wall-clock limit; the process was killed."""


class Crashed(SandboxError):
    """The process died (os._exit, a signal, a resource limit); ``detail`` says what is known."""


class StudentError(Exception):
    """The student's code raised; ``ename`` and ``evalue`` are the exception's type and message."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


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

    def start(self) -> None:
        self.kill()
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()
        self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-")
        self.workdir = Path(self._tmp.name)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/work", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "OMP_NUM_THREADS": str(self.limits.threads), "MKL_NUM_THREADS": str(self.limits.threads),
               "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}
        python = [sys.executable, "-I", "-m", "autograder.runner", str(to_child_r), str(from_child_w)]
        if bwrap_available():
            self.mode = "bubblewrap"
            cmd = self._bwrap_command(python)
        else:
            self.mode = "rlimits"
            env["HOME"] = str(self.workdir)
            cmd = python
        self.proc = subprocess.Popen(
            cmd, pass_fds=(to_child_r, from_child_w), env=env, cwd=self.workdir if self.mode == "rlimits" else "/",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=self._limit)
        os.close(to_child_r)
        os.close(from_child_w)

    def _bwrap_command(self, python: list[str]) -> list[str]:
        hide = {ROOT, ROOT.parent, Path.home(), *self.hidden}
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
            raise Crashed(self._death())
        try:
            blob = wire.encode(req)
            os.write(self._to_child_w, struct.pack("<Q", len(blob)) + blob)
        except (BrokenPipeError, OSError):
            raise Crashed(self._death()) from None

    def receive(self, timeout: float) -> dict:
        """The reply to the oldest request not yet answered (waiting at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        head = self._read_exact(8, deadline)
        (n,) = struct.unpack("<Q", head)
        if n > wire.MAX_MESSAGE_BYTES:
            self.kill()
            raise Crashed("the student's process sent a malformed reply")
        return wire.decode(self._read_exact(n, deadline))

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child_r], [], [], left)[0]:
                self.kill()
                raise Timeout("no answer within the time limit")
            chunk = os.read(self._from_child_r, min(n - got, 1 << 20))
            if not chunk:
                raise Crashed(self._death())
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _death(self) -> str:
        if self.proc is None:
            return "the process was not running"
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return "the process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            why = {"SIGKILL": "killed (out of memory?)", "SIGXCPU": "CPU time limit reached",
                   "SIGXFSZ": "file size limit reached", "SIGSEGV": "segmentation fault"}.get(name, name)
            return f"the Python process stopped: {why}"
        return f"the Python process exited with status {code} (os._exit or sys.exit outside a function?)"

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
