# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-htpasswd`: list, set and delete the users of the htpasswd file.

Every failure is one line on stderr and a non-zero exit (1, or 78 for a config error), so that
the tool can be scripted: `echo "$PASS" | kvmd-htpasswd set admin`.
"""

import argparse
import getpass
import sys
from pathlib import Path

from kvmd.auth.htpasswd import hash_password, read_entries, write_entries
from kvmd.auth.rules import PASSWD_MAX, passwd_problem, user_problem
from kvmd.cli.common import CliError, file_from_args, make_parser, run_tool

_PROG = "kvmd-htpasswd"
_KEY = "kvmd.auth.internal.file"


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
    problem = user_problem(user)
    if problem:
        raise CliError(problem)


def _check_passwd(passwd: str) -> None:
    problem = passwd_problem(passwd)
    if problem:
        raise CliError(problem)


def _read_passwd() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat: "):
            raise CliError("the passwords do not match")
        return first
    # Raw bytes, so that the check does not depend on the locale: anything but ASCII becomes
    # U+FFFD and is refused. The limit bounds memory when stdin is not a line at all.
    line = sys.stdin.buffer.readline(PASSWD_MAX + 2)
    return line.removesuffix(b"\n").decode("ascii", errors="replace")


def run() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
