# SPDX-License-Identifier: GPL-3.0-or-later
"""The Apache htpasswd file: read, verify, and rewrite atomically.

Hash checks are slow on purpose (bcrypt), so `verify` blocks: call it from a thread.
"""

import os
import tempfile
from pathlib import Path

from passlib.context import CryptContext

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

FileSignature = tuple[int, int, int, int]


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
    """Replace the file in one rename, keeping its mode and owner: a crash leaves old or new."""
    try:
        st = path.stat()
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o600, None
    text = "".join(f"{user}:{hashed}\n" for (user, hashed) in entries.items())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).chmod(mode)
        if owner is not None:
            os.chown(tmp, *owner)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Htpasswd:
    """Verifies passwords against the file, re-reading it whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def signature(self) -> FileSignature | None:
        """Cheap identity of the file's current content (one stat); None if it is missing."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)

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
