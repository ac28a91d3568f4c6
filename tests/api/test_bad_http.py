# SPDX-License-Identifier: GPL-3.0-or-later
"""Requests aiohttp cannot parse: a 400, and one short line in the log instead of a traceback."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from kvmd.app import runner_options
from kvmd.config.schema import Config
from kvmd.logs import LogRing, setup_logging
from tests.conftest import ADMIN, running_app

HEAD = b"Host: kvm\r\n"
GOOD = b"GET /api/auth/check HTTP/1.1\r\n" + HEAD + b"\r\n"
# Each is sent on a fresh connection, one request after the other's answer.
BAD = {
    # Over aiohttp's 8190-byte line limit: `curl -H "X-Big: $(head -c 9000 ...)"`.
    "long header": [b"GET /api/info HTTP/1.1\r\n" + HEAD + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n"],
    "nul in a header": [b"GET /api/info HTTP/1.1\r\n" + HEAD + b"X-A: a\x00b\r\n\r\n"],
    "bad request line": [b"GET /api/info HTTP/9.9\r\n" + HEAD + b"\r\n"],
    "invalid url": [b"GET http://[ HTTP/1.1\r\n" + HEAD + b"\r\n"],
    "bad chunk": [
        b"POST /api/auth/login HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nuser=a\r\n0\r\n\r\n"
    ],
    "too many headers": [b"GET /api/info HTTP/1.1\r\n" + b"X-N: 1\r\n" * 200 + b"\r\n"],
    # aiohttp logs a bad method only at DEBUG when it opens a connection (TLS on the HTTP
    # port, port scanners), but at ERROR after a good request.
    "bad method": [GOOD, b"G@T / HTTP/1.1\r\n" + HEAD + b"\r\n"],
}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]


@contextlib.contextmanager
def kvmd_logging() -> Iterator[Records]:
    """The daemon's logging set-up, as `kvmd` makes it; the test's own comes back after."""
    root = logging.getLogger()
    server = logging.getLogger("aiohttp.server")
    saved = (root.handlers[:], root.level, server.filters[:])
    records = Records()
    try:
        setup_logging("info", LogRing(100))
        root.addHandler(records)
        yield records
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        server.filters[:] = saved[2]


@contextlib.asynccontextmanager
async def serving(app: web.Application, config: Config) -> AsyncIterator[int]:
    """`app` on a TCP port, with the runner `kvmd.app` builds (TestServer cancels handlers)."""
    runner = web.AppRunner(app, **runner_options(config))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def kvmd(config: Config) -> AsyncIterator[tuple[int, Records]]:
    with kvmd_logging() as records:
        async with running_app(config) as (app, _, _), serving(app, config) as port:
            yield (port, records)


async def send(port: int, *requests: bytes) -> int:
    """Each request in turn on one connection; the status of the last answer."""
    (reader, writer) = await asyncio.open_connection("127.0.0.1", port)
    try:
        status = 0
        for raw in requests:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            (status_line, *fields) = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            sizes = [
                int(f.split(":")[1]) for f in fields if f.lower().startswith("content-length:")
            ]
            await reader.readexactly(sum(sizes))
        return status
    finally:
        writer.close()


async def log_text(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/api/log", headers=ADMIN) as response,
    ):
        assert response.status == 200
        return await response.text()


def aiohttp_lines(records: Records) -> list[logging.LogRecord]:
    # The good request in front of "bad method" has its access line, as it should.
    return [
        r
        for r in records.records
        if r.name.startswith("aiohttp.") and "/api/auth/check" not in r.getMessage()
    ]


@pytest.mark.parametrize("requests", BAD.values(), ids=BAD.keys())
async def test_a_malformed_request_is_a_400_and_one_short_line(make_config, requests):
    async with kvmd(make_config()) as (port, records):
        assert await send(port, *requests) == 400
        await asyncio.sleep(0.05)  # aiohttp logs as it closes the connection
        lines = aiohttp_lines(records)
        assert len(lines) == 1, [r.getMessage() for r in lines]
        (line,) = lines
        assert line.name == "aiohttp.server"
        assert line.levelno == logging.WARNING
        assert line.exc_info is None
        message = line.getMessage()
        assert message.startswith("Error handling request from 127.0.0.1: "), message
        assert "\n" not in message
        assert len(message) < 300
        assert "Traceback" not in await log_text(port)


async def test_a_bad_method_opening_a_connection_stays_quiet(make_config):
    async with kvmd(make_config()) as (port, records):
        assert await send(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") == 400
        await asyncio.sleep(0.05)
        assert [r.getMessage() for r in aiohttp_lines(records)] == []


async def test_a_burst_of_bad_requests_logs_one_line(make_config):
    async with kvmd(make_config()) as (port, records):
        for n in range(50):
            assert await send(port, *list(BAD.values())[n % len(BAD)]) == 400
        await asyncio.sleep(0.05)
        server = records.named("aiohttp.server")
        assert len(server) == 1
        assert server[0].exc_info is None
        text = await log_text(port)
        assert text.count("aiohttp.server") == 1
        assert "Traceback" not in text
        # aiohttp's placeholder for what it could not parse says nothing the line above doesn't.
        assert "UNKNOWN /" not in text


async def test_good_requests_and_websockets_still_log(make_config):
    async with kvmd(make_config()) as (port, records):
        assert await send(port, *BAD["long header"]) == 400
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            assert (await session.get("/api/info?probe=1", headers=ADMIN)).status == 200
            async with session.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
                await ws.receive_json()
        async with asyncio.timeout(5):  # the upgrade is logged once the server has closed it
            while len(records.named("aiohttp.access")) < 2:
                await asyncio.sleep(0.01)
        access = [r.getMessage() for r in records.named("aiohttp.access")]
        assert "'GET /api/info?probe=1 HTTP/1.1' => 200" in access[0]
        assert "'GET /api/ws?stream=0 HTTP/1.1' => 101" in access[1]


async def test_an_unexpected_error_keeps_its_traceback(make_config):
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = web.Application()
    app.router.add_get("/", broken)
    with kvmd_logging() as records:
        async with serving(app, make_config()) as port:
            assert await send(port, b"GET / HTTP/1.1\r\n" + HEAD + b"\r\n") == 500
    (record,) = records.named("aiohttp.server")
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
