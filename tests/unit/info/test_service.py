# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

import kvmd
from kvmd.bus import Bus, Subscription, Topic
from kvmd.config.schema import InfoConfig, InfoFanConfig, InfoHwConfig
from kvmd.info.collect import read_uptime
from kvmd.info.service import InfoService
from kvmd.info.state import InfoState, Platform, StreamerVersion, legacy_hw
from kvmd.plugins.streamer.base import StreamerApp
from kvmd.plugins.streamer.config import DisabledStreamerConfig
from kvmd.plugins.streamer.disabled import DisabledStreamer
from tests.conftest import REPO, SAMPLES, sample_hw

TESTENV = REPO / "testenv"
FEATURES = {"HAS_PDEATHSIG": True, "WITH_GPIO": False}


class FakeStreamer(DisabledStreamer):
    async def describe(self) -> StreamerApp:
        return StreamerApp(app="ustreamer", version="6.11", features=FEATURES)


def write(path: Path, text: str, *, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def board(tmp_path: Path) -> InfoConfig:
    """A fake board under tmp_path/root, and the config that points at it."""
    root = tmp_path / "root"
    write(root / "proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.5\0")
    write(root / "proc/device-tree/serial-number", "10000000abcdef01\0")
    write(root / "sys/class/thermal/thermal_zone0/temp", "41000\n")
    write(root / "proc/uptime", "61.5 100.0\n")
    vcgencmd = write(tmp_path / "vcgencmd", "#!/bin/sh\necho throttled=0x0\n", mode=0o755)
    return InfoConfig(
        meta=str(write(tmp_path / "meta.yaml", "server: {host: '@auto'}\nkvm: {}\n")),
        extras=str(tmp_path / "extras"),
        hw=InfoHwConfig(
            platform=str(write(tmp_path / "platform", "PIKVM_MODEL=v4plus\n")),
            vcgencmd_cmd=[str(vcgencmd)],
            state_poll=0.1,
        ),
    )


def make_service(config: InfoConfig, sysroot: Path, bus: Bus) -> InfoService:
    streamer = FakeStreamer(DisabledStreamerConfig(), bus)
    return InfoService(config, sysroot=sysroot, auth_enabled=False, streamer=streamer, bus=bus)


@contextlib.asynccontextmanager
async def running(service: InfoService) -> AsyncIterator[None]:
    task = asyncio.create_task(service.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()  # run() only ever ends by cancellation


async def next_info(sub: Subscription) -> InfoState:
    async with asyncio.timeout(5):
        batch = await sub.get_batch()
    ((topic, state),) = batch
    assert topic is Topic.INFO
    assert isinstance(state, InfoState)
    return state


async def test_start_publishes_every_category(board: InfoConfig, tmp_path: Path) -> None:
    bus = Bus()
    service = make_service(board, tmp_path / "root", bus)
    async with bus.subscribe() as sub:
        await service.start()
        state = await next_info(sub)
    assert state is service.state()
    assert bus.state(Topic.INFO) is state
    assert state.auth.enabled is False
    assert state.extras == {}
    assert msgspec.to_builtins(state.fan) == {"monitored": False, "state": None}
    assert state.meta == {"server": {"host": socket.gethostname()}, "kvm": {}}
    assert state.node.host == socket.gethostname()
    assert state.system.kvmd.version == kvmd.__version__
    assert state.system.streamer == StreamerVersion(
        app="ustreamer", version="6.11", features=FEATURES
    )
    assert state.system.platform == Platform(
        base="Raspberry Pi 4 Model B Rev 1.5", serial="10000000ABCDEF01", model="v4plus"
    )
    assert state.health.temp.cpu == 41.0
    assert state.health.throttling is not None
    assert state.health.throttling.raw_flags == 0


async def test_state_needs_start(board: InfoConfig, tmp_path: Path) -> None:
    service = make_service(board, tmp_path / "root", Bus())
    with pytest.raises(RuntimeError, match="start"):
        service.state()


async def test_uptime_is_read_on_demand(board: InfoConfig, tmp_path: Path) -> None:
    service = make_service(board, tmp_path / "root", Bus())
    assert service.uptime() == read_uptime(tmp_path / "root")
    assert service.uptime().total == 61
    write(tmp_path / "root/proc/uptime", "3661.0 0\n")
    assert msgspec.to_builtins(service.uptime()) == {
        "total": 3661,
        "parts": {"days": 0, "hours": 1, "minutes": 1, "seconds": 1},
    }


async def test_run_publishes_changed_health(board: InfoConfig, tmp_path: Path) -> None:
    bus = Bus()
    service = make_service(board, tmp_path / "root", bus)
    await service.start()
    first = service.state()
    async with bus.subscribe() as sub, running(service):
        assert await next_info(sub) is first
        write(tmp_path / "root/sys/class/thermal/thermal_zone0/temp", "55500\n")
        changed = await next_info(sub)
        # Losing a source mid-run gives null, not a dead loop.
        (tmp_path / "root/sys/class/thermal/thermal_zone0/temp").unlink()
        lost = await next_info(sub)
    assert changed.health.temp.cpu == 55.5
    assert msgspec.structs.replace(changed, health=first.health) == first
    assert lost.health.temp.cpu is None
    assert service.state() == lost


async def test_run_polls_the_fan(board: InfoConfig, tmp_path: Path) -> None:
    speeds = iter(range(1000))

    async def state(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": {"fan": {"speed": next(speeds)}}})

    sock = tmp_path / "fan.sock"
    config = msgspec.structs.replace(
        board,
        hw=msgspec.structs.replace(board.hw, state_poll=60.0),
        fan=InfoFanConfig(unix=str(sock), state_poll=0.1),
    )
    app = web.Application()
    app.router.add_get("/state", state)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.UnixSite(runner, str(sock)).start()
        bus = Bus()
        service = make_service(config, tmp_path / "root", bus)
        await service.start()
        async with bus.subscribe() as sub, running(service):
            await next_info(sub)
            polled = await next_info(sub)
    finally:
        await runner.cleanup()
    assert polled.fan.monitored is True
    assert polled.fan.state is not None
    assert msgspec.json.decode(polled.fan.state) == {"fan": {"speed": 1}}


async def test_testenv_reproduces_pikvm_sample() -> None:
    config = InfoConfig(
        meta=str(TESTENV / "meta.yaml"),
        extras=str(TESTENV / "extras"),
        hw=InfoHwConfig(
            platform=str(TESTENV / "platform"), vcgencmd_cmd=[str(TESTENV / "vcgencmd")]
        ),
    )
    service = make_service(config, TESTENV / "fakes", Bus())
    await service.start()
    state = service.state()
    expected = json.loads((SAMPLES / "info.json").read_text())["result"]
    assert msgspec.to_builtins(legacy_hw(state)) == sample_hw("info.json")
    # This machine runs no systemd, so no extra reports its daemon as enabled or started.
    assert state.extras == expected["extras"]
    assert msgspec.to_builtins(state.fan) == expected["fan"]
    assert state.meta == {"kvm": {}, "server": {"host": socket.gethostname()}}
    assert state.system.platform == Platform(
        base="Virtual Raspberry Pi",
        serial="0000000000000000",
        model="test_model",
        video="test_video",
        board="test_board",
    )
    assert state.health.mem.total == 3884332 * 1024
    assert service.uptime().total == 1234567
