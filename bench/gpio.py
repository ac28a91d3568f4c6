# SPDX-License-Identifier: GPL-3.0-or-later
"""GPIO figure: an edge on an input line -> the `gpio` event at a websocket client.

The daemon runs as its own process with a user GPIO input on a chip that this process
serves over a unix socket (the simulated machine's chip); the bench flips the line and
times the event. The channel's debounce is 0 here: the figure is the pipeline's own
delay, and a configured debounce adds to it.
"""

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bench import sized
from kvmd.sim.machine import ChipServer

ADMIN = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}
EDGES = sized(500, 20)
LIMIT_SECONDS = 60.0
PIN = 8


def gpio_override(config: Path, chip: Path) -> None:
    data = json.loads(config.read_text())
    data["kvmd"]["gpio"] = {
        "drivers": {"bench": {"type": "gpio", "device": str(chip)}},
        "scheme": {"door": {"driver": "bench", "pin": PIN, "debounce": 0}},
    }
    config.write_text(json.dumps(data))


@contextlib.asynccontextmanager
async def serving(chip: Path) -> AsyncIterator[ChipServer]:
    server = ChipServer(chip)
    task = asyncio.create_task(server.serve())
    try:
        while not chip.exists():
            await asyncio.sleep(0.01)
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def bench_edges(url: str, server: ChipServer) -> dict[str, float]:
    latencies = []
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url + "/api/ws?stream=0", headers=ADMIN)

        async def door_event(expected: bool) -> None:
            while True:
                message = json.loads((await ws.receive()).data)
                if message["event_type"] == "gpio":
                    inputs = message["event"]["state"]["inputs"]
                    if inputs.get("door", {}).get("state") is expected:
                        return

        async with asyncio.timeout(LIMIT_SECONDS):
            await door_event(expected=False)  # the initial burst
            level = False
            for _ in range(EDGES):
                level = not level
                started = time.perf_counter()
                server.drive(PIN, level)
                await door_event(level)
                latencies.append((time.perf_counter() - started) * 1e6)
                await asyncio.sleep(0.002)
        await ws.close()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "gpio_edges": float(len(latencies)),
        "gpio_p50_us": cuts[49],
        "gpio_p99_us": cuts[98],
        "gpio_max_us": max(latencies),
    }
