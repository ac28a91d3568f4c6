# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the atx backends: one tagged Struct per backend, selected by `type`."""

from typing import Annotated

from msgspec import Meta

from kvmd.config.base import Section

Pin = Annotated[int, Meta(ge=0, le=1023)]
Delay = Annotated[float, Meta(ge=0.01, le=60.0)]


class DisabledAtxConfig(Section, frozen=True, tag_field="type", tag="disabled"):
    pass


class GpioAtxConfig(Section, frozen=True, tag_field="type", tag="gpio"):
    """Buttons and LEDs wired to GPIO lines (a PiKVM ATX board)."""

    # A gpiochip device, or "simulated" for the in-process chip the testenv target uses.
    device: str = "/dev/gpiochip0"
    power_led_pin: Pin = 24
    power_led_inverted: bool = False
    power_led_debounce: Annotated[float, Meta(ge=0.0, le=5.0)] = 0.1
    hdd_led_pin: Pin = 22
    hdd_led_inverted: bool = False
    hdd_led_debounce: Annotated[float, Meta(ge=0.0, le=5.0)] = 0.1
    power_switch_pin: Pin = 23
    reset_switch_pin: Pin = 27
    click_delay: Delay = 0.1
    long_click_delay: Delay = 5.5
    # After a click the button stays busy this long: a second press too soon would be
    # read by the target as part of the first.
    hold_off: Annotated[float, Meta(ge=0.0, le=10.0)] = 1.0
    # A graceful restart (Redfish) waits this long for the OS to shut down; past it the
    # target is left on, as a shutdown the OS refused must not become a power cycle.
    restart_timeout: Annotated[float, Meta(ge=1.0, le=3600.0)] = 300.0


AtxConfig = DisabledAtxConfig | GpioAtxConfig
