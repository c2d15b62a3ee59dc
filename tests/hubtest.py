"""A real JupyterHub for tests: test OS users, loopback ports, the REST APIs and a kernel over websocket.

Used by ``tests/test_hub.py``. Everything it creates is named with a random prefix (``hubt<hex>-``)
and removed by :meth:`TestHub.close`: the hub and proxy it started, every process of its users (by
pid), the users, their groups and homes, and its temporary folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COURSE_FILES = ("pyproject.toml", "README.md", "LICENSE", "autograder", "labsupport", "solutions", "labs")


def load_setup():
    """``deploy/setup.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("course_setup", DEPLOY / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uid_processes(uids: set[int]) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and p.info["uids"].real in uids:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


class TestHub:
    """One hub with an instructor and some students, on free loopback ports."""

    __test__ = False  # not a pytest class

    def __init__(self, course_env: Path, students: list[str], work: Path | None = None):
        self.setup = load_setup()
        self.tag = "hubt" + secrets.token_hex(3)
        self.work = work or Path(f"/tmp/{self.tag}")
        self.work.mkdir(parents=True)
        self.work.chmod(0o755)
        self.course_env = course_env
        self.instructor = f"{self.tag}-inst"
        self.students = [f"{self.tag}-{s}" for s in students]
        self.passwords = {name: secrets.token_urlsafe(12) for name in [self.instructor, *self.students]}
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.settings = {
            "prefix": str(self.work / "prefix"), "course_id": f"{self.tag}course",
            "exchange_root": str(self.work / "exchange"),
            "students_group": f"{self.tag}-students", "instructors_group": f"{self.tag}-instructors",
            "instructor": self.instructor, "course_root": f"/home/{self.instructor}/course",
            "course_env": str(course_env), "config_dir": str(self.work / "prefix" / "jupyter"),
            "state_dir": str(self.work / "prefix" / "hub" / "state"), "ip": "127.0.0.1", "port": port,
            "hub_port": free_port(), "proxy_api_port": free_port(),
            "proxy_command": shutil.which("configurable-http-proxy"), "omp_threads": 1,
            "start_timeout": 600,  # a busy CI machine (2 cores) can take minutes to start three servers
        }
        self.proc: subprocess.Popen | None = None
        self.tokens: dict[str, str] = {}
        self.metrics: dict[str, float] = {}

    # --- set up ----------------------------------------------------------------------------------
    def create(self) -> None:
        s, setup = self.settings, self.setup
        setup.ensure_group(s["students_group"])
        setup.ensure_group(s["instructors_group"])
        setup.add_user(self.instructor, s["instructors_group"], self.passwords[self.instructor])
        self.roster = self.work / "roster.csv"  # as an instructor would: deploy/setup.py users roster.csv
        self.roster.write_text("username,password,name,email,sis_id,section\n" + "".join(
            f"{n},{self.passwords[n]},Student {n[-3:].title()},{n}@example.org,S{i:04d},A\n"
            for i, n in enumerate(self.students)))
        self.roster.chmod(0o644)
        setup.add_users(self.roster, s["students_group"])
        self.checkout_course()
        self.settings_path = setup.configure_course(s)

    def checkout_course(self) -> None:
        """The instructor's copy of the course (solutions included) in their 0700 home."""
        dest = Path(self.settings["course_root"])
        dest.mkdir()
        # what a clone has: tracked files and new ones git does not ignore (no caches, no grades)
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                                 "--", *COURSE_FILES], check=True, capture_output=True).stdout.decode().split("\0")
        for rel in filter(None, listed):
            if (ROOT / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
        pw = pwd.getpwnam(self.instructor)
        subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(dest)], check=True)

    def start(self, timeout: float = 60) -> float:
        """Start the hub (as root, like production); return the seconds until its API answers."""
        log = open(self.work / "hub.log", "wb")
        env = {"PATH": f"{self.course_env}/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "COURSE_HUB_SETTINGS": str(self.settings_path)}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([str(self.course_env / "bin" / "jupyterhub"), "-f",
                                      str(DEPLOY / "jupyterhub_config.py")],
                                     cwd=self.settings["state_dir"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api", timeout=2).ok:
                    return time.perf_counter() - t0
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the hub did not answer in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        path = self.work / "hub.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    # --- the hub's REST API ----------------------------------------------------------------------
    def token(self, name: str, password: str | None = None) -> requests.Response:
        """Ask the hub for an API token with a username and password (JupyterHub's REST login)."""
        return requests.post(f"{self.url}/hub/api/users/{name}/tokens", timeout=20, json={
            "auth": {"username": name, "password": password or self.passwords[name]},
            "note": "test", "expires_in": 3600})

    def form_login(self, name: str, password: str | None = None) -> requests.Response:
        """Log in through the hub's login form (what a browser does; it creates the hub user)."""
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=20)
        return s.post(f"{self.url}/hub/login?next=", timeout=60, allow_redirects=False,
                      data={"username": name, "password": password or self.passwords[name],
                            "_xsrf": s.cookies.get("_xsrf", "")})

    def login(self, name: str) -> str:
        """Log in with the form, then get an API token with the same credentials."""
        r = self.form_login(name)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        r = self.token(name)
        r.raise_for_status()
        self.tokens[name] = r.json()["token"]
        return self.tokens[name]

    def hub_api(self, name: str, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                headers={"Authorization": f"token {self.tokens[name]}"}, **kw)

    def spawn(self, name: str, timeout: float = 600) -> float:
        """Start ``name``'s server through the hub's API; return the seconds until it answers."""
        t0 = time.perf_counter()
        r = self.hub_api(name, "POST", f"/users/{name}/server")
        assert r.status_code in (201, 202), (r.status_code, r.text, self.log_tail())
        while time.perf_counter() - t0 < timeout:
            if self.hub_api(name, "GET", f"/users/{name}").json().get("server"):
                try:
                    if self.api(name, "GET", "/api/status").ok:
                        return time.perf_counter() - t0
                except requests.ConnectionError:
                    pass
            time.sleep(0.3)
        raise TimeoutError(f"{name}'s server did not start:\n{self.log_tail()}")

    def api(self, name: str, method: str, path: str, as_user: str | None = None, **kw) -> requests.Response:
        """Call ``name``'s single-user server with the token of ``as_user`` (default: ``name``)."""
        token = self.tokens[as_user or name]
        return requests.request(method, f"{self.url}/user/{name}{path}", timeout=kw.pop("timeout", 120),
                                headers={"Authorization": f"token {token}"}, allow_redirects=False, **kw)

    # --- running things as a user ---------------------------------------------------------------
    def run_as(self, name: str, cmd: list[str], cwd: Path | None = None, env: dict | None = None,
               check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``cmd`` as the OS user ``name`` in the course environment with their role's config."""
        pw = pwd.getpwnam(name)
        role = "instructor" if name == self.instructor else "student"
        full_env = {"HOME": pw.pw_dir, "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
                    "PATH": f"{self.course_env}/bin:/usr/local/bin:/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                    "JUPYTER_CONFIG_PATH": f"{self.settings['config_dir']}/{role}", **(env or {})}
        groups = [g for g in os.getgrouplist(name, pw.pw_gid) if g != pw.pw_gid]
        proc = subprocess.run(cmd, cwd=cwd or pw.pw_dir, env=full_env, user=pw.pw_uid, group=pw.pw_gid,
                              extra_groups=groups, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} as {name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def course(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``python -m autograder ARGS`` as the instructor, in their checkout."""
        return self.run_as(self.instructor, [str(self.course_env / "bin" / "python"), "-m", "autograder", *args],
                           cwd=Path(self.settings["course_root"]), check=check)

    # --- measurements ------------------------------------------------------------------------------
    def memory_mb(self) -> dict[str, float]:
        """Resident memory (MB) of the hub, the proxy and each user's server (with its kernels)."""
        out: dict[str, float] = {}
        hub = psutil.Process(self.proc.pid)
        for p in [hub, *hub.children(recursive=True)]:
            try:
                owner = p.username()
                rss = p.memory_info().rss / 2**20
                cmd = " ".join(p.cmdline())
            except psutil.NoSuchProcess:
                continue
            key = ("proxy" if "configurable-http-proxy" in cmd else "hub") if owner == "root" else owner
            out[key] = out.get(key, 0.0) + rss
        for name in [self.instructor, *self.students]:  # user servers are not the hub's children
            uid = pwd.getpwnam(name).pw_uid
            rss = sum(p.memory_info().rss for p in uid_processes({uid})) / 2**20
            if rss:
                out[name] = rss
        return {k: round(v, 1) for k, v in out.items()}

    def user_uids(self) -> set[int]:
        uids = set()
        for name in [self.instructor, *self.students]:
            try:
                uids.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
        return uids

    # --- tear down ------------------------------------------------------------------------------
    def stop_hub(self, timeout: float = 120) -> list[str]:
        """Stop the hub (it stops every user's server); return what of the users still runs after it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        deadline = time.monotonic() + 30  # kernels notice their server is gone within seconds (load permitting)
        while uid_processes(self.user_uids()) and time.monotonic() < deadline:
            time.sleep(0.3)
        return [f"{p.pid} {p.username()} {' '.join(p.cmdline())[:120]}" for p in uid_processes(self.user_uids())]

    def close(self) -> None:
        self.stop_hub()
        for p in uid_processes(self.user_uids()):  # anything left by the test users, by pid
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        for name in [self.instructor, *self.students]:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        for group in (self.settings["students_group"], self.settings["instructors_group"]):
            subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(self.work, ignore_errors=True)


class Kernel:
    """A kernel in a user's server, driven over the server's websocket API (what JupyterLab does)."""

    def __init__(self, hub: TestHub, name: str, path: str = ""):
        import websocket

        r = hub.api(name, "POST", "/api/kernels", json={"name": "python3", "path": path})
        r.raise_for_status()
        self.id = r.json()["id"]
        self.hub, self.name = hub, name
        ws_url = hub.url.replace("http", "ws") + f"/user/{name}/api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {hub.tokens[name]}"],
                                              timeout=120)
        self.session = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 180) -> tuple[str, list[dict]]:
        """Run ``code``; return the reply status ("ok"/"error") and the outputs as nbformat dicts."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.name, "session": self.session, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": False}}))
        outputs, status, idle = [], None, False
        deadline = time.monotonic() + timeout
        while not (status and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(code[:80])
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("execute_result", "display_data"):
                outputs.append({"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {}),
                                **({"execution_count": content["execution_count"]} if kind == "execute_result"
                                   else {})})
            elif kind == "error":
                outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"],
                                "traceback": content["traceback"]})
            elif kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return status, outputs

    def close(self) -> None:
        self.ws.close()
        self.hub.api(self.name, "DELETE", f"/api/kernels/{self.id}")


def python() -> str:
    return sys.executable
