#!/usr/bin/env python3
"""Set up the course's JupyterHub on one Linux machine (run as root, any Python ≥ 3.11, stdlib only).

    python3 deploy/setup.py env                       # 1. the course environment students run in
    python3 deploy/setup.py course --instructor NAME   # 2. groups, exchange, course folder, hub settings
    python3 deploy/setup.py users roster.csv           # 3. one OS account per student (and TA)
    jupyterhub -f deploy/jupyterhub_config.py          # 4. the hub (as root; see deploy/README.md)

Everything lives under ``--prefix`` (default ``/opt/transformers-course``)::

    PREFIX/env/                     the course environment (a venv: the course, JupyterLab 4, nbgrader's
                                    extension, nbgitpuller, jupyterhub-singleuser), world-readable
    PREFIX/jupyter/student/         Jupyter config every student server gets (JUPYTER_CONFIG_PATH):
                                    nbgrader's exchange and course id, formgrader and "create
                                    assignment" switched off
    PREFIX/jupyter/instructor/      the same for instructors, plus formgrader on their course folder
    PREFIX/hub/settings.json        what ``deploy/jupyterhub_config.py`` reads (groups, ports, paths)
    PREFIX/hub/                     the hub's own state (database, cookie secret), root only, 0700

Why these steps, each of which was a trap:

- *Students' Python must be readable by students.* A project ``.venv`` whose interpreter sits under
  ``/root`` (pyenv) cannot be executed by anyone else. ``env`` builds a separate venv under PREFIX from
  a world-readable interpreter (default ``/usr/bin/python3``, Debian 12's 3.11) and installs the course
  *non-editable*: a student's kernel imports ``labsupport`` from the environment, never from the
  instructor's checkout (which holds ``solutions/`` and hidden tests, and stays in a 0700 home).
- *Student id = OS user name.* nbgrader takes the submitting user from the OS (it uses
  ``JUPYTERHUB_USER`` only for ``jovyan``), and ``collect`` cross-checks the owner of each submission.
  So each student is an OS account whose name is the hub login and the gradebook id.
- *Homes are 0700.* Debian's ``useradd`` makes 0755 homes, where students could read each other's
  work and the instructor's sources.
- *The exchange root is 1777 and the course folder exists, owned by the instructor, before any student
  logs in* (otherwise the first student to fetch creates it and owns it, and releases fail).
"""

from __future__ import annotations

import argparse
import csv
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "prefix": "/opt/transformers-course",
    "course_id": "transformers",
    "exchange_root": "/srv/nbgrader/exchange",
    "students_group": "course-students",
    "instructors_group": "course-instructors",
    "ip": "",  # all interfaces; put TLS in front (see book/hub.md)
    "port": 8000,
    "hub_port": 8081,
    "proxy_api_port": 8001,
}
# The nbgrader lab plugins and server extensions a student must not have.
STUDENT_OFF_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                       "@jupyter/nbgrader:course-list"]
STUDENT_OFF_SERVER = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]
# Formgrader cannot be framed inside Lab under JupyterHub's Content-Security-Policy (and the policy stays
# as it is): instructors open /user/NAME/formgrader in a tab of its own, so Lab's framing plugin is off.
INSTRUCTOR_OFF_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list"]


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def world_readable(path: Path) -> None:
    """Make the tree at ``path`` readable (not writable) by everyone; its parents must be traversable."""
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise SystemExit(f"{parent} is not traversable by other users, so students could not use {path}: "
                             "choose a --prefix elsewhere (e.g. under /opt)")
    run("chmod", "-R", "go+rX,go-w", str(path))


