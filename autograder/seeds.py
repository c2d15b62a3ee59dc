"""Per-student hidden inputs: each part's hidden checks draw their inputs from a seed derived from an
instructor secret, the student, the lab and the part, so the default seeds written in
``labsupport/checks/labNN.py`` (public) tell a student nothing about the inputs they are graded on.

- The **secret** lives in the instructor's configuration, ``$XDG_CONFIG_HOME/transformers-course/
  grader_secret`` (default ``~/.config/…``), created with mode 0600 on first use; the environment
  variable :data:`SECRET_ENV` overrides it (CI, tests). It is never in the repository, never sent to
  the sandbox (which sees only the student's RNG seed) and never in feedback.
- The **part seed** is HMAC-SHA256(secret, lab, student, part), 31 bits (:func:`part_seed`); it is
  stored with the part (``PartResult.hidden_seed``) in the gradebook, and ``regrade`` reuses the
  stored seeds, so a regrade sees the same inputs even if the secret changed.
- **How it reaches the checks** without any change to the labs: the grader rewrites the calls in the
  test cell's hidden block (between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``) so each
  call ``f(...)`` becomes ``__hidden_call__(f, k)(...)``. When ``f`` is a course check
  (``labsupport.checks…``) that takes a ``seed`` argument, it is called with ``seed=part_seed + k``
  (``k`` numbers the calls of the block, so two checks of one cell get different seeds); any other
  call is unchanged. Visible checks (outside the block) keep their fixed inputs.

Without a secret (``validate``, and :func:`autograder.grade.grade_notebook` by default) nothing is
rewritten: hidden checks use their default seeds, so validation stays reproducible.

>>> alice = part_seed(b"k", "alice", "lab01_tokenizers", "merge_tests")
>>> alice == part_seed(b"k", "alice", "lab01_tokenizers", "merge_tests")
True
>>> alice != part_seed(b"k", "bob", "lab01_tokenizers", "merge_tests")
True
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import inspect
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECRET_ENV = "TRANSFORMERS_COURSE_GRADER_SECRET"
BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
CALL_NAME = "__hidden_call__"
CHECKS_PREFIX = "labsupport.checks"
SEED_BITS = 31


def secret_path() -> Path:
    """Where the instructor's secret is kept (outside the repository)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "transformers-course" / "grader_secret"


def load_secret(create: bool = True) -> bytes:
    """The instructor's secret: :data:`SECRET_ENV` if set, else the file (created 0600 if missing)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    path = secret_path()
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another grader created it meanwhile
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as f:
        secret = f.read().strip()
    if not secret:
        raise RuntimeError(f"the grader secret {path} is empty: delete it to create a new one")
    return secret.encode()


def part_seed(secret: bytes, student: str, lab: str, part: str) -> int:
    """The hidden-input seed of one part for one student (HMAC-SHA256, 31 bits)."""
    msg = "\0".join((lab, student, part)).encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def hidden_lines(code: str) -> tuple[int, int] | None:
    """The (first, last) line numbers of the hidden block of a test cell, None if it has none."""
    begin = end = None
    for n, line in enumerate(code.splitlines(), start=1):
        if BEGIN in line and begin is None:
            begin = n
        elif END in line and begin is not None:
            end = n
            break
    if begin is None:
        return None
    return begin, end if end is not None else len(code.splitlines()) + 1


class _Wrap(ast.NodeTransformer):
    def __init__(self, first: int, last: int):
        self.first, self.last, self.count = first, last, 0

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if not self.first < node.lineno < self.last:
            return node
        k = self.count
        self.count += 1
        wrapped = ast.Call(func=ast.Name(CALL_NAME, ast.Load()), args=[node.func, ast.Constant(k)], keywords=[])
        return ast.copy_location(ast.Call(func=wrapped, args=node.args, keywords=node.keywords), node)


def seed_hidden_calls(code: str) -> ast.Module | str:
    """``code`` with the calls of its hidden block routed through ``__hidden_call__`` (an AST to
    compile), or ``code`` unchanged when it has no hidden block."""
    lines = hidden_lines(code)
    if lines is None:
        return code
    tree = ast.parse(code)
    tree = _Wrap(*lines).visit(tree)
    return ast.fix_missing_locations(tree)


def takes_seed(func: Any) -> bool:
    """Is ``func`` a course check with a ``seed`` parameter?"""
    if not callable(func) or not str(getattr(func, "__module__", "") or "").startswith(CHECKS_PREFIX):
        return False
    try:
        return "seed" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


class HiddenCall:
    """``__hidden_call__`` in a test cell's namespace: gives course checks the part's seeds."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, func: Any, k: int) -> Callable:
        if not takes_seed(func):
            return func
        seed = (self.seed + k) % (1 << SEED_BITS)

        def seeded(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **{**kwargs, "seed": seed})

        return seeded
