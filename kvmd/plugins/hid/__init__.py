# SPDX-License-Identifier: GPL-3.0-or-later
"""Hid backends, imported only when chosen so that unused hardware libraries never load."""

import importlib

from kvmd.bus import Bus
from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.hid.config import HidConfig

BACKENDS: dict[str, str] = {
    "disabled": "kvmd.plugins.hid.disabled:DisabledHid",
    "otg": "kvmd.plugins.hid.otg:OtgHid",
    "ch9329": "kvmd.plugins.hid.ch9329:Ch9329Hid",
}


def make_hid(config: HidConfig, bus: Bus) -> HidBackend:
    module, name = BACKENDS[str(type(config).__struct_config__.tag)].split(":")
    cls: type[HidBackend] = getattr(importlib.import_module(module), name)
    return cls(config, bus)
