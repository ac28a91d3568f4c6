# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/auth: login, logout and the cheap check nginx's auth_request calls."""

from typing import Annotated

import msgspec
from aiohttp import web

from kvmd.auth.principal import Access, Permission
from kvmd.errors import ForbiddenError, PermissionDeniedError, ValidatorError
from kvmd.server.auth import TOKEN_COOKIE, check_passwd, check_token, check_user, requires
from kvmd.server.errors import json_response
from kvmd.server.keys import AUTH, AUTH_LABEL, CONFIG, PRINCIPAL
from kvmd.server.params import parse_params, read_form

routes = web.RouteTableDef()


class LoginForm(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    passwd: str = ""
    expire: Annotated[int, msgspec.Meta(ge=0, le=10 * 365 * 86400)] = 0
    redirect: str | None = None


@routes.post("/auth/login")
@requires(Access.PUBLIC)
async def login(request: web.Request) -> web.Response:
    form = parse_params(await read_form(request), LoginForm)
    (user, passwd) = (check_user(form.user), check_passwd(form.passwd))
    config = request.app[CONFIG].kvmd.auth
    location = _check_redirect(form.redirect, config.allow_redirects)
    manager = request.app[AUTH]
    if not manager.enabled:
        return json_response({})
    request[AUTH_LABEL] = f"{user} (login)"
    if not await manager.check_password(user, passwd):
        raise ForbiddenError
    token = manager.login(user, form.expire)
    if location is None:
        response = json_response({})
    else:
        response = web.Response(status=302, headers={"Location": location})
    samesite = config.cookie_samesite
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite=samesite.capitalize(),
        secure=samesite == "none",  # browsers drop SameSite=None cookies that are not Secure
    )
    return response


def _check_redirect(redirect: str | None, allowed: list[str]) -> str | None:
    if redirect is None:
        return None
    if redirect.lower() not in {"", *(a.lower() for a in allowed)}:
        raise ValidatorError(f"The argument {redirect[:64]!r} is not a valid redirect")
    return redirect or "/"


@routes.post("/auth/logout")
@requires(Access.AUTHENTICATED)
async def logout(request: web.Request) -> web.Response:
    # Like PiKVM: it needs the session cookie, and ends every session of its user.
    token = check_token(request.cookies.get(TOKEN_COOKIE, ""))
    request.app[AUTH].logout(token)
    return json_response({})


class CheckQuery(msgspec.Struct, frozen=True, kw_only=True):
    # Permissions the caller must hold, e.g. `video` for nginx guarding the stream.
    require: str = ""


@routes.get("/auth/check")
@requires(Access.AUTHENTICATED)
async def check(request: web.Request) -> web.Response:
    query = parse_params(request.query, CheckQuery)
    principal = request[PRINCIPAL]
    for permission in _permissions(query.require):
        if not principal.allows(permission):
            raise PermissionDeniedError(f"Permission '{permission}' required")
    return json_response({})


def _permissions(raw: str) -> list[Permission]:
    names = [name for name in raw.replace(" ", ",").lower().split(",") if name]
    try:
        return [Permission(name) for name in names]
    except ValueError:
        raise ValidatorError(f"The argument {raw[:64]!r} is not a valid require") from None
