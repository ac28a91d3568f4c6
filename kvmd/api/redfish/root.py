# SPDX-License-Identifier: GPL-3.0-or-later
"""The service root, and the sessions collection it must link to."""

from aiohttp import web

from kvmd.api.redfish.common import ROOT, add_fixed, collection
from kvmd.auth.principal import Access, Permission

routes = web.RouteTableDef()

SESSIONS = f"{ROOT}/SessionService/Sessions"


# Public, as PiKVM's: clients discover the service before they send credentials.
add_fixed(
    routes,
    Access.PUBLIC,
    ROOT,
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
    },
)
# Credentials go with every request (Basic, or kvmd's own); no Redfish session is made.
add_fixed(
    routes,
    Permission.STATE,
    SESSIONS,
    collection(SESSIONS, "SessionCollection", "Session Collection", []),
)
