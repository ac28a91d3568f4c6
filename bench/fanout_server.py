# SPDX-License-Identifier: GPL-3.0-or-later
"""The real kvmd app plus a publisher: once N websockets are subscribed, it publishes
`count` info states carrying their publish time (CLOCK_MONOTONIC, shared by processes)."""

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from aiohttp import web

from kvmd.app import build, runner_options, start
from kvmd.bus import Topic
from kvmd.config.load import load_files
from kvmd.info.state import InfoState
from kvmd.logs import LogRing
from kvmd.server.web import Deps, make_app


@contextlib.asynccontextmanager
async def serving(config_path: str) -> AsyncIterator[Deps]:
    """The app of `config_path` on its TCP port, without the periodic loops; prints `ready`."""
    config = load_files([Path(config_path)])
    deps = build(config, LogRing(1000))
    async with contextlib.AsyncExitStack() as stack:
        for loop in await start(deps, stack):
            loop.close()
        runner = web.AppRunner(make_app(deps), **runner_options(config))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", config.kvmd.server.port).start()
        print("ready", flush=True)
        yield deps


async def main(config_path: str, clients: int, count: int, interval: float) -> None:
    async with serving(config_path) as deps:
        while deps.bus.subscribers < clients:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let the initial bursts drain
        base = deps.info.state()
        for i in range(count):
            meta = {"bench": {"seq": i, "ts": time.monotonic_ns()}}
            state: InfoState = msgspec.structs.replace(base, meta=meta)
            deps.bus.publish(Topic.INFO, state)
            await asyncio.sleep(interval)
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
