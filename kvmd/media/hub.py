# SPDX-License-Identifier: GPL-3.0-or-later
"""The frames `/api/media/ws` sends: one memsink reader per format, shared by its clients.

A source reads its memsink only while a client is attached, and holds the streamer
running meanwhile (a media client is a stream client). Reads block (flock, sleeps), so
each runs in a worker thread, one at a time per source.

Each client has a queue of `QUEUE_FRAMES`. H.264 clients start at a key frame; a client
that falls behind has its queue emptied and starts again at the next key frame, which
the source asks the encoder for at once. Memory per client is bounded by the queue,
whatever the client does.
"""

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from kvmd.media.config import MediaConfig, MemsinkConfig
from kvmd.media.memsink import SHM_DIR, Frame, MemsinkError, MemsinkMissingError, MemsinkReader
from kvmd.plugins.streamer.base import StreamerBackend, StreamerDisabledError

logger = logging.getLogger(__name__)

# What the H.264 from a Pi's encoder is, and what PiKVM's kvmd-media announces.
PROFILE_LEVEL_ID = "42E01F"
QUEUE_FRAMES = 32
# Between tries of a memsink that is missing or broken.
_RETRY = 1.0


@dataclasses.dataclass(eq=False)
class MediaClient:
    queue: asyncio.Queue[Frame]
    waits_for_key: bool
    restarts: int = 0  # times its queue overflowed and it started again at a key frame


class MediaSource:
    def __init__(
        self, fmt: str, config: MemsinkConfig, streamer: StreamerBackend, shm_dir: Path
    ) -> None:
        self.format = fmt
        self._config = config
        self._streamer = streamer
        self._shm_dir = shm_dir
        self._clients: set[MediaClient] = set()
        self._task: asyncio.Task[None] | None = None
        self._key_required = False
        self.error: str | None = None  # why no frames come, while that is so
        self.frames = 0

    @property
    def is_diff(self) -> bool:
        """H.264's frames need the ones before: a client starts at a key frame."""
        return self.format == "h264"

    @contextlib.asynccontextmanager
    async def attach(self) -> AsyncIterator[MediaClient]:
        client = MediaClient(asyncio.Queue(QUEUE_FRAMES), waits_for_key=self.is_diff)
        self._clients.add(client)
        self.request_key()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"media-{self.format}")
        try:
            yield client
        finally:
            self._clients.discard(client)
            if not self._clients and self._task is not None:
                (task, self._task) = (self._task, None)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def request_key(self) -> None:
        if self.is_diff:
            self._key_required = True

    async def _run(self) -> None:
        reader = MemsinkReader(
            self._config.sink,
            lock_timeout=self._config.lock_timeout,
            wait_timeout=self._config.wait_timeout,
            shm_dir=self._shm_dir,
        )
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[Frame | None] | None = None
        try:
            async with contextlib.AsyncExitStack() as held:
                with contextlib.suppress(StreamerDisabledError):
                    # No streamer of kvmd's own: one started outside kvmd may still feed
                    # the sink (PiKVM's kvmd-media never starts one), so it is read anyway.
                    await held.enter_async_context(self._streamer.hold())
                while True:
                    pending = loop.run_in_executor(None, self._read, reader, self._key_required)
                    # Shielded: the read runs on in its thread; `finally` waits for it.
                    frame = await asyncio.shield(pending)
                    pending = None
                    if frame is None:
                        await asyncio.sleep(0 if self.error is None else _RETRY)
                        continue
                    self._deliver(frame)
        finally:
            if pending is not None:
                await asyncio.wait([pending])  # at most wait_timeout; then the map can go
            reader.close()

    def _read(self, reader: MemsinkReader, key_required: bool) -> Frame | None:
        """In a worker thread: the next frame, or None (nothing new, or an error noted)."""
        try:
            frame = reader.wait_frame(key_required=key_required)
        except MemsinkMissingError as exc:
            self._note(str(exc), quiet=True)
            return None
        except MemsinkError as exc:  # the reader has let the broken object go
            self._note(str(exc))
            return None
        if frame is not None:
            self._note(None)
        return frame

    def _note(self, error: str | None, *, quiet: bool = False) -> None:
        if error != self.error:
            if error is None:
                logger.info("Media %s: frames again from %s", self.format, self._config.sink)
            elif quiet:
                logger.info("Media %s: %s; waiting for the streamer", self.format, error)
            else:
                logger.error("Media %s: %s", self.format, error)
            self.error = error

    def _deliver(self, frame: Frame) -> None:
        self.frames += 1
        if frame.key:
            self._key_required = False
        for client in self._clients:
            if client.queue.full():
                # Behind by a whole queue: what it holds is stale. It starts again at the
                # next key frame, which is asked for now rather than at the next GOP.
                while not client.queue.empty():
                    client.queue.get_nowait()
                client.waits_for_key = self.is_diff
                client.restarts += 1
                self.request_key()
            if client.waits_for_key and not frame.key:
                continue
            client.waits_for_key = False
            client.queue.put_nowait(frame)


class MediaHub:
    """The sources of the `media:` section's memsinks, by format."""

    def __init__(
        self, config: MediaConfig, streamer: StreamerBackend, shm_dir: Path = SHM_DIR
    ) -> None:
        self._streamer = streamer
        self.sources = {
            fmt: MediaSource(fmt, sink, streamer, shm_dir)
            for (fmt, sink) in (("h264", config.memsink.h264), ("jpeg", config.memsink.jpeg))
            if sink.sink
        }

    def describe(self) -> dict[str, object]:
        """PiKVM's `media` object: a key per format offered.

        H.264 only while the streamer has it (a ustreamer without an H.264 sink has not).
        """
        video: dict[str, object] = {}
        if "h264" in self.sources and self._streamer.state().features.h264:
            video["h264"] = {"profile_level_id": PROFILE_LEVEL_ID}
        if "jpeg" in self.sources:
            video["jpeg"] = {}
        return {"video": video}
