# SPDX-License-Identifier: GPL-3.0-or-later
"""The aiohttp application. `make_app` wires routes and dependencies and starts nothing."""

import dataclasses

from aiohttp import web

from kvmd.api import (
    atx,
    audit,
    auth,
    auth_admin,
    export,
    gpio,
    hid,
    info,
    log,
    media,
    msd,
    oidc,
    redfish,
    streamer,
    ws,
)
from kvmd.auth.audit import AuditLog
from kvmd.auth.manager import AuthManager
from kvmd.bus import Bus
from kvmd.config.schema import Config
from kvmd.info.service import InfoService
from kvmd.logs import LogReader
from kvmd.media.hub import MediaHub
from kvmd.ocr import Ocr
from kvmd.plugins.atx.base import AtxBackend
from kvmd.plugins.gpio.base import GpioBackend
from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.msd.base import MsdBackend
from kvmd.plugins.streamer.base import StreamerBackend
from kvmd.server import keys, webui
from kvmd.server.auth import access_of, auth_middleware
from kvmd.server.errors import errors_middleware
from kvmd.server.expect import add_unrouted, expect_handler
from kvmd.server.normalize import normalize_middleware
from kvmd.server.ws import WsHub
from kvmd.vnc.server import VncServer

ROUTES = (
    auth.routes,
    auth_admin.routes,
    oidc.routes,
    info.routes,
    log.routes,
    audit.routes,
    ws.routes,
    atx.routes,
    hid.routes,
    msd.routes,
    media.routes,
    gpio.routes,
    streamer.routes,
    export.routes,
    redfish.routes,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Deps:
    config: Config
    bus: Bus
    auth: AuthManager
    audit: AuditLog
    info: InfoService
    log_reader: LogReader
    ocr: Ocr
    atx: AtxBackend
    hid: HidBackend
    msd: MsdBackend
    gpio: GpioBackend
    streamer: StreamerBackend
    hub: WsHub
    media: MediaHub
    vnc: VncServer | None = None


def make_app(deps: Deps) -> web.Application:
    app = web.Application(middlewares=[errors_middleware, normalize_middleware, auth_middleware])
    app[keys.CONFIG] = deps.config
    app[keys.BUS] = deps.bus
    app[keys.AUTH] = deps.auth
    app[keys.AUDIT] = deps.audit
    app[keys.UNAUTH_PATHS] = _unauth_paths(deps.config.kvmd.auth.unauth_paths)
    app[keys.INFO] = deps.info
    app[keys.LOG_READER] = deps.log_reader
    app[keys.OCR] = deps.ocr
    app[keys.ATX] = deps.atx
    app[keys.HID] = deps.hid
    app[keys.MSD] = deps.msd
    app[keys.GPIO] = deps.gpio
    app[keys.STREAMER] = deps.streamer
    app[keys.WS_HUB] = deps.hub
    app[keys.MEDIA] = deps.media
    for table in ROUTES:
        for route in table:
            if not isinstance(route, web.RouteDef):
                raise TypeError(f"Unsupported route definition {route!r}")
            if access_of(route.handler) is None:
                raise RuntimeError(f"Route {route.method} {route.path} declares no permission")
            # Behind PiKVM's nginx the daemon sees /x for /api/x; served directly it sees /api/x.
            for prefix in ("/api", ""):
                _add(app, route, prefix)
    # The browser console lives outside /api, as the PiKVM web UI does.
    for route in webui.routes:
        if isinstance(route, web.RouteDef):
            _add(app, route, "")
    add_unrouted(app)
    return app


def _add(app: web.Application, route: web.RouteDef, prefix: str) -> None:
    app.router.add_route(
        route.method,
        prefix + route.path,
        route.handler,
        expect_handler=expect_handler,
        **route.kwargs,
    )


def _unauth_paths(paths: list[str]) -> frozenset[str]:
    both = set()
    for path in paths:
        bare = path.removeprefix("/api")
        both.update({bare, "/api" + bare})
    return frozenset(both)
