# SPDX-License-Identifier: GPL-3.0-or-later
"""Frames as ustreamer puts them in a memsink, for the media tests and bench."""

import time

from kvmd.media.memsink import FORMAT_H264, Frame


def sink_frame(data: bytes, *, key: bool = False, fmt: int = FORMAT_H264, gop: int = 30) -> Frame:
    """A 640x480 frame of the simulated screen, online, grabbed now."""
    return Frame(
        data=data,
        width=640,
        height=480,
        format=fmt,
        online=True,
        key=key,
        gop=gop,
        grab_ts=time.clock_gettime(time.CLOCK_MONOTONIC),
        encode_end_ts=0.0,
    )
