# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Redfish resources share: bare JSON answers, JSON bodies, collections."""

from typing import TypeVar

import msgspec
from aiohttp import web

from kvmd.auth.principal import RouteAccess
from kvmd.errors import ValidatorError
from kvmd.server.auth import requires
from kvmd.server.errors import encode_json
from kvmd.server.params import decode_json

ROOT = "/redfish/v1"

T = TypeVar("T", bound=msgspec.Struct)


def json_answer(data: dict[str, object]) -> web.Response:
    return web.Response(body=encode_json(data), content_type="application/json", charset="utf-8")


def no_content() -> web.Response:
    return web.Response(status=204)


async def read_body(request: web.Request, cls: type[T], what: str) -> T:
    """The JSON body as `cls`; anything else is a 400 `ValidatorError` naming `what`."""
    try:
        return decode_json(await request.read(), cls)
    except msgspec.DecodeError as error:
        raise ValidatorError(f"Invalid {what} request: {error}") from None


def collection(path: str, kind: str, name: str, members: list[str]) -> dict[str, object]:
    return {
        "@odata.id": path,
        "@odata.type": f"#{kind}.{kind}",
        "Members": [{"@odata.id": member} for member in members],
        "Members@odata.count": len(members),
        "Name": name,
    }


def add_fixed(
    routes: web.RouteTableDef, access: RouteAccess, path: str, data: dict[str, object]
) -> None:
    """GET `path`: a resource that never changes."""

    async def get_fixed(_: web.Request) -> web.Response:
        return json_answer(data)

    routes.get(path)(requires(access)(get_fixed))
