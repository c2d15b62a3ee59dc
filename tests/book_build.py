"""One build of the book per test session, shared by tests/test_book.py and tests/test_browser.py.

Import the fixture into a test module (``from tests.book_build import built_book``) and take
``built_book`` (the ``_build/html`` folder) as an argument. The build is the README's
(``jupyter-book build . -W -n --keep-going``); set ``BOOK_PATH_OUTPUT=/some/dir`` to build outside the
work tree (the html is then under ``/some/dir/_build/html``), e.g. when several builds must not collide;
set ``BOOK_HTML=/path/to/_build/html`` to test an existing build without building.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import ROOT

JB = [str(Path(sys.executable).parent / "jupyter-book"), "build"]


def build_book(path_output: Path | None = None) -> Path:
    """Build the book (warnings are errors) and return its html folder; raises with the log's tail."""
    cmd = [*JB, ".", "-W", "-n", "--keep-going"]
    if path_output is not None:
        cmd += ["--path-output", str(path_output)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError("the book does not build:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    return (path_output or ROOT) / "_build" / "html"


@pytest.fixture(scope="session")
def built_book() -> Path:
    if os.environ.get("BOOK_HTML"):
        return Path(os.environ["BOOK_HTML"])
    out = os.environ.get("BOOK_PATH_OUTPUT")
    return build_book(Path(out) if out else None)
