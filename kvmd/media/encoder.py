# SPDX-License-Identifier: GPL-3.0-or-later
"""A software H.264 encoder shaped like the Pi's: the simulated streamer's H.264 sink.

x264 through PyAV (its wheels carry FFmpeg with libx264), set up to give what ustreamer's
V4L2 M2M encoder gives a memsink: Annex-B access units, Constrained Baseline, one access
unit out for each picture in (no look-ahead, no B-frames), SPS and PPS before every IDR,
an IDR every `gop` pictures and whenever a client asks for one.
"""

import dataclasses
import time
from fractions import Fraction

import av
from av.video.frame import PictureType
from PIL import Image


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedFrame:
    data: bytes  # one Annex-B access unit
    key: bool
    seconds: float  # CPU-side time the encode took (for the bench)


class H264Encoder:
    def __init__(self, size: tuple[int, int], *, fps: int, bitrate_kbps: int, gop: int) -> None:
        self.size = size
        self.bitrate_kbps = bitrate_kbps
        self.gop = gop
        context = av.CodecContext.create("libx264", "w")
        (context.width, context.height) = size
        context.pix_fmt = "yuv420p"
        context.framerate = Fraction(max(fps, 1))
        context.time_base = Fraction(1, max(fps, 1))
        context.bit_rate = bitrate_kbps * 1000
        # ustreamer's --h264-gop 0 is "key frames only when asked"; x264 needs a number.
        context.gop_size = gop if gop > 0 else 10_000
        context.profile = "baseline"
        context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",  # no look-ahead: each picture is out before the next
            "repeat-headers": "1",  # SPS/PPS with every IDR, as the M2M encoder sends them
            "forced-idr": "1",  # a requested key frame is an IDR, not a recovery point
        }
        self._context = context
        self._pts = 0

    def encode(self, image: Image.Image, *, key: bool = False) -> EncodedFrame:
        started = time.process_time()
        rgb = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
        picture = rgb.reformat(format="yuv420p")
        picture.pts = self._pts
        self._pts += 1
        if key:
            picture.pict_type = PictureType.I
        packets = self._context.encode(picture)
        data = b"".join(bytes(packet) for packet in packets)
        is_key = any(packet.is_keyframe for packet in packets)
        return EncodedFrame(data=data, key=is_key, seconds=time.process_time() - started)
