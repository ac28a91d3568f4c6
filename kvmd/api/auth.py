# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/auth: login, logout, the check nginx's auth_request calls, and login sessions."""

from typing import Annotated, Literal

import msgspec
from aiohttp import web

from kvmd.auth.principal import (
    Access,
    Permission,
    Principal,
    Via,
    claimed,
    sorted_names,
)
from kvmd.auth.sessions import Session
from kvmd.errors import NotFoundError, OperationError, PermissionDeniedError, ValidatorError
from kvmd.server.auth import (
    TOKEN_COOKIE,
    audit_args,
    check_passwd,
    check_token,
    check_user,
    remote_of,
    requires,
)
from kvmd.server.errors import json_response
from kvmd.server.keys import AUTH, AUTH_LABEL, CONFIG, PRINCIPAL, WS_HUB
from kvmd.server.params import parse_params, read_form
from kvmd.server.ws import WsClient

routes = web.RouteTableDef()


class LoginForm(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    passwd: str = ""
    expire: Annotated[int, msgspec.Meta(ge=0, le=10 * 365 * 86400)] = 0
    redirect: str | None = None


@routes.post("/auth/login")
@requires(Access.PUBLIC, audit="auth.login")
async def login(request: web.Request) -> web.Response:
    form = parse_params(await read_form(request), LoginForm)
    (user, passwd) = (check_user(form.user), check_passwd(form.passwd))
    config = request.app[CONFIG].kvmd.auth
    location = check_redirect(form.redirect, config.allow_redirects)
    manager = request.app[AUTH]
    if not manager.enabled:
        return json_response({})
    request[AUTH_LABEL] = f"{user} (login)"
    # The trail names who tried, whether or not the password was right.
    request[PRINCIPAL] = claimed(user, Via.TOKEN)
    remote = remote_of(request)
    principal = await manager.verify(user, passwd, via=Via.TOKEN, remote=remote)
    agent = request.headers.get("User-Agent", "")
    token = manager.login(principal, form.expire, remote=remote, user_agent=agent)
    if location is None:
        response = json_response({})
    else:
        response = web.Response(status=302, headers={"Location": location})
    set_token_cookie(response, token, config.cookie_samesite)
    return response


def set_token_cookie(response: web.Response, token: str, samesite: str) -> None:
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite=samesite.capitalize(),
        secure=samesite == "none",  # browsers drop SameSite=None cookies that are not Secure
    )


def check_redirect(redirect: str | None, allowed: list[str]) -> str | None:
    if redirect is None:
        return None
    if redirect.lower() not in {"", *(a.lower() for a in allowed)}:
        raise ValidatorError(f"The argument {redirect[:64]!r} is not a valid redirect")
    return redirect or "/"


class LogoutQuery(msgspec.Struct, frozen=True, kw_only=True):
    # PiKVM ends every session of the user; `token` ends only this one.
    scope: Literal["user", "token"] = "user"


@routes.post("/auth/logout")
@requires(Access.AUTHENTICATED, read_only_ok=True, before_passwd_change=True, audit="auth.logout")
async def logout(request: web.Request) -> web.Response:
    query = parse_params(request.query, LogoutQuery)
    # Like PiKVM: it needs the session cookie.
    token = check_token(request.cookies.get(TOKEN_COOKIE, ""))
    ended = request.app[AUTH].logout(token, everything=query.scope == "user")
    await request.app[WS_HUB].close_sessions({session.id for session in ended})
    return json_response({})


class CheckQuery(msgspec.Struct, frozen=True, kw_only=True):
    # Permissions the caller must hold, e.g. `video` for nginx guarding the stream.
    require: str = ""


@routes.get("/auth/check")
@requires(Access.AUTHENTICATED, before_passwd_change=True)
async def check(request: web.Request) -> web.Response:
    query = parse_params(request.query, CheckQuery)
    principal = request[PRINCIPAL]
    for permission in _permissions(query.require):
        if not principal.allows(permission):
            raise PermissionDeniedError(f"Permission '{permission}' required")
    return json_response(describe(principal))


def describe(principal: Principal) -> dict[str, object]:
    """What /api/auth/check adds to PiKVM's empty result (SECURITY.md §3.4)."""
    return {
        "user": principal.user,
        "kind": str(principal.kind),
        "roles": list(principal.roles),
        "permissions": sorted_names(principal.permissions),
        "read_only": principal.read_only,
        "expires": principal.expires,
    }


def _permissions(raw: str) -> list[Permission]:
    names = [name for name in raw.replace(" ", ",").lower().split(",") if name]
    try:
        return [Permission(name) for name in names]
    except ValueError:
        raise ValidatorError(f"The argument {raw[:64]!r} is not a valid require") from None


