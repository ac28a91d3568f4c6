# SPDX-License-Identifier: GPL-3.0-or-later
"""TOTP second factor: the last six characters of a password are the current code."""

from pathlib import Path

import pyotp

from kvmd.auth.files import atomic_write

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
    """Write the secret atomically, keeping an existing file's mode and owner.

    A new file is readable by its owner only; an installed one is root:kvmd 0640 on a Pi,
    so that kvmd can read it.
    """
    atomic_write(path, (secret + "\n" if secret else "").encode(), mode=0o600, parents=False)
