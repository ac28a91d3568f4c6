# SPDX-License-Identifier: GPL-3.0-or-later
"""/redfish/v1: enough of DMTF Redfish for tools to switch the target's power and media.

Answers are bare JSON (no envelope). The service root is public, as PiKVM's is, so that
discovery works before credentials are sent; everything below it needs them. Systems
(the target's power) and Managers (the virtual media) each have a module.
"""

from aiohttp import web

from kvmd.api.redfish import managers, root, systems


def _joined(*tables: web.RouteTableDef) -> web.RouteTableDef:
    joined = web.RouteTableDef()
    for table in tables:
        for route in table:
            if isinstance(route, web.RouteDef):
                joined.route(route.method, route.path, **route.kwargs)(route.handler)
    return joined


routes = _joined(root.routes, systems.routes, managers.routes)
