"""Checking helpers: the only thing the test cells of the labs call.

Every failure is a :class:`CheckFailed` whose message has the same four parts, so students learn to
read it once::

    count_pairs([1, 2, 3, 1, 2]): pair counts differ
      expected: {(1, 2): 2, (2, 3): 1, (3, 1): 1}
      got:      {(1, 2): 1, (2, 3): 1, (3, 1): 1}
      hint:     count every adjacent pair, including repeats

The generic helpers live here (tolerant tensor comparisons with max abs/rel error, shape and dtype
checks, sequence comparisons); each lab's named checks live in ``labsupport.checks.labNN``.
A named check takes the student's function, builds its own inputs (seeded), calls it, and compares
the result with a real implementation (the *oracle*).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from torch import nn

_short = reprlib.Repr()
_short.maxstring = 120
_short.maxother = 120
_short.maxlist = 24
_short.maxtuple = 24
_short.maxdict = 12
_short.maxlevel = 3


def property_settings(max_examples: int = 100) -> settings:
    """The one hypothesis profile of every property-based check: deterministic, no database, no deadline."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


class CheckFailed(AssertionError):
    """A check found a difference. The message says what, expected, got, and a hint."""

    def __init__(self, what: str, expected: Any = None, got: Any = None, hint: str | None = None,
                 detail: str | None = None):
        lines = [what]
        if expected is not None or got is not None:
            lines.append(f"  expected: {show(expected)}")
            lines.append(f"  got:      {show(got)}")
        if detail:
            lines.append(f"  detail:   {detail}")
        if hint:
            lines.append(f"  hint:     {hint}")
        super().__init__("\n".join(lines))
        self.what, self.expected, self.got, self.hint = what, expected, got, hint


def show(value: Any) -> str:
    """A short, readable representation (long lists and strings are abbreviated)."""
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return value  # already a description, e.g. "<a tensor of shape (2, 3)>"
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}, dtype {value.dtype}"
    return _short.repr(value)


def passed(message: str) -> None:
    """Print the friendly pass line a test cell ends with."""
    print(f"✓ {message}")


def call(fn: Callable, *args: Any, what: str, **kwargs: Any) -> Any:
    """Call the student's ``fn`` and turn a missing implementation into a readable failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{what}: not implemented yet",
                          hint="replace `raise NotImplementedError()` with your code") from None


def check_type(value: Any, expected_type: type | tuple[type, ...], *, what: str,
               hint: str | None = None) -> None:
    """``value`` must be an instance of ``expected_type`` (exactly the kind of thing asked for)."""
    if not isinstance(value, expected_type):
        names = (expected_type,) if isinstance(expected_type, type) else expected_type
        raise CheckFailed(f"{what}: wrong type", " or ".join(t.__name__ for t in names),
                          type(value).__name__, hint)


def check_equal(got: Any, expected: Any, *, what: str, hint: str | None = None) -> None:
    """Exact equality; for sequences the message points at the first differing position."""
    if got == expected and type(got) is type(expected):
        return
    if isinstance(got, Sequence) and isinstance(expected, Sequence) and not isinstance(got, str):
        detail = first_difference(list(got), list(expected))
    elif isinstance(got, Mapping) and isinstance(expected, Mapping):
        detail = mapping_difference(got, expected)
    elif type(got) is not type(expected) and got == expected:
        detail = f"equal values but type {type(got).__name__}, expected {type(expected).__name__}"
    else:
        detail = None
    raise CheckFailed(what, expected, got, hint, detail)


def first_difference(got: list, expected: list) -> str:
    """Describe where two lists first differ."""
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"first difference at position {i}: expected {show(e)}, got {show(g)}"
    if len(got) != len(expected):
        return f"length {len(got)}, expected {len(expected)}"
    return "same elements, different container type"


def mapping_difference(got: Mapping, expected: Mapping) -> str:
    """Describe missing, extra and different keys of two mappings."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    parts = []
    if missing:
        parts.append(f"missing keys {show(missing)}")
    if extra:
        parts.append(f"unexpected keys {show(extra)}")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} wrong values, e.g. at {show(k)}: expected {show(expected[k])}, "
                     f"got {show(got[k])}")
    return "; ".join(parts) or "same items, different container type"


def check_shape(t: torch.Tensor, shape: Sequence[int], *, what: str, hint: str | None = None) -> None:
    """``t`` must be a tensor of exactly ``shape``."""
    check_type(t, torch.Tensor, what=what, hint=hint)
    if tuple(t.shape) != tuple(shape):
        raise CheckFailed(f"{what}: wrong shape", tuple(shape), tuple(t.shape), hint)


def check_dtype(t: torch.Tensor, dtype: torch.dtype, *, what: str, hint: str | None = None) -> None:
    """``t`` must be a tensor of ``dtype``."""
    check_type(t, torch.Tensor, what=what, hint=hint)
    if t.dtype != dtype:
        raise CheckFailed(f"{what}: wrong dtype", dtype, t.dtype, hint)


