# SPDX-License-Identifier: GPL-3.0-or-later
"""Keeps /api/info's state: gathered once at start, health and fan polled after that."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

import kvmd
from kvmd.bus import Bus, Topic
from kvmd.config.schema import InfoConfig
from kvmd.info.collect import (
    Uptime,
    read_extras,
    read_fan,
    read_kernel,
    read_meta,
    read_node,
    read_platform,
    read_uptime,
)
from kvmd.info.health import CpuMeter, read_health
from kvmd.info.state import AuthInfo, InfoState, KvmdVersion, StreamerVersion, SystemInfo
from kvmd.plugins.streamer.base import StreamerBackend

logger = logging.getLogger(__name__)


class InfoService:
    def __init__(
        self,
        config: InfoConfig,
        *,
        sysroot: Path,
        auth_enabled: bool,
        streamer: StreamerBackend,
        bus: Bus,
    ) -> None:
        self._config = config
        self._sysroot = sysroot
        self._auth = AuthInfo(enabled=auth_enabled)
        self._streamer = streamer
        self._bus = bus
        self._cpu = CpuMeter(sysroot)
        self._state: InfoState | None = None

    async def start(self) -> None:
        """Gather every category once and publish the result."""
        app = await self._streamer.describe()
        self._publish(
            InfoState(
                auth=self._auth,
                extras=await read_extras(Path(self._config.extras)),
                fan=await read_fan(self._config.fan),
                health=await read_health(self._sysroot, self._config.hw, self._cpu),
                meta=read_meta(Path(self._config.meta)),
                node=read_node(),
                system=SystemInfo(
                    kvmd=KvmdVersion(version=kvmd.__version__),
                    streamer=StreamerVersion(
                        app=app.app, version=app.version, features=app.features
                    ),
                    kernel=read_kernel(),
                    platform=read_platform(self._sysroot, Path(self._config.hw.platform)),
                ),
            )
        )

    async def run(self) -> None:
        """Poll health and the fan until cancelled; the bus drops unchanged states."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._poll(self._config.hw.state_poll, self._refresh_health))
            if self._config.fan.unix:
                tasks.create_task(self._poll(self._config.fan.state_poll, self._refresh_fan))

    def state(self) -> InfoState:
        if self._state is None:
            raise RuntimeError("InfoService.start() has not been awaited")
        return self._state

    def uptime(self) -> Uptime:
        return read_uptime(self._sysroot)

    async def _poll(self, period: float, refresh: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await refresh()
            except Exception:
                # The collectors report failures as None; anything else is a bug, which
                # must not stop /api/info from answering with the last good state.
                logger.exception("Can't refresh info")

    async def _refresh_health(self) -> None:
        health = await read_health(self._sysroot, self._config.hw, self._cpu)
        self._publish(msgspec.structs.replace(self.state(), health=health))

    async def _refresh_fan(self) -> None:
        fan = await read_fan(self._config.fan)
        self._publish(msgspec.structs.replace(self.state(), fan=fan))

    def _publish(self, state: InfoState) -> None:
        self._state = state
        self._bus.publish(Topic.INFO, state)
