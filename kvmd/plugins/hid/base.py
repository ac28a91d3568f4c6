# SPDX-License-Identifier: GPL-3.0-or-later
"""HID: the keyboard and mouse the target computer sees."""

import abc
import asyncio
import random
import time

import msgspec

from kvmd.bus import Bus, Topic
from kvmd.plugins.backend import Backend
from kvmd.plugins.hid.config import AxisRange, CommonHidConfig
from kvmd.plugins.hid.keys import KEYS, LOCK_LEDS, Key
from kvmd.plugins.hid.layouts import Stroke
from kvmd.plugins.hid.reports import clamp

_SHIFT = KEYS["ShiftLeft"]
_ALTGR = KEYS["AltRight"]
# Typing without a delay waits for the writer whenever this many events are queued, so a
# long text costs a bounded amount of memory however slowly the host reads.
MAX_TYPING_BACKLOG = 256


class HidLeds(msgspec.Struct, frozen=True):
    """Keyboard LEDs as the target host sets them."""

    caps: bool = False
    scroll: bool = False
    num: bool = False

    @classmethod
    def from_bits(cls, bits: int) -> "HidLeds":
        """Decode the LED byte (the USB output report, also what a CH9329 reports)."""
        return cls(
            num=bool(bits & LOCK_LEDS["NumLock"]),
            caps=bool(bits & LOCK_LEDS["CapsLock"]),
            scroll=bool(bits & LOCK_LEDS["ScrollLock"]),
        )


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
    # PiKVM's web UI ignores every other field (LEDs, mouse mode, jiggler) until it has
    # seen `enabled`; only the disabled backend says false.
    enabled: bool = True