# --- 1. the course environment --------------------------------------------------------------------
def build_env(prefix: Path, python: str, repo: Path = REPO, extras: str = "course,hub") -> Path:
    """A venv at PREFIX/env with the course installed non-editable, readable (not writable) by all.

    Idempotent: the dependencies are installed again only when ``pyproject.toml`` or
    ``constraints.txt`` changed (a stamp keeps their hash); the course itself (``labsupport``,
    ``autograder``) is reinstalled every time, which takes seconds.
    """
    env = prefix / "env"
    py = env / "bin" / "python"
    digest = hashlib.sha256((repo / "pyproject.toml").read_bytes() + (repo / "constraints.txt").read_bytes()
                            + python.encode()).hexdigest()
    stamp = env / ".course-deps"
    if not py.exists():
        run(python, "-m", "venv", str(env))
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "-c", str(repo / "constraints.txt")]
    with tempfile.TemporaryDirectory() as tmp:  # build from a copy: nothing is written into the checkout
        src = Path(tmp) / "course"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(repo / name, src / name)
        for package in ("labsupport", "autograder"):
            shutil.copytree(repo / package, src / package, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "submitted", "autograded", "feedback", "gradebook.db"))
        if not stamp.is_file() or stamp.read_text() != digest:
            run(*pip, f"{src}[{extras}]")  # the course's dependencies and its extras, pinned
            stamp.write_text(digest)
        run(*pip, "--no-deps", "--force-reinstall", "--no-cache-dir", str(src))  # the course itself, fresh
    # Chapters are MyST notebooks (.md): JupyterLab opens them as notebooks through jupytext, so a
    # book's launch link lands on a runnable chapter (Open With > Editor still shows the text).
    write(env / "share" / "jupyter" / "lab" / "settings" / "overrides.json", json.dumps(
        {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook"}},
         # no "get notified about Jupyter news?" prompt, no calls from students' browsers to jupyter.org
         "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}},
        indent=1))
    world_readable(env)
    return env


# --- 2. the course: groups, exchange, Jupyter config, hub settings --------------------------------
def ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        run("groupadd", "--force", name)


def nbgrader_common(settings: dict) -> str:
    return ("# written by deploy/setup.py: the course's nbgrader exchange (students and instructors)\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {settings['course_id']!r}\n"
            f"c.Exchange.root = {settings['exchange_root']!r}\n"
            "c.Exchange.path_includes_course = False\n")


def nbgrader_instructor(settings: dict) -> str:
    """The instructor's formgrader works on the course folder of their checkout (``REPO/autograder``)."""
    course = Path(settings["course_root"])
    return (nbgrader_common(settings)
            + f"c.CourseDirectory.root = {str(course / 'autograder')!r}\n"
            "c.CourseDirectory.source_directory = '../solutions'\n"
            "c.CourseDirectory.release_directory = '../labs'\n")


def write_jupyter_config(settings: dict) -> None:
    base = Path(settings["config_dir"])
    write(base / "student" / "nbgrader_config.py", nbgrader_common(settings))
    write(base / "student" / "jupyter_server_config.json", json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in STUDENT_OFF_SERVER}}}, indent=1))
    write(base / "student" / "labconfig" / "page_config.json", json.dumps(
        {"disabledExtensions": {name: True for name in STUDENT_OFF_PLUGINS}}, indent=1))
    write(base / "instructor" / "nbgrader_config.py", nbgrader_instructor(settings))
    write(base / "instructor" / "labconfig" / "page_config.json", json.dumps(
        {"disabledExtensions": {name: True for name in INSTRUCTOR_OFF_PLUGINS}}, indent=1))
    world_readable(base)


def prepare_exchange(settings: dict) -> None:
    """Exchange root 1777; the course folder (and its inbound/outbound/feedback) owned by the instructor.

    Created now, before any student logs in, so no student can take the course folder first.
    """
    root = Path(settings["exchange_root"])
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o1777)
    inst = pwd.getpwnam(settings["instructor"])
    course = root / settings["course_id"]
    modes = {course: 0o755, course / "outbound": 0o755, course / "inbound": 0o2733, course / "feedback": 0o711}
    for path, mode in modes.items():
        if path.exists() and path.stat().st_uid != inst.pw_uid:
            raise SystemExit(f"{path} exists and is not owned by {inst.pw_name}: someone created it first; "
                             f"check its contents, then remove it and run setup again")
        path.mkdir(exist_ok=True)
        os.chown(path, inst.pw_uid, inst.pw_gid)
        path.chmod(mode)


