"""The built book in a real browser (Debian's chromium, driven by Playwright), page by page.

For the intro and every chapter of the manifest (``autograder.course.LABS``; a new chapter is
tested as soon as its lab is listed there):

- no console error and no uncaught exception;
- no request to any host other than the local server (each is aborted and reported);
- every ``.lab-explorer`` responds: moving each control (a slider to each other value, a dropdown to
  each other option, a checkbox both ways, typing into a text box) changes ``.lab-explorer-view``;
- no display equation runs past the text column unless it scrolls in its own box;
- every image has a text alternative that is not a file name.

Screenshots of every page go to ``$BROWSER_ARTIFACTS`` (default ``_build/browser``) for CI artifacts.
Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from autograder.course import LABS, ROOT
from tests.book_build import built_book  # noqa: F401  (the session's one build of the book)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ["book/intro", *(Path(lab.chapter).with_suffix("").as_posix() for lab in LABS)]
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "_build" / "browser"))
SAMPLE_TEXT = "Grüße, 世界! 12345 tokenizers"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM} (apt-get install chromium)"),
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def site(built_book):  # noqa: F811
    """The built html served on a free loopback port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def _open(browser, site: str, page_name: str):
    """A fresh page at ``page_name`` with problems recorded; returns (page, errors, foreign requests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    local = urlparse(site).netloc

    def route(r):
        url = urlparse(r.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != local:
            foreign.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"failed request: {r.url}")
            if urlparse(r.url).netloc == local else None)
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(f"{site}/{page_name}.html", wait_until="load")
    # MathJax 3 typesets after load: wait for it (pages without maths have no MathJax at all)
    page.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)")
    page.evaluate("() => window.MathJax && window.MathJax.startup.promise")
    return context, page, errors, foreign


def _view(explorer) -> str:
    return explorer.locator(".lab-explorer-view").inner_html()


def _move_every_control(explorer) -> list[str]:
    """Move each control of one explorer through its values; the names of moves that changed nothing."""
    dead: list[str] = []
    controls = explorer.locator(".lab-explorer-controls").locator("input, select, textarea")
    for n in range(controls.count()):
        el = controls.nth(n)
        tag = el.evaluate("e => e.tagName.toLowerCase()")
        kind = el.get_attribute("type") or tag
        moves: list[tuple[str, object]] = []
        if kind == "range":
            lo, hi, now = (int(float(el.get_attribute(a) or d)) for a, d in (("min", 0), ("max", 0), ("value", 0)))
            moves = [("range", v) for v in range(lo, hi + 1) if v != now] + [("range", now)]
        elif tag == "select":
            options = el.locator("option")
            now = el.evaluate("e => e.selectedIndex")
            moves = [("select", i) for i in range(options.count()) if i != now] + [("select", now)]
        elif kind == "checkbox":
            moves = [("checkbox", None), ("checkbox", None)]
        elif tag == "textarea" or kind in ("text", "search", ""):
            moves = [("text", SAMPLE_TEXT), ("text", SAMPLE_TEXT + " and more")]
        for how, value in moves:
            before = _view(explorer)
            if how == "range":
                el.evaluate("(e, v) => { e.value = String(v); e.dispatchEvent(new Event('input', {bubbles: true}));"
                            " e.dispatchEvent(new Event('change', {bubbles: true})); }", value)
            elif how == "select":
                el.select_option(index=value)
            elif how == "checkbox":
                el.click()
            else:
                el.fill(str(value))
            if _view(explorer) == before:
                label = el.evaluate("e => (e.closest('label') || e).textContent.trim().slice(0, 40)")
                dead.append(f"{how} {label!r} → {value!r}")
    return dead


def _overflowing_equations(page) -> list[str]:
    """Display equations wider than the column that do not scroll in their own box."""
    return page.evaluate("""() => {
      const bad = [];
      const column = document.querySelector('#main-content, main, .bd-article, article, body');
      const right = column.getBoundingClientRect().right;
      document.querySelectorAll('div.math, mjx-container[display="true"]').forEach(el => {
        const box = el.getBoundingClientRect();
        const scrolls = ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
        if (box.right > right + 1 || (el.scrollWidth > el.clientWidth + 1 && !scrolls))
          bad.push(el.textContent.trim().slice(0, 60));
      });
      return [...new Set(bad)];
    }""")


def _bad_alt_text(page) -> list[str]:
    return page.evaluate(r"""() => [...document.querySelectorAll('img')]
      .filter(img => !img.closest('.lab-explorer-controls'))
      .map(img => img.getAttribute('alt'))
      .filter(alt => alt === null || alt.trim() === '' || /\.(png|jpe?g|svg|gif)$/i.test(alt.trim()))
      .map(alt => String(alt))""")


@pytest.mark.parametrize("page_name", PAGES)
def test_page_in_browser(browser, site, artifacts, page_name):
    context, page, errors, foreign = _open(browser, site, page_name)
    try:
        explorers = page.locator(".lab-explorer")
        dead = {}
        for n in range(explorers.count()):
            explorer = explorers.nth(n)
            explorer.scroll_into_view_if_needed()
            moves = _move_every_control(explorer)
            if moves:
                dead[explorer.get_attribute("data-explorer") or str(n)] = moves
        overflow = _overflowing_equations(page)
        alts = _bad_alt_text(page)
        page.screenshot(path=str(artifacts / f"{re.sub(r'[^A-Za-z0-9_]', '_', page_name)}.png"), full_page=True)
    finally:
        context.close()
    problems = {"console errors / failed requests": errors, "requests to other hosts (aborted)": foreign,
                "explorer controls that change nothing": dead,
                "display equations cut off at the column edge": overflow,
                "images whose alt text is empty or a file name": alts}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"{page_name}: {problems}"


def test_every_chapter_has_a_responsive_explorer(built_book):  # noqa: F811
    """The convention: each chapter of the manifest carries at least one kernel-free explorer."""
    missing = [lab.chapter for lab in LABS
               if 'class="lab-explorer"' not in (built_book / Path(lab.chapter).with_suffix(".html")).read_text()]
    assert not missing, f"chapters without a .lab-explorer: {missing}"


def test_tokenizer_explorer_encodes_like_python(browser, site, built_book):  # noqa: F811
    """The page's JavaScript BPE gives the ids of labsupport's encoder for typed text."""
    from labsupport import data
    from labsupport.tokenizers import BPEVocab, encode, train_bpe

    if "ex-" not in (built_book / "book" / "01_tokenizers.html").read_text():
        pytest.skip("chapter 1 has no tokenizer explorer")
    context, page, errors, _ = _open(browser, site, "book/01_tokenizers")
    try:
        explorer = page.locator('.lab-explorer[data-explorer="tokenizer"]')
        text = "The quick brown fox, naïve café 🤗 — isn't 2026\n  spaced   out"
        explorer.locator("textarea").fill(text)
        ids = explorer.locator(".lab-explorer-view").get_attribute("data-ids")
        n_merges = int(explorer.locator("select").input_value())
    finally:
        context.close()
    train_text, _ = data.shakespeare_split()
    bpe = BPEVocab(train_bpe(train_text, 256 + 2000)).truncated(n_merges)
    assert [int(i) for i in ids.strip("[]").split(",")] == encode(text, bpe)
    assert not errors
