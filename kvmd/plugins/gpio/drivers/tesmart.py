# SPDX-License-Identifier: GPL-3.0-or-later
"""TESmart HDMI KVM switches, over their TCP port or a serial line.

Frames are `AA BB 03 <cmd> <value> EE`: cmd 01 with value N selects port N (1-based);
cmd 10 asks for the active port, answered by `AA BB 03 11 <port> EE` with the port
counted from 0. Output pin N selects port N+1 and input pin N reads whether it is active.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kvmd.plugins.gpio.config import TesmartDriverConfig
from kvmd.plugins.gpio.drivers.driver import PollingDriver

if TYPE_CHECKING:
    import serial

logger = logging.getLogger(__name__)

HEADER = b"\xaa\xbb\x03"
END = b"\xee"
SELECT = 0x01
QUERY = 0x10
ACTIVE = 0x11


# Frames read while waiting for an answer before giving up.
_FRAMES = 8


def frame(command: int, value: int) -> bytes:
    return HEADER + bytes([command, value]) + END


def _active_port(data: bytes) -> int | None:
    tail = data[-6:]
    if len(tail) == 6 and tail[:4] == HEADER + bytes([ACTIVE]):
        return tail[4]
    return None


_NO_ANSWER = "the switch sent no active-port answer"


class _Link:
    """One connection to the switch: TCP through asyncio, serial through pyserial."""

    def __init__(self, config: TesmartDriverConfig) -> None:
        self._config = config
        self._tcp: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._serial: serial.Serial | None = None

    async def exchange(self, request: bytes, *, answer: bool) -> int | None:
        """Send `request`; with `answer`, return the active port the switch reports.

        Frames the switch sends unasked (some models announce every port change) are
        skipped until the answer comes. Any failure closes the link.
        """
        try:
            async with asyncio.timeout(self._config.timeout):
                if self._config.host:
                    return await self._tcp_exchange(request, answer=answer)
                return await asyncio.to_thread(self._serial_exchange, request, answer=answer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            self.close()
            raise OSError(str(error) or type(error).__name__) from error

    async def _tcp_exchange(self, request: bytes, *, answer: bool) -> int | None:
        if self._tcp is None:
            self._tcp = await asyncio.open_connection(self._config.host, self._config.port)
        (reader, writer) = self._tcp
        writer.write(request)
        await writer.drain()
        if not answer:
            return None
        for _ in range(_FRAMES):
            port = _active_port(await reader.readuntil(END))
            if port is not None:
                return port
        raise OSError(_NO_ANSWER)

    def _serial_exchange(self, request: bytes, *, answer: bool) -> int | None:
        import serial  # noqa: PLC0415 -- pyserial only where a switch is wired by serial

        if self._serial is None:
            self._serial = serial.Serial(
                self._config.device, self._config.speed, timeout=self._config.timeout
            )
        self._serial.write(request)
        self._serial.flush()
        if not answer:
            return None
        for _ in range(_FRAMES):
            data = bytes(self._serial.read_until(END))
            if not data.endswith(END):
                raise OSError("the switch did not answer")
            port = _active_port(data)
            if port is not None:
                return port
        raise OSError(_NO_ANSWER)

    def close(self) -> None:
        if self._tcp is not None:
            self._tcp[1].close()
            self._tcp = None
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None


class TesmartDriver(PollingDriver[int]):
    """The active port, read after every selection and every `state_poll`."""

    def __init__(self, name: str, config: TesmartDriverConfig, notify: Callable[[], None]) -> None:
        super().__init__(name, config, notify, config.state_poll)
        self._link = _Link(config)
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        self._link.close()

    async def _fetch(self) -> int:
        async with self._lock:
            port = await self._link.exchange(frame(QUERY, 0), answer=True)
        if port is None:  # pragma: no cover -- exchange answers or raises
            raise OSError(_NO_ANSWER)
        return port

    def read(self, pin: str) -> bool:
        return self._current() == int(pin)

    async def write(self, pin: str, state: bool) -> None:
        if not state:
            return  # a port can't be deselected, only another one selected
        async with self._lock:
            try:
                await self._link.exchange(frame(SELECT, int(pin) + 1), answer=False)
            except OSError as error:
                raise self._offline(error) from error
        await self._poll()
