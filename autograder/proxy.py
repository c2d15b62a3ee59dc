"""The grader's side of the sandbox: proxies for the student's functions and objects.

A :class:`Session` talks to one :class:`~autograder.sandbox.Sandbox`: it sends requests (see
:mod:`autograder.runner` for the list), decodes the replies and turns every *handle* (an object
that is not plain data and stays in the student's process) into a :class:`Remote`. Calling a
``Remote``, reading or setting its attributes, iterating it or indexing it goes over the wire; what
comes back is plain data or another ``Remote``. An exception the student's code raised comes back
as a local exception of the same built-in base class, with the student's exception name in
``student_ename`` (see :func:`student_exception`).

>>> student_exception("ValueError", "bad shape").student_ename
'ValueError'
>>> isinstance(student_exception("ValueError", "bad shape"), ValueError)
True
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import time
from typing import Any

from autograder.sandbox import Sandbox
from autograder.wire import Handle, WireError


def student_exception(ename: str, evalue: str) -> Exception:
    """A local exception standing for one the student's code raised (same built-in base class).

    Its class has the attribute ``student_ename`` (the student's exception name), which is how the
    grader tells the student's exceptions from its own.
    """
    base = getattr(builtins, ename, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    exc_type = type(f"Student{ename}", (base,), {"student_ename": ename})
    try:
        return exc_type(evalue)
    except Exception:  # noqa: BLE001 — exception classes with unusual constructors
        return Exception(f"{ename}: {evalue}")


def student_ename(e: BaseException) -> str | None:
    """The name of the student's exception that ``e`` stands for; None when ``e`` is the grader's own."""
    return getattr(type(e), "student_ename", None)


class Remote:
    """Stands for a function or object living in the sandbox; calls and attributes go over the wire."""

    def __init__(self, session: Session, target: dict, label: str):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_label", label)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._session.ask({"op": "call", "target": self._target, "args": list(args), "kwargs": kwargs})
        except Exception as e:
            ename = student_ename(e)
            if ename is None:
                raise
            call = describe_call(object.__getattribute__(self, "_label"), args, kwargs)
            raise student_exception(ename, f"{e}, in the call {call}") from None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = self._session.ask({"op": "getattr", "target": {**self._target, "attr": attr}})
        if isinstance(value, Remote):  # a method or a sub-module: named after the path that reached it
            object.__setattr__(value, "_label", f"{object.__getattribute__(self, '_label')}.{attr}")
        return value

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


def describe(value: Any) -> str:
    """A short description of an argument for an error message: never the data itself when it is large.

    >>> describe([1, 2]), describe(list(range(100))), describe("x" * 50), describe(3.5)
    ('[1, 2]', 'list (len 100)', 'str (len 50)', '3.5')
    """
    if isinstance(value, Remote):
        return object.__getattribute__(value, "_label")
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a tensor or an array
        device = getattr(value, "device", None)
        where = f" on {device}" if device is not None and str(device) != "cpu" else ""
        return f"{type(value).__name__}{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}{where}"
    text = repr(value) if isinstance(value, int | float | bool | str | list | tuple | dict | type(None)) else ""
    if text and len(text) <= 30:
        return text
    if isinstance(value, list | tuple | dict | str):
        return f"{type(value).__name__} (len {len(value)})"
    return type(value).__name__


def describe_call(label: str, args: tuple, kwargs: dict) -> str:
    """``label(arg, …, name=arg)`` with each argument described by :func:`describe`.

    >>> describe_call("merge", ([5, 6, 5], (5, 6), 256), {})
    'merge([5, 6, 5], (5, 6), 256)'
    """
    return f"{label}({', '.join([*map(describe, args), *(f'{k}={describe(v)}' for k, v in kwargs.items())])})"


class Undefined:
    """An answer name the student's code did not define: using it raises a clear NameError."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NameError(f"name '{self.name}' is not defined: your answer cell must define it")

    def __getattr__(self, attr: str) -> Any:
        raise NameError(f"name '{self.name}' is not defined: your answer cell must define it")


class Session:
    """The grader's side of one sandbox: replies decoded, handles wrapped, failures raised.

    ``deadline`` (``time.monotonic()``) bounds every request; ``printed`` collects what the
    student's code printed.
    """

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.deadline = 0.0
        self.printed = io.StringIO()
        self.uploaded: dict[int, tuple[Any, Handle]] = {}

    def reset(self) -> None:
        """Forget handles: the student's process was restarted."""
        self.uploaded.clear()

    def ask(self, req: dict) -> Any:
        """Send ``req``; return its value (plain data or proxies) or raise the student's exception."""
        req = {**req, "args": [self.unwrap(a) for a in req.get("args", [])],
               "kwargs": {k: self.unwrap(v) for k, v in req.get("kwargs", {}).items()}}
        reply = self.sandbox.request(req, max(0.1, self.deadline - time.monotonic()))
        if reply.get("out"):
            self.printed.write(reply["out"])
        if not reply["ok"]:
            raise student_exception(reply["ename"], reply["evalue"])
        return self.wrap(reply["value"])

    def name(self, name: str) -> Any:
        """The student's top-level object called ``name``: a proxy, a plain value, or an :class:`Undefined`."""
        try:
            value = self.ask({"op": "getattr", "target": {"name": name}})
        except KeyError:
            return Undefined(name)
        if isinstance(value, Remote):  # named as the student wrote it, for messages
            object.__setattr__(value, "_label", name)
        return value

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
