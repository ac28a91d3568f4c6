# SPDX-License-Identifier: GPL-3.0-or-later
"""Atx backends, imported only when chosen so that unused hardware libraries never load."""

import importlib

from kvmd.bus import Bus
from kvmd.plugins.atx.base import AtxBackend
from kvmd.plugins.atx.config import AtxConfig

BACKENDS: dict[str, str] = {
    "disabled": "kvmd.plugins.atx.disabled:DisabledAtx",
    "gpio": "kvmd.plugins.atx.gpio:GpioAtx",
}


def make_atx(config: AtxConfig, bus: Bus) -> AtxBackend:
    module, name = BACKENDS[str(type(config).__struct_config__.tag)].split(":")
    cls: type[AtxBackend] = getattr(importlib.import_module(module), name)
    return cls(config, bus)
