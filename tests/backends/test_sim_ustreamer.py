# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated streamer behind the real backend, as `make run` uses it."""

import asyncio
import io
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from PIL import Image

import kvmd
from kvmd.bus import Bus, Topic
from kvmd.config.schema import Config
from kvmd.plugins.streamer import make_streamer
from kvmd.plugins.streamer.base import ClientsState, StreamerApp
from kvmd.plugins.streamer.ustreamer import Ustreamer
from tests.backends.test_ustreamer import running, wait_for
from tests.conftest import REPO
from tests.e2e.test_streamer import USTREAMER_NO_CACHE

pytestmark = pytest.mark.timeout(30)

# What `make run` runs (testenv/kvmd.yaml): the simulation under a name of its own.
SIM_PROGRAM = REPO / "testenv" / "kvmd-sim-ustreamer"


def sim_backend(tmp_path, program: list[str] | None = None) -> Ustreamer:
    config = msgspec.convert(
        {
            "kvmd": {
                "streamer": {
                    "type": "ustreamer",
                    "unix": str(tmp_path / "sim.sock"),
                    "cmd": [
                        *(program or [sys.executable, "-m", "kvmd.sim.ustreamer"]),
                        "--unix={unix}",
                        "--desired-fps={desired_fps}",
                        "--quality={quality}",
                        "--resolution=320x240",
                        f"--screen={tmp_path}/screen.txt",
                    ],
                    "desired_fps": {"default": 20},
                    "shutdown_delay": 0.5,
                    "state_poll": 0.2,
                }
            }
        },
        Config,
    )
    backend = make_streamer(config.kvmd.streamer, Bus())
    assert isinstance(backend, Ustreamer)
    return backend


async def test_sim_speaks_the_ustreamer_api(tmp_path):
    (tmp_path / "screen.txt").write_text("C:\\> dir")
    backend = sim_backend(tmp_path)
    async with running(backend) as bus:
        snapshot = await backend.snapshot(allow_offline=False, save=False, load=False)
        assert snapshot.online is True
        assert (snapshot.width, snapshot.height) == (320, 240)
        assert Image.open(io.BytesIO(snapshot.jpeg)).size == (320, 240)
        bus.publish(Topic.CLIENTS, ClientsState(count=1))
        await wait_for(lambda: backend.state().streamer is not None)
        raw = backend.state().streamer
        assert raw is not None
        state = json.loads(bytes(raw))
        # Frames made in the last whole second: 20, unless this machine is very busy.
        assert 0 <= state["source"].pop("captured_fps") <= 21
        assert state["source"] == {
            "resolution": {"width": 320, "height": 240},
            "online": True,
            "desired_fps": 20,
        }
        connector = aiohttp.UnixConnector(path=str(tmp_path / "sim.sock"))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://localhost/stream") as response,
        ):
            content_type = response.headers["Content-Type"]
            assert content_type == "multipart/x-mixed-replace;boundary=boundarydonotcross"
            data = b""
            async with asyncio.timeout(5):
                while data.count(b"--boundarydonotcross") < 5:
                    data += await response.content.readany()
        frames = [part for part in data.split(b"\r\n\r\n")[1:] if part.startswith(b"\xff\xd8")]
        assert len({frame[:-40] for frame in frames}) == len(frames)  # every frame is new


# ----- /stream as ustreamer serves it: cookie, options, clients_stat

COOKIE = re.compile(r"stream_client=(?P<key>[^/;]+)/(?P<id>[0-9a-f]+); path=/; max-age=30")


@pytest.fixture
async def sim(tmp_path) -> AsyncIterator[aiohttp.ClientSession]:
    """The simulated streamer as a process on its socket, and a session to talk to it."""
    sock = tmp_path / "sim.sock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kvmd.sim.ustreamer",
        f"--unix={sock}",
        "--desired-fps=20",
        "--resolution=320x240",
    )
    try:
        await wait_for(sock.exists)
        connector = aiohttp.UnixConnector(path=str(sock))
        async with aiohttp.ClientSession(connector=connector) as session:
            yield session
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode == 0


