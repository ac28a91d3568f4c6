# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.plugins.hid.base import (
    HidBackend,
    HidLeds,
    HidOutputs,
    HidState,
    KeyboardState,
    MouseState,
)
from kvmd.plugins.hid.keys import Key


class DisabledHid(HidBackend):
    """No keyboard or mouse: input is accepted and goes nowhere, as on a view-only device."""

    def state(self) -> HidState:
        return HidState(
            online=False,
            busy=False,
            connected=None,
            keyboard=KeyboardState(online=False, leds=HidLeds(), outputs=HidOutputs()),
            mouse=MouseState(online=False, absolute=True, outputs=HidOutputs()),
            jiggler=self._jiggler_state(),
            enabled=False,
        )

    def _is_absolute(self) -> bool:
        return True

    def _key(self, key: Key, state: bool) -> None:
        pass

    def _mouse_button(self, button: str, state: bool) -> None:
        pass

    def _mouse_move(self, x: int, y: int) -> None:
        pass

    def _mouse_relative(self, dx: int, dy: int) -> None:
        pass

    def _mouse_wheel(self, dx: int, dy: int) -> None:
        pass

    def _release_all(self) -> None:
        pass
