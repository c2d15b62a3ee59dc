"""Generate the student release (``labs/``) from the instructor source (``solutions/``) with nbgrader."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.course import AUTOGRADER_DIR, LABS_DIR, CourseError
from autograder.course import lab as lab_entry


def release(lab: str, release_dir: Path = LABS_DIR) -> Path:
    """Run ``nbgrader generate_assignment`` for ``lab`` (in the manifest) into ``release_dir``; return its folder."""
    entry = lab_entry(lab)
    if not entry.solution_dir.is_dir():
        raise CourseError(f"no source folder {entry.solution_dir}")
    lab = entry.id
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", lab, "--force", "--no-db",
           f"--CourseDirectory.release_directory={release_dir}", "--log-level=WARN"]
    proc = subprocess.run(cmd, cwd=AUTOGRADER_DIR, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CourseError(f"nbgrader generate_assignment {lab} failed:\n{proc.stdout}{proc.stderr}")
    _remove_caches(release_dir / lab)
    return release_dir / lab


def _remove_caches(folder: Path) -> None:
    for junk in [*folder.rglob("__pycache__"), *folder.rglob(".ipynb_checkpoints")]:
        shutil.rmtree(junk, ignore_errors=True)


def out_of_sync(lab: str) -> list[str]:
    """Files of ``labs/lab`` that differ from a fresh release (empty when in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = release(lab, Path(tmp))
        committed = LABS_DIR / lab
        if not committed.is_dir():
            return [f"{committed} is missing"]
        return _tree_differences(fresh, committed)


def _tree_differences(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", ".ipynb_checkpoints", ".hypothesis"])
    diffs = [f"only in fresh release: {n}" for n in cmp.left_only]
    diffs += [f"only in labs/: {n}" for n in cmp.right_only]
    diffs += [f"differs: {n}" for n in cmp.diff_files]
    for sub in cmp.common_dirs:
        diffs += _tree_differences(a / sub, b / sub)
    return diffs
