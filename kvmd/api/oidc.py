# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/auth/oidc: single sign-on with OpenID Connect (beyond PiKVM).

`GET /auth/oidc` lists the providers for a login page; `…/<name>/login` sends the
browser to the provider; the provider sends it back to `…/<name>/callback`, which opens
an ordinary `auth_token` session, so everything after works as after a password login.
A failed sign-in in a browser lands back on the page it started from with the reason in
the URL's fragment (`#sso_error=…`); other clients get the error envelope.
"""

import urllib.parse

import msgspec
from aiohttp import web

from kvmd.api.auth import check_redirect, set_token_cookie
from kvmd.auth.principal import Access, Via, claimed
from kvmd.errors import ForbiddenError, KvmdError, NotFoundError
from kvmd.server.auth import audit, audit_args, remote_of, requires
from kvmd.server.errors import json_response
from kvmd.server.keys import AUTH, AUTH_LABEL, CONFIG, PRINCIPAL
from kvmd.server.params import parse_params

routes = web.RouteTableDef()

_STATE_COOKIE = "kvmd_oidc_state"


@routes.get("/auth/oidc")
@requires(Access.PUBLIC)
async def get_providers(request: web.Request) -> web.Response:
    manager = request.app[AUTH]
    providers = manager.sso.providers() if manager.enabled else []
    return json_response({"providers": [{"name": p.name, "title": p.title} for p in providers]})


class LoginQuery(msgspec.Struct, frozen=True, kw_only=True):
    redirect: str = "/"


@routes.get("/auth/oidc/{provider}/login")
@requires(Access.PUBLIC)
async def login(request: web.Request) -> web.Response:
    query = parse_params(request.query, LoginQuery)
    config = request.app[CONFIG].kvmd.auth
    landing = check_redirect(query.redirect, config.allow_redirects) or "/"
    name = request.match_info["provider"]
    if not request.app[AUTH].enabled:
        raise NotFoundError("Auth is off: there is nothing to sign in to")
    # The public URL: behind nginx the daemon sees /auth/…, the browser /api/auth/….
    scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
    callback = f"{scheme}://{request.host}/api/auth/oidc/{urllib.parse.quote(name)}/callback"
    (url, state) = await request.app[AUTH].sso.begin(name, callback, landing)
    response = web.Response(status=302, headers={"Location": url})
    # Lax, not Strict: the provider's redirect back is a cross-site navigation.
    response.set_cookie(
        _STATE_COOKIE,
        state,
        path="/",
        max_age=int(config.oidc.login_timeout),
        httponly=True,
        samesite="Lax",
        secure=scheme == "https",
    )
    return response


class CallbackQuery(msgspec.Struct, frozen=True, kw_only=True):
    state: str = ""
    code: str = ""
    # RFC 6749 §4.1.2.1: the provider's own refusal (access_denied, login_required, …).
    error: str = ""
    error_description: str = ""


@routes.get("/auth/oidc/{provider}/callback")
@requires(Access.PUBLIC)  # audited below, failures shown to a browser included
async def callback(request: web.Request) -> web.StreamResponse:
    query = parse_params(request.query, CallbackQuery)
    name = request.match_info["provider"]
    # The code is single-use and bound to this daemon's PKCE verifier; still not kept.
    audit_args(request, {"provider": name, "code": "***", "state": "***"})
    manager = request.app[AUTH]
    cookie = request.cookies.get(_STATE_COOKIE, "")
    try:
        if query.error:
            manager.sso.abandon(query.state)
            why = query.error_description or query.error
            raise ForbiddenError(f"The provider refused the sign-in: {why[:200]}")
        (identity, landing) = await manager.sso.finish(name, query.state, cookie, query.code)
        request[AUTH_LABEL] = f"{identity.user} (sso {name})"
        request[PRINCIPAL] = claimed(identity.user, Via.TOKEN)
        principal = manager.signed_on(identity, name)
    except KvmdError as exc:
        audit(request, "auth.sso", type(exc).__name__)
        if "text/html" not in request.headers.get("Accept", ""):
            raise
        return _back_to_login(str(exc) or type(exc).__name__)
    audit(request, "auth.sso")
    agent = request.headers.get("User-Agent", "")
    token = manager.login(principal, 0, remote=remote_of(request), user_agent=agent)
    response = web.Response(status=302, headers={"Location": landing})
    set_token_cookie(response, token, request.app[CONFIG].kvmd.auth.cookie_samesite)
    response.del_cookie(_STATE_COOKIE, path="/")
    return response


def _back_to_login(message: str) -> web.Response:
    fragment = urllib.parse.urlencode({"sso_error": message})
    response = web.Response(status=303, headers={"Location": f"/#{fragment}"})
    response.del_cookie(_STATE_COOKIE, path="/")
    return response
