# SPDX-License-Identifier: GPL-3.0-or-later
"""The frames VNC clients see: one reader of the streamer's MJPEG, shared by every client.

While any client watches, the reader holds the streamer running (it counts as a stream
client) and reads `/stream?extra_headers=1` from its unix socket, as PiKVM's kvmd-vnc
does. Each client takes the latest frame when it is ready for one: there is no queue, so
a slow client skips frames instead of holding memory or delaying the others.
"""

import asyncio
import contextlib
import dataclasses
import io
import logging
from collections.abc import AsyncIterator

import aiohttp

from kvmd.errors import KvmdError
from kvmd.plugins.streamer.base import StreamerBackend

logger = logging.getLogger(__name__)

# How long without a frame before clients are shown a "waiting" picture, and the pause
# before the reader tries the streamer again.
_WAIT = 1.0
_PLACEHOLDER_SIZE = (800, 600)
# A frame bigger than this is not a frame (ustreamer's JPEGs are well under a megabyte).
_MAX_FRAME = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    jpeg: bytes
    width: int
    height: int
    online: bool
    seq: int  # grows with every frame
    generated: bool = False  # kvmd's own "waiting" picture, not the streamer's


class FrameSource:
    def __init__(self, streamer: StreamerBackend) -> None:
        self._streamer = streamer
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._seq = 0
        self.latest: Frame | None = None

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator["FrameSource"]:
        """Frames flow while at least one client is inside this block."""
        self._watchers += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="vnc-frames")
        try:
            yield self
        finally:
            self._watchers -= 1
            if self._watchers == 0 and self._task is not None:
                (task, self._task) = (self._task, None)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self.latest = None

    async def next_frame(self, after: int) -> Frame:
        """The latest frame once it is newer than `after`."""
        async with self._changed:
            while self.latest is None or self.latest.seq <= after:
                await self._changed.wait()
            return self.latest

    async def first_real(self) -> Frame:
        """The latest of the streamer's frames, once there is one."""
        seq = 0
        while True:
            frame = await self.next_frame(seq)
            if not frame.generated:
                return frame
            seq = frame.seq

    async def _publish(
        self, jpeg: bytes, width: int, height: int, *, online: bool, generated: bool = False
    ) -> None:
        self._seq += 1
        self.latest = Frame(jpeg, width, height, online, self._seq, generated)
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        waiting = asyncio.create_task(self._wait_picture())
        try:
            while True:
                try:
                    async with self._streamer.hold() as unix:
                        await self._read(unix)
                except (OSError, aiohttp.ClientError, KvmdError, ValueError, TypeError) as exc:
                    logger.info("VNC: no frames from the streamer yet: %s", exc)
                await asyncio.sleep(_WAIT)
        finally:
            waiting.cancel()

    async def _wait_picture(self) -> None:
        """Until the first frame, and whenever frames stop, a picture saying so."""
        while True:
            seq = self._seq
            await asyncio.sleep(_WAIT)
            if self._seq == seq:
                (width, height) = (
                    (self.latest.width, self.latest.height) if self.latest else _PLACEHOLDER_SIZE
                )
                picture = placeholder("Waiting for stream ...", width, height)
                await self._publish(picture, width, height, online=False, generated=True)

    async def _read(self, unix: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=10)
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=unix), timeout=timeout
            ) as session,
            session.get("http://localhost/stream", params={"extra_headers": "1"}) as response,
        ):
            response.raise_for_status()
            reader = aiohttp.MultipartReader(response.headers, response.content)
            while True:
                part = await reader.next()
                if part is None:
                    return
                if not isinstance(part, aiohttp.BodyPartReader):
                    raise TypeError("a nested multipart in the stream")
                jpeg = await part.read()
                if len(jpeg) > _MAX_FRAME:
                    raise ValueError(f"a frame of {len(jpeg)} bytes")
                headers = part.headers
                width = int(headers.get("X-UStreamer-Width", "0"))
                height = int(headers.get("X-UStreamer-Height", "0"))
                if width <= 0 or height <= 0:
                    (width, height) = jpeg_size(jpeg)
                online = headers.get("X-UStreamer-Online", "true").lower() == "true"
                await self._publish(jpeg, width, height, online=online)


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    from PIL import Image  # noqa: PLC0415 -- Pillow only when a frame has no size header

    with Image.open(io.BytesIO(jpeg)) as image:
        return image.size


def placeholder(text: str, width: int, height: int, quality: int = 80) -> bytes:
    """A black picture with white text, as PiKVM shows while there is no stream."""
    from PIL import Image, ImageDraw  # noqa: PLC0415 -- Pillow only when it is drawn

    image = Image.new("RGB", (width, height))
    ImageDraw.Draw(image).text((20, 20), text, fill=(255, 255, 255), font_size=20)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
