# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-totp`: turn the TOTP second factor on (`init`), show it again, or turn it off (`del`).

The secret file is the switch: kvmd asks for a code whenever the file holds a secret.
"""

import argparse
import io
import socket
import sys
from pathlib import Path

import pyotp
import qrcode

from kvmd.auth.totp import CODE_LENGTH, read_secret, write_secret
from kvmd.config.args import EX_CONFIG, add_config_args, load_from_args
from kvmd.errors import ConfigError

_PROG = "kvmd-totp"


class _CliError(Exception):
    """A refused operation: printed as one line, exit status 1."""


def main(argv: list[str] | None = None) -> int:
    args = _make_parser().parse_args(argv)
    try:
        path = _secret_path(args)
    except ConfigError as exc:
        print(f"{_PROG}: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        _dispatch(args, path)
    except _CliError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{_PROG}: {exc.filename or path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="Manage kvmd's TOTP second factor")
    add_config_args(parser)
    parser.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="the secret file (default: kvmd.auth.totp.secret.file from the config)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init_cmd = commands.add_parser("init", help="create a secret and show it as a QR code")
    init_cmd.add_argument("--force", action="store_true", help="replace an existing secret")
    show_cmd = commands.add_parser("show", help="show the existing secret as a QR code")
    for cmd in (init_cmd, show_cmd):
        # Not stored anywhere: they only label the entry in the authenticator app.
        cmd.add_argument("--name", default=socket.gethostname(), help="default: %(default)s")
        cmd.add_argument("--issuer", default="kvmd", help="default: %(default)s")
    commands.add_parser("del", help="remove the secret, turning 2FA off")
    return parser


def _secret_path(args: argparse.Namespace) -> Path:
    if args.file is not None:
        return Path(args.file)
    configured = load_from_args(args).kvmd.auth.totp.secret.file
    if not configured:
        raise ConfigError("kvmd.auth.totp.secret.file is empty (2FA is disabled); pass --file")
    return Path(configured)


def _dispatch(args: argparse.Namespace, path: Path) -> None:
    if args.command == "init":
        _init(path, args.force)
        _show(path, args.name, args.issuer)
        print(
            f"2FA is on: from now on, append the current {CODE_LENGTH}-digit code to every"
            " password (password 'secret' and code 123456 give 'secret123456')."
        )
    elif args.command == "show":
        _show(path, args.name, args.issuer)
    else:
        write_secret(path, "")
        print("2FA is off: passwords are accepted without a code.")


def _init(path: Path, force: bool) -> None:
    if read_secret(path) and not force:
        # Replacing the secret silently would lock out everyone whose app holds the old one.
        raise _CliError(f"{path} already holds a secret; use 'init --force' to replace it")
    write_secret(path, pyotp.random_base32())


def _show(path: Path, name: str, issuer: str) -> None:
    secret = read_secret(path)
    if not secret:
        raise _CliError(f"no secret in {path}: 2FA is off; run 'init' first")
    uri = str(pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer))
    print(uri)
    print(_render_qr(uri), end="", flush=True)


def _render_qr(uri: str) -> str:
    qr = qrcode.QRCode(border=1)
    qr.add_data(uri)
    out = io.StringIO()
    # Half-block characters, light on dark: the common terminal scheme, and no GUI needed.
    qr.print_ascii(out=out, invert=True)
    text = out.getvalue()
    encoding = sys.stdout.encoding or "ascii"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return f"(this terminal's {encoding} can't draw the QR code; enter the URI instead)\n"
    return text


def run() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
