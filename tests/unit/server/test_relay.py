# SPDX-License-Identifier: GPL-3.0-or-later
"""/streamer/stream's relay with a streamer that answers raw bytes, as ustreamer does."""

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kvmd.server.relay import relay_stream

Client = TestClient[web.Request, web.Application]
BODY = b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\n\xff\xd8\xff\xd9\r\n--b\r\n"


def streamer_answer(headers: list[str], body: bytes) -> bytes:
    # ustreamer writes its stream answer itself: HTTP/1.0, no length, the end is EOF.
    head = "".join(f"{line}\r\n" for line in ["HTTP/1.0 200 OK", *headers]) + "\r\n"
    return head.encode() + body


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Callable[[bytes], Client]]:
    """A relay in front of a fake streamer that answers `/stream` with the given bytes."""
    answer = b""

    async def streamer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    sock = str(tmp_path / "streamer.sock")
    server = await asyncio.start_unix_server(streamer, path=sock)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await relay_stream(request, sock)

    app = web.Application()
    app.router.add_get("/streamer/stream", handler)
    client = TestClient(TestServer(app), auto_decompress=False)
    await client.start_server()

    def answering(data: bytes) -> Client:
        nonlocal answer
        answer = data
        return client

    async with server:
        yield answering
    await client.close()


async def test_the_streamers_headers_reach_the_viewer(relay):
    client = relay(
        streamer_answer(
            [
                "Cache-Control: no-store, no-cache, max-age=0",
                "Pragma: no-cache",
                "Set-Cookie: stream_client=k/1f; path=/; max-age=30",
                "Set-Cookie: other=1",
                "X-UStreamer-Online: true",
                "X-Timestamp: 1.5",
                "Access-Control-Allow-Origin: *",
                "Content-Type: multipart/x-mixed-replace;boundary=b",
                # About the streamer's connection only: none of these may pass.
                "Connection: keep-alive, X-Hop",
                "X-Hop: private",
                "Keep-Alive: timeout=5",
                "Proxy-Authenticate: Basic",
                "Trailer: X-Checksum",
                "Upgrade: h2c",
                "Server: streamer/1.0",
            ],
            BODY,
        )
    )
    async with client.get("/streamer/stream?key=k") as response:
        assert response.status == 200
        assert await response.read() == BODY
        headers = response.headers
    assert headers.getall("Set-Cookie") == ["stream_client=k/1f; path=/; max-age=30", "other=1"]
    assert {name: headers.get(name) for name in ("X-UStreamer-Online", "X-Timestamp")} == {
        "X-UStreamer-Online": "true",
        "X-Timestamp": "1.5",
    }
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Type"] == "multipart/x-mixed-replace;boundary=b"
    assert (headers["Cache-Control"], headers["Pragma"]) == (
        "no-store, no-cache, max-age=0",
        "no-cache",
    )
    for hop in ("X-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"):
        assert hop not in headers
    assert headers.get("Connection") != "keep-alive, X-Hop"
    assert headers["Server"] != "streamer/1.0"


async def test_a_compressed_body_passes_as_it_is(relay):
    packed = gzip.compress(BODY)
    client = relay(streamer_answer(["Content-Type: text/plain", "Content-Encoding: gzip"], packed))
    async with client.get("/streamer/stream") as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert await response.read() == packed
        # A streamer that says nothing of caching still gets a video that isn't cached.
        assert response.headers["Cache-Control"] == (
            "no-store, no-cache, must-revalidate, max-age=0"
        )
