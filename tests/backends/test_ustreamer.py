# SPDX-License-Identifier: GPL-3.0-or-later
"""The streamer backend with Debian's real ustreamer binary (no capture device: NO SIGNAL)."""

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kvmd.bus import Bus, Topic
from kvmd.config.schema import Config
from kvmd.errors import UnavailableError, ValidatorError
from kvmd.plugins.streamer import make_streamer
from kvmd.plugins.streamer.base import (
    ClientsState,
    StreamerParams,
    StreamerQualityNotSupported,
    StreamerResolutionNotSupported,
    StreamerState,
)
from kvmd.plugins.streamer.ustreamer import Ustreamer
from tests.procs import alive, ustreamer_cmd

pytestmark = pytest.mark.timeout(60)


def streamer_config(tmp_path: Path, **options: object) -> Ustreamer:
    config = msgspec.convert(
        {
            "kvmd": {
                "streamer": {
                    "type": "ustreamer",
                    "unix": str(tmp_path / "ustreamer.sock"),
                    "cmd": ustreamer_cmd(tmp_path),
                    "shutdown_delay": 0.5,
                    "state_poll": 0.2,
                    "restart_delay_min": 0.05,
                    "restart_delay_max": 0.2,
                    "desired_fps": {"default": 30, "max": 40},
                    **options,
                }
            }
        },
        Config,
    )
    backend = make_streamer(config.kvmd.streamer, Bus())
    assert isinstance(backend, Ustreamer)
    return backend


@contextlib.asynccontextmanager
async def running(backend: Ustreamer):
    await backend.start()
    task = asyncio.get_running_loop().create_task(backend.run())
    try:
        yield backend._bus
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await backend.stop()


async def wait_for(predicate, limit=10.0):
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.05)


def ustreamer_state(backend: Ustreamer) -> dict[str, Any] | None:
    raw = backend.state().streamer
    return None if raw is None else json.loads(bytes(raw))


def current_pid(backend: Ustreamer) -> int | None:
    return backend._process.pid


async def test_runs_while_watched_and_stops_after_the_delay(tmp_path):
    backend = streamer_config(tmp_path)
    async with running(backend) as bus:
        await asyncio.sleep(0.3)
        assert current_pid(backend) is None  # nobody watches: not started
        bus.publish(Topic.CLIENTS, ClientsState(count=1))
        await wait_for(lambda: ustreamer_state(backend) is not None)
        state = ustreamer_state(backend)
        assert state is not None
        assert state["source"]["online"] is False  # no capture device here
        assert state["source"]["desired_fps"] == 30
        published = bus.state(Topic.STREAMER)
        assert isinstance(published, StreamerState)
        assert published.streamer is not None
        pid = current_pid(backend)
        assert pid is not None
        bus.publish(Topic.CLIENTS, ClientsState(count=0))
        await asyncio.sleep(0.3)
        assert alive(pid)  # still inside shutdown_delay
        await wait_for(lambda: not alive(pid), limit=0.5 + 3 + 1)
        await wait_for(lambda: ustreamer_state(backend) is None)


async def test_set_params_restarts_with_new_arguments(tmp_path):
    backend = streamer_config(tmp_path)
    async with running(backend) as bus:
        bus.publish(Topic.CLIENTS, ClientsState(count=1))
        await wait_for(lambda: ustreamer_state(backend) is not None)
        first = backend._process.pid
        await backend.set_params(StreamerParams(desired_fps=15, quality=50))
        assert backend.state().params == StreamerParams(desired_fps=15, quality=50)
        await wait_for(
            lambda: (ustreamer_state(backend) or {}).get("source", {}).get("desired_fps") == 15
        )
        assert backend._process.pid != first
        assert "--desired-fps=15" in Path(f"/proc/{backend._process.pid}/cmdline").read_text()
        # The same parameters again: nothing restarts.
        second = backend._process.pid
        await backend.set_params(StreamerParams(desired_fps=15, quality=50))
        await asyncio.sleep(0.5)
        assert backend._process.pid == second


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (StreamerParams(desired_fps=41), ValidatorError),
        (StreamerParams(desired_fps=30, resolution="800x600"), StreamerResolutionNotSupported),
    ],
)
async def test_bad_params_change_nothing(tmp_path, params, error):
    backend = streamer_config(tmp_path)
    before = backend.state()
    with pytest.raises(error):
        await backend.set_params(params)
    assert backend.state() == before


async def test_quality_feature_off(tmp_path):
    backend = streamer_config(tmp_path, quality=0)
    assert backend.state().features.quality is False
    with pytest.raises(StreamerQualityNotSupported):
        await backend.set_params(StreamerParams(desired_fps=30, quality=50))


