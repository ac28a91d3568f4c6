# SPDX-License-Identifier: GPL-3.0-or-later
"""Small state files of the auth layer: atomic replacement and change detection."""

import os
import tempfile
from pathlib import Path

# (inode, mtime, size, ctime): changes whenever the file is replaced or rewritten.
FileSignature = tuple[int, int, int, int]


def optional_path(raw: str) -> Path | None:
    """A configured path; the empty string means the feature is off."""
    return Path(raw) if raw else None


def signature(path: Path) -> FileSignature | None:
    """Cheap identity of the file's current content (one stat); None if it is missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, parents: bool = True) -> None:
    """Replace the file in one rename, keeping its mode and owner: a crash leaves old or new.

    `mode` applies to a new file only. Secrets files are created 0600 so that no
    window exists in which another user could read them. `parents` creates missing folders.
    """
    try:
        st = path.stat()
        (mode, owner) = (st.st_mode & 0o7777, (st.st_uid, st.st_gid))
    except FileNotFoundError:
        owner = None
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    (fd, tmp) = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
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


def exposed_secrets(paths: list[Path], *, bits: int = 0o006) -> list[str]:
    """Why each existing secret file is unsafe: readable or writable by every local user.

    A group may read a secret (nginx's group for the TLS key, `kvmd` for a shared
    htpasswd); other users may not. A missing file is no finding: the feature is off.
    `bits=0o002` checks files anyone may read but no one else may change (roles).
    """
    findings = []
    for path in paths:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            continue
        except OSError as exc:
            findings.append(f"{path}: can't check its mode: {exc.strerror}")
            continue
        if mode & bits:
            findings.append(
                f"{path}: mode {mode:04o} lets every user "
                f"{'read' if mode & bits & 0o004 else 'write'} it; "
                f"chmod o-{'rwx' if bits & 0o004 else 'w'} {path}"
            )
    return findings