class HidBackend(Backend):
    """Types and moves on the target.

    The public verbs are shared by every backend: they keep the activity clock, remap
    absolute moves into the configured screen range and turn `finish` into a release.
    A backend implements the underscore hooks, which must not block: they queue reports
    for the backend's own writer.
    """

    topic = Topic.HID

    def __init__(self, config: CommonHidConfig, bus: Bus) -> None:
        """Keep the settings every backend shares (jiggler, ranges)."""
        super().__init__(config, bus)
        self._common = config
        self._last_input = time.monotonic()
        self._jiggler_active = config.jiggler.enabled and config.jiggler.active
        self._jiggled_at = 0.0
        self._position = (0, 0)
        self._typing = asyncio.Lock()

    @abc.abstractmethod
    def state(self) -> HidState:
        """The current state."""

    def send_key(self, key: Key, *, state: bool, finish: bool = False) -> None:
        """Press or release one key; `finish` releases a pressed key at once."""
        self._touch()
        self._key(key, state)
        if finish and state and not key.is_modifier and key.name != "PrintScreen":
            self._key(key, False)

    def send_mouse_button(self, button: str, *, state: bool) -> None:
        """Press or release a mouse button (left, right, middle, up, down)."""
        self._touch()
        self._mouse_button(button, state)

    def send_mouse_move(self, x: int, y: int) -> None:
        """Move an absolute mouse; x and y are in -32768..32767."""
        self._touch()
        self._move_to(_remap(x, self._common.mouse_x_range), _remap(y, self._common.mouse_y_range))

    def send_mouse_relative(self, dx: int, dy: int) -> None:
        """Move a relative mouse by -127..127 on each axis."""
        self._touch()
        self._mouse_relative(clamp(dx, -127, 127), clamp(dy, -127, 127))

    def send_mouse_wheel(self, dx: int, dy: int) -> None:
        """Scroll by -127..127 steps on each axis."""
        self._touch()
        self._mouse_wheel(clamp(dx, -127, 127), clamp(dy, -127, 127))

    def release_all(self) -> None:
        """Release every held key and button (a websocket came or went, or a reset)."""
        self._release_all()

    async def reset(self) -> None:
        """Release everything and bring the devices back to their initial state."""
        self._release_all()

    def set_params(
        self,
        *,
        keyboard_output: str | None = None,
        mouse_output: str | None = None,
        jiggler: bool | None = None,
    ) -> None:
        """Switch outputs (ignored when not offered) and the jiggler (if allowed)."""
        if jiggler is not None and self._common.jiggler.enabled:
            self._jiggler_active = jiggler
        self._set_outputs(keyboard_output, mouse_output)
        self._publish()

    async def set_connected(self, connected: bool) -> None:
        """Attach or detach the USB cable, where the backend can; a no-op otherwise."""

    def inactivity(self) -> int:
        """Whole seconds since the last input."""
        return int(time.monotonic() - self._last_input)

    async def wait_sent(self) -> None:
        """Return once every queued report has been written (or dropped, if offline)."""

    def keyboard_backlog(self) -> int:
        """Keyboard events queued and not yet written."""
        return 0

    async def type_strokes(self, strokes: list[Stroke], *, delay: float) -> None:
        """Type planned strokes, changing Shift and AltGr only when needed.

        One text at a time: two pastes would interleave their keys. The modifiers are
        let go in `finally`; sends are synchronous, so even a cancelled request (the
        client went away) leaves no key held on the target.
        """
        async with self._typing:
            (shift, altgr) = (False, False)
            try:
                for stroke in strokes:
                    if stroke.shift != shift:
                        shift = stroke.shift
                        self.send_key(_SHIFT, state=shift)
                    if stroke.altgr != altgr:
                        altgr = stroke.altgr
                        self.send_key(_ALTGR, state=altgr)
                    key = KEYS[stroke.key]
                    self.send_key(key, state=True)
                    self.send_key(key, state=False)
                    if delay:
                        await asyncio.sleep(delay)
                    elif self.keyboard_backlog() >= MAX_TYPING_BACKLOG:
                        await self.wait_sent()
            finally:
                if shift:
                    self.send_key(_SHIFT, state=False)
                if altgr:
                    self.send_key(_ALTGR, state=False)
            await self.wait_sent()

    async def run(self) -> None:
        """Run the jiggler; backends with loops of their own extend this."""
        jiggler = self._common.jiggler
        while True:
            idle_for = jiggler.interval * random.uniform(0.75, 1.25)  # noqa: S311 -- not crypto
            since = max(self._last_input, self._jiggled_at)
            wait = since + idle_for - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
                continue
            if self._jiggler_active:
                await self._jiggle()
            self._jiggled_at = time.monotonic()

    async def _jiggle(self) -> None:
        # Small moves around the pointer keep a screensaver away without moving it for real.
        if self._is_absolute():
            (x, y) = self._position
            for _ in range(10):
                dx = random.randint(-100, 100)  # noqa: S311
                dy = random.randint(-100, 100)  # noqa: S311
                self._move_to(clamp(x + dx, -32768, 32767), clamp(y + dy, -32768, 32767))
                await asyncio.sleep(0.1)
            self._move_to(x, y)
        else:
            for _ in range(10):
                dx = random.randint(-10, 10)  # noqa: S311
                dy = random.randint(-10, 10)  # noqa: S311
                self._mouse_relative(dx, dy)
                await asyncio.sleep(0.1)

    def _jiggler_state(self) -> JigglerState:
        jiggler = self._common.jiggler
        return JigglerState(
            enabled=jiggler.enabled, active=self._jiggler_active, interval=jiggler.interval
        )

    def _touch(self) -> None:
        self._last_input = time.monotonic()

    def _move_to(self, x: int, y: int) -> None:
        self._position = (x, y)
        self._mouse_move(x, y)

    def _set_outputs(self, keyboard: str | None, mouse: str | None) -> None:
        """Switch outputs; backends with a single keyboard and mouse have none."""

    @abc.abstractmethod
    def _is_absolute(self) -> bool: ...

    @abc.abstractmethod
    def _key(self, key: Key, state: bool) -> None: ...

    @abc.abstractmethod
    def _mouse_button(self, button: str, state: bool) -> None: ...

    @abc.abstractmethod
    def _mouse_move(self, x: int, y: int) -> None: ...

    @abc.abstractmethod
    def _mouse_relative(self, dx: int, dy: int) -> None: ...

    @abc.abstractmethod
    def _mouse_wheel(self, dx: int, dy: int) -> None: ...

    @abc.abstractmethod
    def _release_all(self) -> None: ...


def _remap(value: int, axis: AxisRange) -> int:
    """Squeeze the full API range into the part of it the target's screen covers."""
    value = clamp(value, -32768, 32767)
    if (axis.min, axis.max) == (-32768, 32767):
        return value
    return axis.min + (value + 32768) * (axis.max - axis.min) // 65535
