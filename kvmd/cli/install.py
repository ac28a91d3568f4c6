# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-install`: put kvmd's units, configs and first users on a board, or take them away.

`install --board NAME` places the systemd units, udev rules, sysusers/tmpfiles/modules-load
snippets, keymaps, examples and nginx configs; makes the `kvmd` user (systemd-sysusers) and
its state directory (systemd-tmpfiles); links /usr/bin/kvmd* to the programs of this venv;
creates the TLS pair and, when there is no htpasswd yet, the user `admin` with password
`admin` that must be changed at the first login; then enables the units.

What the owner may change is never replaced: /etc/kvmd/override.yaml, meta.yaml, the
htpasswd and every file in /var/lib/kvmd. The board's main.yaml and the nginx configs are
the package's and follow upgrades. `uninstall` removes the package's files and keeps
/etc/kvmd and /var/lib/kvmd (and the user) unless `--purge`.

`--root DIR` works on a system image mounted at DIR, as the tests do: the systemd tools run
with `--root` and nothing is started.
"""

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from kvmd.auth.files import atomic_write
from kvmd.auth.htpasswd import hash_password, read_entries
from kvmd.cli import gencert
from kvmd.cli.common import CliError, run_tool

_PROG = "kvmd-install"
PROGRAMS = (
    "kvmd",
    "kvmd-htpasswd",
    "kvmd-totp",
    "kvmd-otg",
    "kvmd-apikey",
    "kvmd-gencert",
    "kvmd-install",
)
UNITS = ("kvmd-otg.service", "kvmd.service", "kvmd-nginx.service")
# Where Debian's qemu-system-data (a dependency, see the README) puts PiKVM's layouts.
KEYMAPS = Path("/usr/share/qemu/keymaps")
MANIFEST = "usr/share/kvmd/installed.txt"
STATE = "var/lib/kvmd"
DEFAULT_ADMIN = ("admin", "admin")
# What /usr/lib/kvmd/platform says for each board (shown in /api/info as hw.platform).
PLATFORMS = {
    "rpi4-csi": {"PIKVM_MODEL": "v2", "PIKVM_VIDEO": "hdmi", "PIKVM_BOARD": "rpi4"},
    "zero2w-csi": {"PIKVM_MODEL": "v2", "PIKVM_VIDEO": "hdmi", "PIKVM_BOARD": "zero2w"},
    "rpi4-usb": {"PIKVM_MODEL": "v2", "PIKVM_VIDEO": "hdmiusb", "PIKVM_BOARD": "rpi4"},
}


def main(argv: list[str] | None = None) -> int:
    return run_tool(_PROG, _make_parser().parse_args(argv), lambda args: Path(args.root), _dispatch)


def _dispatch(args: argparse.Namespace, root: Path) -> None:
    if args.command == "install":
        _install(args, root)
    else:
        _uninstall(root, purge=args.purge)


class Ids:
    """User and group ids from the target root's own /etc/passwd and /etc/group."""

    def __init__(self, root: Path) -> None:
        self._users = _table(root / "etc" / "passwd")
        self._groups = _table(root / "etc" / "group")

    def user(self, name: str) -> int:
        return self._lookup(self._users, name, "user")

    def group(self, name: str) -> int:
        return self._lookup(self._groups, name, "group")

    @staticmethod
    def _lookup(table: dict[str, int], name: str, what: str) -> int:
        if name not in table:
            raise CliError(f"no {what} {name!r} after systemd-sysusers")
        return table[name]


def _table(path: Path) -> dict[str, int]:
    rows = (line.split(":") for line in path.read_text().splitlines() if line.count(":") >= 2)
    return {row[0]: int(row[2]) for row in rows}


