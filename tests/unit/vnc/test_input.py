# SPDX-License-Identifier: GPL-3.0-or-later
"""A VNC client's keysyms, scancodes and pointer, as HID calls (recorded)."""

from pathlib import Path
from typing import cast

import pytest

from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.hid.keys import Key
from kvmd.plugins.hid.layouts import Layout
from kvmd.vnc.input import VncInput

KEYMAPS = Path("/usr/share/qemu/keymaps")
SHIFT_L = 0xFFE1
ALT_GR = 0xFE03


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def send_key(self, key: Key, *, state: bool, finish: bool = False) -> None:
        self.calls.append(("key", key.name, state))

    def send_mouse_button(self, button: str, *, state: bool) -> None:
        self.calls.append(("button", button, state))

    def send_mouse_move(self, x: int, y: int) -> None:
        self.calls.append(("move", x, y))

    def send_mouse_wheel(self, dx: int, dy: int) -> None:
        self.calls.append(("wheel", dx, dy))


def make(layout: str) -> tuple[VncInput, Recorder]:
    recorder = Recorder()
    return (VncInput(cast(HidBackend, recorder), Layout.load(KEYMAPS / layout), 4), recorder)


def tap(vnc: VncInput, *keysyms: int) -> None:
    for keysym in keysyms:
        vnc.keysym(keysym, down=True)
    for keysym in reversed(keysyms):
        vnc.keysym(keysym, down=False)


def keys(recorder: Recorder) -> list[str]:
    return [f"{'+' if state else '-'}{name}" for (kind, name, state) in recorder.calls]


def test_a_german_target_takes_the_keys_its_layout_has():
    (vnc, recorder) = make("de")
    tap(vnc, ord("z"))
    tap(vnc, SHIFT_L, ord("Z"))
    tap(vnc, ALT_GR, ord("@"))  # a German client: AltGr+Q
    assert keys(recorder) == [
        "+KeyY", "-KeyY",
        "+ShiftLeft", "+KeyY", "-KeyY", "-ShiftLeft",
        "+AltRight", "+KeyQ", "-KeyQ", "-AltRight",
    ]  # fmt: skip


def test_a_us_client_types_at_on_a_german_target():
    # The client holds Shift and sends `@` (Shift+2 there); the target needs AltGr+Q.
    (vnc, recorder) = make("de")
    tap(vnc, SHIFT_L, ord("@"))
    assert keys(recorder) == [
        "+ShiftLeft",
        "-ShiftLeft", "+AltRight", "+KeyQ", "-KeyQ", "-AltRight", "+ShiftLeft",
        "-ShiftLeft",
    ]  # fmt: skip


def test_a_shifted_symbol_without_shift_gets_shift():
    # Some clients send `!` without the Shift they held.
    (vnc, recorder) = make("en-us")
    tap(vnc, ord("!"))
    assert keys(recorder) == ["+ShiftLeft", "+Digit1", "-Digit1", "-ShiftLeft"]


def test_unknown_keysyms_are_dropped_and_repeats_ignored():
    (vnc, recorder) = make("en-us")
    vnc.keysym(0x10020AC, down=True)  # no euro on a US keyboard
    vnc.keysym(ord("a"), down=True)
    vnc.keysym(ord("a"), down=True)  # the client's auto-repeat
    vnc.keysym(ord("a"), down=False)
    vnc.keysym(ord("b"), down=False)  # never pressed
    assert keys(recorder) == ["+KeyA", "-KeyA"]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x1E, "KeyA"),
        (0xC8, "ArrowUp"),
        (0x9C, "NumpadEnter"),
        (0xB8, "AltRight"),
        (0xB7, "PrintScreen"),
    ],
)
def test_qemu_scancodes_need_no_keymap(code, name):
    vnc = VncInput(cast(HidBackend, recorder := Recorder()), None, 4)
    vnc.scancode(code, down=True)
    vnc.scancode(code, down=False)
    assert keys(recorder) == [f"+{name}", f"-{name}"]


def test_pointer_scales_to_the_absolute_range_and_wheels():
    (vnc, recorder) = make("en-us")
    vnc.pointer(0, 0, 0, 1920, 1080)
    vnc.pointer(0x01, 1919, 1079, 1920, 1080)  # left down at the far corner
    vnc.pointer(0x08, 1919, 1079, 1920, 1080)  # left up, wheel up
    vnc.pointer(0x20, 1919, 1079, 1920, 1080, extra=0x02)  # wheel left, back button
    assert recorder.calls == [
        ("move", -32768, -32768),
        ("move", 32767, 32767),
        ("button", "left", True),
        ("button", "left", False),
        ("wheel", 0, 4),
        ("button", "up", True),
        ("wheel", 4, 0),
    ]


def test_release_lets_go_of_what_the_session_holds():
    (vnc, recorder) = make("en-us")
    vnc.keysym(SHIFT_L, down=True)
    vnc.keysym(ord("A"), down=True)
    vnc.pointer(0x04, 10, 10, 100, 100, extra=0x01)
    recorder.calls.clear()
    vnc.release()
    assert sorted(recorder.calls, key=str) == sorted(
        [
            ("key", "ShiftLeft", False),
            ("key", "KeyA", False),
            ("button", "right", False),
            ("button", "down", False),
        ],
        key=str,
    )
    recorder.calls.clear()
    vnc.release()
    assert recorder.calls == []
