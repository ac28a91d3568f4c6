# SPDX-License-Identifier: GPL-3.0-or-later
"""The Apache htpasswd file: read, verify, and rewrite atomically.

Hash checks are slow on purpose (bcrypt), so `verify` blocks: call it from a thread.
"""

from pathlib import Path

from passlib.context import CryptContext

from kvmd.auth.files import FileSignature, atomic_write, signature

# What we verify. Plaintext entries are refused: an htpasswd file is often readable by
# more than the daemon, and a cleartext password there is a mistake to surface, not honour.
_CONTEXT = CryptContext(
    schemes=[
        "bcrypt",
        "sha512_crypt",
        "sha256_crypt",
        "apr_md5_crypt",
        "md5_crypt",
        "ldap_salted_sha512",
        "ldap_salted_sha256",
        "ldap_salted_sha1",
        "ldap_sha1",
    ],
    default="bcrypt",
)


def hash_password(passwd: str) -> str:
    return str(_CONTEXT.hash(passwd))


def read_entries(path: Path) -> dict[str, str]:
    """`user -> hash` in file order; blank lines and `#` comments are skipped."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or ":" not in stripped:
            continue
        user, hashed = stripped.split(":", 1)
        entries[user] = hashed
    return entries


def write_entries(path: Path, entries: dict[str, str]) -> None:
    """Replace the file atomically, keeping its mode and owner."""
    text = "".join(f"{user}:{hashed}\n" for (user, hashed) in entries.items())
    atomic_write(path, text.encode())


class Htpasswd:
    """Verifies passwords against the file, re-reading it whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def signature(self) -> FileSignature | None:
        return signature(self.path)

    def verify(self, user: str, passwd: str) -> bool:
        """Blocking: runs the hash. False for unknown users and unreadable files."""
        try:
            entries = read_entries(self.path)
        except OSError:
            return False
        hashed = entries.get(user)
        if hashed is None:
            # Spend as long as a real check would, so that timing does not tell who exists.
            if entries:
                _safe_verify(passwd, next(iter(entries.values())))
            return False
        return _safe_verify(passwd, hashed)


def _safe_verify(passwd: str, hashed: str) -> bool:
    try:
        return bool(_CONTEXT.verify(passwd, hashed))
    except (ValueError, TypeError):  # an entry in a format we do not accept
        return False
