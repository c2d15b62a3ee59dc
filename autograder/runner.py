"""The process that runs student code, inside the sandbox. Started by :mod:`autograder.sandbox`.

It executes the setup and answer cells it is sent, then serves calls of the functions they
define, one request at a time, over two pipes (file descriptors given on the command line).
Requests and replies are :mod:`autograder.wire` messages: plain data only. It holds no verdict:
the grader compares what comes back with the oracle in its own process.

Requests (dicts): ``exec`` a cell's code; ``call`` a name or handle (optionally a method of it);
``getattr``/``setattr``/``items``/``len``/``getitem`` of a handle; ``keep`` a value sent by the
grader; ``apply`` a trusted library function (``labsupport.*``) to arguments that may include
handles (work that must happen next to the student's objects, like autograd); ``seed`` every RNG.
"""

from __future__ import annotations

import importlib
import io
import os
import struct
import sys
import traceback
from typing import Any

from autograder import wire

MAX_CAPTURE = 64 * 1024
TRUSTED_PREFIXES = ("labsupport.",)


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


class Runner:
    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"__name__": "__main__"}
        self.handles: dict[int, Any] = {}

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
            code = compile(req["code"], f"<answer cell {req.get('name', '')}>", "exec")
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
        if op == "seed":
            from labsupport import seed_everything

            seed_everything(req["seed"])
            return None
        raise ValueError(f"unknown request {op!r}")


def _trusted(func: str) -> Any:
    module, _, name = func.rpartition(".")
    if not module.startswith(TRUSTED_PREFIXES):
        raise PermissionError(f"apply is limited to {TRUSTED_PREFIXES}")
    return getattr(importlib.import_module(module), name)


def _read(fd: int) -> bytes | None:
    head = _read_exact(fd, 8)
    if head is None:
        return None
    (n,) = struct.unpack("<Q", head)
    return _read_exact(fd, n)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write(fd: int, blob: bytes) -> None:
    data = struct.pack("<Q", len(blob)) + blob
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main() -> None:
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the student's raw writes go nowhere; print() is captured below
        os.dup2(devnull, fd)
    runner = Runner()
    me = os.getpid()
    while (blob := _read(rfd)) is not None:
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
        except BaseException as e:  # noqa: BLE001 — everything the student raises is reported
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
        _write(wfd, encoded)


def _safe_str(e: BaseException) -> str:
    try:
        return str(e)
    except Exception:  # noqa: BLE001 — a student exception whose __str__ itself fails
        return "<unprintable exception>"


if __name__ == "__main__":
    main()