async def test_ten_kills_are_each_recovered(tmp_path):
    backend = streamer_config(tmp_path)
    async with running(backend) as bus:
        bus.publish(Topic.CLIENTS, ClientsState(count=1))
        seen: set[int | None] = set()
        for _ in range(10):
            await wait_for(
                lambda: (
                    backend._process.pid not in (None, *seen)
                    and ustreamer_state(backend) is not None
                )
            )
            pid = backend._process.pid
            assert pid is not None
            seen.add(pid)
            os.kill(pid, signal.SIGKILL)
        await wait_for(
            lambda: (
                backend._process.pid not in (None, *seen) and ustreamer_state(backend) is not None
            )
        )
        assert backend._process.restarts == 10


async def test_snapshot_starts_the_streamer_and_respects_allow_offline(tmp_path):
    backend = streamer_config(tmp_path)
    async with running(backend):
        with pytest.raises(UnavailableError):
            await backend.snapshot(allow_offline=False, save=False, load=False)
        snapshot = await backend.snapshot(allow_offline=True, save=True, load=False)
        assert snapshot.jpeg[:2] == b"\xff\xd8"
        assert (snapshot.online, snapshot.width, snapshot.height) == (False, 640, 480)
        assert snapshot.headers["X-UStreamer-Online"] == "false"
        assert backend.state().snapshot.saved is not None
        assert (await backend.snapshot(allow_offline=False, save=False, load=True)) is snapshot
        backend.forget_snapshot()
        with pytest.raises(UnavailableError):
            await backend.snapshot(allow_offline=True, save=False, load=True)


async def test_describe_reads_version_and_features(tmp_path):
    app = await streamer_config(tmp_path).describe()
    assert app.app == "ustreamer"
    assert app.version.split(".")[0].isdigit()
    assert app.features["HAS_PDEATHSIG"] is True


async def test_forever_runs_without_watchers(tmp_path):
    backend = streamer_config(tmp_path, forever=True)
    async with running(backend):
        await wait_for(lambda: ustreamer_state(backend) is not None)
        pid = current_pid(backend)
        await asyncio.sleep(1.0)  # well past shutdown_delay
        assert current_pid(backend) == pid


async def test_a_ustreamer_without_h264_runs_without_its_sink_flags(tmp_path, caplog):
    # A Pi board's config asks for PiKVM's H.264 sink; Debian's ustreamer 4.9 has none and
    # would refuse the flags: kvmd leaves them out, says so, and reports H.264 off.
    sinks = [
        "--h264-sink=kvmd::ustreamer::h264",
        "--h264-sink-mode=0660",
        "--h264-bitrate={h264_bitrate}",
        "--h264-gop={h264_gop}",
        "--jpeg-sink=kvmd::ustreamer::jpeg",
    ]
    backend = streamer_config(tmp_path, h264_bitrate={"default": 5000}, cmd_append=sinks)
    assert backend.state().features.h264 is True  # as configured, until the start looks
    async with running(backend) as bus:
        state = backend.state()
        assert state.features.h264 is False
        assert (state.params.h264_bitrate, state.limits.h264_bitrate) == (None, None)
        assert "has no H.264 sink (direct H.264 needs ustreamer 6.62 or newer)" in caplog.text
        bus.publish(Topic.CLIENTS, ClientsState(count=1))
        await wait_for(lambda: ustreamer_state(backend) is not None)
        # ustreamer retitles itself: its whole command line is one string there.
        cmdline = Path(f"/proc/{backend._process.pid}/cmdline").read_bytes().decode()
        assert " --desired-fps=30 " in cmdline
        assert "--h264-" not in cmdline
        assert "-sink" not in cmdline


async def test_a_python_module_streamer_with_an_h264_sink_keeps_h264(tmp_path):
    # `python -m kvmd.sim.ustreamer`: its --help is asked of the module, not of python.
    cmd = [sys.executable, "-m", "kvmd.sim.ustreamer", "--unix={unix}", "--h264-sink=x::h264"]
    backend = streamer_config(tmp_path, h264_bitrate={"default": 5000}, cmd=cmd)
    async with running(backend):
        assert backend.state().features.h264 is True
        assert "--h264-sink=x::h264" in backend._argv()


@pytest.mark.parametrize(("version", "h264"), [("6.55", False), ("6.62", True), ("7.1", True)])
async def test_a_ustreamer_older_than_6_62_has_a_sink_kvmd_cant_read(
    tmp_path, caplog, version, h264
):
    # 6.10-6.61 have the H.264 sink but write memsink protocol 7 or 8.
    program = tmp_path / "ustreamer"
    program.write_text(
        "#!/bin/sh\n"
        'case "$1" in --help) echo "  --h264-sink <name>";; '
        f"--version) echo {version};; *) sleep 30;; esac\n"
    )
    program.chmod(0o755)
    backend = streamer_config(
        tmp_path,
        h264_bitrate={"default": 5000},
        cmd=[str(program), "--unix={unix}", "--h264-sink=kvmd::ustreamer::h264"],
    )
    await backend.start()
    try:
        assert backend.state().features.h264 is h264
        assert ("--h264-sink=kvmd::ustreamer::h264" in backend._argv()) is h264
        said = f"is ustreamer {version}, whose H.264 sink kvmd can't read"
        assert (said in caplog.text) is not h264
    finally:
        await backend.stop()
