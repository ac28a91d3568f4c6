# SPDX-License-Identifier: GPL-3.0-or-later
"""The server side of a memsink, as ustreamer publishes: the simulated streamer's part.

It creates `/dev/shm/<name>` at the size ustreamer gives that name, and puts frames in
under the same lock, with the same heartbeat and key-request rules, so that kvmd's reader
meets in the simulation exactly what it meets on a Pi.
"""

import mmap
import os
import random
import time
from pathlib import Path

from kvmd.media.memsink import (
    HEADER_SIZE,
    MAGIC,
    SHM_DIR,
    VERSION,
    Frame,
    Header,
    capacity_of,
    locked,
)

# ustreamer's defaults: --<x>-sink-client-ttl and --<x>-sink-timeout.
CLIENT_TTL = 10.0
_LOCK_TIMEOUT = 1.0


class MemsinkPublisher:
    def __init__(self, name: str, *, mode: int = 0o660, shm_dir: Path = SHM_DIR) -> None:
        self.name = name
        self.path = shm_dir / name.lstrip("/")
        self.capacity = capacity_of(name)
        size = HEADER_SIZE + self.capacity
        old_umask = os.umask(0)  # as ustreamer: the mode is exactly --<x>-sink-mode
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        finally:
            os.umask(old_umask)
        os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._header: Header | None = Header.from_buffer(self._map)
        self._last_client_ts = 0.0

    def close(self, *, remove: bool = False) -> None:
        if self._header is not None:
            self._header = None
            self._map.close()
            os.close(self._fd)
        if remove:  # --<x>-sink-rm
            self.path.unlink(missing_ok=True)

    def has_clients(self) -> bool:
        """Whether anyone read lately; ustreamer's H.264 encoder idles otherwise."""
        header = self._view()
        if header.magic != MAGIC:
            return True  # a reader writes its heartbeat only once a frame is there
        ts = float(header.last_client_ts)
        if ts != self._last_client_ts:
            self._last_client_ts = ts
            return True
        return ts + CLIENT_TTL > time.clock_gettime(time.CLOCK_MONOTONIC)

    def wants_key(self) -> bool:
        return bool(self._view().wants.key)

    def put(self, frame: Frame) -> bool:
        """Publish a frame; False when it was dropped (too big, or the lock stayed busy)."""
        if len(frame.data) > self.capacity:
            return False
        header = self._view()
        with locked(self._fd, _LOCK_TIMEOUT) as taken:
            if not taken:
                return False
            header.id = random.getrandbits(64)
            if header.wants.key and frame.key:
                header.wants.key = False
            self._map[HEADER_SIZE : HEADER_SIZE + len(frame.data)] = frame.data
            header.used = len(frame.data)
            (header.width, header.height, header.format) = (frame.width, frame.height, frame.format)
            (header.stride, header.online, header.key) = (0, frame.online, frame.key)
            header.gop = frame.gop
            (header.grab_begin_ts, header.grab_end_ts) = (frame.grab_ts, frame.grab_ts)
            now = time.clock_gettime(time.CLOCK_MONOTONIC)
            (header.encode_begin_ts, header.encode_end_ts) = (frame.grab_ts, now)
            (header.magic, header.version) = (MAGIC, VERSION)
        return True

    def _view(self) -> Header:
        if self._header is None:
            raise ValueError(f"memsink {self.name!r} is closed")
        return self._header
