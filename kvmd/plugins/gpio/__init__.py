# SPDX-License-Identifier: GPL-3.0-or-later
"""Gpio backends, imported only when chosen so that unused hardware libraries never load."""

import importlib

from kvmd.bus import Bus
from kvmd.plugins.gpio.base import GpioBackend
from kvmd.plugins.gpio.config import GpioConfig

BACKENDS: dict[str, str] = {
    "disabled": "kvmd.plugins.gpio.disabled:DisabledGpio",
    "user": "kvmd.plugins.gpio.user:UserGpio",
}


def make_gpio(config: GpioConfig, bus: Bus) -> GpioBackend:
    """Channels are PiKVM's config shape (no `type`): none configured means disabled."""
    module, name = BACKENDS["user" if config.scheme else "disabled"].split(":")
    cls: type[GpioBackend] = getattr(importlib.import_module(module), name)
    return cls(config, bus)
