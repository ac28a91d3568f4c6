# SPDX-License-Identifier: GPL-3.0-or-later
"""ustreamer's MJPEG stream as the simulated streamer speaks it: clients, cookie and parts.

What a client of ustreamer sees, from its answers and its documented query options:

- `/stream?key=K` answers `Set-Cookie: stream_client=K/ID; path=/; max-age=30` with ID the
  client's hexadecimal id (K is `0` without a key), and `/state` lists ID in
  `stream.clients_stat` while the client is connected. The PiKVM web UI shows its video
  as live only when both agree.
- `extra_headers=1` adds `X-UStreamer-*` headers to every part; `advance_headers=1` sends
  each part's headers right after the previous frame, without Content-Length (Chromium draws
  a frame only when the next part begins); `zero_data=1` sends headers without JPEG data;
  `dual_final_frames=1` only matters when ustreamer drops identical frames, which this one
  never does. A value starting with `1`, or `true`/`yes`, turns an option on.
"""

import dataclasses
import secrets
import time
import urllib.parse
from collections.abc import Mapping

BOUNDARY = "boundarydonotcross"
# ustreamer's answers to /stream and /snapshot forbid caching them anywhere.
NO_CACHE = {
    "Cache-Control": (
        "no-store, no-cache, must-revalidate, proxy-revalidate, pre-check=0, post-check=0,"
        " max-age=0"
    ),
    "Pragma": "no-cache",
    "Expires": "Mon, 3 Jan 2000 12:34:56 GMT",
}
_RN = "\r\n"


@dataclasses.dataclass(frozen=True)
class Frame:
    """One JPEG and when it was made: `real_time` on the wall clock, the rest monotonic."""

    jpeg: bytes
    number: int
    size: tuple[int, int]
    real_time: float
    grabbed: float
    encoding: float
    encoded: float


class FpsMeter:
    """Frames per second as ustreamer counts them: those of the last whole second."""

    def __init__(self) -> None:
        self.fps = 0
        self._second: int | None = None
        self._count = 0

    def count(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            # A client that got nothing for a while had 0 fps in the second before.
            previous = self._second is not None and second == self._second + 1
            self.fps = self._count if previous else 0
            (self._second, self._count) = (second, 0)
        self._count += 1


def frame_headers(frame: Frame, word: str) -> dict[str, str]:
    """The `X-UStreamer-*` facts of a frame, as ustreamer gives them; `word` ends timings.

    The stream's parts name their timings `...-Time`, /snapshot's headers `...-Timestamp`.
    The frame is exposed as soon as it is encoded: there is no capture to compare.
    """
    (width, height) = frame.size
    now = time.monotonic()
    times = {
        "Grab": frame.grabbed,
        "Encode-Begin": frame.encoding,
        "Encode-End": frame.encoded,
        "Expose-Begin": frame.encoded,
        "Expose-Cmp": frame.encoded,
        "Expose-End": frame.encoded,
        "Send": now,
    }
    return {
        "X-Timestamp": f"{frame.real_time:.6f}",
        "X-UStreamer-Online": "true",
        "X-UStreamer-Dropped": "0",
        "X-UStreamer-Width": str(width),
        "X-UStreamer-Height": str(height),
        **{f"X-UStreamer-{name}-{word}": f"{value:.6f}" for (name, value) in times.items()},
    }


def _is_on(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    return value is not None and (value.startswith("1") or value.lower() in ("true", "yes"))


@dataclasses.dataclass
class StreamClient:
    """One viewer of /stream, with the options of its query string."""

    id: int
    key: str
    extra_headers: bool = False
    advance_headers: bool = False
    dual_final_frames: bool = False
    zero_data: bool = False
    meter: FpsMeter = dataclasses.field(default_factory=FpsMeter)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "StreamClient":
        key = query.get("key")
        return cls(
            id=secrets.randbits(64),
            # ustreamer URL-encodes the key again, so that nothing in it can end the cookie.
            key="0" if key is None else urllib.parse.quote(key, safe=""),
            extra_headers=_is_on(query, "extra_headers"),
            advance_headers=_is_on(query, "advance_headers"),
            dual_final_frames=_is_on(query, "dual_final_frames"),
            zero_data=_is_on(query, "zero_data"),
        )

    @property
    def hex_id(self) -> str:
        return f"{self.id:x}"

    def cookie(self) -> str:
        return f"stream_client={self.key}/{self.hex_id}; path=/; max-age=30"

    def stat(self) -> dict[str, object]:
        """This client in /state's `stream.clients_stat`."""
        return {
            "fps": self.meter.fps,
            "extra_headers": self.extra_headers,
            "advance_headers": self.advance_headers,
            "dual_final_frames": self.dual_final_frames,
            "zero_data": self.zero_data,
            "key": self.key,
        }

    def opening(self) -> bytes:
        """The body's start: the first boundary, and the first part's headers if in advance."""
        return f"--{BOUNDARY}{_RN}{self._advance_headers()}".encode()

    def part(self, frame: Frame) -> bytes:
        """A frame with its headers (unless sent in advance), up to the next boundary."""
        self.meter.count(time.monotonic())
        data = b"" if self.zero_data else frame.jpeg
        head = ""
        if not self.advance_headers:
            headers = {
                "Content-Type": "image/jpeg",
                "Content-Length": str(len(data)),
                "X-Timestamp": f"{time.time():.6f}",
            }
            if self.extra_headers:
                headers |= self._extra_headers(frame)
            head = "".join(f"{name}: {value}{_RN}" for (name, value) in headers.items()) + _RN
        tail = f"{_RN}--{BOUNDARY}{_RN}{self._advance_headers()}"
        return head.encode() + data + tail.encode()

    def _advance_headers(self) -> str:
        if not self.advance_headers:
            return ""
        return f"Content-Type: image/jpeg{_RN}X-Timestamp: {time.time():.6f}{_RN}{_RN}"

    def _extra_headers(self, frame: Frame) -> dict[str, str]:
        headers = frame_headers(frame, "Time")
        del headers["X-Timestamp"]  # the part has its own, of when it is sent
        headers["X-UStreamer-Client-FPS"] = str(self.meter.fps)
        headers["X-UStreamer-Latency"] = f"{time.monotonic() - frame.grabbed:.6f}"
        return headers
