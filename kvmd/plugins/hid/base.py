# SPDX-License-Identifier: GPL-3.0-or-later
"""HID: the keyboard and mouse the target computer sees."""

import abc

import msgspec

from kvmd.bus import Topic
from kvmd.plugins.backend import Backend


class HidLeds(msgspec.Struct, frozen=True):
    """Keyboard LEDs as the target host sets them."""

    caps: bool = False
    scroll: bool = False
    num: bool = False


class HidOutputs(msgspec.Struct, frozen=True):
    """Which emulated devices a backend offers and which one is active."""

    available: list[str] = msgspec.field(default_factory=list)
    active: str = ""


class KeyboardState(msgspec.Struct, frozen=True):
    """The keyboard half of the HID state."""

    online: bool
    leds: HidLeds
    outputs: HidOutputs


class MouseState(msgspec.Struct, frozen=True):
    """The mouse half of the HID state."""

    online: bool
    absolute: bool
    outputs: HidOutputs


class JigglerState(msgspec.Struct, frozen=True):
    """The mouse jiggler that keeps the target awake."""

    enabled: bool = False
    active: bool = False
    interval: int = 0


class HidState(msgspec.Struct, frozen=True):
    """`GET /api/hid` and the `hid` event."""

    online: bool
    busy: bool
    connected: bool | None
    keyboard: KeyboardState
    mouse: MouseState
    jiggler: JigglerState


class HidBackend(Backend):
    """Types and moves on the target. Keys are web key names (`KeyboardEvent.code`)."""

    topic = Topic.HID

    @abc.abstractmethod
    def state(self) -> HidState:
        """The current state."""

    @abc.abstractmethod
    async def send_key(self, key: str, *, state: bool, finish: bool) -> None:
        """Press or release one key."""

    @abc.abstractmethod
    async def send_mouse_button(self, button: str, *, state: bool) -> None:
        """Press or release a mouse button (left, right, middle, up, down)."""

    @abc.abstractmethod
    async def send_mouse_move(self, x: int, y: int) -> None:
        """Move an absolute mouse; x and y are in -32768..32767."""

    @abc.abstractmethod
    async def send_mouse_relative(self, dx: int, dy: int) -> None:
        """Move a relative mouse by -127..127 on each axis."""

    @abc.abstractmethod
    async def send_mouse_wheel(self, dx: int, dy: int) -> None:
        """Scroll by -127..127 steps on each axis."""

    @abc.abstractmethod
    async def release_all(self) -> None:
        """Release every held key and button (a websocket came or went)."""
