# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/streamer and /streamer/stream with the real ustreamer binary behind them."""

import asyncio
import contextlib
import io
import json

import pytest
from PIL import Image

from kvmd.plugins.streamer.ustreamer import Ustreamer
from tests.authenv import write_users, xhdr
from tests.conftest import ADMIN
from tests.procs import ustreamer_cmd

pytestmark = pytest.mark.timeout(30)


def streamer_config(tmp_path, **more):
    return {
        "type": "ustreamer",
        "unix": str(tmp_path / "us.sock"),
        "cmd": ustreamer_cmd(tmp_path),
        "shutdown_delay": 0.5,
        "state_poll": 0.2,
        **more,
    }


@pytest.fixture
async def streamer_client(make_client, make_config, tmp_path):
    (client, deps) = await make_client(make_config(kvmd={"streamer": streamer_config(tmp_path)}))
    assert isinstance(deps.streamer, Ustreamer)
    task = asyncio.get_running_loop().create_task(deps.streamer.run())
    yield (client, deps.streamer)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_state_shape(streamer_client):
    (client, _) = streamer_client
    result = (await (await client.get("/api/streamer", headers=ADMIN)).json())["result"]
    assert result == {
        "features": {"h264": False, "quality": True, "resolution": False},
        "limits": {"desired_fps": {"max": 90, "min": 0}},
        "params": {"desired_fps": 30, "quality": 80},
        "applied": {"desired_fps": 30, "quality": 80},
        "snapshot": {"saved": None},
        "streamer": None,
    }


async def test_an_owners_pikvm_command_edits_load_and_apply(make_client, make_config, tmp_path):
    # A PiKVM override.yaml edits the command instead of repeating it, and may run commands
    # around the streamer (to switch a capture board, say).
    hooks = tmp_path / "hooks"
    config = streamer_config(
        tmp_path,
        cmd_remove=["--exit-on-parent-death"],
        cmd_append=["--drop-same-frames={desired_fps}"],
        slowdown=True,
        pre_start_cmd=["/bin/sh", "-c", f"echo start {{quality}} >> {hooks}", "unwanted"],
        pre_start_cmd_remove=["unwanted"],
        post_stop_cmd=["/bin/sh", "-c"],
        post_stop_cmd_append=[f"echo stop >> {hooks}"],
        reset_delay=0.3,
    )
    (_, deps) = await make_client(make_config(kvmd={"streamer": config}))
    streamer = deps.streamer
    assert isinstance(streamer, Ustreamer)
    argv = streamer._argv()
    assert "--exit-on-parent-death" not in argv
    assert argv[-2:] == ["--drop-same-frames=30", "--slowdown"]
    task = asyncio.get_running_loop().create_task(streamer.run())
    try:
        async with streamer.hold():
            async with asyncio.timeout(10):
                while streamer.state().streamer is None:  # the real ustreamer took them
                    await asyncio.sleep(0.05)
        async with asyncio.timeout(10):
            while not hooks.exists() or "stop" not in hooks.read_text():
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert hooks.read_text() == "start 80\nstop\n"


