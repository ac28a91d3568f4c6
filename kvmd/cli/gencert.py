# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-gencert`: the self-signed certificate nginx serves until the owner brings a real one.

Run before nginx starts (ExecStartPre): it does nothing when the pair exists, so an owner's
own certificate is never replaced without `--force`. The key is readable by its owner only
(and `--group`, for nginx's workers); both files appear together or not at all.
"""

import argparse
import grp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from kvmd.auth.files import exposed_secrets

_PROG = "kvmd-gencert"
KEY = "server.key"
CERT = "server.crt"


def main(argv: list[str] | None = None) -> int:
    args = _make_parser().parse_args(argv)
    folder = Path(args.dir)
    if (folder / KEY).exists() and (folder / CERT).exists() and not args.force:
        # nginx would serve it anyway: a key anyone can read stops the start instead.
        findings = exposed_secrets([folder / KEY])
        if findings:
            print(f"{_PROG}: {findings[0]}", file=sys.stderr)
            return 1
        print(f"{_PROG}: {folder / CERT} exists; --force replaces it")
        return 0
    openssl = shutil.which("openssl")
    if openssl is None:
        print(f"{_PROG}: openssl is missing (apt-get install openssl)", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".gencert-") as tmp:
        key = Path(tmp) / KEY
        cert = Path(tmp) / CERT
        done = subprocess.run(  # noqa: S603 (a fixed argv, no shell)
            [openssl, *_request(args.name, args.days, key, cert)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"{_PROG}: openssl failed: {done.stderr.strip()}", file=sys.stderr)
            return 1
        key.chmod(0o640 if args.group else 0o600)
        cert.chmod(0o644)
        if args.group:
            os.chown(key, -1, grp.getgrnam(args.group).gr_gid)
        # The key first: a new certificate never sits next to an old key.
        key.replace(folder / KEY)
        cert.replace(folder / CERT)
    print(f"{_PROG}: wrote {folder / CERT} for {args.name}")
    return 0


def _request(name: str, days: int, key: Path, cert: Path) -> list[str]:
    # P-256: small and fast on a Pi, and every browser takes it.
    return [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        str(days),
        "-subj",
        f"/CN={name}",
        "-addext",
        f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    ]


def _make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/etc/kvmd/nginx/ssl", help="default: %(default)s")
    parser.add_argument("--name", default=socket.gethostname(), help="default: %(default)s")
    parser.add_argument("--days", type=int, default=3650, help="default: %(default)s")
    parser.add_argument("--group", default="", help="a group that may read the key (nginx's)")
    parser.add_argument("--force", action="store_true", help="replace an existing pair")
    return parser


def run() -> None:
    sys.exit(main())
