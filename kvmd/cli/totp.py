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
from kvmd.cli.common import CliError, file_from_args, make_parser, run_tool

_PROG = "kvmd-totp"
_KEY = "kvmd.auth.totp.secret.file"


def main(argv: list[str] | None = None) -> int:
    return run_tool(_PROG, _make_parser().parse_args(argv), _secret_path, _dispatch)


def _make_parser() -> argparse.ArgumentParser:
    parser = make_parser(_PROG, "Manage kvmd's TOTP second factor", "secret file", _KEY)
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
    return file_from_args(args, _KEY, lambda config: config.kvmd.auth.totp.secret.file)


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
        raise CliError(f"{path} already holds a secret; use 'init --force' to replace it")
    write_secret(path, pyotp.random_base32())


def _show(path: Path, name: str, issuer: str) -> None:
    secret = read_secret(path)
    if not secret:
        raise CliError(f"no secret in {path}: 2FA is off; run 'init' first")
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
