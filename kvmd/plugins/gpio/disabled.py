# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.plugins.gpio.base import (
    GpioBackend,
    GpioChannelNotFoundError,
    GpioChannels,
    GpioHeader,
    GpioModel,
    GpioScheme,
    GpioState,
    GpioView,
    LabelItem,
)


class DisabledGpio(GpioBackend):
    """No channels: every operation names a channel that does not exist."""

    def state(self) -> GpioState:
        view = GpioView(header=GpioHeader(title=[LabelItem(text="GPIO")]))
        return GpioState(model=GpioModel(scheme=GpioScheme(), view=view), state=GpioChannels())

    async def switch(self, channel: str, state: bool, *, wait: bool) -> None:
        raise GpioChannelNotFoundError

    async def pulse(self, channel: str, delay: float, *, wait: bool) -> None:
        raise GpioChannelNotFoundError
