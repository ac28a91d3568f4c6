# SPDX-License-Identifier: GPL-3.0-or-later
"""The OTG HID backend wired to the simulated USB host over real unix sockets."""

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from kvmd.plugins.hid.keys import KEYS
from kvmd.plugins.hid.layouts import Layout, Stroke
from kvmd.plugins.hid.reports import KeyboardReports
from kvmd.sim.usbhost import UsbHost

REPO = Path(__file__).resolve().parent.parent
# PiKVM's layouts as Debian's qemu-system-data installs them (`make test` does).
KEYMAPS = Path("/usr/share/qemu/keymaps")


def otg_config(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "type": "otg",
        "keymap": str(KEYMAPS / "en-us"),
        "keyboard": {"device": str(folder / "kb")},
        "mouse": {"device": str(folder / "m")},
        "mouse_alt": {"device": str(folder / "ma")},
        **extra,
    }


@contextlib.asynccontextmanager
async def usb_host(layout: str = "en-us") -> AsyncIterator[tuple[UsbHost, Path]]:
    # Short paths: a unix socket's name must fit in 108 bytes, pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="kvmd-hid-") as name:
        folder = Path(name)
        host = UsbHost(
            keyboard=folder / "kb",
            mouse=folder / "m",
            mouse_alt=folder / "ma",
            layout=Layout.load(KEYMAPS / layout).source,
            screen=folder / "screen.txt",
        )
        task = asyncio.create_task(host.run())
        while not (folder / "ma").exists():
            await asyncio.sleep(0.005)
        try:
            yield (host, folder)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_until(host: UsbHost, check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    async with host.changed:
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the simulated host never saw it")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await host.changed.wait()


def hexes(reports: Any) -> list[str]:
    return [bytes(r).hex(" ") for r in reports]


def stroke_reports(strokes: list[Stroke]) -> list[bytes]:
    """The keyboard reports BaseHid.type_strokes has the OTG backend write for `strokes`."""
    keyboard = KeyboardReports()
    (shift_key, altgr_key) = (KEYS["ShiftLeft"], KEYS["AltRight"])
    out: list[bytes] = []
    (shift, altgr) = (False, False)
    for stroke in strokes:
        if stroke.shift != shift:
            shift = stroke.shift
            out += keyboard.press(shift_key) if shift else keyboard.release(shift_key)
        if stroke.altgr != altgr:
            altgr = stroke.altgr
            out += keyboard.press(altgr_key) if altgr else keyboard.release(altgr_key)
        key = KEYS[stroke.key]
        out += keyboard.press(key)
        out += keyboard.release(key)
    if shift:
        out += keyboard.release(shift_key)
    if altgr:
        out += keyboard.release(altgr_key)
    return out
