# SPDX-License-Identifier: GPL-3.0-or-later
"""Linux inotify through libc: which directories changed, read from a non-blocking fd.

Reference: inotify(7). The fd is registered in the event loop by the user; `read()`
drains whatever is queued.
"""

import ctypes
import os
import struct
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000

# What changes a directory listing or a file's size and time.
CHANGES = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len

_libc = ctypes.CDLL(None, use_errno=True)


class Event(NamedTuple):
    wd: int
    mask: int
    name: str


class Inotify:
    def __init__(self) -> None:
        """Create the inotify instance; its fd is non-blocking."""
        fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise _error()
        self.fd: int = fd

    def watch(self, path: Path, mask: int = CHANGES) -> int:
        """Watch the directory `path`; watching it again just returns its descriptor."""
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask | IN_ONLYDIR)
        if wd < 0:
            raise _error(path)
        return int(wd)

    def read(self) -> list[Event]:
        """Every queued event; empty when there is none."""
        events: list[Event] = []
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return events
            offset = 0
            while offset + _HEADER.size <= len(data):
                (wd, mask, _, length) = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                raw = data[offset : offset + length].rstrip(b"\0")
                offset += length
                events.append(Event(wd, mask, os.fsdecode(raw)))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _error(path: Path | None = None) -> OSError:
    number = ctypes.get_errno()
    return OSError(number, os.strerror(number), None if path is None else str(path))
