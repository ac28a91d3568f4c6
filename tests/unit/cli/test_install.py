# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-install` on an empty system root: Debian's systemd-sysusers, systemd-tmpfiles and
systemctl do their parts with --root, exactly as on a board's image."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from passlib.hash import bcrypt

from kvmd.cli.install import PROGRAMS
from kvmd.config.schema import Config
from kvmd.errors import PasswordChangeRequiredError
from tests.conftest import REPO, MakeClient, config_data, deep_merge

pytestmark = pytest.mark.timeout(60)
VENV_BIN = Path(sys.executable).parent


def kvmd_install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "kvmd-install"), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty system with the venv at /opt/kvmd (its programs link to this venv's)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "opt/kvmd/bin").mkdir(parents=True)
    for name in PROGRAMS:
        (root / "opt/kvmd/bin" / name).symlink_to(VENV_BIN / name)
    return root


def install(root: Path, board: str = "rpi4-csi") -> subprocess.CompletedProcess[str]:
    done = kvmd_install(root, "install", "--board", board, "--bin", "/opt/kvmd/bin")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    return done


def ids(root: Path, table: str) -> dict[str, list[str]]:
    rows = [line.split(":") for line in (root / "etc" / table).read_text().splitlines()]
    return {row[0]: [row[2], *row[3].split(",")] for row in rows}


def owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_mode & 0o7777, st.st_uid, st.st_gid)


def test_install_places_units_configs_user_and_first_admin(root):
    done = install(root)
    assert "log in as admin/admin; the first login asks for a new password" in done.stdout
    shipped = {
        "usr/lib/systemd/system/kvmd.service": "systemd/kvmd.service",
        "usr/lib/systemd/system/kvmd-otg.service": "systemd/kvmd-otg.service",
        "usr/lib/systemd/system/kvmd-nginx.service": "systemd/kvmd-nginx.service",
        "usr/lib/sysusers.d/kvmd.conf": "systemd/kvmd.sysusers",
        "usr/lib/tmpfiles.d/kvmd.conf": "systemd/kvmd.tmpfiles",
        "usr/lib/modules-load.d/kvmd.conf": "systemd/kvmd.modules",
        "usr/lib/udev/rules.d/99-kvmd.rules": "configs/udev/99-kvmd.rules",
        "usr/share/kvmd/examples/gpio-relays.yaml": "configs/kvmd/examples/gpio-relays.yaml",
        "etc/kvmd/main.yaml": "configs/kvmd/boards/rpi4-csi.yaml",
        "etc/kvmd/override.yaml": "configs/kvmd/override.yaml",
        "etc/kvmd/meta.yaml": "configs/kvmd/meta.yaml",
        "etc/kvmd/nginx/nginx.conf": "configs/nginx/nginx.conf",
        "etc/kvmd/nginx/kvmd.conf": "configs/nginx/kvmd.conf",
    }
    for dest, src in shipped.items():
        assert (root / dest).read_bytes() == (REPO / src).read_bytes(), dest
        assert owner(root / dest) == (0o644, 0, 0), dest
    assert (root / "usr/lib/kvmd/platform").read_text() == (
        "PIKVM_MODEL=v2\nPIKVM_VIDEO=hdmi\nPIKVM_BOARD=rpi4\n"
    )
    for name in PROGRAMS:
        assert (root / "usr/bin" / name).readlink() == Path("/opt/kvmd/bin") / name
    # PiKVM's keymap path leads to Debian's copies of PiKVM's layouts.
    assert (root / "usr/share/kvmd/keymaps").readlink() == Path("/usr/share/qemu/keymaps")

    # The user, its groups, and nginx's way to kvmd's sockets.
    users = ids(root, "passwd")
    groups = ids(root, "group")
    kvmd = int(users["kvmd"][0])
    gid = int(groups["kvmd"][0])
    for group in ("video", "dialout", "systemd-journal"):
        assert "kvmd" in groups[group][1:], group
    assert groups["kvmd"][1:] == ["www-data"]
    assert owner(root / "var/lib/kvmd") == (0o750, kvmd, gid)
    assert owner(root / "var/lib/kvmd/msd") == (0o750, kvmd, gid)

    # The first admin: password "admin", to be changed at the first login; kvmd owns it.
    (user, hashed) = (root / "var/lib/kvmd/htpasswd").read_text().strip().split(":", 1)
    assert user == "admin"
    assert bcrypt.verify("admin", hashed)
    assert owner(root / "var/lib/kvmd/htpasswd") == (0o600, kvmd, gid)
    users_yaml = root / "var/lib/kvmd/users.yaml"
    assert yaml.safe_load(users_yaml.read_text()) == {"admin": {"must_change_passwd": True}}
    assert owner(users_yaml) == (0o600, kvmd, gid)
    assert (root / "etc/kvmd/totp.secret").read_text() == ""
    assert owner(root / "etc/kvmd/totp.secret") == (0o640, 0, gid)
    assert owner(root / "etc/kvmd/nginx/ssl/server.key")[0] == 0o600
    # The VNC server's certificate; kvmd reads the key through its group.
    assert owner(root / "etc/kvmd/vnc/ssl/server.key") == (0o640, 0, gid)
    assert (root / "etc/kvmd/vnc/ssl/server.crt").read_bytes().startswith(b"-----BEGIN")

    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == [
        "kvmd-nginx.service",
        "kvmd-otg.service",
        "kvmd.service",
    ]


