# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.plugins.hid.base import (
    HidBackend,
    HidLeds,
    HidOutputs,
    HidState,
    JigglerState,
    KeyboardState,
    MouseState,
)


class DisabledHid(HidBackend):
    """No keyboard or mouse: input is accepted and goes nowhere, as on a view-only device."""

    def state(self) -> HidState:
        return HidState(
            online=False,
            busy=False,
            connected=None,
            keyboard=KeyboardState(online=False, leds=HidLeds(), outputs=HidOutputs()),
            mouse=MouseState(online=False, absolute=True, outputs=HidOutputs()),
            jiggler=JigglerState(),
        )

    async def send_key(self, key: str, *, state: bool, finish: bool) -> None:
        pass

    async def send_mouse_button(self, button: str, *, state: bool) -> None:
        pass

    async def send_mouse_move(self, x: int, y: int) -> None:
        pass

    async def send_mouse_relative(self, dx: int, dy: int) -> None:
        pass

    async def send_mouse_wheel(self, dx: int, dy: int) -> None:
        pass

    async def release_all(self) -> None:
        pass
