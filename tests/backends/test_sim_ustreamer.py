# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated streamer behind the real backend, as `make run` uses it."""

import asyncio
import io
import json
import sys

import aiohttp
import msgspec
import pytest
from PIL import Image

from kvmd.bus import Bus, Topic
from kvmd.config.schema import Config
from kvmd.plugins.streamer import make_streamer
from kvmd.plugins.streamer.base import ClientsState
from kvmd.plugins.streamer.ustreamer import Ustreamer
from tests.backends.test_ustreamer import running, wait_for

pytestmark = pytest.mark.timeout(30)


def sim_backend(tmp_path) -> Ustreamer:
    config = msgspec.convert(
        {
            "kvmd": {
                "streamer": {
                    "type": "ustreamer",
                    "unix": str(tmp_path / "sim.sock"),
                    "cmd": [
                        sys.executable,
                        "-m",
                        "kvmd.sim.ustreamer",
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
        assert state["source"] == {
            "resolution": {"width": 320, "height": 240},
            "online": True,
            "desired_fps": 20,
            "captured_fps": 20,
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
