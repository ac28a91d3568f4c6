# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/info: what the device is, in PiKVM's legacy (default) or current shape."""

import re

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission, sorted_names
from kvmd.errors import ValidatorError
from kvmd.info.service import InfoService
from kvmd.info.state import legacy_hw, legacy_system
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import INFO, PRINCIPAL
from kvmd.server.params import parse_params

routes = web.RouteTableDef()

# legacy=1 is PiKVM 4.0's shape and what the samples show; legacy=0 is today's web UI's.
_LEGACY_DEFAULT = ("auth", "extras", "fan", "hw", "meta", "system")
_LEGACY_AVAILABLE = frozenset({*_LEGACY_DEFAULT, "health", "node", "uptime"})
_CURRENT_AVAILABLE = frozenset(
    {"auth", "extras", "fan", "health", "meta", "node", "system", "uptime"}
)


class InfoQuery(msgspec.Struct, frozen=True, kw_only=True):
    fields: str = ""
    legacy: bool = True


class Info2Query(msgspec.Struct, frozen=True, kw_only=True):
    fields: str = ""


@routes.get("/info")
@requires(Permission.STATE, before_passwd_change=True)
async def get_info(request: web.Request) -> web.Response:
    query = parse_params(request.query, InfoQuery)
    return _answer(request, query.fields, legacy=query.legacy)


# PiKVM's current web UI (index, VNC and IPMI pages) asks here: always the current shape.
@routes.get("/info2")
@requires(Permission.STATE, before_passwd_change=True)
async def get_info2(request: web.Request) -> web.Response:
    query = parse_params(request.query, Info2Query)
    return _answer(request, query.fields, legacy=False)


def _answer(request: web.Request, raw_fields: str, *, legacy: bool) -> web.Response:
    fields = parse_fields(raw_fields, legacy=legacy)
    result = collect(request.app[INFO], fields, legacy=legacy)
    if "auth" in result:
        # Additive: a UI can hide what the caller can't use (SECURITY.md §3.4).
        principal = request[PRINCIPAL]
        result["auth"] = {
            **msgspec.to_builtins(result["auth"]),
            "user": principal.user,
            "permissions": sorted_names(principal.permissions),
        }
    return json_response(result)


def parse_fields(raw: str, *, legacy: bool) -> list[str]:
    available = _LEGACY_AVAILABLE if legacy else _CURRENT_AVAILABLE
    fields = [f for f in re.split(r"[,\t ]+", raw.strip().lower()) if f]
    for field in fields:
        if field not in available:
            raise ValidatorError(f"The argument {field[:64]!r} is not a valid info field")
    if fields:
        return sorted(set(fields))
    return list(_LEGACY_DEFAULT) if legacy else sorted(available)


def collect(info: InfoService, fields: list[str], *, legacy: bool) -> dict[str, object]:
    state = info.state()
    result: dict[str, object] = {}
    for field in fields:
        if field == "hw":
            result["hw"] = legacy_hw(state)
        elif field == "system" and legacy:
            result["system"] = legacy_system(state)
        elif field == "uptime":
            result["uptime"] = info.uptime()
        else:
            result[field] = getattr(state, field)
    return result
