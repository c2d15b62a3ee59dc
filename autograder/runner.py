"""The process that runs student code, inside the sandbox. Started by :mod:`autograder.sandbox`.

It executes the setup and answer cells it is sent, then serves calls of the functions they
define, one request at a time, over two pipes (file descriptors given on the command line).
Requests and replies are :mod:`autograder.wire` messages: plain data only. It holds no verdict:
the grader compares what comes back with the oracle in its own process.

Requests (dicts): ``exec`` a cell's code; ``call`` a name or handle (optionally a method of it);
``getattr``/``setattr``/``items``/``len``/``getitem`` of a handle; ``keep`` a value sent by the
grader; ``apply`` a trusted library function (``labsupport.*``) to arguments that may include
handles (work that must happen next to the student's objects, like autograd); ``seed`` every RNG;
``zygote`` (when started with a third descriptor, a Unix socket: see
:class:`autograder.sandbox.Zygote`) to stop serving and fork a copy of itself per order instead.
"""

from __future__ import annotations

import importlib
import io
import os
import signal
import socket
import sys
import traceback
from typing import Any

from autograder import wire

MAX_CAPTURE = 64 * 1024


class CappedText(io.TextIOBase):
    """A text stream that keeps the first ``MAX_CAPTURE`` characters and counts the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, s: str) -> int:
        s = str(s)
        if self.size < MAX_CAPTURE:
            self.parts.append(s[: MAX_CAPTURE - self.size])
        self.size += len(s)
        return len(s)

    def getvalue(self) -> str:
        text = "".join(self.parts)
        return text + (f"\n[output truncated: {self.size:,} characters]" if self.size > MAX_CAPTURE else "")


#: code compiled from these "files" is the student's (answer cells, cells they added, what they exec)
STUDENT_FILES = ("<answer cell", "<string>", "<stdin>")
SETUP_FILE = "<setup cell>"  # the instructor's setup cells: trusted, may import anything


class ImportGuard:
    """``builtins.__import__`` inside the sandbox of a lab: an import written in the student's code
    (an answer cell, a cell they added, code they exec) of one of the lab's ``blocked`` modules (its
    reference implementation, its oracle libraries: the manifest's ``blocked_modules``) raises an
    ImportError that says why. Imports made by the setup cells, the course library, torch and any
    other installed code are untouched, so names the setup cell imported stay usable and trusted
    helpers (``labsupport.checks.on_student_side``) work. The import of an earlier chapter's
    module (the manifest's ``uses``) is allowed.

    ``import`` statements go through ``builtins.__import__`` even for modules already imported,
    so the guard sees every one; ``importlib`` and ``sys.modules`` stay reachable and are flagged
    for review instead (:mod:`autograder.scan`).
    """

    def __init__(self, original: Any, blocked: list[str], lab: str = "", uses: list[str] | None = None):
        self.original, self.blocked, self.lab, self.uses = original, tuple(blocked), lab, tuple(uses or ())

    def blocked_name(self, name: str) -> str | None:
        for mod in self.blocked:
            if (name == mod or name.startswith(mod + ".")) and not any(
                    name == u or name.startswith(u + ".") for u in self.uses):
                return mod
        return None

    def __call__(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and isinstance(name, str):
            try:
                filename = sys._getframe(1).f_code.co_filename
            except ValueError:
                filename = ""
            if filename.startswith(STUDENT_FILES):
                names = [name, *(f"{name}.{x}" for x in (fromlist or ()) if isinstance(x, str) and x != "*")]
                for full in names:
                    mod = self.blocked_name(full)
                    if mod is not None:
                        what = ("the course's reference implementation of what this lab asks you to build"
                                if mod.startswith("labsupport.") else
                                "an oracle library the hidden tests compare your answer with")
                        raise ImportError(f"importing {full} is not allowed when {self.lab or 'this lab'} is "
                                          f"graded: {mod} is {what}; write this part yourself"
                                          + (f" (you may use {', '.join(self.uses)})" if self.uses else ""),
                                          name=full)
        return self.original(name, globals, locals, fromlist, level)


class Runner:
    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"__name__": "__main__"}
        self.handles: dict[int, Any] = {}
        self.become_zygote = False

    def keep(self, obj: Any) -> int:
        ref = len(self.handles) + 1
        self.handles[ref] = obj
        return ref

    def resolve(self, ref: int) -> Any:
        return self.handles[ref]

    def target(self, spec: dict) -> Any:
        obj = self.handles[spec["ref"]] if "ref" in spec else self.ns[spec["name"]]
        return getattr(obj, spec["attr"]) if spec.get("attr") else obj

    def apply(self, func: str, args: list, kwargs: dict) -> Any:
        return _trusted(func)(*args, **kwargs)

    def handle(self, req: dict) -> Any:
        op = req["op"]
        if op == "exec":
            filename = SETUP_FILE if req.get("trusted") else f"<answer cell {req.get('name', '')}>"
            code = compile(req["code"], filename, "exec")
            exec(code, self.ns)
            return None
        if op == "call":
            return self.target(req["target"])(*req.get("args", []), **req.get("kwargs", {}))
        if op == "getattr":
            return self.target(req["target"])
        if op == "setattr":
            setattr(self.target(req["target"]), req["attr"], req["args"][0])
            return None
        if op == "items":  # iterate a student object (parameters(), a ModuleList, ...)
            return list(self.target(req["target"]))
        if op == "len":
            return len(self.target(req["target"]))
        if op == "getitem":
            return self.target(req["target"])[req["args"][0]]
        if op == "keep":  # store a value sent (or a library call named) by the grader; refer to it by handle
            value = self.apply(req["func"], [], {}) if "func" in req else req["args"][0]
            return {"ref": self.keep(value)}
        if op == "apply":
            return self.apply(req["func"], req.get("args", []), req.get("kwargs", {}))
        if op == "zygote":
            self.become_zygote = True
            return None
        if op == "block":  # the lab's blocked modules, once its setup cells have run
            import builtins

            original = builtins.__import__
            if isinstance(original, ImportGuard):
                original = original.original
            builtins.__import__ = ImportGuard(original, list(req["modules"]), str(req.get("lab", "")),
                                              list(req.get("uses", [])))
            return None
        if op == "seed":
            from labsupport import seed_everything

            seed_everything(req["seed"])
            return None
        raise ValueError(f"unknown request {op!r}")


def _trusted(func: str) -> Any:
    module, _, name = func.rpartition(".")
    if not module.startswith(wire.TRUSTED_PREFIX):
        raise PermissionError(f"apply is limited to {wire.TRUSTED_PREFIX}*")
    return getattr(importlib.import_module(module), name)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def main() -> None:
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    control = int(sys.argv[3]) if len(sys.argv) > 3 else None
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the student's raw writes go nowhere; print() is captured below
        os.dup2(devnull, fd)
    runner = Runner()
    serve(runner, rfd, wfd)
    if runner.become_zygote and control is not None:
        zygote(runner, control, (rfd, wfd))


def zygote(runner: Runner, control: int, pipes: tuple[int, int]) -> None:
    """Fork a copy of this prepared process per ``fork`` order (which carries the copy's two pipes);
    ``kill``/``wait`` end the current copy and answer its exit code. Ends when the socket closes."""
    for fd in pipes:
        os.close(fd)
    ctl = socket.socket(fileno=control)
    child: int | None = None
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(ctl, 64, 2)
        if not msg:
            os._exit(0)
        if msg == b"fork":
            if child is not None:
                _end(child, kill=True)
            child = os.fork()
            if child == 0:
                ctl.close()
                os.setpgid(0, 0)  # the copy and whatever it starts can be killed together
                runner.become_zygote = False
                serve(runner, fds[0], fds[1])
                os._exit(0)
            for fd in fds:
                os.close(fd)
            ctl.sendall(b"ok")
        else:
            code = _end(child, kill=msg == b"kill") if child is not None else None
            child = None
            ctl.sendall(b"none" if code is None else str(code).encode())


def _end(pid: int, kill: bool) -> int:
    if kill:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def serve(runner: Runner, rfd: int, wfd: int) -> None:
    """Answer requests read from ``rfd`` on ``wfd`` until the grader closes the pipe (or asks for a zygote)."""
    me = os.getpid()
    while not runner.become_zygote and (blob := wire.read_frame(lambda n: _read_exact(rfd, n))) is not None:
        out = CappedText()
        sys.stdout = sys.stderr = out
        try:
            req = wire.decode(blob, resolve=runner.resolve)
            value = runner.handle(req)
            reply = {"ok": True, "value": value}
            try:
                encoded = wire.encode({**reply, "out": out.getvalue()}, keep=runner.keep)
            except wire.WireError as e:
                raise TypeError(f"the result could not be returned: {e}") from None
        except BaseException as e:  # everything the student raises is reported
            if isinstance(e, KeyboardInterrupt):
                raise
            frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<answer")]
            where = f" (line {frames[-1].lineno} of {frames[-1].filename.strip('<>')})" if frames else ""
            reply = {"ok": False, "ename": type(e).__name__, "evalue": _safe_str(e)[:4000] + where,
                     "out": out.getvalue()}
            encoded = wire.encode(reply)
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        if os.getpid() != me:  # a process the student's code forked: it must never answer the grader
            os._exit(0)
        wire.write_frame(wfd, encoded)


def _safe_str(e: BaseException) -> str:
    try:
        return str(e)
    except Exception:  # noqa: BLE001 — a student exception whose __str__ itself fails
        return "<unprintable exception>"


if __name__ == "__main__":
    main()
