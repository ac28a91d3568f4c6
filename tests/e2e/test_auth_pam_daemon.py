# SPDX-License-Identifier: GPL-3.0-or-later
"""The pam plugin in the real daemon: `python -m kvmd` asks a pam_wrapper service.

PAM runs inside the process that asks, so the daemon itself is started with the
service's environment (pam_wrapper preloaded, a service directory of its own). PAM names
no groups: every PAM user gets `default_role`, while `internal.force_users` keep logging
in with the htpasswd file and never reach PAM.
"""

import http.client
import json
import signal
import subprocess
import sys
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from passlib.hash import bcrypt

from tests.authservers import pam_service
from tests.conftest import REPO, config_data, deep_merge
from tests.e2e.test_daemon import free_port

pytestmark = pytest.mark.timeout(60)

VIEWER = ["state", "video"]
# admin is in the PAM database too, with another password: force_users must not ask PAM.
PAM_USERS = {"alice": "alice-pw", "bob": "bob-pw", "admin": "pam-admin-pw"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    cookie: str = ""


@dataclass
class PamDaemon:
    proc: "subprocess.Popen[str]"
    port: int

    def request(
        self, method: str, path: str, headers: dict[str, str], body: str | None = None
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            return Answer(
                response.status,
                json.loads(response.read()),
                response.getheader("Set-Cookie") or "",
            )
        finally:
            connection.close()

    def check(self, user: str, passwd: str) -> Answer:
        headers = {"X-KVMD-User": user, "X-KVMD-Passwd": passwd}
        return self.request("GET", "/api/auth/check", headers)


def basic(user: str, passwd: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{passwd}".encode()).decode()}


def start(tmp: Path, service: str, env: dict[str, str]) -> PamDaemon:
    (tmp / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    (tmp / "htpasswd").chmod(0o600)  # kvmd refuses a world-readable one
    port = free_port()
    auth = {
        "internal": {"force_users": ["admin"]},
        "external": {"type": "pam", "service": service},
        "default_role": "viewer",
        # Every check asks PAM, so a wrong password right after a right one is a real "no".
        "cache_ttl": 0,
        # The tests refuse on purpose from one address more often than the source throttle
        # (5) and the user lockout (10) allow; both have tests of their own.
        "throttle": {"attempts": 1000},
        "lockout": {"attempts": 1000},
    }
    server = {"unix": "", "host": "127.0.0.1", "port": port}
    data = deep_merge(config_data(tmp), {"kvmd": {"server": server, "auth": auth}})
    main = tmp / "main.yaml"
    main.write_text(json.dumps(data))  # JSON is YAML
    argv = [sys.executable, "-m", "kvmd", "--main-config", str(main)]
    argv += ["--override-dir", str(tmp / "none.d"), "--override-config", str(tmp / "none.yaml")]
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return PamDaemon(proc, port)


def wait_ready(daemon: PamDaemon) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            out = daemon.proc.stdout.read() if daemon.proc.stdout else ""
            pytest.fail(f"kvmd exited with {daemon.proc.returncode}:\n{out}")
        try:
            if daemon.check("admin", "admin").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("kvmd did not answer /api/auth/check within 20 s")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PamDaemon]:
    with pam_service(PAM_USERS) as pam:
        daemon = start(tmp_path_factory.mktemp("pam-daemon"), pam.service, pam.env)
        try:
            wait_ready(daemon)
            yield daemon
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
            daemon.proc.communicate()


def test_a_pam_user_logs_in_with_the_default_role(daemon: PamDaemon) -> None:
    answer = daemon.check("alice", "alice-pw")
    assert answer.status == 200
    result = answer.body["result"]
    assert (result["user"], result["kind"]) == ("alice", "user")
    assert result["roles"] == ["viewer"]
    assert result["permissions"] == VIEWER
    assert result["read_only"] is False
    # Basic auth goes through the same check.
    assert daemon.request("GET", "/api/auth/check", basic("bob", "bob-pw")).status == 200


def test_a_pam_viewer_may_not_type(daemon: PamDaemon) -> None:
    headers = {"X-KVMD-User": "alice", "X-KVMD-Passwd": "alice-pw"}
    answer = daemon.request("POST", "/api/hid/print", headers, body="hello")
    assert answer.status == 403
    assert answer.body["ok"] is False
    assert answer.body["result"]["error"] == "PermissionDeniedError"


def test_a_login_session_of_a_pam_user(daemon: PamDaemon) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    login = daemon.request("POST", "/api/auth/login", form, body="user=alice&passwd=alice-pw")
    assert (login.status, login.body) == (200, {"ok": True, "result": {}})
    token = login.cookie.split(";")[0]
    assert token.startswith("auth_token=")
    answer = daemon.request("GET", "/api/auth/check", {"Cookie": token})
    assert answer.status == 200
    assert (answer.body["result"]["user"], answer.body["result"]["kind"]) == ("alice", "user")
    assert answer.body["result"]["permissions"] == VIEWER
    refused = daemon.request("POST", "/api/auth/login", form, body="user=alice&passwd=wrong")
    assert refused.status == 403
    assert refused.cookie == ""


@pytest.mark.parametrize(
    ("user", "passwd"),
    [
        ("alice", "wrong"),  # a wrong password
        ("alice", ""),
        ("bob", "alice-pw"),  # another user's password
        ("nobody", "x"),  # not in the PAM database
        ("admin", "pam-admin-pw"),  # a force user's PAM password: PAM is never asked
    ],
)
def test_pam_says_no(daemon: PamDaemon, user: str, passwd: str) -> None:
    answer = daemon.check(user, passwd)
    assert answer.status == 403
    assert answer.body == {
        "ok": False,
        "result": {"error": "ForbiddenError", "error_msg": "Forbidden"},
    }


def test_a_force_user_logs_in_with_the_htpasswd_file(daemon: PamDaemon) -> None:
    answer = daemon.check("admin", "admin")
    assert answer.status == 200
    result = answer.body["result"]
    # No entry in users.yaml: admin holds default_role too.
    assert (result["user"], result["roles"], result["permissions"]) == ("admin", ["viewer"], VIEWER)
    assert daemon.check("admin", "wrong").status == 403


def test_the_log_names_pams_answers_and_sigterm_exits_cleanly(daemon: PamDaemon) -> None:
    # Last in the module: it stops the shared daemon.
    assert daemon.check("alice", "alice-pw").status == 200
    assert daemon.check("nobody", "x").status == 403
    assert daemon.check("admin", "admin").status == 200
    daemon.proc.send_signal(signal.SIGTERM)
    (out, _) = daemon.proc.communicate(timeout=15)
    assert daemon.proc.returncode == 0, out
    assert "alice: authorized via pam" in out
    # pam_matrix's answer for a user it doesn't know, as libpam words PAM_AUTH_ERR.
    assert "PAM kvmd-test: nobody: Authentication failure (7)" in out
    assert "nobody: denied via pam" in out
    assert "admin: authorized via pam" not in out
    assert "admin: denied via pam" not in out
    assert "Bye" in out
    assert "Traceback" not in out