def test_an_upgrade_keeps_what_the_owner_changed(root):
    install(root)
    (root / "etc/kvmd/override.yaml").write_text("kvmd: {auth: {expire: 60}}\n")
    (root / "etc/kvmd/meta.yaml").write_text("server: {host: mine}\n")
    (root / "etc/kvmd/main.yaml").write_text("edited: true\n")
    htpasswd = root / "var/lib/kvmd/htpasswd"
    htpasswd.write_text("admin:$2b$04$mine\n")
    (root / "var/lib/kvmd/users.yaml").write_text("{}\n")
    key = (root / "etc/kvmd/nginx/ssl/server.key").read_bytes()
    manifest = (root / "usr/share/kvmd/installed.txt").read_text()

    done = install(root, "rpi4-usb")
    assert "kept /etc/kvmd/override.yaml" in done.stdout
    assert "kept /var/lib/kvmd/htpasswd" in done.stdout
    assert "log in as" not in done.stdout
    assert (root / "etc/kvmd/override.yaml").read_text() == "kvmd: {auth: {expire: 60}}\n"
    assert (root / "etc/kvmd/meta.yaml").read_text() == "server: {host: mine}\n"
    assert htpasswd.read_text() == "admin:$2b$04$mine\n"
    assert (root / "var/lib/kvmd/users.yaml").read_text() == "{}\n"
    assert (root / "etc/kvmd/nginx/ssl/server.key").read_bytes() == key
    # The board's config is the package's: the new board replaces the edited one.
    board = (REPO / "configs/kvmd/boards/rpi4-usb.yaml").read_bytes()
    assert (root / "etc/kvmd/main.yaml").read_bytes() == board
    assert "PIKVM_VIDEO=hdmiusb" in (root / "usr/lib/kvmd/platform").read_text()
    assert (root / "usr/share/kvmd/installed.txt").read_text() == manifest


def test_uninstall_keeps_configs_and_state_unless_purged(root):
    install(root)
    placed = (root / "usr/share/kvmd/installed.txt").read_text().split()
    assert "usr/lib/systemd/system/kvmd.service" in placed
    assert not any(p.startswith(("etc/", "var/")) for p in placed)
    done = kvmd_install(root, "uninstall")
    assert (done.returncode, done.stderr) == (0, "")
    assert "kept /etc/kvmd, /var/lib/kvmd and the kvmd user" in done.stdout
    assert [p for p in placed if (root / p).exists() or (root / p).is_symlink()] == []
    assert not (root / "usr/share/kvmd").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants").exists()
    assert (root / "etc/kvmd/main.yaml").exists()
    assert (root / "var/lib/kvmd/htpasswd").exists()
    again = kvmd_install(root, "uninstall")
    assert (again.returncode, again.stderr) == (
        1,
        "kvmd-install: nothing to uninstall: no /usr/share/kvmd/installed.txt\n",
    )
    install(root)
    purged = kvmd_install(root, "uninstall", "--purge")
    assert purged.returncode == 0
    assert not (root / "etc/kvmd").exists()
    assert not (root / "var/lib/kvmd").exists()
    assert "kvmd" in ids(root, "passwd")  # Debian keeps system users


def test_bad_board_and_missing_programs_are_one_line_errors(root):
    done = kvmd_install(root, "install", "--board", "pi5", "--bin", "/opt/kvmd/bin")
    assert done.returncode == 1
    assert done.stderr.startswith("kvmd-install: unknown board 'pi5' (known: rpi4-csi, ")
    done = kvmd_install(root, "install", "--board", "rpi4-csi", "--bin", "opt/kvmd/bin")
    assert (done.returncode, done.stderr) == (
        1,
        "kvmd-install: --bin opt/kvmd/bin: give the absolute path the programs have in the root\n",
    )
    done = kvmd_install(root, "install", "--board", "rpi4-csi", "--bin", "/nowhere")
    assert done.returncode == 1
    assert done.stderr.startswith("kvmd-install: /nowhere lacks kvmd, kvmd-htpasswd")
    assert not (root / "usr").exists()


def installed_config(root: Path, tmp_path: Path) -> Config:
    """The testenv config with the installed board's auth section, moved into the root."""
    board = yaml.safe_load((root / "etc/kvmd/main.yaml").read_text())["kvmd"]
    auth = board["auth"]
    auth["internal"]["file"] = f"{root}{auth['internal']['file']}"
    auth["totp"]["secret"]["file"] = f"{root}{auth['totp']['secret']['file']}"
    auth["files"] = {key: f"{root}{path}" for (key, path) in auth["files"].items()}
    data: dict[str, Any] = deep_merge(config_data(tmp_path), {"kvmd": {"auth": auth}})
    return msgspec.convert(data, Config)


async def test_the_first_admin_must_change_the_password(root, tmp_path, make_client: MakeClient):
    install(root)
    (client, _) = await make_client(installed_config(root, tmp_path))
    headers = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}
    assert (await client.get("/api/auth/check", headers=headers)).status == 200
    refused = await client.get("/api/auth/users", headers=headers)
    assert refused.status == 403
    body = await refused.json()
    assert body["result"]["error"] == PasswordChangeRequiredError.__name__
    changed = await client.post(
        "/api/auth/users/set_passwd",
        headers=headers,
        data={"old_passwd": "admin", "passwd": "a-new-one-42"},
    )
    assert changed.status == 200, await changed.text()
    new = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "a-new-one-42"}
    listed = await client.get("/api/auth/users", headers=new)
    assert listed.status == 200
    assert (await client.get("/api/auth/check", headers=headers)).status == 403  # old one
    # Still kvmd's files, private, and the flag is gone.
    kvmd = int(ids(root, "passwd")["kvmd"][0])
    assert owner(root / "var/lib/kvmd/htpasswd")[:2] == (0o600, kvmd)
    # An entry with only defaults left is dropped: admin holds the default role again.
    assert yaml.safe_load((root / "var/lib/kvmd/users.yaml").read_text()) in ({}, None)
    assert json.loads(await listed.text())["ok"] is True
