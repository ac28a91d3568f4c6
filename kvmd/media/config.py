# SPDX-License-Identifier: GPL-3.0-or-later
"""`media:`, PiKVM's kvmd-media section: the memsinks `/api/media/ws` reads.

kvmd-media is a daemon of its own on PiKVM (`media.server.*`); here `/api/media` is
served by kvmd itself, behind kvmd's own auth, so `media.server` is read and ignored.
"""

from typing import Annotated

from msgspec import Meta, field

from kvmd.config.base import Section

_Timeout = Annotated[float, Meta(ge=0.1, le=60.0)]


class MemsinkConfig(Section, frozen=True):
    # ustreamer's --<x>-sink name; empty: that format is not offered.
    sink: str = ""
    lock_timeout: _Timeout = 1.0
    wait_timeout: _Timeout = 1.0
    # Frames identical to the one before, sent again this soon, are not sent (0 = off).
    drop_same_frames: Annotated[float, Meta(ge=0.0, le=60.0)] = 0.0


class MediaMemsinksConfig(Section, frozen=True):
    jpeg: MemsinkConfig = field(default_factory=MemsinkConfig)
    h264: MemsinkConfig = field(default_factory=MemsinkConfig)


class MediaConfig(Section, frozen=True):
    memsink: MediaMemsinksConfig = field(default_factory=MediaMemsinksConfig)
