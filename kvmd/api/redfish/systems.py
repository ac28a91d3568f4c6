# SPDX-License-Identifier: GPL-3.0-or-later
"""/redfish/v1/Systems: the target's power, through ATX."""

import enum
import re
import socket

import msgspec
from aiohttp import web

from kvmd.api.redfish.common import ROOT, collection, json_answer, no_content, read_body
from kvmd.auth.principal import Permission
from kvmd.errors import ValidatorError
from kvmd.plugins.atx.base import AtxDisabledError, Button, PowerAction
from kvmd.server.auth import requires
from kvmd.server.keys import ATX, INFO

routes = web.RouteTableDef()

SYSTEMS = f"{ROOT}/Systems"
SYSTEM = f"{SYSTEMS}/0"


class ResetType(enum.StrEnum):
    ON = "On"
    FORCE_OFF = "ForceOff"
    GRACEFUL_SHUTDOWN = "GracefulShutdown"
    FORCE_RESTART = "ForceRestart"
    FORCE_ON = "ForceOn"
    PUSH_POWER_BUTTON = "PushPowerButton"
    # Not in PiKVM's list; redfishtool's `reset` defaults to it and refuses unlisted ones.
    GRACEFUL_RESTART = "GracefulRestart"


_ACTIONS = {
    ResetType.ON: PowerAction.ON,
    ResetType.FORCE_ON: PowerAction.ON,
    ResetType.FORCE_OFF: PowerAction.OFF_HARD,
    ResetType.GRACEFUL_SHUTDOWN: PowerAction.OFF,
    ResetType.FORCE_RESTART: PowerAction.RESET_HARD,
}


class ResetRequest(msgspec.Struct, frozen=True):
    ResetType: ResetType


def _system_id(request: web.Request) -> str:
    sid = request.match_info["sid"]
    if sid != "0":
        raise ValidatorError(f"The argument {sid[:64]!r} is not a valid Redfish system")
    return sid


@routes.get(SYSTEMS)
@requires(Permission.STATE)
async def systems(request: web.Request) -> web.Response:
    # Without ATX there is no power to switch: no system, as PiKVM lists it since 4.x.
    members = [SYSTEM] if request.app[ATX].state().enabled else []
    name = "Computer System Collection"
    return json_answer(collection(SYSTEMS, "ComputerSystemCollection", name, members))


@routes.get(f"{SYSTEMS}/{{sid}}")
@requires(Permission.STATE)
async def system(request: web.Request) -> web.Response:
    sid = _system_id(request)
    return json_answer(
        {
            "@odata.id": SYSTEM,
            "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
            "Actions": {
                "#ComputerSystem.Reset": {
                    "ResetType@Redfish.AllowableValues": [str(kind) for kind in ResetType],
                    "target": f"{SYSTEM}/Actions/ComputerSystem.Reset",
                },
                # Listed as PiKVM lists it; like PiKVM's, it has no handler.
                "#ComputerSystem.SetDefaultBootOrder": {
                    "target": f"{SYSTEM}/Actions/ComputerSystem.SetDefaultBootOrder",
                },
            },
            # kvmd cannot steer the target's firmware: no override, ever.
            "Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": None},
            "HostName": _host_name(request),
            "Id": sid,
            # Required of every resource; PiKVM has none here.
            "Name": "Target",
            "PowerState": "On" if request.app[ATX].state().leds.power else "Off",
        }
    )


@routes.patch(f"{SYSTEMS}/{{sid}}")
@requires(Permission.ATX, audit="redfish.patch_system")
async def patch_system(request: web.Request) -> web.Response:
    _system_id(request)
    return no_content()  # boot overrides are accepted and ignored, as PiKVM does


@routes.post(f"{SYSTEMS}/{{sid}}/Actions/ComputerSystem.Reset")
@requires(Permission.ATX, audit="redfish.reset")
async def reset(request: web.Request) -> web.Response:
    _system_id(request)
    action = (await read_body(request, ResetRequest, "ResetType")).ResetType
    atx = request.app[ATX]
    try:
        if action is ResetType.PUSH_POWER_BUTTON:
            await atx.click(Button.POWER, wait=False)
        elif action is ResetType.GRACEFUL_RESTART:
            await atx.restart(wait=False)
        else:
            await atx.power(_ACTIONS[action], wait=False)
    except AtxDisabledError:
        pass  # PiKVM answers 204 without ATX as well
    return no_content()


def _host_name(request: web.Request) -> str:
    meta = request.app[INFO].state().meta
    server = meta.get("server") if isinstance(meta, dict) else None
    host = server.get("host") if isinstance(server, dict) else None
    if not isinstance(host, str) or not host:
        host = socket.getfqdn()
    return re.sub(r"[^A-Za-z0-9_.-]", "_", host)
