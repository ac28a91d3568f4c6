# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.plugins.atx.base import (
    AtxActs,
    AtxBackend,
    AtxDisabledError,
    AtxLeds,
    AtxState,
    Button,
    PowerAction,
)


class DisabledAtx(AtxBackend):
    def state(self) -> AtxState:
        return AtxState(enabled=False, busy=False, acts=AtxActs(), leds=AtxLeds())

    async def power(self, action: PowerAction, *, wait: bool) -> None:
        raise AtxDisabledError

    async def click(self, button: Button, *, wait: bool) -> None:
        raise AtxDisabledError

    async def restart(self, *, wait: bool) -> None:
        raise AtxDisabledError
