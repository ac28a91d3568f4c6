# SPDX-License-Identifier: GPL-3.0-or-later
"""VNCAuth (RFC 6143 §7.2.2): a DES challenge, checked against PiKVM's vncpasswd file.

The file holds one password a line; blank lines and `#` comments are skipped, a trailing
CR is dropped, other spaces belong to the password. PiKVM's older `password -> user`
form is read too, and here it means something: that login acts as the kvmd user named,
with the user's roles. A bare password acts for nobody in particular, with every right,
as on PiKVM.
"""

import dataclasses
import hmac
import logging
import secrets
import time
from pathlib import Path

from kvmd.auth.files import FileSignature, signature

logger = logging.getLogger(__name__)

CHALLENGE_SIZE = 16
# How long a read of the file is trusted (PiKVM re-reads it for each client, at most once
# a second).
_CACHE_SECONDS = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class VncPassword:
    passwd: str
    user: str = ""  # the kvmd user of a `password -> user` line


def parse_vncpasswd(text: str) -> list[VncPassword]:
    found: list[VncPassword] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if not line.strip() or line.strip().startswith("#"):
            continue
        (passwd, arrow, user) = line.partition(" -> ")
        found.append(VncPassword(passwd, user.strip() if arrow else ""))
    return found


class VncPasswords:
    """The file's passwords, read again when it changes (checked at most once a second)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._checked = 0.0
        self._signature: FileSignature | None = None
        self._passwords: list[VncPassword] = []

    def get(self) -> list[VncPassword]:
        now = time.monotonic()
        if self._path is None or now - self._checked < _CACHE_SECONDS:
            return self._passwords
        self._checked = now
        current = signature(self._path)
        if current != self._signature:  # read once per version of the file
            self._signature = current
            self._passwords = _read(self._path) if current is not None else []
            if current is None:
                logger.warning("VNC: %s is gone: no VNCAuth passwords", self._path)
        return self._passwords


def _read(path: Path) -> list[VncPassword]:
    try:
        return parse_vncpasswd(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("VNC: can't read %s: %s", path, exc)
        return []


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_SIZE)


def encrypt(passwd: str, challenge: bytes) -> bytes:
    """What a client answers a challenge with: DES-ECB keyed by the password.

    The key is the password's first 8 bytes (NUL-padded), each byte's bits reversed: a
    quirk of the first VNC implementation that every client keeps.
    """
    # cryptography (its OpenSSL bindings: some 7 MB) is loaded by the first VNCAuth login.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers import Cipher, modes  # noqa: PLC0415

    key = bytes(_REVERSED[byte] for byte in passwd.encode()[:8].ljust(8, b"\0"))
    # Triple DES with one key three times is single DES.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # noqa: S305 -- the protocol's
    return encryptor.update(challenge) + encryptor.finalize()


def match(passwords: list[VncPassword], challenge: bytes, answer: bytes) -> VncPassword | None:
    """The password the answer was made with, if any (every candidate is tried)."""
    found: VncPassword | None = None
    for password in passwords:
        if hmac.compare_digest(encrypt(password.passwd, challenge), answer) and found is None:
            found = password
    return found


_REVERSED = bytes(int(f"{value:08b}"[::-1], 2) for value in range(256))
