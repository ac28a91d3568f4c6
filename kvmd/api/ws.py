# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/ws: the main websocket."""

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import remote_of, requires
from kvmd.server.keys import CONFIG, PRINCIPAL, WS_HUB
from kvmd.server.params import parse_params
from kvmd.server.ws import WsClient

routes = web.RouteTableDef()

# Client messages are small; a big one is an attack or a bug, not a keystroke.
_MAX_MESSAGE = 64 * 1024


class WsQuery(msgspec.Struct, frozen=True, kw_only=True):
    stream: bool = True
    legacy: bool = False


@routes.get("/ws")
@requires(Permission.STATE)
async def websocket(request: web.Request) -> web.WebSocketResponse:
    query = parse_params(request.query, WsQuery)
    ws = web.WebSocketResponse(
        heartbeat=request.app[CONFIG].kvmd.server.heartbeat,
        compress=False,  # deflating every frame per client costs more than the bytes saved
        max_msg_size=_MAX_MESSAGE,
    )
    await ws.prepare(request)
    principal = request[PRINCIPAL]
    client = WsClient(
        ws=ws,
        principal=principal,
        id=principal.session,
        wants_stream=query.stream,
        remote=remote_of(request),
        user_agent=request.headers.get("User-Agent", "")[:256],
    )
    await request.app[WS_HUB].serve(ws, client, legacy=query.legacy)
    return ws
