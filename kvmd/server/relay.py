# SPDX-License-Identifier: GPL-3.0-or-later
"""The MJPEG stream relayed from the streamer's unix socket, for setups without nginx."""

import asyncio
import time

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from kvmd.errors import UnavailableError

# How long a relay waits for a streamer that is starting for it.
_CONNECT_LIMIT = 5.0
_RETRY = 0.05
# Headers about one connection (RFC 9110 §7.6.1), which a proxy must not forward, and those
# this server writes for its own answer: the length and framing of the body it sends, its
# Date and Server (nginx hides the upstream's too).
_NOT_PASSED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
    }
)
_NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"


async def relay_stream(request: web.Request, unix: str) -> web.StreamResponse:
    """Copy `/stream` chunk by chunk: no frame is buffered, a slow client only slows itself.

    The answer keeps the streamer's headers, as nginx's proxy does: the PiKVM web UI finds
    its stream by ustreamer's `stream_client` cookie.
    """
    async with aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=unix),
        # The body goes on byte for byte, compressed or not, under the streamer's headers;
        # the streamer's cookies are the viewer's business, not this session's.
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        upstream = await _connect(session, "/stream?" + request.query_string)
        async with upstream:
            response = web.StreamResponse(headers=passed_headers(upstream.headers))
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionError, aiohttp.ClientPayloadError):
                pass  # the viewer left, or the streamer restarted: the client reconnects
            return response


def passed_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The streamer's end-to-end headers, every one (Set-Cookie, X-*), repeated ones too."""
    # A header named in Connection is about this connection only (RFC 9110 §7.6.1).
    named = {
        name.strip().lower()
        for value in upstream.getall("Connection", [])
        for name in value.split(",")
    }
    headers = CIMultiDict(
        (name, value)
        for (name, value) in upstream.items()
        if name.lower() not in _NOT_PASSED and name.lower() not in named
    )
    headers.setdefault("Content-Type", "multipart/x-mixed-replace")
    headers.setdefault("Cache-Control", _NO_STORE)
    return headers


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
