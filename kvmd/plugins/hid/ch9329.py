# SPDX-License-Identifier: GPL-3.0-or-later
"""CH9329: a UART-to-USB keyboard and mouse chip, for boards without USB OTG.

Every command is a frame `57 AB <addr> <cmd> <len> <data...> <sum>` (sum: the low byte
of all preceding bytes), and the chip answers each with `cmd | 0x80` (done, with a status
byte or data) or `cmd | 0xC0` (refused, with an error code). Keyboard data is the boot
report itself; absolute mouse coordinates are 0..4095 on this chip; there is no
horizontal wheel. LEDs and the USB link state come from GET_INFO, polled while idle.
"""

import asyncio
import contextlib
import dataclasses
import logging
import os
import struct

import serial

from kvmd.bus import Bus
from kvmd.plugins.hid.base import (
    HidBackend,
    HidLeds,
    HidOutputs,
    HidState,
    KeyboardState,
    MouseState,
)
from kvmd.plugins.hid.config import Ch9329HidConfig
from kvmd.plugins.hid.keys import Key
from kvmd.plugins.hid.pending import Event, PendingEvents
from kvmd.plugins.hid.reports import (
    ABSOLUTE_MAX,
    ButtonEvent,
    ClearEvent,
    KeyboardReports,
    KeyEvent,
    MouseReports,
    MoveEvent,
    RelativeEvent,
)

logger = logging.getLogger(__name__)

HEAD = b"\x57\xab"
ADDRESS = 0x00
CMD_GET_INFO = 0x01
CMD_KEYBOARD = 0x02
CMD_MOUSE_ABSOLUTE = 0x04
CMD_MOUSE_RELATIVE = 0x05
REPLY_OK = 0x80
REPLY_ERROR = 0xC0
CHIP_MAX = 4095
REOPEN_DELAY = 1.0
_ERRORS = {
    0xE1: "receive timeout",
    0xE2: "bad frame head",
    0xE3: "unknown command",
    0xE4: "bad checksum",
    0xE5: "bad parameter",
    0xE6: "operation failed",
}


class ChipError(Exception):
    pass


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(cmd: int, data: bytes = b"", address: int = ADDRESS) -> bytes:
    body = HEAD + bytes([address, cmd, len(data)]) + data
    return body + bytes([checksum(body)])


def parse_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """Take one whole frame off the front of `buffer`; skip garbage before a head."""
    while True:
        start = buffer.find(HEAD)
        if start < 0:
            del buffer[: max(len(buffer) - 1, 0)]
            return None
        del buffer[:start]
        if len(buffer) < 6:
            return None
        size = 5 + buffer[4] + 1
        if len(buffer) < size:
            return None
        raw = bytes(buffer[:size])
        if checksum(raw[:-1]) != raw[-1]:
            del buffer[:2]  # not a frame after all: look for the next head
            continue
        del buffer[:size]
        return (raw[3], raw[5:-1])


def absolute_data(report: bytes) -> bytes:
    """The gadget's absolute report (0..32767) as the chip wants it (0..4095)."""
    (buttons, x, y, wheel) = struct.unpack("<BHHb", report[:6])
    return struct.pack(
        "<BBHHb", 0x02, buttons, x * CHIP_MAX // ABSOLUTE_MAX, y * CHIP_MAX // ABSOLUTE_MAX, wheel
    )


def relative_data(report: bytes) -> bytes:
    return b"\x01" + report[:4]


@dataclasses.dataclass(slots=True)
class _Targeted:
    """An event for the keyboard or one of the mice: all share the chip's one queue."""

    reports: KeyboardReports | MouseReports
    event: Event

    def merge(self, newer: object, /) -> bool:
        return (
            isinstance(newer, _Targeted)
            and newer.reports is self.reports
            and self.event.merge(newer.event)
        )


