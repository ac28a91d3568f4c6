# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of user GPIO, in PiKVM's shape: `drivers`, `scheme` (the channels) and `view`.

```
gpio:
  drivers:  {<name>: {type: gpio|hidrelay|cmd|cmdret|wol|tesmart|noop, <options>}}
  scheme:   {<channel>: {driver: <name>, pin: ..., mode: input|output, inverted: false,
                         debounce: 0.1,                       # inputs
                         switch: true, initial: false, busy_delay: 0.2,
                         pulse: {delay: 0.1, min_delay: 0.1, max_delay: 0.1} | false}}
  view:     {header: {title: "GPIO" | [items]}, table: [[items], [], ...]}
```
The driver `__gpio__` (the board's first gpiochip) always exists and serves channels that
name no driver. A channel is checked against its driver here, at start-up: mode, pin.
"""

import re
from collections.abc import Callable
from typing import Annotated, Literal

from msgspec import Meta, field

from kvmd.config.base import Section

NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")
CHANNEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.-]*$")
DEFAULT_DRIVER = "__gpio__"

Seconds = Annotated[float, Meta(ge=0.0, le=3600.0)]
PollSeconds = Annotated[float, Meta(ge=0.1, le=3600.0)]
Mac = Annotated[str, Meta(pattern=r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")]


class GpioDriverConfig(Section, frozen=True, tag_field="type", tag="gpio"):
    """Lines of a gpiochip through libgpiod; `simulated` or a simulator's socket in the testenv."""

    device: str = "/dev/gpiochip0"


class HidRelayDriverConfig(Section, frozen=True, tag_field="type", tag="hidrelay"):
    """A USB HID relay board (16c0:05df) through /dev/hidrawN; pins 0-7 are relays 1-8."""

    device: str
    state_poll: PollSeconds = 5.0


class CmdDriverConfig(Section, frozen=True, tag_field="type", tag="cmd"):
    """Runs `cmd` when switched on; a non-zero exit is a failure. Output only."""

    cmd: list[str] = field(default_factory=list)
    timeout: Annotated[float, Meta(ge=0.1, le=3600.0)] = 30.0


class CmdRetDriverConfig(Section, frozen=True, tag_field="type", tag="cmdret"):
    """An input that reads true while `cmd` exits with 0, run every `state_poll`."""

    cmd: list[str] = field(default_factory=list)
    timeout: Annotated[float, Meta(ge=0.1, le=3600.0)] = 10.0
    state_poll: PollSeconds = 1.0


class WolDriverConfig(Section, frozen=True, tag_field="type", tag="wol"):
    """Sends a Wake-on-LAN magic packet for `mac` when switched on. Output only."""

    mac: Mac
    ip: str = "255.255.255.255"
    port: Annotated[int, Meta(ge=1, le=65535)] = 9


class TesmartDriverConfig(Section, frozen=True, tag_field="type", tag="tesmart"):
    """A TESmart HDMI KVM switch over TCP (`host`) or a serial port (`device`).

    Output pin N selects port N+1; input pin N reads whether port N+1 is active.
    """

    host: str = ""
    port: Annotated[int, Meta(ge=1, le=65535)] = 5000
    device: str = ""
    speed: Annotated[int, Meta(ge=1200, le=921600)] = 9600
    timeout: Annotated[float, Meta(ge=0.1, le=60.0)] = 5.0
    state_poll: PollSeconds = 10.0

    def __post_init__(self) -> None:
        if bool(self.host) == bool(self.device):
            raise ValueError("tesmart needs exactly one of host and device")


class NoopDriverConfig(Section, frozen=True, tag_field="type", tag="noop"):
    """Does nothing and reads false: a placeholder channel."""


DriverConfig = (
    GpioDriverConfig
    | HidRelayDriverConfig
    | CmdDriverConfig
    | CmdRetDriverConfig
    | WolDriverConfig
    | TesmartDriverConfig
    | NoopDriverConfig
)

# What each driver can be: (modes, pin check). Pins are strings, as the API shows them.
_DIGITS = re.compile(r"^[0-9]+$")


def _pin_range(low: int, high: int) -> Callable[[str], bool]:
    def check(pin: str) -> bool:
        return bool(_DIGITS.match(pin)) and low <= int(pin) <= high

    return check


DRIVER_RULES: dict[str, tuple[frozenset[str], Callable[[str], bool]]] = {
    "gpio": (frozenset({"input", "output"}), _pin_range(0, 1023)),
    "hidrelay": (frozenset({"output"}), _pin_range(0, 7)),
    "cmd": (frozenset({"output"}), lambda pin: True),
    "cmdret": (frozenset({"input"}), lambda pin: True),
    "wol": (frozenset({"output"}), lambda pin: True),
    "tesmart": (frozenset({"input", "output"}), _pin_range(0, 15)),
    "noop": (frozenset({"input", "output"}), lambda pin: True),
}


class PulseConfig(Section, frozen=True):
    """A pulse: on for `delay` seconds (a request may ask for any delay in [min, max])."""

    delay: Seconds = 0.1
    min_delay: Seconds = 0.1
    max_delay: Seconds = 0.1


class ChannelConfig(Section, frozen=True):
    pin: int | str
    driver: str = DEFAULT_DRIVER
    mode: Literal["input", "output"] = "input"
    inverted: bool = False
    # Inputs: how long a level must hold to count (gpio driver).
    debounce: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.1
    # Outputs.
    switch: bool = True
    initial: bool | None = False
    busy_delay: Annotated[float, Meta(ge=0.0, le=60.0)] = 0.2
    # `false` is PiKVM's shorthand for no pulse (a delay of 0).
    pulse: PulseConfig | bool = field(default_factory=PulseConfig)

    @property
    def pin_text(self) -> str:
        return str(self.pin)

    @property
    def pulse_timing(self) -> PulseConfig:
        """Pulse delays with the default clamped into [min, max]; all 0 when off."""
        pulse = self.pulse
        if pulse is True:
            pulse = PulseConfig()
        if pulse is False or pulse.delay == 0:
            return PulseConfig(delay=0.0, min_delay=0.0, max_delay=0.0)
        return PulseConfig(
            delay=min(max(pulse.delay, pulse.min_delay), pulse.max_delay),
            min_delay=pulse.min_delay,
            max_delay=pulse.max_delay,
        )


class HeaderConfig(Section, frozen=True):
    title: str | list[str] = "GPIO"


class ViewConfig(Section, frozen=True):
    header: HeaderConfig = field(default_factory=HeaderConfig)
    table: list[list[str]] = field(default_factory=list)


class GpioConfig(Section, frozen=True):
    """User GPIO; with no channels the subsystem is idle and opens nothing."""

    drivers: dict[str, DriverConfig] = field(default_factory=dict)
    scheme: dict[str, ChannelConfig] = field(default_factory=dict)
    view: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        for name in self.drivers:
            if not NAME.match(name):
                raise ValueError(f"bad GPIO driver name {name!r}")
        drivers = self.all_drivers()
        for channel, config in self.scheme.items():
            if not CHANNEL.match(channel) or len(channel) > 255:
                raise ValueError(f"bad GPIO channel name {channel!r}")
            driver = drivers.get(config.driver)
            if driver is None:
                raise ValueError(f"GPIO channel {channel!r}: no driver {config.driver!r}")
            (modes, pin_ok) = DRIVER_RULES[driver_type(driver)]
            if config.mode not in modes:
                raise ValueError(
                    f"GPIO channel {channel!r}: driver {config.driver!r} has no {config.mode}s"
                )
            if not pin_ok(config.pin_text):
                raise ValueError(f"GPIO channel {channel!r}: bad pin {config.pin!r}")
            pulse = config.pulse_timing
            if pulse.min_delay > pulse.max_delay:
                raise ValueError(f"GPIO channel {channel!r}: pulse min_delay > max_delay")

    def all_drivers(self) -> dict[str, DriverConfig]:
        """The configured drivers plus `__gpio__` unless it is overridden."""
        return {DEFAULT_DRIVER: GpioDriverConfig(), **self.drivers}


def driver_type(config: DriverConfig) -> str:
    return str(type(config).__struct_config__.tag)
