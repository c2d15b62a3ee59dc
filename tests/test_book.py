"""The book builds with warnings as errors, publishes no solution code, and fails on a raising cell."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import ROOT, all_labs, source_notebook
from autograder.notebook import is_answer

JB = [str(Path(sys.executable).parent / "jupyter-book"), "build"]


@pytest.fixture(scope="module")
def built():
    proc = subprocess.run([*JB, ".", "-W", "-n", "--keep-going"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ROOT / "_build" / "html"


def test_chapters_and_widget_assets_are_published(built):
    page = (built / "book" / "01_tokenizers.html").read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" in page  # the explorer's saved state
    assert "_static/vendor/embed-amd.js" in page and "_static/vendor/mathjax/tex-mml-chtml.js" in page
    assert "cdn.jsdelivr.net" not in page and "cdnjs.cloudflare.com" not in page  # works offline
    assert (built / "_static" / "vendor" / "embed-amd.js").is_file()
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
