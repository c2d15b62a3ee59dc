"""The book builds with warnings as errors, publishes no solution code, and fails on a raising cell."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import LABS, all_labs, source_notebook
from autograder.notebook import is_answer
from tests.book_build import built_book  # noqa: F401  (the session's one build, shared with test_browser.py)

JB = [str(Path(sys.executable).parent / "jupyter-book"), "build"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(built_book):  # noqa: F811
    return built_book


def test_chapters_and_offline_assets_are_published(built):
    for lab in LABS:
        page = (built / Path(lab.chapter).with_suffix(".html")).read_text(encoding="utf-8")
        assert "_static/vendor/mathjax/tex-mml-chtml.js" in page, lab.chapter
        assert "cdn.jsdelivr.net" not in page and "cdnjs.cloudflare.com" not in page  # works offline
        assert "unpkg.com" not in page and "require.js" not in page, lab.chapter  # no widget manager
        assert 'class="lab-explorer"' in page, f"{lab.chapter} has no kernel-free explorer"
    assert list((built / "_images").glob("*.png")), "executed figures are missing"
    assert (built / "book" / "bibliography.html").is_file()


def test_no_solution_code_is_published(built):
    html = "\n".join(p.read_text(encoding="utf-8") for p in built.rglob("*.html"))
    assert not (built / "solutions").exists() and not (built / "labs").exists()
    for lab in all_labs():
        nb = nbformat.read(source_notebook(lab), as_version=4)
        for cell in filter(is_answer, nb.cells):
            body = cell.source.split("### BEGIN SOLUTION")[-1].split("### END SOLUTION")[0]
            for line in (ln.strip() for ln in body.splitlines()):
                if len(line) >= 40:
                    assert line not in html, f"solution code of {lab} published: {line!r}"


def test_a_chapter_that_raises_fails_the_build(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text("title: broken\nexecute:\n  execute_notebooks: force\n"
                                      "  allow_errors: false\n")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (book / "intro.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n"
        "# Broken\n\n```{code-cell} ipython3\nraise ValueError('a chapter bug')\n```\n")
    proc = subprocess.run([*JB, str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "a chapter bug" in proc.stdout + proc.stderr or "Executing notebook failed" in proc.stdout + proc.stderr
