# SPDX-License-Identifier: GPL-3.0-or-later
"""Long-lived responses that end when their client leaves (log follow, MSD download)."""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Coroutine
from typing import Annotated, Any

import msgspec
from aiohttp import web

# How often a quiet stream looks whether its client is still there.
_PROBE_INTERVAL = 0.5


class FollowQuery(msgspec.Struct, frozen=True, kw_only=True):
    """`?seek=N&follow=0|1` of a line stream: the last N seconds (0 = all), then live."""

    # At most ~300 years: a bigger number is no time at all (its float overflows).
    seek: Annotated[int, msgspec.Meta(ge=0, le=10**10)] = 0
    follow: bool = False


async def stream_lines(
    request: web.Request, lines: AsyncGenerator[str, None], content_type: str = "text/plain"
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": f"{content_type}; charset=utf-8"})
    await response.prepare(request)
    # A follower may wait for hours between lines.
    await unless_gone(request, _pump(response, lines))
    return response


async def unless_gone(request: web.Request, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` until it ends (True) or the client disconnects (False: `work` cancelled).

    aiohttp does not cancel a handler when its client goes, so a handler that is not
    writing must watch the connection itself. `work`'s own errors are raised.
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_wait_gone(request))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait([task])  # `work`'s cleanup runs to its end
    if task.cancelled():
        return False
    task.result()
    return True


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
