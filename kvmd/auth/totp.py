# SPDX-License-Identifier: GPL-3.0-or-later
"""TOTP second factor: the last six characters of a password are the current code."""

import os
import tempfile
from pathlib import Path

import pyotp

CODE_LENGTH = 6


def read_secret(path: Path | None) -> str:
    """The base32 secret, or "" when 2FA is off (no path configured, file missing or empty)."""
    if path is None:
        return ""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def split_code(passwd: str) -> tuple[str, str]:
    """`(password, code)`; the code is empty when the password is too short to carry one."""
    if len(passwd) < CODE_LENGTH:
        return (passwd, "")
    return (passwd[:-CODE_LENGTH], passwd[-CODE_LENGTH:])


def verify_code(secret: str, code: str) -> bool:
    """Accept the previous, current and next 30 s step, to absorb clock skew."""
    if len(code) != CODE_LENGTH or not code.isdigit():
        return False
    return bool(pyotp.TOTP(secret).verify(code, valid_window=1))


def write_secret(path: Path, secret: str) -> None:
    """Write the secret atomically, readable by its owner only."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n" if secret else "")
        file.flush()
        os.fsync(file.fileno())
    Path(tmp).chmod(0o600)
    Path(tmp).replace(path)
