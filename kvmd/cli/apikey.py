# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-apikey`: list, create, rotate and remove API keys in the keys file.

The running daemon picks the change up within a second. A new secret is printed once, on
its own line, and is not stored anywhere but as its SHA-256: `SECRET=$(kvmd-apikey create
--permissions atx --name ci | tail -n1)`.
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

from kvmd.auth.apikeys import KEY_ID_RE, ApiKeys, parse_nets
from kvmd.auth.principal import parse_permissions
from kvmd.auth.rules import USER_RE
from kvmd.cli.common import CliError, file_from_args, make_parser, run_tool
from kvmd.errors import ConfigError, KvmdError

_PROG = "kvmd-apikey"
_KEY = "kvmd.auth.files.keys"


def main(argv: list[str] | None = None) -> int:
    return run_tool(_PROG, _make_parser().parse_args(argv), _keys_path, _dispatch)


def _make_parser() -> argparse.ArgumentParser:
    parser = make_parser(_PROG, "Manage kvmd's API keys", "API keys file", _KEY)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="print the keys, one per line, without secrets")
    create = commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", default="")
    create.add_argument("--owner", default="admin", help="the user it acts for (default: admin)")
    create.add_argument(
        "--permissions", default="", help="comma-separated, e.g. atx,state (default: none)"
    )
    create.add_argument("--read-only", action="store_true", help="GET and HEAD only")
    create.add_argument("--expire", type=int, default=0, help="seconds until it expires")
    create.add_argument("--allowed-nets", default="", help="comma-separated CIDRs")
    rotate = commands.add_parser("rotate", help="issue a new secret and print it once")
    rotate.add_argument("id")
    rotate.add_argument("--grace", type=float, default=0.0, help="seconds the old one still works")
    remove = commands.add_parser("remove", help="delete a key")
    remove.add_argument("id")
    return parser


def _keys_path(args: argparse.Namespace) -> Path:
    return file_from_args(args, _KEY, lambda config: config.kvmd.auth.files.keys)


def _dispatch(args: argparse.Namespace, path: Path) -> None:
    try:
        keys = ApiKeys(path)
        if args.command == "list":
            _list(keys)
        elif args.command == "create":
            _create(keys, args)
        elif args.command == "rotate":
            print(keys.rotate(_key_id(args.id), args.grace))
        else:
            keys.remove(_key_id(args.id))
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except KvmdError as exc:
        raise CliError(exc.msg) from None


def _list(keys: ApiKeys) -> None:
    now = time.time()
    for key in keys.all():
        state = "expired" if key.is_expired(now) else ("enabled" if key.enabled else "disabled")
        expires = _when(key.expires) if key.expires is not None else "never"
        perms = ",".join(key.permissions) or "-"
        mode = "ro" if key.read_only else "rw"
        print(f"{key.id}\t{key.owner}\t{perms}\t{mode}\t{state}\texpires={expires}\t{key.name}")


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _create(keys: ApiKeys, args: argparse.Namespace) -> None:
    if not USER_RE.match(args.owner):
        raise CliError(f"invalid owner {args.owner!r}")
    try:
        permissions = parse_permissions(p for p in args.permissions.split(",") if p.strip())
        nets = parse_nets([n for n in args.allowed_nets.split(",") if n.strip()])
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.expire < 0:
        raise CliError("--expire must be positive")
    (key, secret) = keys.create(
        name=args.name,
        owner=args.owner,
        permissions=permissions,
        read_only=args.read_only,
        expires=time.time() + args.expire if args.expire else None,
        allowed_nets=nets,
    )
    print(key.id)
    print(secret)


def _key_id(raw: str) -> str:
    if not KEY_ID_RE.match(raw):
        raise CliError(f"invalid key id {raw[:64]!r}: it looks like _key.<12 of a-z2-7>")
    return raw


def run() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
