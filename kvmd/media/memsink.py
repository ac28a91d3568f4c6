# SPDX-License-Identifier: GPL-3.0-or-later
"""ustreamer's shared-memory sinks ("memsinks"), protocol version 10 (ustreamer 6.62+).

A sink is a POSIX shared-memory object, `/dev/shm/<name>`: a native C header, then the
frame's bytes. Everyone takes `flock(LOCK_EX)` on it, without blocking (a 1 ms retry loop
up to a deadline), to read or write. A reader writes `last_client_ts` on every look: the
H.264 encoder encodes only while that heartbeat is recent. A reader that needs a key frame
sets `wants.key`; the server clears it when it publishes one.

The header is declared with ctypes so that the compiler's own layout applies (LP64: 160
bytes; `long double` is 16 bytes on x86_64 and aarch64). Other protocol versions are
refused by name: their headers differ (7 and 8 have `key_requested` where 10 has `wants`).

Everything here blocks (flock, sleeps, copies): callers run it in a worker thread.
"""

import collections
import contextlib
import ctypes
import dataclasses
import fcntl
import mmap
import os
import time
from collections.abc import Iterator
from pathlib import Path

from kvmd.errors import KvmdError

MAGIC = 0xCAFEBABECAFEBABE
VERSION = 10
# V4L2 fourccs of the frames a sink carries.
FORMAT_H264 = 0x34363248
FORMAT_JPEG = 0x4745504A
FORMAT_MJPEG = 0x47504A4D
# The data capacity ustreamer gives a sink, from its name's suffix (after the last ':'
# or '.'): the object is the header plus this.
CAPACITY = {"jpeg": 4 * 1024 * 1024, "h264": 2 * 1024 * 1024, "raw": 3840 * 2160 * 3}
SHM_DIR = Path("/dev/shm")  # noqa: S108 -- where Linux keeps shm_open's objects

_POLL = 0.001  # ustreamer's own retry interval for the lock and for a new frame
# After a frame the reader sleeps through this part of the usual gap before polling
# (at most _QUIET_MAX): a frame that comes early waits at most that long.
_QUIET = 0.7
_QUIET_MAX = 0.02
_GAPS = 8  # recent gaps between frames the usual one is taken from
# How often the heartbeat is written while no frame comes (ustreamer's TTL is 10 s).
_BEAT = 0.1


class _Wants(ctypes.Structure):
    _fields_ = (
        ("width", ctypes.c_uint),
        ("height", ctypes.c_uint),
        ("format", ctypes.c_uint),
        ("fps", ctypes.c_uint),
        ("key", ctypes.c_bool),
    )


class Header(ctypes.Structure):
    """`us_memsink_shared_s` of ustreamer 6.62 (src/libs/memsinksh.h), field for field."""

    _fields_ = (
        ("magic", ctypes.c_uint64),
        ("version", ctypes.c_uint32),
        ("id", ctypes.c_uint64),
        ("used", ctypes.c_size_t),
        ("last_client_ts", ctypes.c_longdouble),
        ("wants", _Wants),
        ("width", ctypes.c_uint),
        ("height", ctypes.c_uint),
        ("format", ctypes.c_uint),
        ("stride", ctypes.c_uint),
        ("online", ctypes.c_bool),
        ("key", ctypes.c_bool),
        ("gop", ctypes.c_uint),
        ("grab_begin_ts", ctypes.c_longdouble),
        ("grab_end_ts", ctypes.c_longdouble),
        ("encode_begin_ts", ctypes.c_longdouble),
        ("encode_end_ts", ctypes.c_longdouble),
    )


HEADER_SIZE = ctypes.sizeof(Header)


class MemsinkError(KvmdError):
    """The sink can't be read: the reader says why and tries again later."""


class MemsinkMissingError(MemsinkError):
    """No such object (yet): the streamer is not running or has no such sink."""


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    width: int
    height: int
    format: int
    online: bool
    key: bool
    gop: int
    grab_ts: float  # CLOCK_MONOTONIC seconds when the source frame was grabbed
    encode_end_ts: float


def capacity_of(name: str) -> int:
    """The data capacity ustreamer gives a sink of that name (its suffix), or ValueError."""
    suffix = name.rsplit(":", 1)[-1] if ":" in name else name.rsplit(".", 1)[-1]
    try:
        return CAPACITY[suffix.lower()]
    except KeyError:
        raise ValueError(f"memsink {name!r}: the name must end in :jpeg, :h264 or :raw") from None


