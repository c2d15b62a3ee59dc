"""The course loop on a real JupyterHub: accounts, exchange, grading, feedback, export, isolation, browser.

Starts the hub of ``deploy/`` (PAM, LocalProcessSpawner, hub as root) on free loopback ports with
test OS users (``hubt<hex>-…``, removed at the end) and a fresh exchange; students run in the course
environment built by ``deploy/setup.py env`` (``HUB_TEST_ENV``, default
``/opt/transformers-course-test/env``). Needs root, configurable-http-proxy and Debian's chromium;
it runs only with ``HUB_TEST=1``: ``make test-hub`` (which ``.ci/run`` calls) builds or refreshes the
course environment and runs it. Timings and memory go to
``_build/test-artifacts/hub/metrics.json``, screenshots next to them.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
from conftest import solution_answers
from hubtest import ROOT, Kernel, TestHub, uid_processes

from autograder.mutants import parse_mutant

LAB = "lab01_tokenizers"
MUTANT = ROOT / "autograder" / "mutants" / LAB / "encode_frequency_order.py"
ARTIFACTS = ROOT / "_build" / "test-artifacts" / "hub"
COURSE_ENV = Path(os.environ.get("HUB_TEST_ENV", "/opt/transformers-course-test/env"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO_URL = "https://github.com/course-org/tlbl-course"  # what the book links to; git maps it to a local copy
RUN_CELLS = ("setup", "solution", "test")  # a student runs the setup, their answers and the visible tests

pytestmark = [
    pytest.mark.skipif(os.environ.get("HUB_TEST") != "1", reason="the JupyterHub loop runs with `make test-hub`"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the hub test creates OS users: run as root"),
    pytest.mark.skipif(not shutil.which("configurable-http-proxy"), reason="npm's configurable-http-proxy missing"),
    pytest.mark.skipif(not (COURSE_ENV / "bin" / "jupyterhub").exists(),
                       reason=f"no course environment at {COURSE_ENV} (python3 deploy/setup.py "
                              f"--prefix {COURSE_ENV.parent} env)"),
]

METRICS: dict = {}


def record(key: str, value) -> None:
    METRICS[key] = value
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "metrics.json").write_text(json.dumps(METRICS, indent=1))


@pytest.fixture(scope="module")
def hub():
    h = TestHub(COURSE_ENV, ["ana", "ben"])
    try:
        h.create()
        record("hub_start_s", round(h.start(), 1))
        yield h
    finally:
        h.close()


def nbgrader_id(cell: dict) -> tuple[str | None, bool, bool]:
    m = cell.get("metadata", {}).get("nbgrader", {})
    return m.get("grade_id"), bool(m.get("solution")), bool(m.get("grade"))


def do_lab(h: TestHub, name: str, answers: dict[str, str]) -> dict[str, str]:
    """As student ``name``: fetch, fill in the answers, run the visible tests in a kernel, save, submit."""
    course = h.settings["course_id"]
    r = h.api(name, "POST", "/assignments/fetch", json={"course_id": course, "assignment_id": LAB})
    assert r.ok, r.text
    path = f"{LAB}/{LAB}.ipynb"
    nb = h.api(name, "GET", f"/api/contents/{path}").json()["content"]
    kernel = Kernel(h, name, path)
    statuses = {}
    try:
        for i, cell in enumerate(nb["cells"]):
            gid, solution, grade = nbgrader_id(cell)
            if cell["cell_type"] != "code":
                continue
            if solution and gid in answers:
                cell["source"] = answers[gid]
            if not (gid == "setup" or solution or grade):
                continue  # try-it and experiment cells: not needed to submit
            status, outputs = kernel.execute(cell["source"] if isinstance(cell["source"], str)
                                             else "".join(cell["source"]))
            cell["outputs"], cell["execution_count"] = outputs, i + 1
            if grade:
                statuses[gid] = status
        record(f"memory_with_kernel_mb_{name.split('-', 1)[1]}", h.memory_mb().get(name))
    finally:
        kernel.close()
    r = h.api(name, "PUT", f"/api/contents/{path}", json={"type": "notebook", "format": "json", "content": nb})
    assert r.ok, r.text
    r = h.api(name, "POST", "/assignments/submit", json={"course_id": course, "assignment_id": LAB})
    assert r.ok and '"success": false' not in r.text, r.text
    return statuses


@pytest.fixture(scope="module")
def loop(hub):
    """The whole loop once; the tests below check its pieces."""
    h, (ana, ben) = hub, hub.students
    t_loop = time.perf_counter()
    for name in [h.instructor, ana, ben]:
        h.login(name)
    with ThreadPoolExecutor(3) as pool:
        spawns = dict(zip([h.instructor, ana, ben], pool.map(h.spawn, [h.instructor, ana, ben])))
    record("spawn_s", {k.split("-", 1)[1]: round(v, 1) for k, v in spawns.items()})
    record("memory_idle_mb", {k.split("-", 1)[-1]: v for k, v in h.memory_mb().items()})

    t = time.perf_counter()
    released = h.course("exchange", "release", LAB)
    record("release_s", round(time.perf_counter() - t, 1))

    correct = solution_answers(LAB)
    buggy = {**correct, **parse_mutant(MUTANT).cells}
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        visible = dict(zip([ana, ben], pool.map(do_lab, [h, h], [ana, ben], [correct, buggy])))
    record("students_work_s", round(time.perf_counter() - t, 1))
    record("memory_after_kernels_mb", {k.split("-", 1)[-1]: v for k, v in h.memory_mb().items()})

    t = time.perf_counter()
    collected = h.course("exchange", "collect", LAB)
    graded = h.course("grade", LAB, "autograder/submitted")
    record("collect_grade_s", round(time.perf_counter() - t, 1))
    returned = h.course("exchange", "feedback", LAB)
    exported = h.course("exchange", "export", LAB, "--roster", str(h.roster))

    feedback = {}
    for name in (ana, ben):
        r = h.api(name, "POST", "/assignments/fetch_feedback", json={"course_id": h.settings["course_id"],
                                                                   "assignment_id": LAB})
        assert r.ok, r.text
        pages = []
        listing = h.api(name, "GET", f"/api/contents/{LAB}/feedback")
        for stamp in listing.json()["content"] if listing.ok else []:
            for f in h.api(name, "GET", f"/api/contents/{stamp['path']}").json()["content"]:
                pages.append((f["path"], h.api(name, "GET", f"/api/contents/{f['path']}").json()["content"]))
        feedback[name] = pages
    record("loop_s", round(time.perf_counter() - t_loop, 1))
    out = Path(h.settings["course_root"]) / "grades" / LAB
    with open(out / "grades.csv", newline="") as f:
        grades = {row["student"]: row for row in csv.DictReader(f)}
    return {"released": released.stdout, "visible": visible, "collected": collected.stdout,
            "graded": graded.stdout, "returned": returned.stdout, "exported": exported.stdout,
            "feedback": feedback, "grades": grades, "out": out}


def test_loop_release_fetch_submit_collect(hub, loop):
    ana, ben = hub.students
    assert "lab01_tokenizers" in loop["released"]
    assert set(loop["visible"][ana].values()) == {"ok"}, loop["visible"]  # the solution passes the visible tests
    assert loop["visible"][ben], "the buggy student ran the visible tests"
    for name in (ana, ben):
        assert name in loop["collected"]
        nb = Path(hub.settings["course_root"]) / "autograder" / "submitted" / name / LAB / f"{LAB}.ipynb"
        assert nb.is_file() and nb.stat().st_uid == os.stat(hub.settings["course_root"]).st_uid


def test_loop_grades_feedback_and_export(hub, loop):
    ana, ben = hub.students
    grades = loop["grades"]
    assert set(grades) == {ana, ben}, loop["graded"]
    top = float(grades[ana]["max_score"])
    assert float(grades[ana]["score"]) == top > 0
    assert float(grades[ben]["score"]) < top and float(grades[ben]["encode_tests"]) == 0, grades[ben]
    for name in (ana, ben):
        pages = loop["feedback"][name]
        assert len(pages) == 1, (name, [p for p, _ in pages], loop["returned"])
        html = pages[0][1]
        score = re.search(r"<h1>[^<]*?(\d+(?:\.\d+)?) / (\d+(?:\.\d+)?)", html)
        assert score, html[:500]
        assert float(score.group(1)) == float(grades[name]["score"]) and float(score.group(2)) == top
        other = ben if name == ana else ana
        assert name in html and other not in html  # exactly their own feedback
        assert "_hidden(" not in html and "HIDDEN TESTS" not in html  # our page, never nbgrader's
    with open(loop["out"] / "canvas.csv", newline="") as f:
        canvas = list(csv.reader(f))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0].strip() == "Points Possible" and float(canvas[1][5]) == top
    assert {row[3]: float(row[5]) for row in canvas[2:]} == {n: float(grades[n]["total"]) for n in (ana, ben)}
    assert {row[0] for row in canvas[2:]} == {"Student Ana", "Student Ben"}  # names from the roster
    with open(loop["out"] / "moodle.csv", newline="") as f:
        moodle = list(csv.DictReader(f))
    assert {row["Username"] for row in moodle} == {ana, ben}


def test_isolation(hub, loop):
    h, (ana, ben) = hub, hub.students
    # a wrong password is refused, by the form and by the token API
    assert h.form_login(ana, "not-the-password").status_code == 403
    assert h.token(ana, "not-the-password").status_code == 403
    # another student's server, and the instructor's, refuse a student's token
    assert h.api(ben, "GET", "/api/contents", as_user=ana).status_code == 403
    assert h.api(h.instructor, "GET", "/formgrader", as_user=ana).status_code == 403
    # formgrader: the instructor's own tab only; students have no formgrader, course list or create-assignment
    assert h.api(ana, "GET", "/formgrader").status_code == 404
    assert h.api(h.instructor, "GET", "/formgrader/manage_assignments").status_code == 200
    for name, off in ((ana, {"formgrader", "create-assignment", "course-list"}), (h.instructor, {"formgrader"})):
        page = h.api(name, "GET", "/lab").text
        config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))
        assert {f"@jupyter/nbgrader:{x}" for x in off} <= set(config["disabledExtensions"]), (name, config)
        assert "@jupyter/nbgrader:assignment-list" not in config["disabledExtensions"]
    assert "@jupyter/nbgrader:create-assignment" not in config["disabledExtensions"]  # the instructor has it
    # files: homes are 0700; a student cannot read another's work or the instructor's solutions
    for name in [h.instructor, ana, ben]:
        assert os.stat(f"/home/{name}").st_mode & 0o777 == 0o700
    theirs = f"/home/{ben}/{LAB}/{LAB}.ipynb"
    solutions = f"{h.settings['course_root']}/solutions/{LAB}/{LAB}.ipynb"
    for target in (theirs, solutions):
        r = h.run_as(ana, ["cat", target], check=False)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (target, r.stdout[:100])
    # the exchange: root 1777; the course folder belongs to the instructor; feedback not listable
    ex = Path(h.settings["exchange_root"])
    assert ex.stat().st_mode & 0o7777 == 0o1777
    course = ex / h.settings["course_id"]
    assert course.stat().st_uid == os.stat(f"/home/{h.instructor}").st_uid
    assert h.run_as(ana, ["ls", str(course / "feedback")], check=False).returncode != 0
    assert h.run_as(ana, ["ls", str(course / "inbound")], check=False).returncode != 0
    # each server runs as its own OS user, from the course environment
    servers = [p for p in uid_processes({pwd.getpwnam(ana).pw_uid}) if "jupyterhub-singleuser" in " ".join(p.cmdline())]
    assert servers and all(str(COURSE_ENV) in " ".join(p.cmdline()) for p in servers)


def launch_link(h: TestHub, tmp: Path) -> str:
    """Build chapter 1 alone (not executed) with launch buttons on; return its JupyterHub link."""
    import yaml

    book = tmp / "book-src"
    (book / "book").mkdir(parents=True)
    shutil.copy2(ROOT / "book" / "01_tokenizers.md", book / "book" / "01_tokenizers.md")
    for d in ("bib", "_static", "_ext"):  # what _config.yml refers to
        if (ROOT / "book" / d).is_dir():
            shutil.copytree(ROOT / "book" / d, book / "book" / d)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert not config["launch_buttons"]["jupyterhub_url"] and not config["repository"]["url"]  # off by default
    config["launch_buttons"]["jupyterhub_url"] = h.url
    config["repository"]["url"] = REPO_URL
    config["execute"]["execute_notebooks"] = "off"
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/01_tokenizers\n")
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(book), "--path-output",
                    str(tmp / "out"), "-q"], check=True, capture_output=True, timeout=300)
    html = (tmp / "out" / "_build" / "html" / "book" / "01_tokenizers.html").read_text()
    links = re.findall(r'href="([^"]*/hub/user-redirect/git-pull\?[^"]*)"', html)
    assert links, "no JupyterHub launch button in the built chapter"
    return links[0].replace("&amp;", "&")


def course_repo(tmp: Path) -> Path:
    """A bare git repository with the chapter and lab 1, standing in for REPO_URL."""
    work = tmp / "course-repo"
    (work / "book").mkdir(parents=True)
    shutil.copy2(ROOT / "book" / "01_tokenizers.md", work / "book")
    shutil.copytree(ROOT / "labs" / LAB, work / "labs" / LAB)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(work)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "course"], check=True)
    bare = tmp / "tlbl-course.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
    return bare


def test_browser_lab_feedback_and_launch_link(hub, loop):
    """Debian's chromium: log in, open the lab, run a cell, open the feedback, follow the book's link."""
    from playwright.sync_api import expect, sync_playwright

    h, ana = hub, hub.students[0]
    tmp = h.work / "browser"
    tmp.mkdir()
    link = launch_link(h, tmp)
    q = parse_qs(urlparse(link).query)
    assert link.startswith(f"{h.url}/hub/user-redirect/git-pull?")
    assert q["repo"] == [REPO_URL] and q["urlpath"] == ["lab/tree/tlbl-course/book/01_tokenizers.md"], q
    bare = course_repo(tmp)
    gitconfig = Path(f"/home/{ana}/.gitconfig")
    gitconfig.write_text(f'[url "{bare}"]\n\tinsteadOf = {REPO_URL}\n[safe]\n\tdirectory = *\n')
    shutil.chown(gitconfig, ana)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "failure.png").unlink(missing_ok=True)
    stamp = loop["feedback"][ana][0][0]
    expect.set_options(timeout=90_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(90_000)
        try:
            browse(page, h, ana, stamp, link)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            browser.close()
    assert h.api(ana, "GET", "/api/contents/tlbl-course/book/01_tokenizers.md").ok


def browse(page, h: TestHub, ana: str, stamp: str, link: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{h.url}/hub/login")
    page.fill("#username_input", ana)
    page.fill("#password_input", h.passwords[ana])
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{ana}/lab"))
    page.goto(f"{h.url}/user/{ana}/lab/tree/{LAB}/{LAB}.ipynb")
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    expect(cell).to_be_visible()
    expect(page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle"))).to_be_visible()  # kernel ready
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputPrompt")).to_contain_text(re.compile(r"\[\d+\]"))
    page.screenshot(path=str(ARTIFACTS / "1-lab-cell-run.png"))
    page.get_by_role("menuitem", name="Nbgrader").click()
    expect(page.get_by_role("menuitem", name="Assignment List")).to_be_visible()
    assert page.get_by_role("menuitem", name="Formgrader").count() == 0
    page.screenshot(path=str(ARTIFACTS / "2-nbgrader-menu.png"))
    page.keyboard.press("Escape")
    page.goto(f"{h.url}/user/{ana}/files/{quote(stamp)}")
    expect(page.locator("h1")).to_contain_text(re.compile(r"\d+ / \d+"))
    assert ana in page.content()
    page.screenshot(path=str(ARTIFACTS / "3-feedback.png"), full_page=True)
    t = time.perf_counter()
    page.goto(link)
    page.wait_for_url(re.compile(r"/lab/tree/tlbl-course/book/01_tokenizers\.md"), timeout=120_000)
    chapter = page.locator(".jp-Notebook").last  # the chapter, opened as a notebook (jupytext)
    expect(chapter.locator("h1", has_text="1. Tokenizers").first).to_be_visible()
    record("launch_link_s", round(time.perf_counter() - t, 1))
    page.screenshot(path=str(ARTIFACTS / "4-launch-link.png"))


def test_teardown_leaves_no_user_process(hub, loop):
    left = hub.stop_hub()
    assert not left, left
    record("metrics_note", "measured on the CI machine (2 cores); contention makes them pessimistic")
