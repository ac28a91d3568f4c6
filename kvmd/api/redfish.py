# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/redfish/v1: enough of DMTF Redfish for tools to see and switch the target's power.

Answers are bare JSON (no envelope). The service root is public, as PiKVM's is, so that
discovery works before credentials are sent; everything below it needs them.
"""

import enum
import re
import socket
from typing import Any

import msgspec
from aiohttp import web

from kvmd.auth.principal import Access, Permission
from kvmd.errors import ValidatorError
from kvmd.plugins.atx.base import AtxDisabledError, Button, PowerAction
from kvmd.server.auth import requires
from kvmd.server.errors import encode_json
from kvmd.server.keys import ATX, INFO
from kvmd.server.params import decode_json

routes = web.RouteTableDef()

SYSTEM = "/redfish/v1/Systems/0"


class ResetType(enum.StrEnum):
    ON = "On"
    FORCE_OFF = "ForceOff"
    GRACEFUL_SHUTDOWN = "GracefulShutdown"
    FORCE_RESTART = "ForceRestart"
    FORCE_ON = "ForceOn"
    PUSH_POWER_BUTTON = "PushPowerButton"


_ACTIONS = {
    ResetType.ON: PowerAction.ON,
    ResetType.FORCE_ON: PowerAction.ON,
    ResetType.FORCE_OFF: PowerAction.OFF_HARD,
    ResetType.GRACEFUL_SHUTDOWN: PowerAction.OFF,
    ResetType.FORCE_RESTART: PowerAction.RESET_HARD,
}


class ResetRequest(msgspec.Struct, frozen=True):
    ResetType: ResetType


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=encode_json(data), content_type="application/json", charset="utf-8")


def _system_id(request: web.Request) -> str:
    sid = request.match_info["sid"]
    if sid != "0":
        raise ValidatorError(f"The argument {sid[:64]!r} is not a valid Redfish system")
    return sid


@routes.get("/redfish/v1")
@requires(Access.PUBLIC)
async def service_root(_: web.Request) -> web.Response:
    return _json(
        {
            "@odata.id": "/redfish/v1",
            "@odata.type": "#ServiceRoot.v1_6_0.ServiceRoot",
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": "1.6.0",
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
        }
    )


@routes.get("/redfish/v1/Systems")
@requires(Permission.STATE)
async def systems(_: web.Request) -> web.Response:
    return _json(
        {
            "@odata.id": "/redfish/v1/Systems",
            "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
            "Members": [{"@odata.id": SYSTEM}],
            "Members@odata.count": 1,
            "Name": "Computer System Collection",
        }
    )


@routes.get("/redfish/v1/Systems/{sid}")
@requires(Permission.STATE)
async def system(request: web.Request) -> web.Response:
    sid = _system_id(request)
    return _json(
        {
            "@odata.id": SYSTEM,
            "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
            "Actions": {
                "#ComputerSystem.Reset": {
                    "ResetType@Redfish.AllowableValues": [str(kind) for kind in ResetType],
                    "target": f"{SYSTEM}/Actions/ComputerSystem.Reset",
                }
            },
            "HostName": _host_name(request),
            "Id": sid,
            "PowerState": "On" if request.app[ATX].state().leds.power else "Off",
        }
    )


@routes.patch("/redfish/v1/Systems/{sid}")
@requires(Permission.ATX, audit="redfish.patch_system")
async def patch_system(request: web.Request) -> web.Response:
    _system_id(request)
    return web.Response(status=204)  # boot overrides are accepted and ignored, as PiKVM does


@routes.post("/redfish/v1/Systems/{sid}/Actions/ComputerSystem.Reset")
@requires(Permission.ATX, audit="redfish.reset")
async def reset(request: web.Request) -> web.Response:
    _system_id(request)
    try:
        action = decode_json(await request.read(), ResetRequest).ResetType
    except msgspec.DecodeError as error:
        raise ValidatorError(f"Invalid ResetType request: {error}") from None
    atx = request.app[ATX]
    try:
        if action is ResetType.PUSH_POWER_BUTTON:
            await atx.click(Button.POWER, wait=False)
        else:
            await atx.power(_ACTIONS[action], wait=False)
    except AtxDisabledError:
        pass  # PiKVM answers 204 without ATX as well
    return web.Response(status=204)


def _host_name(request: web.Request) -> str:
    meta = request.app[INFO].state().meta
    server = meta.get("server") if isinstance(meta, dict) else None
    host = server.get("host") if isinstance(server, dict) else None
    if not isinstance(host, str) or not host:
        host = socket.getfqdn()
    return re.sub(r"[^A-Za-z0-9_.-]", "_", host)