def _install(args: argparse.Namespace, root: Path) -> None:
    source = Path(args.source)
    board = source / "configs" / "kvmd" / "boards" / f"{args.board}.yaml"
    if args.board not in PLATFORMS or not board.is_file():
        known = ", ".join(sorted(PLATFORMS))
        raise CliError(f"unknown board {args.board!r} (known: {known}) or no {board}")
    bin_dir = Path(args.bin)
    if not bin_dir.is_absolute():
        raise CliError(f"--bin {bin_dir}: give the absolute path the programs have in the root")
    missing = [name for name in PROGRAMS if not (root / bin_dir.relative_to("/") / name).exists()]
    if missing:
        raise CliError(f"{bin_dir} lacks {', '.join(missing)}: pip install kvmd there first")

    placed: list[str] = []
    with _manifest(root, placed):
        place = _Placer(root, placed)
        for unit in UNITS:
            place.copy(source / "systemd" / unit, f"usr/lib/systemd/system/{unit}")
        place.copy(source / "systemd" / "kvmd.sysusers", "usr/lib/sysusers.d/kvmd.conf")
        place.copy(source / "systemd" / "kvmd.tmpfiles", "usr/lib/tmpfiles.d/kvmd.conf")
        place.copy(source / "systemd" / "kvmd.modules", "usr/lib/modules-load.d/kvmd.conf")
        place.copy(
            source / "configs" / "udev" / "99-kvmd.rules", "usr/lib/udev/rules.d/99-kvmd.rules"
        )
        for path in sorted((source / "configs/kvmd/examples").iterdir()):
            place.copy(path, f"usr/share/kvmd/examples/{path.name}")
        # PiKVM's path to its keyboard layouts, here Debian's qemu-system-data's copies of
        # them; a folder already there (a PiKVM's, the owner's own) is the owner's.
        keymaps = root / "usr/share/kvmd/keymaps"
        if keymaps.is_dir() and not keymaps.is_symlink():
            print(f"{_PROG}: kept /usr/share/kvmd/keymaps")
        else:
            place.link(KEYMAPS, "usr/share/kvmd/keymaps")
        platform = "".join(f"{key}={value}\n" for (key, value) in PLATFORMS[args.board].items())
        place.write(platform.encode(), "usr/lib/kvmd/platform")
        (root / "usr/share/kvmd/extras").mkdir(parents=True, exist_ok=True)
        for name in PROGRAMS:
            place.link(bin_dir / name, f"usr/bin/{name}")
        # Configs: the board's and nginx's follow the package; the owner's are kept.
        place.copy(board, "etc/kvmd/main.yaml")
        place.copy(source / "configs/nginx/nginx.conf", "etc/kvmd/nginx/nginx.conf")
        place.copy(source / "configs/nginx/kvmd.conf", "etc/kvmd/nginx/kvmd.conf")
        place.copy(source / "configs/kvmd/override.yaml", "etc/kvmd/override.yaml", keep=True)
        place.copy(source / "configs/kvmd/meta.yaml", "etc/kvmd/meta.yaml", keep=True)
        (root / "etc/kvmd/override.d").mkdir(parents=True, exist_ok=True)

    _run("systemd-sysusers", f"--root={root}", str(root / "usr/lib/sysusers.d/kvmd.conf"))
    _run(
        "systemd-tmpfiles", f"--root={root}", "--create", str(root / "usr/lib/tmpfiles.d/kvmd.conf")
    )
    ids = Ids(root)
    _first_secrets(root, ids)
    if gencert.main(["--dir", str(root / "etc/kvmd/nginx/ssl")]) != 0:
        raise CliError("kvmd-gencert failed")
    # The VNC server's certificate (VeNCrypt X509): kvmd reads its key through its group.
    if gencert.main(["--dir", str(root / "etc/kvmd/vnc/ssl")]) != 0:
        raise CliError("kvmd-gencert failed")
    vnc_key = root / "etc/kvmd/vnc/ssl/server.key"
    os.chown(vnc_key, -1, ids.group("kvmd"))
    vnc_key.chmod(0o640)
    _enable(root)


class _Placer:
    """Writes files into the root atomically and lists the package's ones in the manifest."""

    def __init__(self, root: Path, placed: list[str]) -> None:
        self._root = root
        self._placed = placed

    def copy(self, src: Path, dest: str, *, keep: bool = False) -> None:
        target = self._root / dest
        if keep and target.exists():
            print(f"{_PROG}: kept /{dest}")
            return
        self.write(src.read_bytes(), dest)

    def write(self, data: bytes, dest: str) -> None:
        target = self._root / dest
        atomic_write(target, data, mode=0o644)
        target.chmod(0o644)  # atomic_write keeps an existing mode; the package's is 0644
        # /etc/kvmd is the owner's (Debian's conffiles): uninstall keeps it, --purge takes it.
        if not dest.startswith("etc/"):
            self._placed.append(dest)

    def link(self, to: Path, dest: str) -> None:
        target = self._root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(to)
        tmp.replace(target)
        self._placed.append(dest)


