# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the HID backends: one tagged Struct per backend, selected by `type`."""

from typing import Annotated

from msgspec import Meta, field

from kvmd.config.base import Section


class JigglerConfig(Section, frozen=True):
    # `enabled` allows the feature; `active` is whether it runs from the start.
    enabled: bool = True
    active: bool = False
    interval: Annotated[int, Meta(ge=1, le=86400)] = 60


class AxisRange(Section, frozen=True):
    """The part of the API's -32768..32767 the target's screen really covers."""

    min: Annotated[int, Meta(ge=-32768, le=32767)] = -32768
    max: Annotated[int, Meta(ge=-32768, le=32767)] = 32767


class CommonHidConfig(Section, frozen=True):
    # The keymap file also names the default in /api/hid/keymaps; its folder lists the others.
    keymap: str = "/usr/share/kvmd/keymaps/en-us"
    jiggler: JigglerConfig = field(default_factory=JigglerConfig)
    mouse_x_range: AxisRange = field(default_factory=AxisRange)
    mouse_y_range: AxisRange = field(default_factory=AxisRange)


class DisabledHidConfig(CommonHidConfig, frozen=True, tag_field="type", tag="disabled"):
    pass


class DeviceConfig(Section, frozen=True):
    # How long one write waits for the host to take the previous report.
    select_timeout: Annotated[float, Meta(ge=0.01, le=5.0)] = 0.1
    # Pause between retries of a report the host did not take.
    queue_timeout: Annotated[float, Meta(ge=0.01, le=5.0)] = 0.1
    # Fast retries before falling back to waiting until the host reads again.
    write_retries: Annotated[int, Meta(ge=0, le=10000)] = 150


class OtgKeyboardConfig(DeviceConfig, frozen=True):
    device: str = "/dev/kvmd-hid-keyboard"


class OtgMouseConfig(DeviceConfig, frozen=True):
    device: str = "/dev/kvmd-hid-mouse"
    absolute: bool = True
    # Windows 98 reads the absolute range as 0..16383: doubled values reach the edges.
    absolute_win98_fix: bool = False
    horizontal_wheel: bool = True


class OtgMouseAltConfig(OtgMouseConfig, frozen=True):
    """The second mouse: relative, for hosts (BIOS, some VMs) that ignore absolute ones."""

    device: str = "/dev/kvmd-hid-mouse-alt"
    absolute: bool = False


class OtgHidConfig(CommonHidConfig, frozen=True, tag_field="type", tag="otg"):
    """USB gadget HID: /dev/hidgN devices, or unix sockets of the simulated host."""

    keyboard: OtgKeyboardConfig = field(default_factory=OtgKeyboardConfig)
    mouse: OtgMouseConfig = field(default_factory=OtgMouseConfig)
    # An empty `device` disables the second mouse (and with it output switching).
    mouse_alt: OtgMouseAltConfig = field(default_factory=OtgMouseAltConfig)
    # Pretend every write succeeds without opening anything.
    noop: bool = False


class Ch9329HidConfig(CommonHidConfig, frozen=True, tag_field="type", tag="ch9329"):
    """A CH9329 serial-to-USB keyboard/mouse chip on a UART."""

    device: str = "/dev/kvmd-hid"
    speed: Annotated[int, Meta(ge=1200, le=115200)] = 9600
    # The chip answers every command; no answer within this time means it is gone.
    read_timeout: Annotated[float, Meta(ge=0.05, le=10.0)] = 0.3
    # Status (LEDs, USB connection) is polled this often while idle.
    state_poll: Annotated[float, Meta(ge=0.1, le=60.0)] = 1.0


HidConfig = DisabledHidConfig | OtgHidConfig | Ch9329HidConfig
