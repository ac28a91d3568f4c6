# SPDX-License-Identifier: GPL-3.0-or-later
"""Authentication and permission checks for every request (API.md §2, SECURITY.md §3.4)."""

import base64
import binascii
import re
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from kvmd.auth.principal import NOBODY, Access, Permission, Principal, RouteAccess, Via
from kvmd.errors import ForbiddenError, PermissionDeniedError, UnauthorizedError, ValidatorError
from kvmd.server.keys import AUTH, AUTH_LABEL, PRINCIPAL, UNAUTH_PATHS

H = TypeVar("H", bound=Callable[..., object])

_ACCESS_ATTR = "kvmd_access"
_USER = re.compile(r"^[a-z_]([a-z0-9@._-]*[a-z0-9_-])?$")
_PASSWD = re.compile(r"^[\x20-\x7e]*$")
_TOKEN = re.compile(r"^[0-9a-f]{64}$")
TOKEN_COOKIE = "auth_token"  # noqa: S105 -- a cookie name, not a secret


def requires(access: RouteAccess) -> Callable[[H], H]:
    """Declare what a route needs; `make_app` refuses routes that declare nothing."""

    def mark(handler: H) -> H:
        setattr(handler, _ACCESS_ATTR, access)
        return handler

    return mark


def access_of(handler: object) -> RouteAccess | None:
    access = getattr(handler, _ACCESS_ATTR, None)
    return access if isinstance(access, Permission | Access) else None


def check_user(raw: str) -> str:
    user = raw.strip()
    if len(raw) > 128 or not _USER.match(user):
        raise ValidatorError(f"The argument {user[:64]!r} is not a valid user")
    return user


def check_passwd(raw: str) -> str:
    if len(raw) > 512 or not _PASSWD.match(raw):
        # Never echo a password, not even a malformed one.
        raise ValidatorError("The argument is not a valid passwd characters")
    return raw


def check_token(raw: str) -> str:
    token = raw.strip()
    if not _TOKEN.match(token):
        raise ValidatorError("The argument is not a valid auth token")
    return token


async def authenticate(request: web.Request) -> Principal:
    """PiKVM's order: X-KVMD headers, then the cookie, then Basic. No fallthrough."""
    manager = request.app[AUTH]
    user = request.headers.get("X-KVMD-User", "")
    if user:
        user = check_user(user)
        request[AUTH_LABEL] = f"{user} (xhdr)"
        passwd = check_passwd(request.headers.get("X-KVMD-Passwd", ""))
        if await manager.check_password(user, passwd):
            return Principal(user=user, via=Via.XHDR)
        raise ForbiddenError
    token = request.cookies.get(TOKEN_COOKIE, "")
    if token:
        request[AUTH_LABEL] = "- (token)"
        token_user = manager.check_token(check_token(token))
        if token_user is None:
            raise ForbiddenError
        request[AUTH_LABEL] = f"{token_user} (token)"
        return Principal(user=token_user, via=Via.TOKEN)
    authorization = request.headers.get("Authorization", "")
    if authorization[:6].lower() == "basic ":
        (user, passwd) = _decode_basic(authorization[6:])
        request[AUTH_LABEL] = f"{user} (basic)"
        if await manager.check_password(user, passwd):
            return Principal(user=user, via=Via.BASIC)
        raise ForbiddenError
    raise UnauthorizedError


def _decode_basic(encoded: str) -> tuple[str, str]:
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise UnauthorizedError from None
    parts = pair.split(":")
    if len(parts) != 2:
        raise UnauthorizedError
    return (check_user(parts[0]), check_passwd(parts[1]))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404 and 405 come before any credential check
    access = access_of(request.match_info.handler)
    if access is None:  # make_app checks every route, so only a bug gets here
        raise PermissionDeniedError("Route declares no permission")
    manager = request.app[AUTH]
    if access is Access.PUBLIC or not manager.enabled or _is_unauth_path(request):
        request[PRINCIPAL] = NOBODY
        return await handler(request)
    principal = await authenticate(request)
    if isinstance(access, Permission) and not principal.allows(access):
        raise PermissionDeniedError(f"Permission '{access}' required")
    request[PRINCIPAL] = principal
    return await handler(request)


def _is_unauth_path(request: web.Request) -> bool:
    return request.path in request.app[UNAUTH_PATHS]
