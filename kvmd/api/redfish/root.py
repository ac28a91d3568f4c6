# SPDX-License-Identifier: GPL-3.0-or-later
"""The service root, and the sessions collection it must link to."""

from aiohttp import web

from kvmd.api.redfish.common import ROOT, collection, json_answer
from kvmd.auth.principal import Access, Permission
from kvmd.server.auth import requires

routes = web.RouteTableDef()

SESSIONS = f"{ROOT}/SessionService/Sessions"


@routes.get(ROOT)
@requires(Access.PUBLIC)
async def service_root(_: web.Request) -> web.Response:
    return json_answer(
        {
            "@odata.id": ROOT,
            "@odata.type": "#ServiceRoot.v1_6_0.ServiceRoot",
            "Id": "RootService",
            # Required by the schema (PiKVM has none): DMTF's validator fails the root without.
            "Links": {"Sessions": {"@odata.id": SESSIONS}},
            "Managers": {"@odata.id": f"{ROOT}/Managers"},
            "Name": "Root Service",
            "RedfishVersion": "1.6.0",
            "Systems": {"@odata.id": f"{ROOT}/Systems"},
        }
    )


@routes.get(SESSIONS)
@requires(Permission.STATE)
async def sessions(_: web.Request) -> web.Response:
    # Credentials go with every request (Basic, or kvmd's own); no Redfish session is made.
    return collection(SESSIONS, "SessionCollection", "Session Collection", [])