def check_close(got: torch.Tensor, expected: torch.Tensor, *, what: str, rtol: float | None = None,
                atol: float | None = None, hint: str | None = None) -> None:
    """Tolerant comparison of tensors (torch's default tolerances for the dtype unless given).

    Checks type, shape and finiteness first, then reports the largest absolute and relative error
    and where it occurs. Comparison runs on the CPU so it does not depend on the grader's device.
    """
    check_shape(got, expected.shape, what=what, hint=hint)
    g = got.detach().to("cpu")
    e = expected.detach().to("cpu", g.dtype if g.is_floating_point() else expected.dtype)
    if g.is_floating_point():
        bad = ~torch.isfinite(g) & torch.isfinite(e)
        if bad.any():
            idx = tuple(int(i) for i in bad.nonzero()[0])
            raise CheckFailed(f"{what}: non-finite values", "finite numbers",
                              f"{g[idx].item()} at index {idx}", hint or "look for 0/0 or -inf - -inf")
    try:
        torch.testing.assert_close(g, e, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError:
        diff = (g.double() - e.double()).abs().nan_to_num(nan=math.inf)
        idx = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(diff.shape)))
        rel = diff / e.double().abs().clamp_min(1e-12)
        detail = (f"max abs error {diff.max().item():.3g} at index {idx} "
                  f"(expected {e[idx].item():.6g}, got {g[idx].item():.6g}); "
                  f"max rel error {rel.max().item():.3g}; "
                  f"{int((diff > 0).sum())} of {diff.numel()} elements differ")
        raise CheckFailed(f"{what}: values differ", f"<a tensor of shape {tuple(e.shape)}>",
                          "<values outside tolerance>", hint, detail) from None


def check_true(condition: bool, *, what: str, expected: Any = None, got: Any = None,
               hint: str | None = None) -> None:
    """Fail with a full message unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(what, expected, got, hint)


def in_range(what: str, value: float, low: float, high: float, hint: str | None = None) -> None:
    """An experiment's result must lie in its stated range ``[low, high]``."""
    if not low <= value <= high:
        raise CheckFailed(f"{what} is outside the expected range", f"between {low} and {high}",
                          round(value, 4), hint or "re-run the parts' tests first: they catch most bugs")
    passed(f"{what} = {value:.3f}, in the expected range [{low}, {high}]")


# ---------------------------------------------------------------- where the student's objects live
def on_student_side(func: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``func(*args, **kwargs)`` next to the student's objects among ``args``.

    In a notebook this is just a call. When an autograder keeps the student's code in another
    process, the arguments that stand for student objects know how to run ``func`` (a function of
    this library, named by its import path) over there, and only plain data comes back. Use it for
    work that needs the live object, such as autograd through the student's module.
    """
    for a in (*args, *kwargs.values()):
        hook = getattr(type(a), "__student_apply__", None)
        if hook is not None:
            return hook(a, f"{func.__module__}.{func.__qualname__}", args, kwargs)
    return func(*args, **kwargs)


def gradients(fn: Callable, *inputs: torch.Tensor, upstream_seed: int = 0) -> tuple[torch.Tensor, list]:
    """``fn(*inputs)`` (its first output if it returns a tuple) and the gradients of
    ``(output · g).sum()`` with respect to each floating-point input, for a fixed random ``g``."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*leaves)
    out = out[0] if isinstance(out, tuple | list) else out
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(upstream_seed), dtype=out.dtype)
    (out * g).sum().backward()
    return out.detach(), [x.grad for x in leaves]


def check_gradients(fn: Callable, reference: Callable, *inputs: torch.Tensor, what: str,
                    rtol: float = 1e-6, atol: float = 1e-6, hint: str | None = None) -> None:
    """Gradients of the student's ``fn`` (float64 inputs) must equal the reference's autograd gradients.

    The student's side is computed where the student's code lives (:func:`on_student_side`); the
    comparison happens here.
    """
    _, got = on_student_side(gradients, fn, *inputs)
    _, expected = gradients(reference, *inputs)
    for n, (g, e) in enumerate(zip(got, expected)):
        if e is None:
            continue
        if g is None:
            raise CheckFailed(f"{what}: no gradient reaches input {n}", "a gradient tensor", None,
                              hint or "avoid .detach(), .item() or in-place edits on the path from inputs to output")
        check_close(g, e, what=f"{what}: gradient of input {n}", rtol=rtol, atol=atol, hint=hint)


def module_gradients(module: nn.Module, *inputs: torch.Tensor,
                     **kwargs: Any) -> tuple[torch.Tensor, list, dict[str, torch.Tensor | None]]:
    """``module(*inputs, **kwargs)`` (its first output if it returns a tuple), and the gradients of
    ``(output · g).sum()`` (``g`` fixed, see :func:`gradients`) with respect to each floating-point
    input and to each named parameter. Plain tensors only, so it can run where the module lives
    (pass it to :func:`student_autograd`)."""
    params = dict(module.named_parameters())
    for p in params.values():
        p.grad = None
    out, input_grads = gradients(partial(module, **kwargs), *inputs)
    return out, input_grads, {name: p.grad for name, p in params.items()}


def student_autograd(helper: Callable, *args: Any, what: str, **kwargs: Any) -> Any:
    """``helper(*args, **kwargs)`` next to the student's code (:func:`on_student_side`); an output cut
    off from autograd fails with a readable message instead of torch's RuntimeError."""
    try:
        return on_student_side(helper, *args, **kwargs)
    except RuntimeError as err:
        if "does not require grad" not in str(err):
            raise
        raise CheckFailed(f"{what}: the output is not connected to the inputs by autograd", "an output with a grad_fn",
                          "an output without one", "use only differentiable tensor operations: no .tolist(), "
                          "torch.tensor(...), .detach() or .numpy() on the way") from None


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, names: str) -> None:
    """Load an explicit state dict into the student's module (strict); wrong names or shapes fail
    with both lists of names and ``names`` (the parameter names the lab asks for) as the hint."""
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as err:
        raise CheckFailed(f"{what}: the parameters do not have the expected names and shapes",
                          sorted(state), sorted(module.state_dict()), f"the module must have {names}",
                          detail=str(err).splitlines()[0]) from None
