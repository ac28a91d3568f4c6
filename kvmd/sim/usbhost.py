# SPDX-License-Identifier: GPL-3.0-or-later
"""A simulated USB host: the computer on the other end of the gadget's HID devices.

`python -m kvmd.sim.usbhost --keyboard SOCK --mouse SOCK [--mouse-alt SOCK]
[--layout FILE | --xkb LAYOUT[/VARIANT]] [--screen FILE]` listens on unix SEQPACKET
sockets, where kvmd's OTG backend connects instead of opening /dev/hidgN (SEQPACKET keeps
each report a separate message, as the gadget does). It decodes keyboard reports into key
presses and into text, the way a Linux desktop with that XKB layout would (libxkbcommon:
kvmd/sim/xkb.py; `--layout` takes the XKB layout a PiKVM/QEMU keymap file names); it
decodes mouse reports into a pointer position and buttons; it answers Caps/Num/Scroll
Lock with LED output reports; and it writes what the target's screen would show to
`--screen`, which the simulated streamer displays.
"""

import argparse
import asyncio
import collections
import contextlib
import logging
import socket
import struct
from pathlib import Path

from kvmd.plugins.hid.keys import KEYS, LOCK_LEDS
from kvmd.plugins.hid.layouts import xkb_source
from kvmd.sim import replace_text, serve_until_signalled
from kvmd.sim.xkb import XkbDecoder

logger = logging.getLogger("kvmd.sim.usbhost")

KEY_NAMES = {key.usage: key.name for key in KEYS.values()}
_CTRL = 0x11
# The screen the pointer moves on, in pixels.
SCREEN = (1920, 1080)
# Raw reports kept for inspection (tests read them; `make run` must not grow forever).
KEEP_REPORTS = 100_000


