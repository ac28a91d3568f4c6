# SPDX-License-Identifier: GPL-3.0-or-later
"""MediaSource and MediaHub against a real memsink publisher in a temp dir.

The streamer is a stand-in that only counts who holds it: the hub's side of the memsink
(flock, mmap, heartbeat, key requests) is all real.
"""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from kvmd.bus import Bus
from kvmd.media.config import MediaConfig, MediaMemsinksConfig, MemsinkConfig
from kvmd.media.hub import QUEUE_FRAMES, MediaClient, MediaHub, MediaSource
from kvmd.media.memsink import FORMAT_JPEG, Frame, Header
from kvmd.media.publisher import MemsinkPublisher
from kvmd.plugins.streamer.base import StreamerFeatures, StreamerState
from kvmd.plugins.streamer.disabled import DisabledStreamer
from tests.sinkframes import sink_frame as frame

H264 = "kvmd::test::h264"
JPEG = "kvmd::test::jpeg"
# The shortest waits the config allows, so that a test never idles a whole second.
FAST = {"lock_timeout": 0.1, "wait_timeout": 0.1}


class HeldStreamer(DisabledStreamer):
    """A streamer with H.264 that only counts the blocks holding it running."""

    def __init__(self, *, h264: bool = True) -> None:
        super().__init__(MediaConfig(), Bus())
        self.h264 = h264
        self.holders = 0
        self.taken = 0

    def state(self) -> StreamerState:
        return msgspec.structs.replace(
            super().state(), features=StreamerFeatures(quality=True, h264=self.h264)
        )

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[str]:
        self.holders += 1
        self.taken += 1
        try:
            yield "/nowhere/ustreamer.sock"
        finally:
            self.holders -= 1


def hub_config(*, h264: str = "", jpeg: str = "") -> MediaConfig:
    return MediaConfig(
        memsink=MediaMemsinksConfig(
            h264=MemsinkConfig(sink=h264, **FAST), jpeg=MemsinkConfig(sink=jpeg, **FAST)
        )
    )


async def wait_until(what: str, check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.005)


async def publish(source: MediaSource, publisher: MemsinkPublisher, sink_frame: Frame) -> None:
    """Put a frame and wait until the source has read it (a reader sees only the newest)."""
    before = source.frames
    assert publisher.put(sink_frame)
    await wait_until(f"the source reads {sink_frame.data!r}", lambda: source.frames > before)


def queued(client: MediaClient) -> list[bytes]:
    items = []
    while not client.queue.empty():
        items.append(client.queue.get_nowait().data)
    return items


def readers() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("media-")]


