# SPDX-License-Identifier: GPL-3.0-or-later
"""The PiKVM envelope, and the one place where exceptions become HTTP statuses."""

import logging

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from kvmd.errors import HardwareError, KvmdError, TooManyRequestsError

logger = logging.getLogger(__name__)

_JSON = "application/json"


def encode_json(data: object) -> bytes:
    # Sorted and indented like PiKVM's answers: cheap at these sizes, and diffable by eye.
    return msgspec.json.format(msgspec.json.encode(data, order="sorted"), indent=4)


def json_response(result: object, status: int = 200) -> web.Response:
    body = encode_json({"ok": status == 200, "result": result})
    return web.Response(body=body, status=status, content_type=_JSON, charset="utf-8")


def error_response(error: str, msg: str, status: int) -> web.Response:
    return json_response({"error": error, "error_msg": msg}, status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except KvmdError as exc:
        if isinstance(exc, HardwareError):
            logger.exception("Hardware error in %s %s", request.method, request.path)
        response = error_response(type(exc).__name__, exc.msg, exc.http_status)
        if isinstance(exc, TooManyRequestsError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        # Unknown paths and methods stay aiohttp's plain text, as PiKVM's do;
        # other client errors (a body too large, say) get the envelope.
        if exc.status < 400 or exc.status in (404, 405):
            raise
        return error_response("HttpError", exc.reason, exc.status)
    except (HttpProcessingError, RequestPayloadError) as exc:
        # A body that breaks HTTP (a bad chunk, a short length, a Content-Encoding it does
        # not have), found only when the handler reads it: the client's fault, not ours.
        return error_response("HttpError", f"Bad request body: {type(exc).__name__}", 400)
    except ConnectionResetError:
        # The client went away while its body was read: nobody is left to answer.
        logger.info("%s %s: the client went away", request.method, request.path)
        return error_response("HttpError", "The client went away", 400)
    except Exception:
        logger.exception("Unhandled error in %s %s", request.method, request.path)
        return error_response("InternalError", "Internal server error", 500)
