# SPDX-License-Identifier: GPL-3.0-or-later
"""HID reports as the gadget sends them: pure state machines, no I/O.

Keyboard: the 8-byte boot-protocol report [modifiers, 0, k1..k6].
Absolute mouse: [buttons, x lo, x hi, y lo, y hi, wheel, hwheel], x/y in 0..32767.
Relative mouse: [buttons, dx, dy, wheel(, hwheel)], signed bytes.
These layouts match the report descriptors `kvmd-otg` writes.
"""

import dataclasses
import struct

from kvmd.plugins.hid.keys import MOUSE_BUTTONS, Key

_SLOTS = 6
ABSOLUTE_MAX = 32767


# Events queued for a device. Mouse motion merges with the motion queued right before it,
# so that a flood of moves costs one report per write, not one per event.


@dataclasses.dataclass(slots=True)
class KeyEvent:
    key: Key
    state: bool

    def merge(self, newer: object) -> bool:
        return False


@dataclasses.dataclass(slots=True)
class ClearEvent:
    def merge(self, newer: object) -> bool:
        return isinstance(newer, ClearEvent)


@dataclasses.dataclass(slots=True)
class ButtonEvent:
    button: str
    state: bool

    def merge(self, newer: object) -> bool:
        return False


@dataclasses.dataclass(slots=True)
class MoveEvent:
    x: int
    y: int

    def merge(self, newer: object) -> bool:
        if isinstance(newer, MoveEvent):
            (self.x, self.y) = (newer.x, newer.y)
            return True
        return False


@dataclasses.dataclass(slots=True)
class RelativeEvent:
    dx: int
    dy: int
    wheel: bool = False

    def merge(self, newer: object) -> bool:
        if not isinstance(newer, RelativeEvent) or newer.wheel != self.wheel:
            return False
        (dx, dy) = (self.dx + newer.dx, self.dy + newer.dy)
        if abs(dx) > 127 or abs(dy) > 127:
            return False
        (self.dx, self.dy) = (dx, dy)
        return True


class KeyboardReports:
    """Which keys are down; every change yields the reports that tell the host."""

    def __init__(self) -> None:
        self._modifiers = 0
        self._keys: list[int] = []

    def report(self) -> bytes:
        keys = self._keys + [0] * (_SLOTS - len(self._keys))
        return bytes([self._modifiers, 0, *keys])

    def press(self, key: Key) -> list[bytes]:
        if key.is_modifier:
            self._modifiers |= key.modifier_bit
            return [self.report()]
        reports = []
        if key.usage in self._keys:
            # Pressed again while down: the host must see it go up first, or no new press.
            self._keys.remove(key.usage)
            reports.append(self.report())
        elif len(self._keys) == _SLOTS:
            # A seventh key: the boot protocol has no room, so everything else is let go.
            self._keys.clear()
            reports.append(self.report())
        self._keys.append(key.usage)
        reports.append(self.report())
        return reports

    def release(self, key: Key) -> list[bytes]:
        if key.is_modifier:
            self._modifiers &= ~key.modifier_bit
        elif key.usage in self._keys:
            self._keys.remove(key.usage)
        return [self.report()]

    def clear(self) -> list[bytes]:
        self._modifiers = 0
        self._keys.clear()
        return [self.report()]

    def encode(self, event: object) -> list[bytes]:
        if isinstance(event, KeyEvent):
            return self.press(event.key) if event.state else self.release(event.key)
        if isinstance(event, ClearEvent):
            return self.clear()
        raise TypeError(f"not a keyboard event: {event!r}")

    def snapshot(self) -> bytes:
        return self.report()


def scale_absolute(value: int) -> int:
    """The API's -32768..32767 (screen edge to edge) to the descriptor's 0..32767."""
    value = clamp(value, -32768, 32767)
    return (value + 32768) * ABSOLUTE_MAX // 65535


def clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


def _clamp_delta(value: int) -> int:
    return clamp(value, -127, 127)


class MouseReports:
    """Buttons and position of one mouse device, absolute or relative."""

    def __init__(
        self, *, absolute: bool, horizontal_wheel: bool = True, win98: bool = False
    ) -> None:
        self.absolute = absolute
        self._horizontal_wheel = horizontal_wheel
        # Windows 98 takes the descriptor's range as 0..16383: doubled values reach the edges.
        self.win98 = win98
        self._buttons = 0
        self._x = scale_absolute(0)
        self._y = scale_absolute(0)

    def button(self, name: str, state: bool) -> bytes:
        bit = MOUSE_BUTTONS[name][0]
        self._buttons = self._buttons | bit if state else self._buttons & ~bit
        return self._report()

    def move(self, x: int, y: int) -> bytes:
        (self._x, self._y) = (scale_absolute(x), scale_absolute(y))
        if self.win98:
            (self._x, self._y) = (min(self._x * 2, ABSOLUTE_MAX), min(self._y * 2, ABSOLUTE_MAX))
        return self._report()

    def relative(self, dx: int, dy: int) -> bytes:
        return self._report(dx=dx, dy=dy)

    def wheel(self, dx: int, dy: int) -> bytes:
        # Positive dy scrolls up in the HID convention, as in the browser's delta sign flipped
        # by the web UI already; the value goes through unchanged.
        return self._report(wheel=dy, hwheel=dx)

    def clear(self) -> bytes:
        self._buttons = 0
        return self._report()

    def encode(self, event: object) -> list[bytes]:
        if isinstance(event, ButtonEvent):
            return [self.button(event.button, event.state)]
        if isinstance(event, MoveEvent):
            return [self.move(event.x, event.y)]
        if isinstance(event, RelativeEvent):
            return [
                self.wheel(event.dx, event.dy) if event.wheel else self.relative(event.dx, event.dy)
            ]
        if isinstance(event, ClearEvent):
            return [self.clear()]
        raise TypeError(f"not a mouse event: {event!r}")

    def snapshot(self) -> bytes:
        return self._report()

    def _report(self, *, dx: int = 0, dy: int = 0, wheel: int = 0, hwheel: int = 0) -> bytes:
        (wheel, hwheel) = (_clamp_delta(wheel), _clamp_delta(hwheel))
        if self.absolute:
            return struct.pack("<BHHbb", self._buttons, self._x, self._y, wheel, hwheel)
        report = struct.pack("<Bbbb", self._buttons, _clamp_delta(dx), _clamp_delta(dy), wheel)
        return report + struct.pack("<b", hwheel) if self._horizontal_wheel else report
