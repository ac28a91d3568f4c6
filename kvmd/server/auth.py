# SPDX-License-Identifier: GPL-3.0-or-later
"""Authentication, the read-only guard, permissions and the audit trail of every request.

See API.md §2 and SECURITY.md §3.4.
"""

import base64
import dataclasses
import re
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from kvmd.auth.principal import (
    NOBODY,
    Access,
    Permission,
    Principal,
    RouteAccess,
    Via,
    claimed,
)
from kvmd.auth.rules import KEY_PREFIX
from kvmd.errors import (
    ForbiddenError,
    PasswordChangeRequiredError,
    PermissionDeniedError,
    ReadOnlyError,
    TooManyRequestsError,
    UnauthorizedError,
    ValidatorError,
)
from kvmd.logs import is_secret_param
from kvmd.server.keys import AUDIT, AUDIT_ARGS, AUTH, AUTH_LABEL, PRINCIPAL, UNAUTH_PATHS

H = TypeVar("H", bound=Callable[..., object])

_RULE_ATTR = "kvmd_route_rule"
_USER = re.compile(r"^[a-z_]([a-z0-9@._-]*[a-z0-9_-])?$")
_PASSWD = re.compile(r"^[\x20-\x7e]*$")
_TOKEN = re.compile(r"^[0-9a-f]{64}$")
TOKEN_COOKIE = "auth_token"  # noqa: S105 -- a cookie name, not a secret
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclasses.dataclass(frozen=True, slots=True)
class RouteRule:
    access: RouteAccess
    # Allowed to a read-only key although it is not a GET (logout, keepalive).
    read_only_ok: bool = False
    # Allowed to a user who must change the password first (check, info, set_passwd).
    before_passwd_change: bool = False
    # The audit trail's action name; "" records nothing.
    audit: str = ""
    # Keyboard or mouse input: counted per minute in the trail, never recorded.
    counts_hid: bool = False


def requires(
    access: RouteAccess,
    *,
    read_only_ok: bool = False,
    before_passwd_change: bool = False,
    audit: str = "",
    counts_hid: bool = False,
) -> Callable[[H], H]:
    """Declare what a route needs; `make_app` refuses routes that declare nothing."""
    rule = RouteRule(access, read_only_ok, before_passwd_change, audit, counts_hid)

    def mark(handler: H) -> H:
        setattr(handler, _RULE_ATTR, rule)
        return handler

    return mark


def rule_of(handler: object) -> RouteRule | None:
    rule = getattr(handler, _RULE_ATTR, None)
    return rule if isinstance(rule, RouteRule) else None


def access_of(handler: object) -> RouteAccess | None:
    rule = rule_of(handler)
    return rule.access if rule is not None else None


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


def remote_of(request: web.BaseRequest) -> str:
    # On the unix socket the peer is nginx, which names the real client in X-Real-IP;
    # on TCP the peer address is the truth and the header could be forged.
    return request.remote or request.headers.get("X-Real-IP") or ""


async def authenticate(request: web.Request) -> Principal:
    """PiKVM's order: X-KVMD headers, the cookie, Basic; then Bearer. No fallthrough."""
    manager = request.app[AUTH]
    remote = remote_of(request)
    user = request.headers.get("X-KVMD-User", "")
    if user:
        user = check_user(user)
        passwd = check_passwd(request.headers.get("X-KVMD-Passwd", ""))
        return await _verify(request, user, passwd, Via.XHDR)
    token = request.cookies.get(TOKEN_COOKIE, "")
    if token:
        request[AUTH_LABEL] = "- (token)"
        principal = manager.token_principal(check_token(token), remote)
        request[AUTH_LABEL] = principal.label
        return principal
    authorization = request.headers.get("Authorization", "")
    scheme = authorization[:7].lower()
    if scheme.startswith("basic "):
        (user, passwd) = _decode_basic(authorization[6:])
        return await _verify(request, user, passwd, Via.BASIC)
    if scheme == "bearer " and authorization[7:].strip().startswith(KEY_PREFIX):
        (key_id, _, secret) = authorization[7:].strip().rpartition(".")
        if not key_id.startswith(KEY_PREFIX) or not secret:
            raise UnauthorizedError
        return await _verify(request, check_user(key_id), check_passwd(secret), Via.BEARER)
    raise UnauthorizedError


