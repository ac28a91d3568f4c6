# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-htpasswd`: list, set and delete the users of the htpasswd file.

Every failure is one line on stderr and a non-zero exit (1, or 78 for a config error), so that
the tool can be scripted: `echo "$PASS" | kvmd-htpasswd set admin`.
"""

import argparse
import getpass
import re
import sys
from pathlib import Path

from kvmd.auth.htpasswd import hash_password, read_entries, write_entries
from kvmd.cli.common import CliError, file_from_args, make_parser, run_tool

_PROG = "kvmd-htpasswd"
_KEY = "kvmd.auth.internal.file"

# PiKVM's username rule, so that a file moved between the two daemons stays valid.
_USER_RE = re.compile(r"^[a-z_]([a-z0-9@._-]*[a-z0-9_-])?$")
_USER_MAX = 128
# PiKVM keeps API-key pseudo-users under this prefix; a real user there would shadow one.
_RESERVED_PREFIX = "_key."
# Printable ASCII only: what every browser, HTTP header and Basic-auth client transmits alike.
# PiKVM allows 512, but bcrypt reads only 72 bytes and bcrypt>=5 raises past that instead of
# truncating, so a longer password could be neither hashed nor verified.
_PASSWD_MAX = 72


def main(argv: list[str] | None = None) -> int:
    return run_tool(_PROG, _make_parser().parse_args(argv), _htpasswd_path, _dispatch)


def _make_parser() -> argparse.ArgumentParser:
    parser = make_parser(_PROG, "Manage kvmd's htpasswd users", "htpasswd file", _KEY)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="print the users, one per line")
    set_cmd = commands.add_parser(
        "set", help="add a user or change its password (read from stdin when it is not a TTY)"
    )
    set_cmd.add_argument("user")
    del_cmd = commands.add_parser("del", help="remove a user")
    del_cmd.add_argument("user")
    return parser


def _htpasswd_path(args: argparse.Namespace) -> Path:
    return file_from_args(args, _KEY, lambda config: config.kvmd.auth.internal.file)


def _dispatch(args: argparse.Namespace, path: Path) -> None:
    if args.command == "list":
        for user in read_entries(path):
            print(user)
    elif args.command == "set":
        _set_user(path, args.user)
    else:
        _del_user(path, args.user)


def _set_user(path: Path, user: str) -> None:
    _check_user(user)
    passwd = _read_passwd()
    _check_passwd(passwd)
    # Validate before reading the file so a refused password never touches it.
    entries = read_entries(path) if path.exists() else {}
    entries[user] = hash_password(passwd)  # an existing user keeps its place in the file
    write_entries(path, entries)


def _del_user(path: Path, user: str) -> None:
    entries = read_entries(path)
    if entries.pop(user, None) is None:
        raise CliError(f"no such user: {user!r}")
    write_entries(path, entries)


def _check_user(user: str) -> None:
    if user.startswith(_RESERVED_PREFIX):
        raise CliError(f"usernames starting with {_RESERVED_PREFIX!r} are reserved")
    if len(user) > _USER_MAX or not _USER_RE.match(user):
        raise CliError(
            f"invalid username {user!r}: use at most {_USER_MAX} of a-z 0-9 @ . _ -,"
            " starting with a letter or _ and not ending with @ or ."
        )


def _check_passwd(passwd: str) -> None:
    # The message never echoes the password: it may be a typo of the real one.
    if not passwd:
        raise CliError("empty password refused")
    if len(passwd) > _PASSWD_MAX:
        raise CliError(f"the password is longer than {_PASSWD_MAX} characters")
    if not all(0x20 <= ord(char) <= 0x7E for char in passwd):
        raise CliError("the password may contain printable ASCII characters only")


def _read_passwd() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat: "):
            raise CliError("the passwords do not match")
        return first
    # Raw bytes, so that the check does not depend on the locale: anything but ASCII becomes
    # U+FFFD and is refused. The limit bounds memory when stdin is not a line at all.
    line = sys.stdin.buffer.readline(_PASSWD_MAX + 2)
    return line.removesuffix(b"\n").decode("ascii", errors="replace")


def run() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