class Ch9329Hid(HidBackend):
    def __init__(self, config: Ch9329HidConfig, bus: Bus) -> None:
        super().__init__(config, bus)
        self._config = config
        self._keyboard = KeyboardReports()
        self._absolute = MouseReports(absolute=True, horizontal_wheel=False)
        self._relative = MouseReports(absolute=False, horizontal_wheel=False)
        self._mouse = self._absolute
        self._pending: PendingEvents[_Targeted] = PendingEvents()
        self._fd: int | None = None
        self._port: serial.Serial | None = None
        self._buffer = bytearray()
        self._replies: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._online = False
        self._usb = False
        self._leds = HidLeds()

    def state(self) -> HidState:
        online = self._online and self._usb
        active = "usb" if self._mouse is self._absolute else "usb_rel"
        return HidState(
            online=online,
            busy=False,
            connected=None,
            keyboard=KeyboardState(online=online, leds=self._leds, outputs=HidOutputs()),
            mouse=MouseState(
                online=online,
                absolute=self._mouse.absolute,
                outputs=HidOutputs(available=["usb", "usb_rel"], active=active),
            ),
            jiggler=self._jiggler_state(),
        )

    async def start(self) -> None:
        self._release_all()
        self._publish()

    async def stop(self) -> None:
        # Best effort: the target must not keep a key down after kvmd is gone.
        if self._fd is not None:
            self._keyboard.clear()
            with contextlib.suppress(OSError):
                os.write(self._fd, frame(CMD_KEYBOARD, self._keyboard.snapshot()))
        self._close()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(super().run())
            tasks.create_task(self._serve())

    async def wait_sent(self) -> None:
        await self._pending.wait_drained()

    def keyboard_backlog(self) -> int:
        return len(self._pending)

    def _push(self, reports: KeyboardReports | MouseReports, event: Event) -> None:
        self._pending.push(_Targeted(reports, event))

    async def _serve(self) -> None:
        try:
            while True:
                if self._fd is None and not self._open():
                    self._absorb()
                    await asyncio.sleep(REOPEN_DELAY)
                    continue
                try:
                    await self._work()
                except (ChipError, OSError) as exc:
                    if self._online:
                        logger.warning("HID CH9329: %s", exc)
                    self._set_online(online=False, usb=False)
                    self._absorb()
                    await asyncio.sleep(REOPEN_DELAY)
        finally:
            self._close()

    async def _work(self) -> None:
        if not self._online:
            await self._poll()
            # Back (or here for the first time): the chip gets the state as it is now.
            await self._send(CMD_KEYBOARD, self._keyboard.snapshot())
            await self._send_mouse(self._mouse.snapshot(), absolute=self._mouse.absolute)
        while True:
            if not self._pending:
                await self._pending.wait(self._config.state_poll)
                if not self._pending:
                    await self._poll()
                continue
            item = self._pending.pop()
            reports = item.reports
            for report in reports.encode(item.event):
                if isinstance(reports, KeyboardReports):
                    await self._send(CMD_KEYBOARD, report)
                else:
                    # A mouse that was switched away still gets its release, in its mode.
                    await self._send_mouse(report, absolute=reports.absolute)

    async def _send_mouse(self, report: bytes, *, absolute: bool) -> None:
        if absolute:
            await self._send(CMD_MOUSE_ABSOLUTE, absolute_data(report))
        else:
            await self._send(CMD_MOUSE_RELATIVE, relative_data(report))

    async def _poll(self) -> None:
        data = await self._command(CMD_GET_INFO)
        if len(data) < 3:
            raise ChipError(f"short GET_INFO answer {data.hex()}")
        self._leds = HidLeds.from_bits(data[2])
        self._set_online(online=True, usb=bool(data[1]))

    async def _send(self, cmd: int, data: bytes) -> None:
        status = await self._command(cmd, data)
        if status[:1] != b"\x00":
            raise ChipError(f"command {cmd:#04x} failed: {status.hex()}")

    async def _command(self, cmd: int, data: bytes = b"") -> bytes:
        if self._fd is None:
            raise ChipError("the port is closed")
        while not self._replies.empty():
            self._replies.get_nowait()  # a late answer to a command that timed out
        os.write(self._fd, frame(cmd, data))
        try:
            async with asyncio.timeout(self._config.read_timeout):
                (reply, payload) = await self._replies.get()
        except TimeoutError:
            raise ChipError(f"no answer to command {cmd:#04x}") from None
        if reply == cmd | REPLY_ERROR:
            error = _ERRORS.get(payload[0] if payload else 0, "unknown error")
            raise ChipError(f"command {cmd:#04x} refused: {error}")
        if reply != cmd | REPLY_OK:
            raise ChipError(f"answer {reply:#04x} to command {cmd:#04x}")
        return payload

    def _open(self) -> bool:
        try:
            self._port = serial.Serial(self._config.device, self._config.speed, timeout=0)
        except (serial.SerialException, OSError) as exc:
            logger.debug("HID CH9329: can't open %s: %s", self._config.device, exc)
            self._set_online(online=False, usb=False)
            return False
        self._fd = self._port.fileno()
        os.set_blocking(self._fd, False)
        asyncio.get_running_loop().add_reader(self._fd, self._read)
        logger.info("HID CH9329: opened %s at %d baud", self._config.device, self._config.speed)
        return True

    def _read(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # The port is gone (a USB-serial adapter pulled out): reopen later.
            self._close()
            return
        self._buffer += data
        while (reply := parse_frame(self._buffer)) is not None:
            self._replies.put_nowait(reply)

    def _close(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
        if self._port is not None:
            self._port.close()
            self._port = None

    def _absorb(self) -> None:
        for item in self._pending.take_all():
            item.reports.encode(item.event)

    def _set_online(self, *, online: bool, usb: bool) -> None:
        (self._online, self._usb) = (online, usb)
        self._publish()

    def _set_outputs(self, keyboard: str | None, mouse: str | None) -> None:
        target = {"usb": self._absolute, "usb_rel": self._relative}.get(mouse or "")
        if target is None or target is self._mouse:
            return
        self._push(self._mouse, ClearEvent())
        self._mouse = target

    def _is_absolute(self) -> bool:
        return self._mouse.absolute

    def _key(self, key: Key, state: bool) -> None:
        self._push(self._keyboard, KeyEvent(key, state))

    def _mouse_button(self, button: str, state: bool) -> None:
        self._push(self._mouse, ButtonEvent(button, state))

    def _mouse_move(self, x: int, y: int) -> None:
        if self._mouse.absolute:
            self._push(self._mouse, MoveEvent(x, y))

    def _mouse_relative(self, dx: int, dy: int) -> None:
        if not self._mouse.absolute:
            self._push(self._mouse, RelativeEvent(dx, dy))

    def _mouse_wheel(self, dx: int, dy: int) -> None:
        self._push(self._mouse, RelativeEvent(0, dy, wheel=True))

    def _release_all(self) -> None:
        self._push(self._keyboard, ClearEvent())
        self._push(self._mouse, ClearEvent())
