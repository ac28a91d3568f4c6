# SPDX-License-Identifier: GPL-3.0-or-later
"""Access-log lines in PiKVM's format, with secrets in query strings masked."""

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import ERROR

from kvmd.logs import redact_query
from kvmd.server.auth import remote_of
from kvmd.server.keys import AUTH_LABEL


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(20) or _is_unparsed(request):  # 20: logging.INFO
            return
        label = request.get(AUTH_LABEL, "-")
        remote = remote_of(request) or "-"
        target = request.path
        if request.query_string:
            target += "?" + redact_query(request.query_string)
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
            request.headers.get("Referer", "-"),
            request.headers.get("User-Agent", "-"),
        )


def _is_unparsed(request: web.BaseRequest) -> bool:
    """Whether this is aiohttp's stand-in for a request it could not parse (and answered 400).

    Its line would read `'UNKNOWN / HTTP/1.0' => 400`; `kvmd.logs.BadRequestFilter` has
    already said what was wrong and where from, at most once a minute. aiohttp gives every
    such request the headers of one shared placeholder message, `web_protocol.ERROR`.
    """
    return request.raw_headers is ERROR.raw_headers
