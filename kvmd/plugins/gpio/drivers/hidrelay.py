# SPDX-License-Identifier: GPL-3.0-or-later
"""USB HID relay boards (the common 16c0:05df "USBRelayN" ones) through /dev/hidrawN.

The board speaks feature reports without a report number: `FF nn` switches relay nn
(1-based) on, `FD nn` off, and reading the feature report gives 8 bytes whose last is
the bitmap of relays that are on. Pins 0-7 are relays 1-8.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
from collections.abc import Callable, Iterator
from typing import Protocol

from kvmd.plugins.gpio.config import HidRelayDriverConfig
from kvmd.plugins.gpio.drivers.driver import PollingDriver

logger = logging.getLogger(__name__)

VENDOR_ID = 0x16C0
PRODUCT_ID = 0x05DF
REPORT_SIZE = 8  # data bytes, after the report number 0
RELAY_ON = 0xFF
RELAY_OFF = 0xFD


def _ioc(direction: int, number: int, size: int) -> int:
    # Linux _IOC(dir, 'H', nr, size) for the hidraw ioctls.
    return (direction << 30) | (size << 16) | (ord("H") << 8) | number


_READ, _WRITE = 2, 1
HIDIOCGRAWINFO = _ioc(_READ, 0x03, 8)


def HIDIOCSFEATURE(size: int) -> int:  # noqa: N802 -- the kernel's name
    return _ioc(_READ | _WRITE, 0x06, size)


def HIDIOCGFEATURE(size: int) -> int:  # noqa: N802
    return _ioc(_READ | _WRITE, 0x07, size)


class Transport(Protocol):
    """Where the feature reports go: hidraw, or a fake board in tests."""

    def get_feature(self) -> bytes: ...

    def set_feature(self, report: bytes) -> None: ...


class HidrawTransport:
    """Feature reports on a hidraw node.

    The node is opened per exchange, so a replugged board (a new node behind the same
    udev link) just works.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    @contextlib.contextmanager
    def _open(self) -> Iterator[int]:
        fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        try:
            info = bytearray(8)
            fcntl.ioctl(fd, HIDIOCGRAWINFO, info)
            (_, vendor, product) = struct.unpack("<IHH", info)
            if (vendor, product) != (VENDOR_ID, PRODUCT_ID):
                raise OSError(f"{self._path} is {vendor:04x}:{product:04x}, not a HID relay")
            yield fd
        finally:
            os.close(fd)

    def get_feature(self) -> bytes:
        with self._open() as fd:
            buffer = bytearray(1 + REPORT_SIZE)  # report number 0, then the data
            fcntl.ioctl(fd, HIDIOCGFEATURE(len(buffer)), buffer)
            return bytes(buffer[1:])

    def set_feature(self, report: bytes) -> None:
        with self._open() as fd:
            fcntl.ioctl(fd, HIDIOCSFEATURE(len(report)), bytearray(report))


def command(relay_pin: int, state: bool) -> bytes:
    """The feature report (report number 0 first) that switches one relay."""
    data = bytes([RELAY_ON if state else RELAY_OFF, relay_pin + 1])
    return b"\x00" + data.ljust(REPORT_SIZE, b"\x00")


class HidRelayDriver(PollingDriver[int]):
    """Relays by their bitmap, read back after every switch and every `state_poll`."""

    def __init__(
        self,
        name: str,
        config: HidRelayDriverConfig,
        notify: Callable[[], None],
        transport: Transport | None = None,
    ) -> None:
        super().__init__(name, config, notify, config.state_poll)
        self._transport: Transport = transport or HidrawTransport(config.device)
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        # Relays keep their state without us; outputs go back to idle as GPIO lines do.
        for pin, idle in self._outputs.items():
            with contextlib.suppress(Exception):
                await self.write(pin, idle)

    async def _fetch(self) -> int:
        async with self._lock:
            return (await asyncio.to_thread(self._transport.get_feature))[REPORT_SIZE - 1]

    def read(self, pin: str) -> bool:
        return bool(self._current() >> int(pin) & 1)

    async def write(self, pin: str, state: bool) -> None:
        async with self._lock:
            try:
                await asyncio.to_thread(self._transport.set_feature, command(int(pin), state))
            except OSError as error:
                raise self._offline(error) from error
        await self._poll()
