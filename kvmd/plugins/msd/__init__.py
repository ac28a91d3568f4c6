# SPDX-License-Identifier: GPL-3.0-or-later
"""Msd backends, imported only when chosen so that unused hardware libraries never load."""

import importlib

from kvmd.bus import Bus
from kvmd.plugins.msd.base import MsdBackend
from kvmd.plugins.msd.config import MsdConfig

BACKENDS: dict[str, str] = {
    "disabled": "kvmd.plugins.msd.disabled:DisabledMsd",
    "otg": "kvmd.plugins.msd.otg:OtgMsd",
}


def make_msd(config: MsdConfig, bus: Bus) -> MsdBackend:
    module, name = BACKENDS[str(type(config).__struct_config__.tag)].split(":")
    cls: type[MsdBackend] = getattr(importlib.import_module(module), name)
    return cls(config, bus)
