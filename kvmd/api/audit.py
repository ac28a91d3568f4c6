# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/audit: the audit trail as JSON lines, optionally followed, like /api/log."""

from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.keys import AUDIT
from kvmd.server.params import parse_params
from kvmd.server.streaming import FollowQuery, stream_lines

routes = web.RouteTableDef()


@routes.get("/audit")
@requires(Permission.LOGS)
async def get_audit(request: web.Request) -> web.StreamResponse:
    query = parse_params(request.query, FollowQuery)
    lines = request.app[AUDIT].lines(query.seek, query.follow)
    return await stream_lines(request, lines, content_type="application/x-ndjson")
