"""Where things live: the repository root, labs, their source and release notebooks, mutants."""

from __future__ import annotations

from pathlib import Path

AUTOGRADER_DIR = Path(__file__).resolve().parent
ROOT = AUTOGRADER_DIR.parent
SOLUTIONS = ROOT / "solutions"
LABS = ROOT / "labs"
MUTANTS = AUTOGRADER_DIR / "mutants"


class CourseError(RuntimeError):
    """A lab name or course file that does not exist; the message says what does."""


def all_labs() -> list[str]:
    """Names of every lab with a source folder, in order (``lab01_tokenizers``, …)."""
    return sorted(p.name for p in SOLUTIONS.glob("lab*") if p.is_dir())


def resolve_lab(name: str) -> str:
    """Full lab name from a full name, ``lab01`` or ``1``."""
    labs = all_labs()
    if name in labs:
        return name
    prefix = f"lab{int(name):02d}" if name.isdigit() else name
    matches = [lab for lab in labs if lab.split("_")[0] == prefix]
    if len(matches) != 1:
        raise CourseError(f"unknown lab {name!r}; the course has: {', '.join(labs) or 'none'}")
    return matches[0]


def source_notebook(lab: str) -> Path:
    """The instructor notebook (solutions and hidden tests) of ``lab``."""
    return SOLUTIONS / lab / f"{lab}.ipynb"


def release_notebook(lab: str) -> Path:
    """The generated student notebook of ``lab``."""
    return LABS / lab / f"{lab}.ipynb"
