# SPDX-License-Identifier: GPL-3.0-or-later
"""Direct H.264 (/api/media/ws) against `make run`: real x264 frames, decoded with PyAV.

The simulated streamer encodes its picture into the memsink kvmd reads; what comes out of
the socket must decode into the 640x480 picture, show what was typed on the target, and
stay decodable for a client that stops reading for a while.
"""

import asyncio
import base64
import contextlib
import hashlib
import io
import itertools
import random
import shutil
import socket
import string
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import av
import av.logging
import pytest

from kvmd.bus import Bus
from kvmd.config.schema import OcrConfig
from kvmd.media.hub import QUEUE_FRAMES
from kvmd.ocr import Ocr
from tests.e2e.webui import Kvm, make_run, serving, wait_for
from tests.procs import pids_with

pytestmark = pytest.mark.timeout(60)

START = {"event_type": "start", "event": {"type": "video", "format": "h264"}}
SIZE = (640, 480)  # testenv's streamer resolution
BACKGROUND = (16, 16, 48)  # the simulated screen's colour (kvmd/sim/ustreamer.py)


@pytest.fixture(scope="module")
def kvm() -> Iterator[Kvm]:
    with make_run("kvmd-media-") as (kvm, _):
        wait_for("make run serves the API", lambda: serving(kvm), seconds=40)
        wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
        yield kvm


@pytest.fixture(autouse=True)
def ffmpeg_log() -> Iterator[None]:
    # PyAV keeps FFmpeg quiet by default; its warnings are decoding errors here.
    old = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    yield
    av.logging.set_level(old)