async def test_applied_is_what_the_running_streamer_reports(streamer_client):
    # The web UI's quality and FPS sliders show `applied`; with ustreamer running it comes
    # from ustreamer's own /state, not from what was asked.
    (client, streamer) = streamer_client

    async def state():
        return (await (await client.get("/api/streamer", headers=ADMIN)).json())["result"]

    response = await client.post(
        "/api/streamer/set_params?quality=55&desired_fps=12", headers=ADMIN
    )
    assert response.status == 200
    assert (await state())["applied"] == {"desired_fps": 12, "quality": 55}  # not running yet
    async with streamer.hold():
        async with asyncio.timeout(10):
            while (current := await state())["streamer"] is None:
                await asyncio.sleep(0.05)
    running = current["streamer"]
    # Without a capture device ustreamer never prepares its encoder, so it reports its
    # built-in quality (80) whatever it was asked: `applied` says so, as PiKVM's does.
    assert (running["encoder"]["quality"], running["source"]["desired_fps"]) == (80, 12)
    assert current["params"] == {"desired_fps": 12, "quality": 55}
    assert current["applied"] == {"desired_fps": 12, "quality": 80}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("quality=500", "ValidatorError"),
        ("desired_fps=-1", "ValidatorError"),
        ("desired_fps=100", "ValidatorError"),
        ("resolution=abc", "ValidatorError"),
        ("resolution=800x600", "StreamerResolutionNotSupported"),
        ("h264_bitrate=100", "StreamerH264NotSupported"),
    ],
)
async def test_bad_params_are_400_and_restart_nothing(streamer_client, query, error):
    (client, streamer) = streamer_client
    before = streamer.state()
    response = await client.post(f"/api/streamer/set_params?{query}", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["result"]["error"] == error
    assert streamer.state() == before
    assert streamer._process.restarts == 0


async def test_set_params(streamer_client):
    (client, streamer) = streamer_client
    response = await client.post("/api/streamer/set_params?quality=55", headers=ADMIN)
    assert response.status == 200
    params = (await (await client.get("/api/streamer", headers=ADMIN)).json())["result"]["params"]
    assert params == {"desired_fps": 30, "quality": 55}
    assert "--quality=55" in streamer._argv()
    assert (await client.post("/api/streamer/reset", headers=ADMIN)).status == 200


async def test_snapshot_and_preview(streamer_client):
    (client, _) = streamer_client
    offline = await client.get("/api/streamer/snapshot", headers=ADMIN)
    assert offline.status == 503
    assert (await offline.json())["result"]["error"] == "UnavailableError"
    full = await client.get("/api/streamer/snapshot?allow_offline=1&save=1", headers=ADMIN)
    assert full.status == 200
    assert full.headers["Content-Type"] == "image/jpeg"
    assert full.headers["X-UStreamer-Online"] == "false"
    assert Image.open(io.BytesIO(await full.read())).size == (640, 480)
    preview = await client.get(
        "/api/streamer/snapshot?allow_offline=1&preview=1&preview_max_width=320", headers=ADMIN
    )
    assert Image.open(io.BytesIO(await preview.read())).size == (320, 240)
    fifth = await client.get("/api/streamer/snapshot?allow_offline=1&preview=1", headers=ADMIN)
    assert Image.open(io.BytesIO(await fifth.read())).size == (128, 96)
    saved = (await (await client.get("/api/streamer", headers=ADMIN)).json())["result"]["snapshot"]
    assert saved == {"saved": {"height": 480, "online": False, "width": 640}}
    loaded = await client.get("/api/streamer/snapshot?load=1", headers=ADMIN)
    assert loaded.status == 200
    assert (await client.delete("/api/streamer/snapshot", headers=ADMIN)).status == 200
    assert (await client.get("/api/streamer/snapshot?load=1", headers=ADMIN)).status == 503


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("preview=1&preview_max_width=0", "ValidatorError"),
        ("preview_quality=0", "ValidatorError"),
        ("allow_offline=maybe", "ValidatorError"),
        ("ocr=1", "OcrError"),
    ],
)
async def test_bad_snapshot_queries(streamer_client, query, error):
    (client, _) = streamer_client
    response = await client.get(f"/api/streamer/snapshot?{query}", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["result"]["error"] == error


async def test_video_needs_credentials(streamer_client):
    (client, _) = streamer_client
    assert (await client.get("/api/streamer/snapshot?allow_offline=1")).status == 401
    assert (await client.get("/streamer/stream")).status == 401


async def test_stream_relays_mjpeg(streamer_client):
    (client, streamer) = streamer_client
    response = await client.get("/streamer/stream", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
    data = b""
    async with asyncio.timeout(10):
        while data.count(b"Content-Type: image/jpeg") < 2:
            data += await response.content.readany()
    assert b"\xff\xd8" in data
    assert streamer._process.pid is not None
    response.close()


async def test_saving_a_snapshot_needs_what_deleting_it_needs(streamer_client, tmp_path):
    (client, _) = streamer_client
    write_users(tmp_path)
    created = await client.post(
        "/api/auth/keys/create",
        json={"permissions": ["video", "streamer"], "read_only": True},
        headers=ADMIN,
    )
    key = (await created.json())["result"]
    read_only = xhdr(key["key"]["id"], key["secret"])
    for headers, error in ((xhdr("viewer"), "PermissionDeniedError"), (read_only, "ReadOnlyError")):
        # Both may look: the snapshot itself is theirs to see.
        plain = await client.get("/api/streamer/snapshot?allow_offline=1", headers=headers)
        assert plain.status == 200
        saving = await client.get("/api/streamer/snapshot?allow_offline=1&save=1", headers=headers)
        assert saving.status == 403
        assert (await saving.json())["result"]["error"] == error
        state = await (await client.get("/api/streamer", headers=ADMIN)).json()
        assert state["result"]["snapshot"] == {"saved": None}
    operator = await client.get(
        "/api/streamer/snapshot?allow_offline=1&save=1", headers=xhdr("operator")
    )
    assert operator.status == 200
    state = await (await client.get("/api/streamer", headers=ADMIN)).json()
    assert state["result"]["snapshot"]["saved"]["width"] == 640
    trail = await (await client.get("/api/audit", headers=ADMIN)).text()
    saves = [r for r in map(json.loads, trail.splitlines()) if r["action"].endswith("snapshot")]
    assert [(r["action"], r["principal"], r["result"]) for r in saves] == [
        ("streamer.save_snapshot", "operator", "ok")
    ]
