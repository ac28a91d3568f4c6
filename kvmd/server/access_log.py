# SPDX-License-Identifier: GPL-3.0-or-later
"""Access-log lines in PiKVM's format, with secrets in query strings masked."""

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import ERROR

from kvmd.logs import redact_query
from kvmd.server.auth import remote_of
from kvmd.server.keys import AUTH_LABEL

# Header-sized fields are cut: a client must not make each of its requests cost 16 KiB of
# journal and of the in-memory ring /api/log reads (20,000 lines by default).
_TARGET_MAX = 1024
_HEADER_MAX = 256


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(20) or _is_unparsed(request):  # 20: logging.INFO
            return
        label = request.get(AUTH_LABEL, "-")
        remote = _clip(remote_of(request) or "-", 64)
        target = request.path
        if request.query_string:
            target += "?" + redact_query(request.query_string)
        target = _clip(target, _TARGET_MAX)
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        self.logger.info(
            "[%s / %s] '%s %s %s' => %d; size=%d --- referer=%r; user_agent=%r",
            label,
            remote,
            request.method,
            target,
            version,
            response.status,
            response.body_length,
            _clip(request.headers.get("Referer", "-"), _HEADER_MAX),
            _clip(request.headers.get("User-Agent", "-"), _HEADER_MAX),
        )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_unparsed(request: web.BaseRequest) -> bool:
    """Whether this is aiohttp's stand-in for a request it could not parse (and answered 400).

    Its line would read `'UNKNOWN / HTTP/1.0' => 400`; `kvmd.logs.BadRequestFilter` has
    already said what was wrong and where from, at most once a minute. aiohttp gives every
    such request the headers of one shared placeholder message, `web_protocol.ERROR`.
    """
    return request.raw_headers is ERROR.raw_headers
