# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/media and /api/media/ws on the in-process app, fed through a real memsink.

The test is the streamer: it publishes into a uniquely named sink in /dev/shm with the
same publisher the simulated streamer uses, and sees the exact bytes come out.
"""

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from kvmd.media.hub import MediaSource
from kvmd.media.memsink import Header
from kvmd.media.publisher import MemsinkPublisher
from tests.api.test_apikeys import create
from tests.api.test_sessions import login
from tests.authenv import basic, write_users, xhdr
from tests.conftest import ADMIN, REPO
from tests.sinkframes import sink_frame

pytestmark = pytest.mark.timeout(30)

PIKVM_MEDIA = {"video": {"h264": {"profile_level_id": "42E01F"}}}
PING = bytes([0x00])
PONG = bytes([0xFF])
START = {"event_type": "start", "event": {"type": "video", "format": "h264"}}
IDR = b"\x00\x00\x00\x01\x67\x42\xe0\x1f" + b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 8
DELTA = b"\x00\x00\x00\x01\x41" + b"\x9a" * 300


@pytest.fixture
def sink() -> Iterator[MemsinkPublisher]:
    """A sink of its own in /dev/shm, removed at the end whatever happens."""
    publisher = MemsinkPublisher(f"kvmd::test-{uuid.uuid4().hex}::h264")
    yield publisher
    publisher.close(remove=True)
    assert not publisher.path.exists()


def media_section(sink: MemsinkPublisher, **more: object) -> dict[str, object]:
    return {"memsink": {"h264": {"sink": sink.name, **more}}}


@pytest.fixture
async def env(make_client, make_config, tmp_path, sink):
    """The app with a ustreamer backend that has H.264 (the simulated streamer's program).

    Its loops don't run, so no streamer process starts: the test publishes the frames.
    """
    write_users(tmp_path)
    streamer = {
        "type": "ustreamer",
        "unix": str(tmp_path / "sim.sock"),
        # Its own program name, as `make run` has it: kvmd looks for `--h264-sink` in its
        # --help (streamer_section's cmd[0] is python, whose --help has none).
        "cmd": [str(REPO / "testenv" / "kvmd-sim-ustreamer"), "--unix={unix}"],
        "h264_bitrate": {"default": 5000},
        "h264_gop": {"default": 30},
    }
    # A short wait per read: a reader that is let go finishes its read first.
    config = make_config(kvmd={"streamer": streamer}, media=media_section(sink, wait_timeout=0.2))
    (client, deps) = await make_client(config)
    return (client, deps.media.sources["h264"])


async def wait_until(what: str, check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.005)


async def publish(source: MediaSource, sink: MemsinkPublisher, data: bytes, key=False) -> None:
    """One frame, read by the source before the next (a reader sees only the newest)."""
    before = source.frames
    assert sink.put(sink_frame(data, key=key))
    await wait_until("the source reads the frame", lambda: source.frames > before)


async def started(ws, sink: MemsinkPublisher) -> None:
    """Once the client is attached: its source then asks the encoder for a key frame."""
    await wait_until("a key request from the new client", sink.wants_key)


def readers() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("media-")]


def no_errors(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == []
    assert "Traceback" not in caplog.text
    assert "=> 500" not in caplog.text


async def test_get_media_is_pikvms_json(env):
    (client, _) = env
    for path in ("/api/media", "/media"):  # behind PiKVM's nginx the daemon sees /media
        response = await client.get(path, headers=ADMIN)
        assert response.status == 200
        assert await response.json() == {"ok": True, "result": {"media": PIKVM_MEDIA}}
    viewer = await client.get("/api/media", headers=xhdr("viewer"))
    assert (await viewer.json())["result"] == {"media": PIKVM_MEDIA}


async def test_no_credentials_is_401(env):
    (client, _) = env
    for path in ("/api/media", "/api/media/ws", "/api/media/ws?video=h264"):
        response = await client.get(path)
        assert response.status == 401, path
        assert (await response.json())["result"]["error"] == "UnauthorizedError"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/media/ws")
    assert refused.value.status == 401


async def test_without_video_is_403_on_both(env):
    (client, _) = env
    (key, secret) = await create(client, name="state-only", permissions=["state"])
    for headers in (xhdr("monitor"), xhdr("power"), basic(key["id"], secret)):
        response = await client.get("/api/media", headers=headers)
        assert response.status == 403
        assert await response.json() == {
            "ok": False,
            "result": {
                "error": "PermissionDeniedError",
                "error_msg": "Permission 'video' required",
            },
        }
        for query in ("", "?video=h264"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect("/api/media/ws" + query, headers=headers)
            assert refused.value.status == 403


async def test_ui_mode_media_event_then_a_key_frame_first_with_exact_bytes(env, sink, caplog):
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))  # the sink has had frames before anyone came
    async with client.ws_connect("/api/media/ws", headers=ADMIN) as ws:
        assert await ws.receive_json(timeout=3) == {"event_type": "media", "event": PIKVM_MEDIA}
        await ws.send_bytes(PING)
        assert await ws.receive_bytes(timeout=3) == PONG
        await ws.send_json(START)
        await started(ws, sink)
        await publish(source, sink, DELTA)  # skipped: the client starts at a key frame
        big = IDR + os.urandom(1 << 20)  # a 1 MiB key frame comes through whole
        await publish(source, sink, big, key=True)
        assert await ws.receive_bytes(timeout=3) == b"\x01\x01" + big
        await publish(source, sink, DELTA + b"1")
        assert await ws.receive_bytes(timeout=3) == b"\x01\x00" + DELTA + b"1"
        # Ping between frames: answered in order.
        await ws.send_bytes(PING)
        assert await ws.receive_bytes(timeout=3) == PONG
        # [1] asks for a key frame on behalf of the client.
        await publish(source, sink, IDR + b"2", key=True)  # settles the first request
        assert await ws.receive_bytes(timeout=3) == b"\x01\x01" + IDR + b"2"
        await publish(source, sink, IDR + b"3", key=True)
        assert await ws.receive_bytes(timeout=3) == b"\x01\x01" + IDR + b"3"
        assert sink.wants_key() is False
        await ws.send_bytes(b"\x01")
        await wait_until("the key request reaches the sink", sink.wants_key)
    no_errors(caplog)


async def test_a_second_start_does_not_duplicate_frames(env, sink):
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))
    async with client.ws_connect("/api/media/ws", headers=ADMIN) as ws:
        await ws.receive_json(timeout=3)
        await ws.send_json(START)
        await ws.send_json(START)
        await started(ws, sink)
        await ws.send_json(START)
        await publish(source, sink, IDR, key=True)
        await publish(source, sink, DELTA)
        await ws.send_bytes(PING)
        got = [await ws.receive_bytes(timeout=3) for _ in range(3)]
        assert got == [b"\x01\x01" + IDR, b"\x01\x00" + DELTA, PONG]


JUNK_TEXT = (
    "hello",
    "{",
    "[]",
    "null",
    '"start"',
    '{"event_type": "start"}',
    '{"event_type": "start", "event": "video"}',
    '{"event_type": "start", "event": ["video"]}',
    '{"event_type": "start", "event": {"type": "audio", "format": "h264"}}',
    '{"event_type": "start", "event": {"type": "video", "format": "nope"}}',
    '{"event_type": "start", "event": {"type": "video", "format": ["h264"]}}',
    '{"event_type": "start", "event": {"type": "video", "format": "jpeg"}}',  # not configured
    '{"event_type": "stop", "event": {}}',
    "\u00ff\ufffd\U0001f600",
)
JUNK_BINARY = (b"", b"\x02", b"\x7f\x00\x01", b"\xfe", b"\xff", b"\x01")  # [1] with no source


async def test_junk_is_ignored_and_the_socket_keeps_working(env, sink, caplog):
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))
    async with client.ws_connect("/api/media/ws", headers=ADMIN) as ws:
        await ws.receive_json(timeout=3)
        for text in JUNK_TEXT:
            await ws.send_str(text)
        for data in JUNK_BINARY:
            await ws.send_bytes(data)
        await ws.send_bytes(PING)
        assert await ws.receive_bytes(timeout=3) == PONG  # nothing else came before it
        assert source.frames == 0  # no junk started a stream
        await ws.send_json(START)
        await started(ws, sink)
        for text in JUNK_TEXT:
            await ws.send_str(text)
        await ws.send_bytes(b"\x7f")
        await publish(source, sink, IDR, key=True)
        assert await ws.receive_bytes(timeout=3) == b"\x01\x01" + IDR
    no_errors(caplog)


@pytest.mark.parametrize("binary", [False, True])
async def test_a_100_kib_message_closes_the_socket_with_1009(env, sink, caplog, binary):
    (client, _) = env
    assert sink.put(sink_frame(b"old-delta"))
    async with client.ws_connect("/api/media/ws", headers=ADMIN) as ws:
        await ws.receive_json(timeout=3)
        await ws.send_json(START)
        await started(ws, sink)
        big = 100 * 1024
        await (ws.send_bytes(PING * big) if binary else ws.send_str("x" * big))
        message = await ws.receive(timeout=3)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1009)
        assert ws.close_code == 1009
    # The client is gone from the source: its reader stops, nothing is left running.
    await wait_until("the reader stops", lambda: not readers())
    no_errors(caplog)


async def test_pure_mode_gives_raw_frames_only(env, sink, caplog):
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))
    async with client.ws_connect("/api/media/ws?video=h264", headers=ADMIN) as ws:
        await started(ws, sink)
        await ws.send_bytes(PING)  # accepted, never answered
        await ws.send_str("hello")  # text is not read in pure mode
        await publish(source, sink, DELTA)
        await publish(source, sink, IDR, key=True)
        await publish(source, sink, DELTA + b"1")
        assert await ws.receive_bytes(timeout=3) == IDR  # no media event, no header
        assert await ws.receive_bytes(timeout=3) == DELTA + b"1"
        await ws.send_bytes(PING)
        await publish(source, sink, DELTA + b"2")
        assert await ws.receive_bytes(timeout=3) == DELTA + b"2"
    no_errors(caplog)


async def test_an_unsupported_video_type_is_400(env):
    (client, _) = env
    for query in ("nope", "jpeg", "", "H264x"):  # jpeg: no JPEG sink is configured
        response = await client.get(f"/api/media/ws?video={query}", headers=ADMIN)
        assert response.status == 400, query
        assert await response.json() == {
            "ok": False,
            "result": {"error": "ValidatorError", "error_msg": "Unsupported video type"},
        }


async def test_logging_out_closes_an_open_media_socket(env, sink):
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))
    (browser, _) = await login(client, "viewer")
    try:
        async with browser.ws_connect("/api/media/ws") as ws:
            await ws.receive_json(timeout=3)
            await ws.send_json(START)
            await started(ws, sink)
            await publish(source, sink, IDR, key=True)
            assert await ws.receive_bytes(timeout=3) == b"\x01\x01" + IDR
            assert (await browser.post("/api/auth/logout")).status == 200
            began = time.monotonic()
            message = await ws.receive(timeout=3)
            took = time.monotonic() - began
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert (message.data, message.extra) == (4401, "Permission 'video' revoked")
            assert took < 2.0
    finally:
        await browser.close()
    await wait_until("the reader stops", lambda: not readers())


def set_version(sink: MemsinkPublisher, version: int) -> None:
    fd = os.open(sink.path, os.O_RDWR)
    try:
        os.pwrite(fd, version.to_bytes(4, "little"), Header.version.offset)
    finally:
        os.close(fd)


async def test_a_wrong_version_sink_is_logged_and_the_client_waits_for_a_good_one(
    env, sink, caplog
):
    caplog.set_level(logging.INFO, logger="kvmd.media.hub")
    (client, source) = env
    assert sink.put(sink_frame(b"v8", key=True))
    set_version(sink, 8)  # ustreamer 6.56-6.61
    async with client.ws_connect("/api/media/ws", headers=ADMIN) as ws:
        await ws.receive_json(timeout=3)
        await ws.send_json(START)
        await wait_until("the error", lambda: source.error is not None)
        want = (
            f"Media h264: Memsink {sink.name!r} speaks protocol 8; kvmd reads 10 "
            "(ustreamer 6.62 or newer)"
        )
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [(r.getMessage(), r.exc_info) for r in errors] == [(want, None)]
        await asyncio.sleep(1.5)  # retries: the socket stays, the log does not repeat
        await ws.send_bytes(PING)
        assert await ws.receive_bytes(timeout=3) == PONG
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
        # A good server's next frame (it writes its version with every frame).
        assert sink.put(sink_frame(IDR, key=True))
        assert await ws.receive_bytes(timeout=5) == b"\x01\x01" + IDR
        assert source.error is None
        assert "Media h264: frames again from" in caplog.text
    assert "Traceback" not in caplog.text


async def test_with_kvmds_streamer_disabled_an_outside_sink_is_still_read(
    make_client, make_config, sink, caplog
):
    # The conftest's streamer is disabled (its hold() refuses): H.264 is not offered to the
    # UI, but a script asking for it reads the sink a streamer outside kvmd feeds.
    (client, deps) = await make_client(make_config(media=media_section(sink)))
    source = deps.media.sources["h264"]
    media = await (await client.get("/api/media", headers=ADMIN)).json()
    assert media["result"] == {"media": {"video": {}}}
    assert sink.put(sink_frame(b"old-delta"))
    async with client.ws_connect("/api/media/ws?video=h264", headers=ADMIN) as ws:
        await started(ws, sink)
        await publish(source, sink, IDR, key=True)
        assert await ws.receive_bytes(timeout=3) == IDR
    await wait_until("the reader stops", lambda: not readers())
    no_errors(caplog)


async def test_clients_that_leave_mid_answer_leave_no_error(env, sink, caplog):
    # Twenty clients at once ask for a stream and a pong, and go without waiting for either.
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))  # the streamer's first frame: the sink is live

    async def hit_and_run() -> None:
        ws = await client.ws_connect("/api/media/ws", headers=ADMIN)
        await ws.send_json(START)
        await ws.send_bytes(PING)
        await ws.close()

    async with asyncio.timeout(10):
        await asyncio.gather(*(hit_and_run() for _ in range(20)))
        await wait_until("every reader let go", lambda: not readers())
    # The daemon still serves the next client.
    async with client.ws_connect("/api/media/ws?video=h264", headers=ADMIN) as ws:
        await started(ws, sink)
        await publish(source, sink, IDR, key=True)
        assert await ws.receive_bytes(timeout=3) == IDR
    no_errors(caplog)


async def test_junk_from_many_clients_at_once_is_ignored(env, sink, caplog):
    (client, source) = env
    assert sink.put(sink_frame(b"old-delta"))

    async def junk() -> bytes:
        async with client.ws_connect("/api/media/ws", headers=ADMIN) as ws:
            await ws.receive_json(timeout=3)
            for text in JUNK_TEXT:
                await ws.send_str(text)
            for data in JUNK_BINARY:
                await ws.send_bytes(data)
            await ws.send_bytes(PING)
            return await ws.receive_bytes(timeout=5)

    async with asyncio.timeout(10):
        assert await asyncio.gather(*(junk() for _ in range(10))) == [PONG] * 10
    assert source.frames == 0  # no junk started a stream
    no_errors(caplog)