def set_version(path: Path, version: int) -> None:
    """Write the header's version field as a server of another protocol would."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, version.to_bytes(4, "little"), Header.version.offset)
    finally:
        os.close(fd)


def heartbeat_bytes(path: Path) -> bytes:
    with path.open("rb") as file:
        file.seek(Header.last_client_ts.offset)
        return file.read(Header.last_client_ts.size)


@pytest.fixture
def streamer() -> HeldStreamer:
    return HeldStreamer()


@pytest.fixture
def h264(tmp_path: Path) -> Iterator[MemsinkPublisher]:
    publisher = MemsinkPublisher(H264, shm_dir=tmp_path)
    yield publisher
    publisher.close()


@pytest.fixture
def jpeg(tmp_path: Path) -> Iterator[MemsinkPublisher]:
    publisher = MemsinkPublisher(JPEG, shm_dir=tmp_path)
    yield publisher
    publisher.close()


@pytest.fixture
def hub(tmp_path: Path, streamer: HeldStreamer) -> MediaHub:
    return MediaHub(hub_config(h264=H264, jpeg=JPEG), streamer, shm_dir=tmp_path)


async def test_nothing_reads_or_holds_the_streamer_without_a_client(hub, streamer, h264, tmp_path):
    assert h264.put(frame(b"idr", key=True))
    await asyncio.sleep(0.3)
    assert readers() == []
    assert (streamer.holders, streamer.taken) == (0, 0)
    # No heartbeat either: the encoder may idle.
    assert heartbeat_bytes(tmp_path / H264) == bytes(16)
    assert hub.sources["h264"].frames == 0


async def test_a_client_holds_the_streamer_until_it_detaches(hub, streamer, h264, tmp_path):
    source = hub.sources["h264"]
    async with source.attach():
        await wait_until("the streamer is held", lambda: streamer.holders == 1)
        assert [task.get_name() for task in readers()] == ["media-h264"]
        assert h264.put(frame(b"idr", key=True))
        await wait_until("a heartbeat", lambda: heartbeat_bytes(tmp_path / H264) != bytes(16))
        # A second client shares the reader and the hold.
        async with source.attach():
            await asyncio.sleep(0.2)
            assert (streamer.holders, streamer.taken, len(readers())) == (1, 1, 1)
        assert (streamer.holders, len(readers())) == (1, 1)
    assert (streamer.holders, streamer.taken) == (0, 1)
    assert readers() == []
    # Attached again later: a new reader, a new hold.
    async with source.attach():
        await wait_until("the streamer is held again", lambda: streamer.holders == 1)
    assert (streamer.holders, streamer.taken, readers()) == (0, 2, [])


async def test_an_h264_client_starts_at_a_key_frame_asked_for_at_once(hub, h264):
    source = hub.sources["h264"]
    assert h264.put(frame(b"delta-before", key=False))  # the sink has a frame; nobody asked
    assert h264.wants_key() is False
    async with source.attach() as client:
        await wait_until("the reader asks for a key frame", h264.wants_key)
        assert source.frames == 1  # delta-before, read and skipped
        await publish(source, h264, frame(b"delta-1"))
        await publish(source, h264, frame(b"delta-2"))
        assert client.queue.empty()
        assert h264.wants_key() is True  # still: no key frame came
        await publish(source, h264, frame(b"idr", key=True))
        await publish(source, h264, frame(b"delta-3"))
        assert queued(client) == [b"idr", b"delta-3"]
        # The read that took the key frame still asked for one (as ustreamer's own client
        # does: the flag is written before the frame is looked at), so the server's next
        # key frame clears it; after that nobody asks any more.
        await publish(source, h264, frame(b"idr-again", key=True))
        assert h264.wants_key() is False
        await publish(source, h264, frame(b"delta-4"))
        await asyncio.sleep(0.15)
        assert h264.wants_key() is False
        assert queued(client) == [b"idr-again", b"delta-4"]
        assert (client.restarts, client.waits_for_key) == (0, False)


async def test_a_client_that_stops_reading_restarts_at_the_next_key_frame(hub, h264):
    source = hub.sources["h264"]
    async with source.attach() as slow, source.attach() as reading:
        assert h264.put(frame(b"idr-0", key=True))
        await wait_until("the first key frame", lambda: source.frames == 1)
        # The read of idr-0 asked once more (see above); idr-1 settles it.
        await publish(source, h264, frame(b"idr-1", key=True))
        assert h264.wants_key() is False
        for number in range(2, QUEUE_FRAMES):
            await publish(source, h264, frame(f"delta-{number}".encode()))
            assert queued(reading)[-1] == f"delta-{number}".encode()
        await asyncio.sleep(0.15)
        assert h264.wants_key() is False
        # Full, not over: nothing lost yet.
        assert (slow.queue.qsize(), slow.restarts) == (QUEUE_FRAMES, 0)
        # One more: the queue is stale, emptied, and the client waits for a key frame,
        # which the encoder is asked for now rather than at the next GOP.
        await publish(source, h264, frame(b"delta-over"))
        assert (slow.queue.qsize(), slow.restarts, slow.waits_for_key) == (0, 1, True)
        await wait_until("the publisher sees the key request", h264.wants_key)
        await publish(source, h264, frame(b"delta-after"))
        assert slow.queue.empty()
        await publish(source, h264, frame(b"idr-2", key=True))
        await publish(source, h264, frame(b"delta-next"))
        assert queued(slow) == [b"idr-2", b"delta-next"]
        assert (slow.restarts, slow.waits_for_key) == (1, False)
        # The client that kept up lost nothing and never restarted.
        assert queued(reading) == [b"delta-over", b"delta-after", b"idr-2", b"delta-next"]
        assert reading.restarts == 0


async def test_a_jpeg_client_gets_every_frame_without_waiting_for_a_key(hub, jpeg):
    source = hub.sources["jpeg"]
    assert source.is_diff is False
    async with source.attach() as client:
        assert client.waits_for_key is False
        for number in range(5):
            await publish(source, jpeg, frame(f"jpeg-{number}".encode(), fmt=FORMAT_JPEG))
        assert queued(client) == [f"jpeg-{number}".encode() for number in range(5)]
        assert jpeg.wants_key() is False  # JPEG never asks for a key frame
        # Behind by a whole queue: emptied, then the very next frame is taken.
        for number in range(QUEUE_FRAMES + 1):
            await publish(source, jpeg, frame(f"more-{number}".encode(), fmt=FORMAT_JPEG))
        assert (client.restarts, queued(client)) == (1, [f"more-{QUEUE_FRAMES}".encode()])
        assert jpeg.wants_key() is False


async def test_a_missing_memsink_is_said_clearly_and_frames_come_once_it_exists(
    hub, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="kvmd.media.hub")
    source = hub.sources["h264"]
    async with source.attach() as client:
        await wait_until("the error", lambda: source.error is not None)
        assert source.error == f"No memsink {H264!r} ({tmp_path / H264})"
        assert f"Media h264: No memsink {H264!r}" in caplog.text
        assert "waiting for the streamer" in caplog.text
        publisher = MemsinkPublisher(H264, shm_dir=tmp_path)
        try:
            assert publisher.put(frame(b"idr", key=True))
            await wait_until("the reader retries", lambda: source.frames == 1)
            assert source.error is None
            assert queued(client) == [b"idr"]
            assert "Media h264: frames again from kvmd::test::h264" in caplog.text
        finally:
            publisher.close(remove=True)


async def test_a_wrong_protocol_version_is_said_clearly_and_frames_come_once_fixed(
    hub, h264, tmp_path, caplog
):
    source = hub.sources["h264"]
    assert h264.put(frame(b"v8-frame", key=True))
    set_version(tmp_path / H264, 8)  # ustreamer 6.56-6.61
    async with source.attach() as client:
        await wait_until("the error", lambda: source.error is not None)
        assert source.error == (
            f"Memsink {H264!r} speaks protocol 8; kvmd reads 10 (ustreamer 6.62 or newer)"
        )
        error_lines = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert [r.getMessage() for r in error_lines] == [f"Media h264: {source.error}"]
        assert client.queue.empty()
        # A good server's next frame: the source reads it within its retry.
        assert h264.put(frame(b"v10-idr", key=True))
        await wait_until("frames again", lambda: source.frames == 1)
        assert (source.error, queued(client)) == (None, [b"v10-idr"])
        # Replaced by a new object of the right version (a restarted ustreamer).
        h264.close(remove=True)
        restarted = MemsinkPublisher(H264, shm_dir=tmp_path)
        try:
            assert restarted.put(frame(b"new-object-idr", key=True))
            await wait_until("the new object's frame", lambda: source.frames == 2)
            assert queued(client) == [b"new-object-idr"]
        finally:
            restarted.close(remove=True)
    # Once, not every retry.
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


async def test_describe_is_pikvms_media_object(tmp_path, streamer):
    def described(**sinks: str) -> object:
        return MediaHub(hub_config(**sinks), streamer, shm_dir=tmp_path).describe()

    assert described(h264=H264) == {"video": {"h264": {"profile_level_id": "42E01F"}}}
    assert described(jpeg=JPEG) == {"video": {"jpeg": {}}}
    assert described(h264=H264, jpeg=JPEG) == {
        "video": {"h264": {"profile_level_id": "42E01F"}, "jpeg": {}}
    }
    assert described() == {"video": {}}
    # A streamer without H.264 (Debian's ustreamer 4.9) offers none, sink or not.
    no_h264 = MediaHub(hub_config(h264=H264, jpeg=JPEG), HeldStreamer(h264=False), tmp_path)
    assert no_h264.describe() == {"video": {"jpeg": {}}}
    assert set(MediaHub(hub_config(h264=H264), streamer, shm_dir=tmp_path).sources) == {"h264"}


async def test_without_a_streamer_of_its_own_the_sink_is_read_all_the_same(tmp_path, h264):
    # PiKVM's kvmd-media never starts ustreamer: a sink fed by one started outside kvmd
    # is read even when kvmd's streamer is disabled (whose hold() refuses).
    hub = MediaHub(hub_config(h264=H264), DisabledStreamer(MediaConfig(), Bus()), tmp_path)
    source = hub.sources["h264"]
    async with source.attach() as client:
        assert h264.put(frame(b"idr", key=True))
        await wait_until("the frame", lambda: source.frames == 1)
        assert queued(client) == [b"idr"]
    assert readers() == []
