# SPDX-License-Identifier: GPL-3.0-or-later
"""Streamer backends, imported only when chosen so that unused hardware libraries never load."""

import importlib

from kvmd.bus import Bus
from kvmd.plugins.streamer.base import StreamerBackend
from kvmd.plugins.streamer.config import StreamerConfig

BACKENDS: dict[str, str] = {
    "disabled": "kvmd.plugins.streamer.disabled:DisabledStreamer",
    "ustreamer": "kvmd.plugins.streamer.ustreamer:Ustreamer",
}


def make_streamer(config: StreamerConfig, bus: Bus) -> StreamerBackend:
    module, name = BACKENDS[str(type(config).__struct_config__.tag)].split(":")
    cls: type[StreamerBackend] = getattr(importlib.import_module(module), name)
    return cls(config, bus)
