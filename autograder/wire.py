"""Plain data across the sandbox boundary: JSON for Python values, safetensors for tensors.

Student code runs in another process; what comes back is *data*, never code or live objects:
``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists, tuples, dicts (keys of those
scalar types or tuples of them), torch tensors and NumPy arrays. Decoding builds fresh objects of
exactly these built-in types, so a returned object cannot carry an ``__eq__`` that is always true,
and a tensor subclass arrives as a plain tensor holding only its values. Nothing is ever pickled.

Objects that are not plain data (a student's ``nn.Module``, say) stay in the sandbox and travel as
*handles*, ``{"$handle": n, "$type": "MultiHeadAttention"}``, on which the grader can call methods.

Messages travel over pipes as frames (:func:`frame`, :func:`read_frame`: an 8-byte little-endian
length, then the message). :data:`TRUSTED_PREFIX` names the only code the grader may ask the
student's process to run, and the only dataclasses that travel by their fields: the course library.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import math
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load as np_load
from safetensors.numpy import save as np_save
from safetensors.torch import load as torch_load
from safetensors.torch import save as torch_save

MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # a whole message (tensors included)
MAX_HEADER_BYTES = 16 * 1024 * 1024  # its JSON part (everything but tensors and arrays)
MAX_ITEMS = 1_000_000  # values in its JSON part: a list of 10⁷ small items is refused, not decoded
TRUSTED_PREFIX = "labsupport."  # the course library: its dataclasses travel by fields, its functions may be applied
MAX_DEPTH = 64
FRAME = struct.Struct("<Q")  # the length that precedes every message on a pipe


class WireError(ValueError):
    """A value that cannot travel as plain data, or a malformed message."""


class Handle:
    """A reference to an object that stays in the other process."""

    def __init__(self, ref: int, type_name: str):
        self.ref, self.type_name = ref, type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} in the student's process>"


def frame(blob: bytes) -> bytes:
    """``blob`` as it travels on a pipe: its length, then its bytes."""
    return FRAME.pack(len(blob)) + blob


def write_frame(fd: int, blob: bytes) -> None:
    """Write one framed message to the file descriptor ``fd`` (all of it)."""
    view = memoryview(frame(blob))
    while view:
        view = view[os.write(fd, view):]


def read_frame(read_exact: Callable[[int], bytes | None]) -> bytes | None:
    """Read one framed message with ``read_exact(n)`` (None at end of stream: then None)."""
    head = read_exact(FRAME.size)
    if head is None:
        return None
    (n,) = FRAME.unpack(head)
    if n > MAX_MESSAGE_BYTES:
        raise WireError("malformed message (too large)")
    return read_exact(n)


def encode(value: Any, keep: Callable[[Any], int] | None = None) -> bytes:
    """Serialise ``value``; objects that are not plain data go through ``keep`` (→ a handle ref)."""
    tensors: dict[str, torch.Tensor] = {}
    arrays: dict[str, np.ndarray] = {}
    count = [0]

    def enc(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("the value is nested too deeply")
        count[0] += 1
        if count[0] > MAX_ITEMS:
            raise WireError(f"the value is too large: more than {MAX_ITEMS:,} items (lists, dicts, numbers, "
                            "strings); return a tensor, or less")
        if v is None or isinstance(v, bool):  # bool cannot be subclassed
            return v
        if isinstance(v, str):
            return str.__str__(v)  # a plain copy of a str subclass
        if isinstance(v, int):
            return {"$int": int.__repr__(v)}
        if isinstance(v, float):
            f = float.__float__(v)
            return {"$float": repr(f)} if not math.isfinite(f) else f
        if isinstance(v, bytes | bytearray):
            return {"$bytes": base64.b64encode(bytes(v)).decode()}
        if isinstance(v, torch.Tensor):
            name = f"t{len(tensors)}"
            plain = torch.Tensor.as_subclass(v.detach(), torch.Tensor).to("cpu").contiguous().clone()
            tensors[name] = plain
            return {"$tensor": name}
        if isinstance(v, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = np.ascontiguousarray(np.asarray(v).copy())
            return {"$array": name}
        if isinstance(v, np.generic):
            return enc(v.item(), depth + 1)
        # containers (subclasses too: OrderedDict, namedtuple, torch.Size) travel as their plain items
        if isinstance(v, tuple):
            return {"$tuple": [enc(x, depth + 1) for x in tuple.__iter__(v)]}
        if isinstance(v, list):
            return [enc(x, depth + 1) for x in list.__iter__(v)]
        if isinstance(v, dict):
            return {"$dict": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in dict.items(v)]}
        if isinstance(v, Handle):
            return {"$ref": v.ref}
        if dataclasses.is_dataclass(v) and type(v).__module__.startswith(TRUSTED_PREFIX):
            cls = type(v)
            fields = {f.name: enc(getattr(v, f.name), depth + 1) for f in dataclasses.fields(v)}
            return {"$obj": f"{cls.__module__}:{cls.__qualname__}", "$fields": fields}
        if keep is not None:
            return {"$handle": keep(v), "$type": type(v).__name__}
        raise WireError(f"a {type(v).__name__} is not plain data (numbers, strings, lists, tuples, dicts, tensors)")

    header = json.dumps(enc(value, 0), allow_nan=False).encode()
    if len(header) > MAX_HEADER_BYTES:
        raise WireError(f"the value is too large: {len(header) / 2**20:.0f} MB of plain data (at most "
                        f"{MAX_HEADER_BYTES // 2**20} MB besides tensors)")
    t_blob = torch_save(tensors) if tensors else b""
    a_blob = np_save(arrays) if arrays else b""
    total = 24 + len(header) + len(t_blob) + len(a_blob)
    if total > MAX_MESSAGE_BYTES:
        raise WireError(f"the value is too large: {total / 2**20:.0f} MB (at most {MAX_MESSAGE_BYTES // 2**20} MB)")
    return struct.pack("<QQQ", len(header), len(t_blob), len(a_blob)) + header + t_blob + a_blob


def decode(blob: bytes, resolve: Callable[[int], Any] | None = None) -> Any:
    """Rebuild plain data; ``resolve(ref)`` turns a ``$ref`` back into a local object, and
    ``$handle`` entries become :class:`Handle` objects."""
    if len(blob) < 24 or len(blob) > MAX_MESSAGE_BYTES:
        raise WireError("malformed message")
    nh, nt, na = struct.unpack("<QQQ", blob[:24])
    if 24 + nh + nt + na != len(blob):
        raise WireError("malformed message (sizes)")
    if nh > MAX_HEADER_BYTES:
        raise WireError("malformed message (too much plain data)")
    try:
        header = json.loads(blob[24:24 + nh])
    except (ValueError, RecursionError) as e:
        raise WireError(f"malformed message ({type(e).__name__})") from None
    tensors = torch_load(blob[24 + nh:24 + nh + nt]) if nt else {}
    arrays = np_load(blob[24 + nh + nt:]) if na else {}
    count = [0]

    def dec(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("nested too deeply")
        count[0] += 1
        if count[0] > MAX_ITEMS:
            raise WireError(f"malformed message (more than {MAX_ITEMS:,} items)")
        if v is None or type(v) in (bool, str, float):
            return v
        if type(v) is list:
            return [dec(x, depth + 1) for x in v]
        if type(v) is dict and len(v) in (1, 2):
            (tag, x), *rest = v.items()
            if tag == "$int":
                return int(x)
            if tag == "$float":
                return float(x)
            if tag == "$bytes":
                return base64.b64decode(x)
            if tag == "$tensor":
                return tensors[x]
            if tag == "$array":
                return arrays[x]
            if tag == "$tuple":
                return tuple(dec(y, depth + 1) for y in x)
            if tag == "$dict":
                out = {}
                for k, y in x:
                    key = dec(k, depth + 1)
                    if not isinstance(key, int | float | str | bytes | tuple | bool | type(None)):
                        raise WireError("dict keys must be numbers, strings or tuples")
                    out[key] = dec(y, depth + 1)
                return out
            if tag == "$ref":
                return resolve(x) if resolve is not None else Handle(int(x), "")
            if tag == "$obj" and rest and rest[0][0] == "$fields":
                return _build(x, {k: dec(y, depth + 1) for k, y in rest[0][1].items()})
            if tag == "$handle" and rest and rest[0][0] == "$type":
                return Handle(int(x), str(rest[0][1]))
        raise WireError(f"unexpected value in message: {str(v)[:80]}")

    return dec(header, 0)


def _build(path: str, fields: dict) -> Any:
    """A course-library dataclass from its fields (only ``labsupport`` dataclasses are allowed)."""
    module, _, name = path.partition(":")
    if not module.startswith(TRUSTED_PREFIX):
        raise WireError(f"objects of {module} cannot be sent")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise WireError(f"{path} is not a course dataclass")
    return cls(**fields)
