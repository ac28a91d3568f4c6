# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/gpio: user channels."""

from typing import Annotated

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import GPIO
from kvmd.server.params import parse_params

routes = web.RouteTableDef()

Channel = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z_][a-zA-Z0-9_.-]*$", max_length=255)]


class SwitchQuery(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    state: bool
    wait: bool = False


class PulseQuery(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    # 0: the channel's own delay; anything else is clamped into its [min, max].
    delay: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 0.0
    wait: bool = False


@routes.get("/gpio")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[GPIO].state())


@routes.post("/gpio/switch")
@requires(Permission.GPIO, audit="gpio.switch")
async def switch(request: web.Request) -> web.Response:
    query = parse_params(request.query, SwitchQuery)
    await request.app[GPIO].switch(query.channel, query.state, wait=query.wait)
    return json_response({})


@routes.post("/gpio/pulse")
@requires(Permission.GPIO, audit="gpio.pulse")
async def pulse(request: web.Request) -> web.Response:
    query = parse_params(request.query, PulseQuery)
    await request.app[GPIO].pulse(query.channel, query.delay, wait=query.wait)
    return json_response({})
