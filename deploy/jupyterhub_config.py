"""JupyterHub for the course on one machine: PAM logins, one OS account per student, LocalProcessSpawner.

Start it as root (it switches to each user to start their server)::

    COURSE_HUB_SETTINGS=/opt/transformers-course/hub/settings.json \\
        /opt/transformers-course/env/bin/jupyterhub -f deploy/jupyterhub_config.py

The settings file is written by ``deploy/setup.py course`` (paths, groups, ports). Students get the
course environment (``PREFIX/env``: JupyterLab 4, nbgrader's assignment list and validate button,
nbgitpuller) and the student Jupyter config (exchange and course id; no formgrader, no "create
assignment"). Instructors get formgrader on their course folder, opened in its own browser tab at
``/user/NAME/formgrader`` (JupyterHub's Content-Security-Policy, kept as it is, does not let Lab frame it).
"""

import grp
import json
import os
import pwd

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)
S = json.load(open(os.environ.get("COURSE_HUB_SETTINGS", "/opt/transformers-course/hub/settings.json")))
ENV = S["course_env"]

# --- who may log in: PAM (the machine's accounts), members of the course groups --------------------
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False  # no systemd/logind session per login (containers have none)
c.PAMAuthenticator.allowed_groups = {S["students_group"], S["instructors_group"]}
# No hub admins: JupyterHub's admin role may open any user's server. Accounts are managed with
# deploy/setup.py; add `c.PAMAuthenticator.admin_users = {...}` only for whoever runs the machine.

# --- where: the hub, its proxy and its state -------------------------------------------------------
c.JupyterHub.bind_url = f"http://{S['ip']}:{S['port']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{S['hub_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{S['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [S.get("proxy_command", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.cookie_secret_file = os.path.join(S["state_dir"], "jupyterhub_cookie_secret")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(S["state_dir"], "jupyterhub.sqlite")
c.JupyterHub.pid_file = os.path.join(S["state_dir"], "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = os.path.join(S["state_dir"], "jupyterhub-proxy.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every user's server

# --- what each user runs: their own server, as their own OS user, in the course environment --------
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [os.path.join(ENV, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.env_keep = ["LANG", "LC_ALL"]  # not the hub's PATH/PYTHONPATH (root's, unreadable to students)
c.Spawner.start_timeout = S.get("start_timeout", 120)
c.Spawner.http_timeout = S.get("start_timeout", 120)
# Stopping a server: time to shut its kernels down before it is killed (else kernels outlive it)
c.LocalProcessSpawner.interrupt_timeout = 20
c.LocalProcessSpawner.term_timeout = 20
c.Spawner.mem_limit = S.get("mem_limit")  # advisory with LocalProcessSpawner (exported as MEM_LIMIT)


def _role(username: str) -> str:
    try:
        members = grp.getgrnam(S["instructors_group"]).gr_mem
        primary = grp.getgrnam(S["instructors_group"]).gr_gid == pwd.getpwnam(username).pw_gid
    except KeyError:
        return "student"
    return "instructor" if username in members or primary else "student"


def pre_spawn_hook(spawner):
    """Course environment first on PATH; the role's Jupyter config (exchange, formgrader on or off)."""
    role = _role(spawner.user.name)
    spawner.environment.update({
        "PATH": f"{ENV}/bin:/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": os.path.join(S["config_dir"], role),
        "COURSE_ROLE": role,
        "OMP_NUM_THREADS": str(S.get("omp_threads", 2)),
    })


c.Spawner.pre_spawn_hook = pre_spawn_hook
