# SPDX-License-Identifier: GPL-3.0-or-later
"""Every typed key of the application and of a request."""

from aiohttp import web

from kvmd.auth.audit import AuditLog
from kvmd.auth.manager import AuthManager
from kvmd.auth.principal import Principal
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
from kvmd.server.ws import WsHub

CONFIG = web.AppKey("config", Config)
BUS = web.AppKey("bus", Bus)
AUTH = web.AppKey("auth", AuthManager)
AUDIT = web.AppKey("audit", AuditLog)
UNAUTH_PATHS = web.AppKey("unauth_paths", frozenset[str])
INFO = web.AppKey("info", InfoService)
LOG_READER = web.AppKey("log_reader", LogReader)
OCR = web.AppKey("ocr", Ocr)
ATX = web.AppKey("atx", AtxBackend)
HID = web.AppKey("hid", HidBackend)
MSD = web.AppKey("msd", MsdBackend)
GPIO = web.AppKey("gpio", GpioBackend)
STREAMER = web.AppKey("streamer", StreamerBackend)
WS_HUB = web.AppKey("ws_hub", WsHub)
MEDIA = web.AppKey("media", MediaHub)

PRINCIPAL = web.RequestKey("principal", Principal)
AUTH_LABEL = web.RequestKey("auth_label", str)
AUDIT_ARGS = web.RequestKey("audit_args", dict[str, object])