# --- sessions ----------------------------------------------------------------------


class SessionsQuery(msgspec.Struct, frozen=True, kw_only=True):
    user: str | None = None


@routes.get("/auth/sessions")
@requires(Access.AUTHENTICATED)
async def get_sessions(request: web.Request) -> web.Response:
    query = parse_params(request.query, SessionsQuery)
    principal = request[PRINCIPAL]
    user = _whose(principal, query.user)
    entries = list_sessions(request, principal)
    return json_response({"sessions": [e for e in entries if user is None or e["user"] == user]})


def _whose(principal: Principal, asked: str | None) -> str | None:
    """Whose sessions a request may see: your own, or with `admin` anyone's (None = all)."""
    if principal.allows(Permission.ADMIN):
        return check_user(asked) if asked else None
    if asked and asked != principal.user:
        raise PermissionDeniedError("Permission 'admin' required")
    return principal.user


def list_sessions(request: web.Request, principal: Principal) -> list[dict[str, object]]:
    clients = request.app[WS_HUB].clients()
    out = [
        _session_entry(session, [c for c in clients if c.id == session.id], principal)
        for session in request.app[AUTH].sessions.all()
    ]
    # Websockets opened with header auth have no login session: each is its own entry.
    out += [_socket_entry(client) for client in clients if not client.principal.session]
    return sorted(out, key=lambda entry: (str(entry["user"]), float(entry["created"])))  # type: ignore[arg-type]


def _session_entry(
    session: Session, clients: list[WsClient], principal: Principal
) -> dict[str, object]:
    return {
        "id": session.id,
        "user": session.user,
        "kind": str(session.kind),
        "via": "token",
        "created": session.created,
        "last_seen": session.last_seen,
        "expires": session.expires(),
        "remote": session.remote,
        "user_agent": session.user_agent,
        "ws": len(clients),
        "streaming": any(client.stream for client in clients),
        "current": session.id == principal.session,
    }


def _socket_entry(client: WsClient) -> dict[str, object]:
    p = client.principal
    return {
        "id": client.id,
        "user": p.user,
        "kind": str(p.kind),
        "via": str(p.via),
        "created": client.created,
        "last_seen": client.created,
        "expires": p.expires,
        "remote": client.remote,
        "user_agent": client.user_agent,
        "ws": 1,
        "streaming": client.stream,
        "current": False,
    }


class RemoveSessionQuery(msgspec.Struct, frozen=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$")] | None = None
    user: str | None = None


@routes.post("/auth/sessions/remove")
@requires(Access.AUTHENTICATED, audit="auth.sessions.remove")
async def remove_session(request: web.Request) -> web.Response:
    query = parse_params(request.query, RemoveSessionQuery)
    principal = request[PRINCIPAL]
    if (query.id is None) == (query.user is None):
        raise ValidatorError("Give either id or user")
    entries = list_sessions(request, principal)
    if query.id is not None:
        chosen = [e for e in entries if e["id"] == query.id]
        if not chosen:
            raise NotFoundError("No such session")
        _whose(principal, str(chosen[0]["user"]))
    else:
        user = check_user(query.user or "")
        if not principal.allows(Permission.ADMIN):
            raise PermissionDeniedError("Permission 'admin' required")
        chosen = [e for e in entries if e["user"] == user]
    ids = {str(e["id"]) for e in chosen}
    await end_sessions(request, ids)
    audit_args(request, {"sessions": sorted(ids)})
    return json_response({"removed": sorted(ids)})


async def end_sessions(request: web.Request, ids: set[str]) -> None:
    """End these login sessions and close their websockets (and header-auth ones) with 4401."""
    sessions = request.app[AUTH].sessions
    for session_id in ids:
        session = sessions.by_id(session_id)
        if session is not None:
            sessions.close(session)
    await request.app[WS_HUB].close_sessions(ids)


async def end_sessions_of(request: web.Request, user: str) -> None:
    """Every session and websocket of `user` (a user or a key id)."""
    entries = list_sessions(request, request[PRINCIPAL])
    await end_sessions(request, {str(e["id"]) for e in entries if e["user"] == user})


@routes.post("/auth/sessions/keepalive")
@requires(Access.AUTHENTICATED, read_only_ok=True)
async def keepalive(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    manager = request.app[AUTH]
    session = manager.sessions.by_id(principal.session) if principal.session else None
    if session is None:
        raise OperationError("Not a login session: only the auth_token cookie can be kept alive")
    manager.sessions.keepalive(session)
    return json_response({"expires": session.expires()})
