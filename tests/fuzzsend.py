# SPDX-License-Identifier: GPL-3.0-or-later
"""Sending fuzz to a server: raw HTTP over keep-alive connections, websocket frames.

Shared by the fuzz test, which pins each log record on the request that caused it, and
by the fuzz bench, which only counts.
"""

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import aiohttp

from kvmd.server.ws_input import Ping, parse_text
from tests.fuzzgen import ADMIN_XHDR, Frame, FuzzRequest

# A handler may take seconds (a bcrypt, a relay giving up); a body that takes longer than
# BODY_LIMIT is a stream (a followed log, MJPEG) and the client hangs up on it.
ANSWER_LIMIT = 20.0
BODY_LIMIT = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    request: FuzzRequest
    status: int | None  # None: no answer (the note says why)
    body: bytes  # the start of the body, for reports
    note: str = ""
    sent_at: int = 0  # the caller's clock when the request went out (see send_requests)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    # Read when each request goes out: the fuzz test passes its count of log records, so
    # that over one connection each record is pinned on the request that caused it.
    clock: Callable[[], int] = lambda: 0


async def admin_token(target: Target) -> str:
    """A session token of admin's, for `RequestGen` to send in some requests' cookies."""
    url = f"http://{target.host}:{target.port}/api/auth/login"
    form = {"user": "admin", "passwd": "admin"}
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as response:
        return response.cookies["auth_token"].value


async def send_requests(
    target: Target, requests: Iterator[FuzzRequest], *, connections: int = 1
) -> list[Answer]:
    """Send every request over keep-alive connections; one answer each, in order of answers."""
    answers: list[Answer] = []
    async with asyncio.TaskGroup() as tasks:
        for _ in range(connections):
            tasks.create_task(_connection(target, requests, answers))
    return answers


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connection(
    target: Target, requests: Iterator[FuzzRequest], answers: list[Answer]
) -> None:
    conn: Connection | None = None
    try:
        for request in requests:  # shared with the other connections: each takes the next
            (answer, fresh) = await _attempt(target, conn, request)
            if answer.status is None and conn is not None:
                # A kept-alive connection may have closed just as the request went out.
                (answer, fresh) = await _attempt(target, None, request)
            answers.append(answer)
            conn = fresh
    finally:
        if conn is not None:
            conn[1].close()


async def _attempt(
    target: Target, conn: Connection | None, request: FuzzRequest
) -> tuple[Answer, Connection | None]:
    """The answer, and the connection if it can carry the next request."""
    conn = conn or await asyncio.open_connection(target.host, target.port)
    sent_at = target.clock()
    (answer, keep) = await _exchange(conn, request)
    if not keep:
        conn[1].close()
    return (dataclasses.replace(answer, sent_at=sent_at), conn if keep else None)


async def _exchange(conn: Connection, request: FuzzRequest) -> tuple[Answer, bool]:
    (reader, writer) = conn
    writer.write(request.raw)  # no drain: the server may answer before it reads the body
    try:
        async with asyncio.timeout(ANSWER_LIMIT):
            (status, headers) = await _read_head(reader)
    except TimeoutError:
        return (Answer(request, None, b"", f"no answer in {ANSWER_LIMIT} s"), False)
    except (OSError, EOFError, ValueError) as exc:
        return (Answer(request, None, b"", f"closed: {exc!r}"), False)
    if status == 101:
        return (Answer(request, status, b""), False)
    skip = request.method == "HEAD" or status in (204, 304)
    keep = headers.get(b"connection", b"").lower() != b"close"
    try:
        async with asyncio.timeout(BODY_LIMIT):
            (body, complete) = (b"", True) if skip else await _read_body(reader, headers)
    except TimeoutError:
        return (Answer(request, status, b"", "streamed"), False)
    except (OSError, EOFError, ValueError) as exc:
        return (Answer(request, status, b"", f"body cut: {exc!r}"), False)
    return (Answer(request, status, body[:500]), keep and complete and request.reusable)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    while True:
        line = await reader.readline()
        if not line:
            raise EOFError("closed")
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            # Left over from an answer this client misread: the request goes again on a
            # fresh connection, and a second failure is reported with the request.
            raise ValueError(f"not a status line: {line[:64]!r}")
        status = int(parts[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            (name, _, value) = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if not 100 <= status < 200 or status == 101:  # skip 100 Continue
            return (status, headers)


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[bytes, bytes]
) -> tuple[bytes, bool]:
    """The body, and whether the connection can carry another request."""
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        chunks = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        await reader.readline()
        return (b"".join(chunks), True)
    if b"content-length" in headers:
        return (await reader.readexactly(int(headers[b"content-length"])), True)
    return (await reader.read(), False)


async def fuzz_websocket(
    session: aiohttp.ClientSession, url: str, frames: Iterator[Frame], count: int
) -> tuple[int, list[str]]:
    """Send `count` frames in batches, each checked by a ping; (frames sent, lost sockets).

    When a batch loses its socket, its frames are replayed one per fresh socket to name
    the frame that closed it.
    """
    sent = 0
    lost = []
    ws = await session.ws_connect(url, headers=_ws_headers())
    try:
        while sent < count:
            batch = [next(frames) for _ in range(min(25, count - sent))]
            sent += len(batch)
            if await _survives(ws, batch) is None:
                continue
            await ws.close()
            for frame in batch:
                async with session.ws_connect(url, headers=_ws_headers()) as alone:
                    closed = await _survives(alone, [frame])
                sent += 1
                if closed is not None:
                    lost.append(f"{closed} after {frame.show()}")
            ws = await session.ws_connect(url, headers=_ws_headers())
    finally:
        await ws.close()
    return (sent, lost)


async def _survives(ws: aiohttp.ClientWebSocketResponse, frames: list[Frame]) -> str | None:
    """None if the socket still answers a ping after `frames`; else how it ended."""
    pongs = 1
    for frame in frames:
        pongs += _is_json_ping(frame)
        if await _send_frame(ws, frame) is not None:
            break
    await _send_frame(ws, Frame("text", '{"event_type":"ping","event":{}}'))
    try:
        async with asyncio.timeout(10):
            while pongs:
                message = await ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    pongs -= message.json()["event_type"] == "pong"
                elif message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PONG):
                    return f"closed ({message.type.name} {message.data!r} {message.extra!r})"
    except TimeoutError:
        await ws.close()
        return "no pong in 10 s"
    return None


async def _send_frame(ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> str | None:
    data = frame.data
    try:
        if isinstance(data, str):
            await ws.send_str(data)
        elif frame.kind == "binary":
            await ws.send_bytes(data)
        elif frame.kind == "ping":
            await ws.ping(data)
        else:
            await ws.pong(data)
    except ConnectionError as exc:
        return repr(exc)
    return None


def _is_json_ping(frame: Frame) -> bool:
    # The server's own parser says which frames earn a pong; one it chokes on earns none.
    if frame.kind != "text":
        return False
    with contextlib.suppress(Exception):
        return isinstance(parse_text(str(frame.data)), Ping)
    return False


def _ws_headers() -> dict[str, str]:
    return {name.decode(): value.decode() for (name, value) in ADMIN_XHDR}


async def oversize_close(session: aiohttp.ClientSession, url: str, size: int) -> object:
    """The close code a socket gets for one `size`-byte message."""
    async with session.ws_connect(url, headers=_ws_headers()) as ws:
        await ws.send_str("x" * size)
        async with asyncio.timeout(10):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        return message.data if message.type is aiohttp.WSMsgType.CLOSE else message.type.name
