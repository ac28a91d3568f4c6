# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated host's text: keyboard reports read the way XKB reads them."""

import asyncio

from kvmd.plugins.hid.keys import KEYS
from kvmd.plugins.hid.layouts import Stroke
from kvmd.plugins.hid.reports import KeyboardReports
from kvmd.sim.usbhost import UsbHost
from tests.hidenv import stroke_reports


def feed(host: UsbHost, reports: list[bytes]) -> None:
    async def run() -> None:
        for report in reports:
            await host._on_keyboard(report)

    asyncio.run(run())


def chord(*names: str) -> list[bytes]:
    keyboard = KeyboardReports()
    out: list[bytes] = []
    for name in names:
        out += keyboard.press(KEYS[name])
    for name in reversed(names):
        out += keyboard.release(KEYS[name])
    return out


def test_backspace_enter_and_control_chords(tmp_path):
    host = UsbHost(keyboard=tmp_path / "k", mouse=tmp_path / "m", layout=("us", ""))
    feed(host, stroke_reports([Stroke("KeyA"), Stroke("KeyB"), Stroke("Backspace")]))
    feed(host, stroke_reports([Stroke("KeyC", shift=True), Stroke("Enter"), Stroke("Tab")]))
    # Ctrl+C and Ctrl+Shift+V are commands, Escape and Delete no text.
    feed(host, chord("ControlLeft", "KeyC") + chord("ControlLeft", "ShiftLeft", "KeyV"))
    feed(host, stroke_reports([Stroke("Escape"), Stroke("Delete"), Stroke("KeyD")]))
    assert host.text == "aC\n\td"
    assert host.pressed[:3] == ["KeyA", "KeyB", "Backspace"]


def test_the_layout_can_change_between_keys(tmp_path):
    host = UsbHost(keyboard=tmp_path / "k", mouse=tmp_path / "m", layout=("us", ""))
    feed(host, stroke_reports([Stroke("KeyY"), Stroke("KeyQ", altgr=True)]))
    host.read_as(("de", "nodeadkeys"))
    feed(host, stroke_reports([Stroke("KeyY"), Stroke("KeyQ", altgr=True)]))
    host.read_as(None)  # no layout: keys are seen, no text
    feed(host, stroke_reports([Stroke("KeyY")]))
    assert host.text == "yqz@"
    assert host.pressed[-1] == "KeyY"