class UsbHost:
    def __init__(
        self,
        *,
        keyboard: Path,
        mouse: Path,
        mouse_alt: Path | None = None,
        layout: tuple[str, str] | None = None,
        screen: Path | None = None,
    ) -> None:
        """`layout`: the XKB (layout, variant) the target types with; None reads no text."""
        self._paths = {"keyboard": keyboard, "mouse": mouse}
        if mouse_alt is not None:
            self._paths["mouse_alt"] = mouse_alt
        self._decoder: XkbDecoder | None = None
        self.read_as(layout)
        self._screen = screen
        self.reports: dict[str, collections.deque[bytes]] = {
            name: collections.deque(maxlen=KEEP_REPORTS) for name in self._paths
        }
        self.pressed: list[str] = []  # key names, in press order
        self.text = ""
        self.leds = 0
        self.pointer = (SCREEN[0] // 2, SCREEN[1] // 2)
        self._buttons = {"mouse": 0, "mouse_alt": 0}
        self.wheel = (0, 0)
        self.changed = asyncio.Condition()
        self._reading = asyncio.Event()
        self._reading.set()
        self._keys: set[int] = set()
        self._modifiers = 0
        self._keyboard_conn: socket.socket | None = None
        self._flush: asyncio.TimerHandle | None = None

    def read_as(self, layout: tuple[str, str] | None) -> None:
        """Switch the target's keyboard layout (between keys: none may be held)."""
        if self._decoder is not None:
            self._decoder.close()
        self._decoder = XkbDecoder(*layout) if layout else None

    @property
    def buttons(self) -> int:
        """Buttons held on either mouse, as the host's pointer sees them."""
        return self._buttons["mouse"] | self._buttons["mouse_alt"]

    def pause(self) -> None:
        """Stop reading reports, like a host that sleeps: the gadget's writes back up."""
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            for name, path in self._paths.items():
                tasks.create_task(self._serve(name, path))

    async def _serve(self, name: str, path: Path) -> None:
        _unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            server.bind(str(path))
            server.listen(1)
            server.setblocking(False)
            loop = asyncio.get_running_loop()
            while True:
                # Accepted here, not by loop.sock_accept: a cancel can't then drop a socket.
                await _readable(loop, server)
                try:
                    (conn, _) = server.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                logger.info("USB host: %s attached", name)
                with conn:
                    await self._read(name, conn)
                logger.info("USB host: %s detached", name)
        finally:
            server.close()
            _unlink(path)

    async def _read(self, name: str, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        if name == "keyboard":
            self._keyboard_conn = conn
        try:
            while True:
                await self._reading.wait()
                report = await loop.sock_recv(conn, 64)
                if not report:
                    return
                self.reports[name].append(report)
                if name == "keyboard":
                    await self._on_keyboard(report)
                else:
                    self._on_mouse(name, report)
                async with self.changed:
                    self.changed.notify_all()
                self._schedule_flush()
        except ConnectionError as exc:
            logger.info("USB host: %s: %s", name, exc)
            return
        finally:
            if name == "keyboard":
                self._keyboard_conn = None

    async def _on_keyboard(self, report: bytes) -> None:
        if len(report) != 8:
            logger.warning("USB host: bad keyboard report %s", report.hex())
            return
        (self._modifiers, keys) = (report[0], [k for k in report[2:] if k])
        for usage in keys:
            if usage not in self._keys:
                await self._on_press(KEY_NAMES.get(usage, f"0x{usage:02x}"))
        self._keys = set(keys)
        if self._decoder is not None:
            text = self._decoder.feed(report)
            if not self._modifiers & _CTRL:  # Control chords are commands, not text
                self._type(text)

    def _type(self, text: str) -> None:
        for char in text.replace("\r", "\n"):
            if char == "\b":
                self.text = self.text[:-1]
            elif char.isprintable() or char in "\n\t":
                self.text += char

    async def _on_press(self, name: str) -> None:
        self.pressed.append(name)
        if name in LOCK_LEDS:
            self.leds ^= LOCK_LEDS[name]
            if self._keyboard_conn is not None:
                # The host's LED output report: the gadget reads it back as one byte.
                with contextlib.suppress(OSError):
                    await asyncio.get_running_loop().sock_sendall(
                        self._keyboard_conn, bytes([self.leds])
                    )
            return

    def _on_mouse(self, name: str, report: bytes) -> None:
        # The first mouse is absolute and the second relative, as kvmd-otg makes them.
        absolute = name == "mouse"
        if absolute and len(report) in (6, 7):
            (self._buttons[name], x, y, wheel) = struct.unpack("<BHHb", report[:6])
            self.pointer = (x * (SCREEN[0] - 1) // 32767, y * (SCREEN[1] - 1) // 32767)
        elif not absolute and len(report) in (4, 5):
            (self._buttons[name], dx, dy, wheel) = struct.unpack("<Bbbb", report[:4])
            self.pointer = (
                min(max(self.pointer[0] + dx, 0), SCREEN[0] - 1),
                min(max(self.pointer[1] + dy, 0), SCREEN[1] - 1),
            )
        else:
            logger.warning("USB host: bad mouse report %s", report.hex())
            return
        hwheel = struct.unpack("<b", report[-1:])[0] if len(report) in (5, 7) else 0
        self.wheel = (self.wheel[0] + hwheel, self.wheel[1] + wheel)

    def _schedule_flush(self) -> None:
        # The screen file is rewritten at most 20 times a second, however fast reports come.
        if self._screen is not None and self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(0.05, self._write_screen)

    def _write_screen(self) -> None:
        self._flush = None
        if self._screen is None:
            return
        lines = self.text[-600:].split("\n")[-8:]
        leds = ",".join(name for name, bit in LOCK_LEDS.items() if self.leds & bit) or "-"
        body = "\n".join(
            [
                *lines,
                f"pointer {self.pointer[0]},{self.pointer[1]} buttons {self.buttons:#04x}"
                f" leds {leds}",
            ]
        )
        replace_text(self._screen, body + "\n")


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock, wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock)


async def _main(args: argparse.Namespace) -> None:
    layout: tuple[str, str] | None = None
    if args.xkb:
        (name, _, variant) = args.xkb.partition("/")
        layout = (name, variant)
    elif args.layout:
        layout = xkb_source(args.layout.read_text(encoding="utf-8"), args.layout.name)
        if layout is None:
            raise SystemExit(f"{args.layout} names no XKB layout in its header: give --xkb")
    host = UsbHost(
        keyboard=args.keyboard,
        mouse=args.mouse,
        mouse_alt=args.mouse_alt,
        layout=layout,
        screen=args.screen,
    )
    await serve_until_signalled(host.run())


def main() -> None:
    parser = argparse.ArgumentParser(prog="kvmd.sim.usbhost", description=__doc__)
    parser.add_argument("--keyboard", type=Path, required=True)
    parser.add_argument("--mouse", type=Path, required=True)
    parser.add_argument("--mouse-alt", type=Path, default=None)
    parser.add_argument("--layout", type=Path, default=None, help="a PiKVM/QEMU keymap file")
    parser.add_argument("--xkb", default=None, help="an XKB layout[/variant], e.g. de/nodeadkeys")
    parser.add_argument("--screen", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
