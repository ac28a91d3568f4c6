# SPDX-License-Identifier: GPL-3.0-or-later
"""A simulated CH9329 on the master side of a pty: kvmd's serial port is the slave.

`python -m kvmd.sim.ch9329 --link PATH` makes PATH a symlink to the pty slave, to use as
`hid.device` with `type: ch9329`. The chip checks every frame, answers as the real one
does, keeps what it was told (keyboard reports, mouse data) and toggles its LEDs when
the host would (Caps/Num/Scroll Lock pressed).
"""

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import termios
import tty
from pathlib import Path

from kvmd.plugins.hid.ch9329 import (
    CMD_GET_INFO,
    CMD_KEYBOARD,
    CMD_MOUSE_ABSOLUTE,
    CMD_MOUSE_RELATIVE,
    REPLY_ERROR,
    REPLY_OK,
    frame,
    parse_frame,
)
from kvmd.plugins.hid.keys import KEYS, LOCK_LEDS

logger = logging.getLogger("kvmd.sim.ch9329")

_LOCKS = {KEYS[name].usage: bit for name, bit in LOCK_LEDS.items()}  # usage -> LED bit
_LENGTHS = {CMD_GET_INFO: 0, CMD_KEYBOARD: 8, CMD_MOUSE_ABSOLUTE: 7, CMD_MOUSE_RELATIVE: 5}
_ERROR_PARAMETER = 0xE5
_ERROR_COMMAND = 0xE3
VERSION = 0x30


class SimulatedChip:
    def __init__(self) -> None:
        (self._master, slave) = os.openpty()
        tty.setraw(self._master, termios.TCSANOW)
        self.port = os.ttyname(slave)
        # The slave stays open here too, so the pty survives kvmd reopening it.
        self._slave = slave
        os.set_blocking(self._master, False)
        self._buffer = bytearray()
        self.keyboard: list[bytes] = []
        self.mouse: list[bytes] = []
        self.leds = 0
        self.usb_connected = True
        self.silent = False  # a chip that lost power answers nothing
        self._pressed: set[int] = set()
        self.changed = asyncio.Event()

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)

    def _on_readable(self) -> None:
        try:
            self._buffer += os.read(self._master, 4096)
        except BlockingIOError:
            return
        while (request := parse_frame(self._buffer)) is not None:
            if not self.silent:
                os.write(self._master, self._answer(*request))
        self.changed.set()

    def _answer(self, cmd: int, data: bytes) -> bytes:
        if cmd not in _LENGTHS:
            return frame(cmd | REPLY_ERROR, bytes([_ERROR_COMMAND]))
        if len(data) != _LENGTHS[cmd]:
            return frame(cmd | REPLY_ERROR, bytes([_ERROR_PARAMETER]))
        if cmd == CMD_GET_INFO:
            info = bytes([VERSION, int(self.usb_connected), self.leds, 0, 0, 0, 0, 0])
            return frame(cmd | REPLY_OK, info)
        if cmd == CMD_KEYBOARD:
            self.keyboard.append(data)
            keys = {k for k in data[2:] if k}
            for usage in keys - self._pressed:
                self.leds ^= _LOCKS.get(usage, 0)
            self._pressed = keys
        else:
            self.mouse.append(data)
        return frame(cmd | REPLY_OK, b"\x00")


def _link(link: Path, target: str | None) -> None:
    link.unlink(missing_ok=True)
    if target is not None:
        link.symlink_to(target)


async def _main(link: Path) -> None:
    chip = SimulatedChip()
    chip.start()
    _link(link, chip.port)
    logger.info("CH9329 on %s (%s)", chip.port, link)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        chip.close()
        _link(link, None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="kvmd.sim.ch9329", description=__doc__)
    parser.add_argument("--link", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(_main(args.link))


if __name__ == "__main__":
    main()