@contextlib.contextmanager
def _manifest(root: Path, placed: list[str]) -> Iterator[None]:
    """Whatever was placed is listed, even when a later step fails: uninstall finds it."""
    old = _read_manifest(root)
    try:
        yield
    finally:
        lines = sorted(set(old) | set(placed))
        atomic_write(root / MANIFEST, "".join(f"{line}\n" for line in lines).encode(), mode=0o644)


def _read_manifest(root: Path) -> list[str]:
    try:
        return (root / MANIFEST).read_text().split()
    except FileNotFoundError:
        return []


def _first_secrets(root: Path, ids: Ids) -> None:
    """An empty TOTP secret kvmd can read, and the first admin when there is no htpasswd."""
    (kvmd_uid, kvmd_gid) = (ids.user("kvmd"), ids.group("kvmd"))
    totp = root / "etc/kvmd/totp.secret"
    if not totp.exists():
        atomic_write(totp, b"", mode=0o640)
        os.chown(totp, 0, kvmd_gid)
    htpasswd = root / STATE / "htpasswd"
    if htpasswd.exists() and read_entries(htpasswd):
        print(f"{_PROG}: kept /{STATE}/htpasswd")
        return
    (user, passwd) = DEFAULT_ADMIN
    atomic_write(htpasswd, f"{user}:{hash_password(passwd)}\n".encode(), mode=0o600)
    os.chown(htpasswd, kvmd_uid, kvmd_gid)
    users_path = root / STATE / "users.yaml"
    loaded = yaml.safe_load(users_path.read_text()) if users_path.exists() else None
    users: dict[str, object] = loaded if isinstance(loaded, dict) else {}
    entry = users.get(user)
    users[user] = {**(entry if isinstance(entry, dict) else {}), "must_change_passwd": True}
    atomic_write(users_path, yaml.safe_dump(users, sort_keys=False).encode(), mode=0o600)
    os.chown(users_path, kvmd_uid, kvmd_gid)
    print(f"{_PROG}: log in as {user}/{passwd}; the first login asks for a new password")


def _enable(root: Path) -> None:
    _run("systemctl", f"--root={root}", "--quiet", "enable", *UNITS)
    distro_nginx = [
        root / d / "nginx.service" for d in ("usr/lib/systemd/system", "lib/systemd/system")
    ]
    if any(path.exists() for path in distro_nginx):
        # kvmd-nginx.service takes ports 80 and 443.
        _run("systemctl", f"--root={root}", "--quiet", "disable", "nginx.service")
    if root == Path("/") and Path("/run/systemd/system").is_dir():
        _run("systemctl", "daemon-reload")
        _run("udevadm", "control", "--reload")
        print(f"{_PROG}: enabled {', '.join(UNITS)}; reboot to load the gadget and start kvmd")
    else:
        print(f"{_PROG}: enabled {', '.join(UNITS)} in {root}")


def _uninstall(root: Path, *, purge: bool) -> None:
    placed = _read_manifest(root)
    if not placed:
        raise CliError(f"nothing to uninstall: no /{MANIFEST}")
    if all((root / "usr/lib/systemd/system" / unit).exists() for unit in UNITS):
        _run("systemctl", f"--root={root}", "--quiet", "disable", *UNITS)
    for dest in placed:
        (root / dest).unlink(missing_ok=True)
    (root / MANIFEST).unlink()
    for folder in ("usr/share/kvmd", "usr/lib/kvmd"):
        shutil.rmtree(root / folder, ignore_errors=True)
    if purge:
        for folder in ("etc/kvmd", STATE):
            shutil.rmtree(root / folder, ignore_errors=True)
        print(f"{_PROG}: removed kvmd, /etc/kvmd and /{STATE}; the kvmd user stays")
    else:
        print(f"{_PROG}: removed kvmd; kept /etc/kvmd, /{STATE} and the kvmd user")


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise CliError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")


def _make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/", help="the system to work on (default: /)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    install = commands.add_parser("install", help="install or upgrade")
    install.add_argument("--board", required=True, help=", ".join(sorted(PLATFORMS)))
    install.add_argument(
        "--source",
        default=str(Path(__file__).resolve().parents[2]),
        help="the kvmd source tree with configs/ and systemd/ (default: %(default)s)",
    )
    install.add_argument(
        "--bin",
        default=str(Path(sys.executable).parent),
        help="where the kvmd programs are, as seen inside the root (default: %(default)s)",
    )
    uninstall = commands.add_parser("uninstall", help="remove; --purge also configs and state")
    uninstall.add_argument("--purge", action="store_true")
    return parser


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
