# SPDX-License-Identifier: GPL-3.0-or-later
"""User GPIO: switchable and pulsed outputs, watched inputs, and the table that shows them."""

import abc

import msgspec

from kvmd.bus import Topic
from kvmd.errors import BusyError, OperationError
from kvmd.plugins.backend import Backend


class GpioChannelNotFoundError(OperationError):
    """No output channel of that name."""

    default_msg = "GPIO channel is not found"


class GpioChannelIsBusyError(BusyError):
    """The channel is still switching or pulsing."""

    default_msg = "Performing another GPIO operation on this channel, please try again later"


class GpioSwitchNotSupported(OperationError):  # noqa: N818 -- PiKVM's name
    """The channel can only be pulsed (or is an input)."""

    default_msg = "This GPIO channel does not support switching"


class GpioPulseNotSupported(OperationError):  # noqa: N818 -- PiKVM's name
    """The channel can only be switched."""

    default_msg = "This GPIO channel does not support pulsing"


class GpioDriverOfflineError(OperationError):
    """The driver could not reach its device (reported with wait=1)."""

    default_msg = "GPIO driver is offline"


class GpioHw(msgspec.Struct, frozen=True):
    """Which driver and pin serve a channel; pins are strings, as PiKVM reports them."""

    driver: str
    pin: str


class GpioPulse(msgspec.Struct, frozen=True):
    """Pulse timing of an output channel in seconds."""

    delay: float
    min_delay: float
    max_delay: float


class GpioInputScheme(msgspec.Struct, frozen=True):
    """An input channel."""

    hw: GpioHw


class GpioOutputScheme(msgspec.Struct, frozen=True):
    """An output channel."""

    switch: bool
    pulse: GpioPulse
    hw: GpioHw


class GpioScheme(msgspec.Struct, frozen=True):
    """All channels."""

    inputs: dict[str, GpioInputScheme] = msgspec.field(default_factory=dict)
    outputs: dict[str, GpioOutputScheme] = msgspec.field(default_factory=dict)


class LabelItem(msgspec.Struct, frozen=True, tag_field="type", tag="label"):
    """A text cell of the view table."""

    text: str


class InputItem(msgspec.Struct, frozen=True, tag_field="type", tag="input"):
    """A LED cell showing an input channel."""

    channel: str
    color: str = "green"


class OutputItem(msgspec.Struct, frozen=True, tag_field="type", tag="output"):
    """A button or switch cell driving an output channel."""

    channel: str
    confirm: bool = False
    hide: bool = False
    text: str = "Click"


ViewItem = LabelItem | InputItem | OutputItem


class GpioHeader(msgspec.Struct, frozen=True):
    """The title of the GPIO menu: always a list of items."""

    title: list[ViewItem]


class GpioView(msgspec.Struct, frozen=True):
    """How the web UI lays the channels out; `None` rows are separators."""

    header: GpioHeader
    table: list[list[ViewItem] | None] = msgspec.field(default_factory=list)


class GpioModel(msgspec.Struct, frozen=True):
    """Channels and their layout."""

    scheme: GpioScheme
    view: GpioView


class GpioInputState(msgspec.Struct, frozen=True):
    """An input's reading."""

    online: bool
    state: bool


class GpioOutputState(msgspec.Struct, frozen=True):
    """An output's level; a busy output reads false."""

    online: bool
    state: bool
    busy: bool


class GpioChannels(msgspec.Struct, frozen=True):
    """The state of every channel."""

    inputs: dict[str, GpioInputState] = msgspec.field(default_factory=dict)
    outputs: dict[str, GpioOutputState] = msgspec.field(default_factory=dict)


class GpioState(msgspec.Struct, frozen=True):
    """`GET /api/gpio` and the `gpio` event."""

    model: GpioModel
    state: GpioChannels


class GpioBackend(Backend):
    """Drives the user's channels."""

    topic = Topic.GPIO

    @abc.abstractmethod
    def state(self) -> GpioState:
        """The current state."""

    @abc.abstractmethod
    async def switch(self, channel: str, state: bool, *, wait: bool) -> None:
        """Set a switchable output."""

    @abc.abstractmethod
    async def pulse(self, channel: str, delay: float, *, wait: bool) -> None:
        """Pulse an output; a delay of 0 means the channel's default."""
