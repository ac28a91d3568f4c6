# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/media and /api/media/ws: PiKVM's direct H.264 (kvmd-media), served by kvmd.

PiKVM's kvmd-media trusts nginx to check who may watch; here the routes need `video`
like the stream, and a client whose session ends or who loses `video` is cut off within
a second.

UI mode: the server sends `{"event_type": "media", ...}`; the client answers
`{"event_type": "start", "event": {"type": "video", "format": "h264"}}` and gets binary
messages `[1, key, frame...]`. `[0]` is a ping (answered `[255]`), `[1]` asks for a key
frame. Pure mode (`?video=h264|jpeg`): raw frames at once, nothing else.
"""

import asyncio
import contextlib
import json
import logging

import msgspec
from aiohttp import WSMsgType, web

from kvmd.auth.principal import Permission, Principal
from kvmd.errors import ValidatorError
from kvmd.media.hub import MediaSource
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import AUTH, CONFIG, MEDIA, PRINCIPAL
from kvmd.server.params import parse_params
from kvmd.server.ws import CLOSE_REVOKED

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

_MAX_MESSAGE = 64 * 1024
_OP_PING = 0x00
_OP_VIDEO = 0x01
_OP_PONG = 0xFF
# How often a connected client's rights are looked at again.
_RECHECK = 1.0


@routes.get("/media")
@requires(Permission.VIDEO)
async def get_media(request: web.Request) -> web.Response:
    return json_response({"media": request.app[MEDIA].describe()})


class MediaQuery(msgspec.Struct, frozen=True, kw_only=True):
    video: str | None = None


@routes.get("/media/ws")
@requires(Permission.VIDEO)
async def media_ws(request: web.Request) -> web.WebSocketResponse:
    query = parse_params(request.query, MediaQuery)
    sources = request.app[MEDIA].sources
    pure = query.video is not None
    if pure and query.video not in sources:
        raise ValidatorError("Unsupported video type")
    ws = web.WebSocketResponse(
        heartbeat=request.app[CONFIG].kvmd.server.heartbeat,
        compress=False,
        max_msg_size=_MAX_MESSAGE,
    )
    await ws.prepare(request)
    session = _Session(request, ws)
    try:
        async with asyncio.TaskGroup() as tasks:
            if pure:
                session.start(tasks, sources[query.video or ""], pure=True)
            else:
                await ws.send_json({"event_type": "media", "event": request.app[MEDIA].describe()})
            session.guard(tasks)
            await session.read(tasks, pure=pure)
            session.stop()
    except* ConnectionError:
        pass  # the client went away mid-answer: nothing to tell it
    return ws


class _Session:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._request = request
        self._ws = ws
        self._principal: Principal = request[PRINCIPAL]
        self._source: MediaSource | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def read(self, tasks: asyncio.TaskGroup, *, pure: bool) -> None:
        """The client's messages, until it goes; anything malformed is ignored."""
        async for msg in self._ws:
            if msg.type == WSMsgType.BINARY and msg.data:
                op = msg.data[0]
                if op == _OP_PING and not pure:
                    await self._ws.send_bytes(bytes([_OP_PONG]))
                elif op == _OP_VIDEO and self._source is not None:
                    self._source.request_key()
            elif msg.type == WSMsgType.TEXT and not pure:
                self._on_event(tasks, msg.data)

    def _on_event(self, tasks: asyncio.TaskGroup, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("event"), dict):
            return
        event = message["event"]
        if message.get("event_type") == "start" and event.get("type") == "video":
            source = self._request.app[MEDIA].sources.get(str(event.get("format")))
            if source is not None and self._source is None:  # a second start is a no-op
                self.start(tasks, source, pure=False)

    def start(self, tasks: asyncio.TaskGroup, source: MediaSource, *, pure: bool) -> None:
        self._source = source
        self._tasks.append(tasks.create_task(self._send(source, pure=pure)))

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _send(self, source: MediaSource, *, pure: bool) -> None:
        async with source.attach() as client:
            with contextlib.suppress(ConnectionError):  # the client went: read() ends too
                while not self._ws.closed:
                    frame = await client.queue.get()
                    if pure:
                        await self._ws.send_bytes(frame.data)
                    else:
                        await self._ws.send_bytes(bytes([_OP_VIDEO, frame.key]) + frame.data)

    def guard(self, tasks: asyncio.TaskGroup) -> None:
        self._tasks.append(tasks.create_task(self._watch_rights()))

    async def _watch_rights(self) -> None:
        """Close the socket once the session ends or `video` is taken away."""
        auth = self._request.app[AUTH]
        while not self._ws.closed:
            await asyncio.sleep(_RECHECK)
            principal = auth.reresolve(self._principal)
            if principal is None or not principal.allows(Permission.VIDEO):
                logger.info("Media: %s may no longer watch; closing", self._principal.user)
                with contextlib.suppress(ConnectionError):
                    await self._ws.close(code=CLOSE_REVOKED, message=b"Permission 'video' revoked")
                return