async def _verify(request: web.Request, user: str, passwd: str, via: Via) -> Principal:
    request[AUTH_LABEL] = f"{user} ({via})"
    remote = remote_of(request)
    try:
        return await request.app[AUTH].verify(user, passwd, via=via, remote=remote)
    except (ForbiddenError, TooManyRequestsError) as exc:
        request.app[AUDIT].record(
            principal=user,
            kind=claimed(user, via).kind,
            via=via,
            remote=remote,
            action="auth.denied",
            args={"path": request.path},
            result=type(exc).__name__,
        )
        raise


def _decode_basic(encoded: str) -> tuple[str, str]:
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 underneath
        raise UnauthorizedError from None
    # RFC 7617: the user id holds no colon, the password may.
    (user, colon, passwd) = pair.partition(":")
    if not colon:
        raise UnauthorizedError
    return (check_user(user), check_passwd(passwd))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404 and 405 come before any credential check
    rule = rule_of(request.match_info.handler)
    if rule is None:  # make_app checks every route, so only a bug gets here
        raise PermissionDeniedError("Route declares no permission")
    manager = request.app[AUTH]
    if rule.access is Access.PUBLIC or not manager.enabled or _is_unauth_path(request):
        request[PRINCIPAL] = NOBODY
    else:
        principal = await authenticate(request)
        request[PRINCIPAL] = principal
        _check_rights(request, principal, rule)
    if rule.counts_hid:
        p = request[PRINCIPAL]
        request.app[AUDIT].count_hid(p.user, p.kind, p.via, remote_of(request))
    if not rule.audit:
        return await handler(request)
    return await _audited(request, handler, rule.audit)


def _check_rights(request: web.Request, principal: Principal, rule: RouteRule) -> None:
    # The read-only guard runs before the permission check (SECURITY.md §A).
    if principal.read_only and request.method not in _SAFE_METHODS and not rule.read_only_ok:
        raise ReadOnlyError
    if principal.must_change_passwd and not rule.before_passwd_change:
        raise PasswordChangeRequiredError
    if isinstance(rule.access, Permission):
        _require(principal, rule.access)


def _require(principal: Principal, permission: Permission) -> None:
    if not principal.allows(permission):
        raise PermissionDeniedError(f"Permission '{permission}' required")


def require_change(request: web.Request, permission: Permission) -> None:
    """A GET that changes state (PiKVM's `snapshot?save=1`) needs what its undoing needs.

    The route's own rule let the GET through, read-only guard included; this is the rest.
    """
    principal = request[PRINCIPAL]
    if principal.read_only:
        raise ReadOnlyError
    _require(principal, permission)


async def _audited(request: web.Request, handler: Handler, action: str) -> web.StreamResponse:
    result = "ok"
    try:
        return await handler(request)
    except BaseException as exc:  # recorded, then raised on unchanged
        result = type(exc).__name__
        raise
    finally:
        audit(request, action, result)


def audit_args(request: web.Request, args: dict[str, object]) -> None:
    """Arguments of the request's audit record beyond its query (never a secret)."""
    request[AUDIT_ARGS] = args


def audit(request: web.Request, action: str, result: str = "ok") -> None:
    """Record `action` by the request's principal.

    The record's args are the query (secrets masked) and what the handler gave
    `audit_args`.
    """
    principal = request.get(PRINCIPAL, NOBODY)
    args: dict[str, object] = {
        name: "***" if is_secret_param(name) else value[:256]
        for (name, value) in request.query.items()
    }
    args.update(request.get(AUDIT_ARGS, {}))
    request.app[AUDIT].record(
        principal=principal.user,
        kind=principal.kind,
        via=principal.via,
        remote=remote_of(request),
        action=action,
        args=args,
        result=result,
    )


def _is_unauth_path(request: web.Request) -> bool:
    return request.path in request.app[UNAUTH_PATHS]