def basic(user: str) -> dict[str, str]:
    """testenv's users have their name as password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}".encode()).decode()}


def small_receive_buffer(addr_info: tuple) -> socket.socket:  # type: ignore[type-arg]
    # Set before connecting, so that the window stays small: the server feels it soon.
    (family, kind, proto, _, _) = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


@contextlib.asynccontextmanager
async def media_ws(
    kvm: Kvm, user: str = "admin", query: str = "", *, slow: bool = False
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer) if slow else None
    async with (
        aiohttp.ClientSession(headers=basic(user), connector=connector) as session,
        session.ws_connect(f"{kvm.url}/api/media/ws{query}", max_msg_size=4 << 20) as ws,
    ):
        yield ws


async def start_ui(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    media = await ws.receive_json(timeout=5)
    await ws.send_json(START)
    return media


class Decoder:
    """One client's decoder: every packet must decode, without a word from FFmpeg."""

    def __init__(self) -> None:
        self._context = av.CodecContext.create("h264", "r")
        self.pictures: list[av.VideoFrame] = []
        self.complaints: list[tuple[int, str, str]] = []

    def decode(self, data: bytes) -> list[av.VideoFrame]:
        with av.logging.Capture() as logs:
            pictures = self._context.decode(av.Packet(data))
        self.complaints += logs
        self.pictures += pictures
        return pictures


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex-B access unit (7 SPS, 8 PPS, 5 IDR, 1 non-IDR)."""
    return [part[0] & 0x1F for part in data.split(b"\x00\x00\x01")[1:] if part]


def jpeg_of(picture: av.VideoFrame) -> bytes:
    out = io.BytesIO()
    picture.to_image().save(out, format="JPEG", quality=95)
    return out.getvalue()


def kvmd_rss_kib(kvm: Kvm) -> int:
    """VmRSS of this run's kvmd (python -m kvmd … RUN/kvmd.yaml)."""
    [pid] = pids_with("-m\x00kvmd\x00", f"{kvm.run}/kvmd.yaml")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def until(what: str, check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


async def test_ui_mode_starts_at_a_key_frame_and_decodes_to_the_picture(kvm: Kvm) -> None:
    async with media_ws(kvm) as ws:
        media = await start_ui(ws)
        assert media == {
            "event_type": "media",
            "event": {"video": {"h264": {"profile_level_id": "42E01F"}, "jpeg": {}}},
        }
        decoder = Decoder()
        first = await ws.receive_bytes(timeout=10)
        assert first[:2] == b"\x01\x01"
        assert {7, 8, 5} <= set(nal_types(first[2:]))  # SPS, PPS, IDR: decodable alone
        for _ in range(30):
            message = await ws.receive_bytes(timeout=5)
            assert message[0] == 1
            assert message[1] in (0, 1)
            assert message[1] == (5 in nal_types(message[2:]))  # the key flag is the truth
            decoder.decode(message[2:])
        decoder.decode(b"")  # flush: x264 here has no delay, but be sure
    assert decoder.complaints == []
    assert len(decoder.pictures) >= 30
    assert {(p.width, p.height) for p in decoder.pictures} == {SIZE}
    corner = decoder.pictures[-1].to_image().getpixel((SIZE[0] - 5, SIZE[1] - 5))
    assert all(abs(got - want) <= 12 for (got, want) in zip(corner, BACKGROUND, strict=True))


async def test_typed_text_is_read_back_from_the_decoded_picture(kvm: Kvm) -> None:
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.fail("tesseract is missing: `make test` installs tesseract-ocr with apt-get")
    ocr = Ocr(OcrConfig(cmd=[tesseract]), Bus())
    await ocr.start()
    text = f"Direct video {random.randint(1000, 9999)}"  # noqa: S311 -- not a secret
    typed = await asyncio.to_thread(kvm.api, "POST", "/hid/print", body=text.encode())
    assert typed == {"ok": True, "result": {}}
    await until("the simulated host types it", lambda: text in kvm.screen())
    async with media_ws(kvm) as ws:
        await start_ui(ws)
        decoder = Decoder()
        read = ""
        deadline = time.monotonic() + 20
        next_look = 0.0
        while text not in " ".join(read.split()):
            assert time.monotonic() < deadline, f"OCR never read {text!r}: {read!r}"
            message = await ws.receive_bytes(timeout=5)
            pictures = decoder.decode(message[2:])
            if pictures and time.monotonic() >= next_look:
                read = await ocr.recognize(jpeg_of(pictures[-1]), ["eng"], (-1, -1, -1, -1))
                next_look = time.monotonic() + 0.5
    assert decoder.complaints == []


async def test_pure_mode_gives_raw_frames_that_decode(kvm: Kvm) -> None:
    async with media_ws(kvm, query="?video=h264") as ws:
        first = await ws.receive(timeout=10)
        assert first.type is aiohttp.WSMsgType.BINARY  # no `media` event
        assert first.data.startswith(b"\x00\x00\x00\x01")  # no header: Annex-B at once
        assert {7, 8, 5} <= set(nal_types(first.data))
        decoder = Decoder()
        decoder.decode(first.data)
        for _ in range(20):
            decoder.decode(await ws.receive_bytes(timeout=5))
    assert decoder.complaints == []
    assert len(decoder.pictures) >= 20
    assert {(p.width, p.height) for p in decoder.pictures} == {SIZE}


async def busy_screen(kvm: Kvm, stop: asyncio.Event) -> None:
    """A target whose whole screen changes every frame, as a playing video would.

    The simulated desktop is mostly still, which x264 squeezes to ~2 KB a frame: so little
    that loopback's buffers hold a minute of it. New text on every line each frame gives
    tens of KB a frame, a real desktop's rate, and back-pressure within seconds.
    """
    screen = kvm.run / "screen.txt"
    characters = string.ascii_letters + string.digits
    while not stop.is_set():
        lines = ("".join(random.choices(characters, k=36)) for _ in range(12))  # noqa: S311
        screen.write_text("\n".join(lines))
        await asyncio.sleep(0.03)


async def set_bitrate(kvm: Kvm, kbps: int) -> int:
    """Set the H.264 bitrate (the streamer restarts); returns the one before."""
    state = await asyncio.to_thread(kvm.api, "GET", "/streamer")
    old = int(state["result"]["params"]["h264_bitrate"])
    done = await asyncio.to_thread(kvm.api, "POST", f"/streamer/set_params?h264_bitrate={kbps}")
    assert done["ok"] is True, done
    return old


@pytest.mark.timeout(90)
async def test_a_slow_client_is_restarted_at_a_key_frame_and_memory_stays_flat(
    kvm: Kvm,
) -> None:
    screen = kvm.run / "screen.txt"
    kept = screen.read_text() if screen.exists() else ""
    before = kvmd_rss_kib(kvm)
    stop = asyncio.Event()
    # A client that keeps up sees every frame: the slow one's must be a run of them that
    # skips only to a key frame.
    everything: dict[bytes, int] = {}
    sizes: list[int] = []
    keys: set[int] = set()

    async def keep_up(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:  # until the test closes it
            assert message.type is aiohttp.WSMsgType.BINARY
            if message.data[1]:
                keys.add(len(everything))
            everything[hashlib.sha256(message.data).digest()] = len(everything)
            sizes.append(len(message.data))

    rss = [before]
    bitrate = await set_bitrate(kvm, 20000)  # the slider's top: the busy screen at full rate
    try:
        async with asyncio.TaskGroup() as tasks, media_ws(kvm) as fast:
            tasks.create_task(busy_screen(kvm, stop))
            await start_ui(fast)
            tasks.create_task(keep_up(fast))
            async with media_ws(kvm, slow=True) as ws:
                await start_ui(ws)
                decoder = Decoder()
                got: list[bytes] = []

                async def take(seconds: float) -> None:
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        message = await ws.receive_bytes(timeout=5)
                        got.append(message)
                        decoder.decode(message[2:])

                await take(1.5)
                for _ in range(12):  # not reading for 6 s while frames flow
                    await asyncio.sleep(0.5)
                    rss.append(kvmd_rss_kib(kvm))
                await take(4)
                rss.append(kvmd_rss_kib(kvm))
            stop.set()
            await fast.close()
    finally:
        screen.write_text(kept)
        await set_bitrate(kvm, bitrate)
    assert got[0][:2] == b"\x01\x01"
    assert decoder.complaints == []
    assert {(p.width, p.height) for p in decoder.pictures} == {SIZE}
    check_skips_end_at_key_frames(got, everything, keys, sizes)
    print(f"kvmd RSS {before} -> max {max(rss)} KiB")  # the figures, for the report (pytest -s)
    # A few MB: its queue (QUEUE_FRAMES frames) bounds it, whatever the client does; an
    # unbounded one would hold every frame it skipped (about 8 MB here).
    assert max(rss) - before < 6 * 1024


def check_skips_end_at_key_frames(
    got: list[bytes], everything: dict[bytes, int], keys: set[int], sizes: list[int]
) -> None:
    """The slow client's frames are a run of all of them that skips only to key frames."""
    # Where each frame the slow client got sits in the full sequence.
    at = [everything[hashlib.sha256(message).digest()] for message in got]
    assert at == sorted(at)
    jumps = [after for (before, after) in itertools.pairwise(at) if after > before + 1]
    assert jumps, f"the slow client lost nothing: {len(got)} frames of {len(everything)}"
    assert set(jumps) <= keys  # after each gap, a key frame: it never sees a broken picture
    seen = set(at)
    skipped = [size for (index, size) in enumerate(sizes) if index > at[0] and index not in seen]
    print(  # the figures, for the report (pytest -s)
        f"slow client: {len(got)} of {len(everything)} frames, {len(skipped)} skipped "
        f"({sum(skipped) >> 10} KiB), restarts at {jumps}; queue {QUEUE_FRAMES} frames"
    )


async def test_a_viewer_gets_frames(kvm: Kvm) -> None:
    async with media_ws(kvm, "viewer") as ws:
        await start_ui(ws)
        decoder = Decoder()
        first = await ws.receive_bytes(timeout=10)
        assert first[:2] == b"\x01\x01"
        decoder.decode(first[2:])
        for _ in range(5):
            decoder.decode((await ws.receive_bytes(timeout=5))[2:])
    assert decoder.complaints == []
    assert {(p.width, p.height) for p in decoder.pictures} == {SIZE}