def configure_course(settings: dict) -> Path:
    """Groups, the instructor's account, exchange, Jupyter config and the hub's settings file."""
    ensure_group(settings["students_group"])
    ensure_group(settings["instructors_group"])
    add_user(settings["instructor"], settings["instructors_group"], password=None)
    prepare_exchange(settings)
    write_jupyter_config(settings)
    state = Path(settings["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    path = Path(settings["prefix"]) / "hub" / "settings.json"
    write(path, json.dumps(settings, indent=1) + "\n", 0o600)
    return path


def settings_for(args: argparse.Namespace) -> dict:
    prefix = Path(args.prefix).resolve()
    inst = args.instructor
    home = Path(pwd.getpwnam(inst).pw_dir) if _user_exists(inst) else Path("/home") / inst
    return {
        "prefix": str(prefix), "course_id": args.course_id, "exchange_root": args.exchange,
        "students_group": args.students_group, "instructors_group": args.instructors_group,
        "instructor": inst, "course_root": str(Path(args.course_root or home / "course")),
        "course_env": str(prefix / "env"), "config_dir": str(prefix / "jupyter"),
        "state_dir": str(prefix / "hub" / "state"), "ip": args.ip, "port": args.port,
        "hub_port": args.hub_port, "proxy_api_port": args.proxy_api_port,
        "proxy_command": shutil.which("configurable-http-proxy") or "configurable-http-proxy",
    }


# --- 3. accounts -----------------------------------------------------------------------------------
def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def add_user(name: str, group: str, password: str | None) -> None:
    """An OS account ``name`` in ``group`` with a 0700 home; sets ``password`` when given."""
    if not _user_exists(name):
        run("useradd", "--create-home", "--shell", "/bin/bash", "--groups", group, "-K", "HOME_MODE=0700", name)
    else:
        run("usermod", "--append", "--groups", group, name)
    home = Path(pwd.getpwnam(name).pw_dir)
    home.chmod(0o700)
    if password is not None:
        run("chpasswd", input=f"{name}:{password}\n".encode())


def add_users(roster: Path, group: str) -> list[tuple[str, str]]:
    """Accounts for every row of a roster CSV (column ``username``; ``password`` optional).

    Returns the (username, password) of accounts whose password was generated here, to hand out.
    """
    created = []
    with open(roster, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            name = row["username"].strip()
            if not name or "+" in name or "*" in name:
                raise SystemExit(f"bad username {name!r} (nbgrader ids cannot contain '+' or '*')")
            password = (row.get("password") or "").strip()
            if not password:
                password = secrets.token_urlsafe(9)
                created.append((name, password))
            add_user(name, group, password)
    return created


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prefix", default=DEFAULTS["prefix"])
    sub = p.add_subparsers(dest="step", required=True)
    e = sub.add_parser("env", help="build or update the course environment (PREFIX/env)")
    e.add_argument("--python", default="/usr/bin/python3",
                   help="a world-readable Python ≥ 3.11 to build it from (default: Debian's)")
    c = sub.add_parser("course", help="groups, instructor account, exchange, Jupyter config, hub settings")
    c.add_argument("--instructor", required=True, help="the instructor's OS user (created if missing)")
    c.add_argument("--course-root", help="the instructor's checkout of the course (default ~INSTRUCTOR/course)")
    for key in ("course_id", "students_group", "instructors_group", "ip"):
        c.add_argument("--" + key.replace("_", "-"), default=DEFAULTS[key])
    c.add_argument("--exchange", default=DEFAULTS["exchange_root"])
    for key in ("port", "hub_port", "proxy_api_port"):
        c.add_argument("--" + key.replace("_", "-"), type=int, default=DEFAULTS[key])
    u = sub.add_parser("users", help="create student (or TA) accounts from a roster CSV")
    u.add_argument("roster", type=Path, help="CSV with a username column (password optional)")
    u.add_argument("--group", default=DEFAULTS["students_group"])
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root (it creates accounts and folders owned by them)")
    if args.step == "env":
        print(f"course environment: {build_env(Path(args.prefix), args.python)}")
    elif args.step == "course":
        if not _user_exists(args.instructor):
            ensure_group(args.instructors_group)
            add_user(args.instructor, args.instructors_group, password=None)
        path = configure_course(settings_for(args))
        print(f"hub settings: {path}\nstart the hub: COURSE_HUB_SETTINGS={path} jupyterhub -f "
              f"{REPO / 'deploy' / 'jupyterhub_config.py'}")
    else:
        for name, password in add_users(args.roster, args.group):
            print(f"{name}\t{password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