async def stream_stat(session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get("http://localhost/state") as response:
        return (await response.json())["result"]["stream"]


async def read_until(response: aiohttp.ClientResponse, data: bytes, marker: bytes, count: int):
    async with asyncio.timeout(5):
        while data.count(marker) < count:
            data += await response.content.readany()
    return data


def cookie_of(response: aiohttp.ClientResponse) -> re.Match[str]:
    [cookie] = response.headers.getall("Set-Cookie")
    match = COOKIE.fullmatch(cookie)
    assert match is not None, cookie
    return match


async def test_a_viewer_gets_the_cookie_and_is_listed_with_its_fps_until_it_leaves(sim):
    async with sim.get("http://localhost/stream?key=abc&extra_headers=1") as response:
        assert {name: response.headers[name] for name in USTREAMER_NO_CACHE} == USTREAMER_NO_CACHE
        assert response.headers["Content-Type"] == (
            "multipart/x-mixed-replace;boundary=boundarydonotcross"
        )
        client = cookie_of(response)
        assert client["key"] == "abc"
        stat = await stream_stat(sim)
        assert stat["clients"] == 1
        assert stat["clients_stat"] == {
            client["id"]: {
                "fps": stat["clients_stat"][client["id"]]["fps"],
                "extra_headers": True,
                "advance_headers": False,
                "dual_final_frames": False,
                "zero_data": False,
                "key": "abc",
            }
        }
        # A viewer that keeps reading gets frames (20 a second from this source, fewer on a
        # busy machine), and /state counts them: its fps, and the frames queued for anyone.
        data = b""
        async with asyncio.timeout(5):
            while (await stream_stat(sim))["clients_stat"][client["id"]]["fps"] < 5:
                data = await read_until(response, data, b"--boundarydonotcross", 10)
                data = data[-100:]
        assert (await stream_stat(sim))["queued_fps"] > 0
    # Gone with its connection; with nobody watching, nothing is queued either.
    gone = {"queued_fps": 0, "clients": 0, "clients_stat": {}}
    async with asyncio.timeout(5):
        while await stream_stat(sim) != gone:
            await asyncio.sleep(0.05)


async def test_each_viewer_has_its_own_id_and_the_key_0_without_a_key(sim):
    async with sim.get("http://localhost/stream") as first:
        async with sim.get("http://localhost/stream?key=a%20b;c") as second:
            (one, two) = (cookie_of(first), cookie_of(second))
            assert one["key"] == "0"
            # Encoded again, as ustreamer does: nothing in a key can end the cookie value.
            assert two["key"] == "a%20b%3Bc"
            assert one["id"] != two["id"]
            stat = await stream_stat(sim)
            assert stat["clients"] == 2
            assert {id: client["key"] for id, client in stat["clients_stat"].items()} == {
                one["id"]: "0",
                two["id"]: "a%20b%3Bc",
            }
        async with asyncio.timeout(5):
            while (stat := await stream_stat(sim))["clients"] != 1:
                await asyncio.sleep(0.05)
        assert list(stat["clients_stat"]) == [one["id"]]


async def first_parts(session: aiohttp.ClientSession, query: str) -> bytes:
    async with session.get(f"http://localhost/stream?{query}") as response:
        return await read_until(response, b"", b"--boundarydonotcross", 3)


def part_headers(head: bytes) -> dict[str, str]:
    lines = head.decode().split("\r\n")
    return dict(line.split(": ", 1) for line in lines if line)


async def test_parts_with_ustreamers_headers(sim):
    data = await first_parts(sim, "")
    assert data.startswith(b"--boundarydonotcross\r\n")
    (head, rest) = data.removeprefix(b"--boundarydonotcross\r\n").split(b"\r\n\r\n", 1)
    headers = part_headers(head)
    assert list(headers) == ["Content-Type", "Content-Length", "X-Timestamp"]
    assert headers["Content-Type"] == "image/jpeg"
    jpeg = rest[: int(headers["Content-Length"])]
    assert Image.open(io.BytesIO(jpeg)).size == (320, 240)
    assert rest[len(jpeg) :].startswith(b"\r\n--boundarydonotcross\r\nContent-Type: image/jpeg")


async def test_extra_headers_describe_each_frame(sim):
    data = await first_parts(sim, "extra_headers=1")
    head = data.removeprefix(b"--boundarydonotcross\r\n").split(b"\r\n\r\n", 1)[0]
    headers = part_headers(head)
    assert {name: headers[name] for name in ("X-UStreamer-Online", "X-UStreamer-Dropped")} == {
        "X-UStreamer-Online": "true",
        "X-UStreamer-Dropped": "0",
    }
    assert (headers["X-UStreamer-Width"], headers["X-UStreamer-Height"]) == ("320", "240")
    assert int(headers["X-UStreamer-Client-FPS"]) >= 0
    assert float(headers["X-UStreamer-Latency"]) >= 0
    assert float(headers["X-UStreamer-Send-Time"]) >= float(headers["X-UStreamer-Grab-Time"])


async def test_advance_headers_come_before_each_frame_without_a_length(sim):
    data = await first_parts(sim, "advance_headers=1")
    parts = data.split(b"--boundarydonotcross\r\n")
    assert parts[0] == b""
    for part in parts[1:-1]:
        (head, jpeg) = part.split(b"\r\n\r\n", 1)
        assert list(part_headers(head)) == ["Content-Type", "X-Timestamp"]
        assert jpeg.startswith(b"\xff\xd8")
        assert jpeg.endswith(b"\xff\xd9\r\n")


async def test_zero_data_sends_headers_only(sim):
    data = await first_parts(sim, "zero_data=yes")
    assert b"\xff\xd8" not in data
    parts = data.split(b"--boundarydonotcross\r\n")[1:-1]
    assert [part_headers(part.split(b"\r\n\r\n")[0])["Content-Length"] for part in parts] == [
        "0",
        "0",
    ]


async def test_snapshot_has_ustreamers_headers(sim):
    async with sim.get("http://localhost/snapshot") as response:
        jpeg = await response.read()
        headers = response.headers
    assert Image.open(io.BytesIO(jpeg)).size == (320, 240)
    assert {name: headers[name] for name in USTREAMER_NO_CACHE} == USTREAMER_NO_CACHE
    assert headers["X-UStreamer-Online"] == "true"
    assert (headers["X-UStreamer-Width"], headers["X-UStreamer-Height"]) == ("320", "240")
    assert float(headers["X-UStreamer-Send-Timestamp"]) > 0


# ----- what the program says of itself


def test_version_and_features_answer_as_ustreamers():
    def run(option: str) -> str:
        return subprocess.run(
            [str(SIM_PROGRAM), option], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    assert run("--version") == f"{kvmd.__version__}\n"
    assert run("--features") == (
        "- WITH_GPIO\n- WITH_SYSTEMD\n- WITH_PTHREAD_NP\n- WITH_SETPROCTITLE\n+ HAS_PDEATHSIG\n"
    )


async def test_kvmd_names_the_simulated_streamer_after_its_program(tmp_path):
    backend = sim_backend(tmp_path, program=[str(SIM_PROGRAM)])
    assert await backend.describe() == StreamerApp(
        app="kvmd-sim-ustreamer",
        version=kvmd.__version__,
        features={
            "WITH_GPIO": False,
            "WITH_SYSTEMD": False,
            "WITH_PTHREAD_NP": False,
            "WITH_SETPROCTITLE": False,
            "HAS_PDEATHSIG": True,
        },
    )
