# SPDX-License-Identifier: GPL-3.0-or-later
"""Long-lived text responses (`/api/log?follow=1`) that end when the client leaves."""

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from aiohttp import web

# How often a quiet stream looks whether its client is still there.
_PROBE_INTERVAL = 0.5


async def stream_lines(
    request: web.Request, lines: AsyncGenerator[str, None]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    # A follower may wait for hours between lines; aiohttp does not cancel a handler
    # when its client goes, so watch the connection and stop the pump ourselves.
    async with asyncio.TaskGroup() as tasks:
        pump = tasks.create_task(_pump(response, lines))
        watch = tasks.create_task(_wait_gone(request))
        await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        pump.cancel()
        watch.cancel()
    return response


async def _pump(response: web.StreamResponse, lines: AsyncGenerator[str, None]) -> None:
    try:
        async with contextlib.aclosing(lines):
            async for line in lines:
                await response.write(line.encode())
        await response.write_eof()
    except ConnectionError:
        pass


async def _wait_gone(request: web.Request) -> None:
    # aiohttp offers no "client gone" event to a handler that is not writing.
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(_PROBE_INTERVAL)
