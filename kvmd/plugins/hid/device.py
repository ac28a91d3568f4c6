# SPDX-License-Identifier: GPL-3.0-or-later
"""One gadget HID device (/dev/hidgN): a queue of events written without blocking the loop.

The kernel's f_hidg holds one report until the host polls the endpoint; a host that is
asleep, unplugged or unbound never does, so the next write fails with EAGAIN (or
ESHUTDOWN). Writes therefore go through a non-blocking descriptor and wait for
writability at most `select_timeout`; a report that still cannot go marks the device
offline. From then on the pending events are folded into the report state without being
written, and only the state itself is retried, so that the host that comes back sees the
keys as they are now instead of a burst of stale presses.

Events are encoded at write time, which is what lets a flood of mouse moves coalesce:
a move queued behind another move replaces it, relative moves and wheel steps add up.

The device path may also be a unix SEQPACKET socket: the simulated USB host listens on
one, and its small backlog makes it refuse reports the way an unread gadget does.
"""

import asyncio
import errno
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from kvmd.plugins.hid.config import DeviceConfig
from kvmd.plugins.hid.pending import Event, PendingEvents

logger = logging.getLogger(__name__)

# The host is there but has not taken the previous report yet.
_BUSY = frozenset({errno.EAGAIN, errno.ESHUTDOWN, errno.ENOBUFS})
# Wait this long before reopening a device node that is missing or was closed.
REOPEN_DELAY = 1.0


class Encoder(Protocol):
    def encode(self, event: Event) -> list[bytes]:
        """Apply `event` to the report state and return the reports that tell the host."""
        ...

    def snapshot(self) -> bytes:
        """One report that carries the whole current state (no motion)."""
        ...


class ReportDevice:
    def __init__(
        self,
        path: str | None,
        config: DeviceConfig,
        encoder: Encoder,
        *,
        name: str,
        on_change: Callable[[], None],
        on_output: Callable[[bytes], None] | None = None,
    ) -> None:
        # No path: pretend every write succeeds (the `noop` setting).
        self._path = path or ""
        noop = path is None
        self._config = config
        self._encoder = encoder
        self._name = name
        self._on_change = on_change
        self._on_output = on_output
        self._noop = noop
        self._fd: int | None = None
        self._pending: PendingEvents[Event] = PendingEvents()
        self._online = noop

    @property
    def online(self) -> bool:
        return self._online

    def push(self, event: Event) -> None:
        self._pending.push(event)

    async def wait_drained(self) -> None:
        await self._pending.wait_drained()

    def backlog(self) -> int:
        return len(self._pending)

    def write_now(self, report: bytes) -> None:
        """Best effort, for shutdown: one report if the host takes it at once, then close."""
        self._pending.take_all()
        if self._fd is None and not self._noop and not self._open():
            return
        self._try_write(report)
        self._close()

    async def run(self) -> None:
        try:
            while True:
                if self._fd is None and not self._noop and not self._open():
                    self._absorb()
                    await self._pending.wait(REOPEN_DELAY)
                    continue
                if not self._pending:
                    await self._pending.wait(None)
                    continue
                event = self._pending.pop()
                if isinstance(event, _Resync):
                    reports = [self._encoder.snapshot()]
                else:
                    reports = self._encoder.encode(event)
                for report in reports:
                    if not await self._write(report):
                        await self._recover()
                        break
        finally:
            self._close()

    async def _recover(self) -> None:
        """Keep offering the current state until the host takes it."""
        self._set_online(False)
        attempts = 0
        while True:
            self._absorb()
            if self._fd is None and not self._open():
                await self._pending.wait(REOPEN_DELAY)
                continue
            if await self._write(self._encoder.snapshot()):
                logger.info("HID %s: the host reads reports again", self._name)
                return
            attempts += 1
            # A host that sleeps for hours is not hammered: fast retries first, then slow.
            fast = attempts < self._config.write_retries
            await self._pending.wait(self._config.queue_timeout if fast else REOPEN_DELAY)

    def _absorb(self) -> None:
        """Fold queued events into the state without writing them (the host is away)."""
        for event in self._pending.take_all():
            if not isinstance(event, _Resync):
                self._encoder.encode(event)

    async def _write(self, report: bytes) -> bool:
        if self._noop:
            return True
        written = self._try_write(report)
        if written is None and await self._writable(self._config.select_timeout):
            written = self._try_write(report)
        if written is None:
            return False
        if written != len(report):
            logger.error("HID %s: short write (%d of %d)", self._name, written, len(report))
            return False
        self._set_online(True)
        return True

    def _try_write(self, report: bytes) -> int | None:
        """Bytes written, or None when the host has not taken the previous report."""
        if self._fd is None:
            return None
        try:
            return os.write(self._fd, report)
        except OSError as exc:
            if exc.errno not in _BUSY:
                logger.warning("HID %s: can't write to %s: %s", self._name, self._path, exc)
                self._close()
            return None

    async def _writable(self, wait: float) -> bool:
        if self._fd is None:
            return False
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(self._fd, wake)
        try:
            async with asyncio.timeout(wait):
                await ready
        except TimeoutError:
            return False
        finally:
            # The descriptor may have been closed while we waited.
            if self._fd is not None:
                loop.remove_writer(self._fd)
        return True

    def _open(self) -> bool:
        try:
            self._fd = _open_device(self._path, readable=self._on_output is not None)
        except OSError as exc:
            self._set_online(False)
            logger.debug("HID %s: can't open %s: %s", self._name, self._path, exc)
            return False
        logger.info("HID %s: opened %s", self._name, self._path)
        if self._on_output is not None:
            asyncio.get_running_loop().add_reader(self._fd, self._read_output)
        # The host may have missed anything sent before: give it the state once.
        self._pending.push_front(_Resync())
        return True

    def _read_output(self) -> None:
        if self._fd is None or self._on_output is None:
            return
        try:
            data = os.read(self._fd, 64)
        except BlockingIOError:
            return
        except OSError as exc:
            logger.warning("HID %s: can't read from %s: %s", self._name, self._path, exc)
            data = b""
        if not data:
            # The other end is gone (the simulated host closed its socket).
            self._close()
            self._set_online(False)
            self._pending.wake()
            return
        self._on_output(data)

    def _close(self) -> None:
        if self._fd is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        loop.remove_writer(self._fd)
        os.close(self._fd)
        self._fd = None

    def _set_online(self, online: bool) -> None:
        if self._online != online:
            self._online = online
            if not online:
                logger.warning("HID %s: the host does not take reports", self._name)
            self._on_change()


class _Resync:
    """A marker event: write the current state as it is."""

    def merge(self, newer: Event) -> bool:
        return False


def _open_device(path: str, *, readable: bool) -> int:
    if stat.S_ISSOCK(Path(path).stat().st_mode):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # A gadget holds one report until the host polls; the smallest send buffer
            # keeps the stand-in close to that (a few reports, not hundreds, in flight).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
            sock.setblocking(False)
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock.detach()
    flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_NONBLOCK | os.O_NOCTTY
    return os.open(path, flags | os.O_CLOEXEC)