@contextlib.contextmanager
def locked(fd: int, timeout: float) -> Iterator[bool]:
    """flock(LOCK_EX) as ustreamer takes it: never blocking, retried up to `timeout`.

    Yields whether the lock was taken (False: someone held it the whole time).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(_POLL)
    try:
        yield True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class MemsinkReader:
    """One client of one sink, as `ustreamer.Memsink` is kvmd-media's."""

    def __init__(
        self,
        name: str,
        *,
        lock_timeout: float = 1.0,
        wait_timeout: float = 1.0,
        shm_dir: Path = SHM_DIR,
    ) -> None:
        self.name = name
        self._path = shm_dir / name.lstrip("/")
        self._lock_timeout = lock_timeout
        self._wait_timeout = wait_timeout
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._header: Header | None = None
        self._last_id: int | None = None
        self._last_at = 0.0  # when the last frame was taken (monotonic)
        self._gaps: collections.deque[float] = collections.deque(maxlen=_GAPS)
        self._gap: float | None = None  # the usual time between frames

    def open(self) -> tuple[mmap.mmap, Header]:
        """The object's map and header; MemsinkMissingError while there is none."""
        if self._map is not None and self._header is not None:
            return (self._map, self._header)
        try:
            # Read-write: a client writes its heartbeat and key requests into the header.
            fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MemsinkMissingError(f"No memsink {self.name!r} ({self._path})") from None
        except OSError as exc:
            raise MemsinkError(f"Can't open memsink {self.name!r}: {exc.strerror}") from None
        try:
            self._map = self._mapped(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._header = Header.from_buffer(self._map)
        return (self._map, self._header)

    def _mapped(self, fd: int) -> mmap.mmap:
        size = os.fstat(fd).st_size
        if size < HEADER_SIZE:
            raise MemsinkError(
                f"Memsink {self.name!r} is {size} bytes, short of its {HEADER_SIZE}-byte header"
            )
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def close(self) -> None:
        self._header = None  # the ctypes view holds the map's buffer: let go of it first
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "MemsinkReader":
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def wait_frame(self, *, key_required: bool = False) -> Frame | None:
        """The next frame not seen yet, or None after `wait_timeout` without one.

        `key_required` asks the encoder for a key frame (IDR) as soon as it can. A broken
        object (MemsinkError) is let go, to be opened afresh by the next call.
        """
        error: MemsinkError | None = None
        try:
            frame = self._poll(key_required)
        except MemsinkError as exc:
            (frame, error) = (None, exc)
        if error is not None:
            # Out of the except block, and without its traceback: the frames it holds view
            # the map, and mmap.close() raises BufferError while a view is alive.
            error.__traceback__ = None
            self.close()
            raise error
        if frame is None:
            self._drop_if_replaced()  # after _poll: its views of the map are gone by now
        return frame

    def _poll(self, key_required: bool) -> Frame | None:
        (buffer, header) = self.open()
        now = time.monotonic()
        deadline = now + self._wait_timeout
        if self._gap is not None and not key_required:
            # The next frame is not due yet: polling every millisecond until then would
            # cost a few % of a core per sink for nothing.
            time.sleep(max(0.0, min(self._last_at + self._gap * _QUIET - now, _QUIET_MAX)))
        beat = 0.0
        while (now := time.monotonic()) < deadline:
            # Nothing new and the heartbeat fresh: a look at the id (an aligned 64-bit
            # word, read whole) is enough, without the lock and its system calls.
            if header.id == self._last_id and not key_required and now - beat < _BEAT:
                time.sleep(_POLL)
                continue
            with locked(self._fd, self._lock_timeout) as taken:
                if not taken:
                    continue
                frame = self._take(header, buffer, key_required)
            beat = now
            if frame is not None:
                self._arrived(time.monotonic())
                return frame
            time.sleep(_POLL)
        return None

    def _arrived(self, now: float) -> None:
        if self._last_at:
            self._gaps.append(now - self._last_at)
            # The shortest recent gap, not an average: after a stall the next frames come at
            # the usual rate, and sleeping past one would drop it (a memsink holds one frame,
            # and an H.264 frame missed breaks the picture until the next key frame).
            self._gap = min(self._gaps)
        self._last_at = now

    def _drop_if_replaced(self) -> None:
        """A restarted streamer may have made a new object: the old one gets no frames."""
        try:
            replaced = self._path.stat().st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            replaced = True
        if replaced:
            self.close()

    def _take(self, header: Header, buffer: mmap.mmap, key_required: bool) -> Frame | None:
        """Under the lock: the heartbeat, then the frame if it is new."""
        if header.magic != MAGIC:
            return None  # nothing published yet
        if header.version != VERSION:
            raise MemsinkError(
                f"Memsink {self.name!r} speaks protocol {header.version}; kvmd reads "
                f"{VERSION} (ustreamer 6.62 or newer)"
            )
        header.last_client_ts = time.clock_gettime(time.CLOCK_MONOTONIC)
        if key_required:
            header.wants.key = True
        if header.id == self._last_id:
            return None
        used = header.used
        if used > len(buffer) - HEADER_SIZE:
            raise MemsinkError(
                f"Memsink {self.name!r} says its frame is {used} bytes, but only "
                f"{len(buffer) - HEADER_SIZE} fit: the object is truncated"
            )
        self._last_id = header.id
        return Frame(
            data=buffer[HEADER_SIZE : HEADER_SIZE + used],
            width=header.width,
            height=header.height,
            format=header.format,
            online=header.online,
            key=header.key,
            gop=header.gop,
            grab_ts=float(header.grab_begin_ts),
            encode_end_ts=float(header.encode_end_ts),
        )
