# SPDX-License-Identifier: GPL-3.0-or-later
"""The MJPEG stream relayed from the streamer's unix socket, for setups without nginx."""

import asyncio
import time

import aiohttp
from aiohttp import web

from kvmd.errors import UnavailableError

# How long a relay waits for a streamer that is starting for it.
_CONNECT_LIMIT = 5.0
_RETRY = 0.05


async def relay_stream(request: web.Request, unix: str) -> web.StreamResponse:
    """Copy `/stream` chunk by chunk: no frame is buffered, a slow client only slows itself."""
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=unix)) as session:
        upstream = await _connect(session, "/stream?" + request.query_string)
        async with upstream:
            response = web.StreamResponse(
                headers={
                    "Content-Type": upstream.headers.get(
                        "Content-Type", "multipart/x-mixed-replace"
                    ),
                    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
                }
            )
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionError, aiohttp.ClientPayloadError):
                pass  # the viewer left, or the streamer restarted: the client reconnects
            return response


async def _connect(session: aiohttp.ClientSession, path: str) -> aiohttp.ClientResponse:
    deadline = time.monotonic() + _CONNECT_LIMIT
    while True:
        try:
            upstream = await session.get(
                f"http://localhost{path}", timeout=aiohttp.ClientTimeout(sock_connect=1)
            )
            if upstream.status == 200:
                return upstream
            upstream.release()
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() >= deadline:
            raise UnavailableError
        await asyncio.sleep(_RETRY)
