# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/auth/users, /roles and /keys: managing who may do what (SECURITY.md §A, §B).

Guards: nobody grants a permission they do not hold, and the last enabled admin can't be
removed, disabled or demoted.
"""

import datetime
import re
import time
from typing import Annotated

import msgspec
from aiohttp import web

from kvmd.api.auth import end_sessions_of, list_sessions
from kvmd.auth.accounts import BUILTIN_ROLES, ROLE_MAX, Accounts, RoleEntry, UserEntry
from kvmd.auth.apikeys import KEY_ID_RE, ApiKey, parse_nets
from kvmd.auth.htpasswd import hash_password
from kvmd.auth.principal import (
    Access,
    Kind,
    Permission,
    Principal,
    Via,
    effective,
    ordered,
    parse_permissions,
    sorted_names,
)
from kvmd.auth.rules import passwd_problem, user_problem
from kvmd.errors import (
    AlreadyExistsError,
    InUseError,
    LastAdminError,
    NotFoundError,
    OperationError,
    PermissionDeniedError,
    ValidatorError,
)
from kvmd.server.auth import audit_args, check_passwd, check_user, remote_of, requires
from kvmd.server.errors import json_response
from kvmd.server.keys import AUTH, CONFIG, PRINCIPAL, WS_HUB
from kvmd.server.params import as_list, parse_params, read_params

routes = web.RouteTableDef()

Names = str | list[str] | None
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9._-]*$")
_NOTE_MAX = 1024
_TEN_YEARS = 10 * 365 * 86400


def _accounts(request: web.Request) -> Accounts:
    accounts = request.app[AUTH].accounts
    accounts.reload()  # act on the files as they are now, not as of a second ago
    return accounts


def _no_escalation(principal: Principal, granted: frozenset[Permission]) -> None:
    """A principal grants only what it holds (SECURITY.md §3.8 rule 4)."""
    missing = effective(granted) - principal.permissions
    if missing:
        raise PermissionDeniedError(
            "Can't grant permissions you do not hold: " + ", ".join(sorted_names(missing))
        )


def _permissions(raw: Names) -> frozenset[Permission] | None:
    names = as_list(raw)
    if names is None:
        return None
    try:
        return parse_permissions(names)
    except ValueError as exc:
        raise ValidatorError(f"The argument is not a valid permissions: {exc}") from None


def _roles(accounts: Accounts, raw: Names) -> list[str] | None:
    roles = as_list(raw)
    for role in roles or []:
        if not accounts.has_role(role):
            raise ValidatorError(f"The argument {role[:64]!r} is not a valid role")
    return roles


def _require_admins(admins: list[str]) -> None:
    """The admins a change would leave: none is refused."""
    if not admins:
        raise LastAdminError


async def _rights_changed(request: web.Request) -> None:
    # Websockets learn their new rights at once, or are closed with 4401.
    await request.app[WS_HUB].refresh()


# --- users -------------------------------------------------------------------------


@routes.get("/auth/users")
@requires(Permission.ADMIN)
async def get_users(request: web.Request) -> web.Response:
    manager = request.app[AUTH]
    accounts = _accounts(request)
    sessions = list_sessions(request, request[PRINCIPAL])
    users = []
    for user, entry in accounts.users():
        last = manager.last_logins.get(user)
        users.append(
            {
                "user": user,
                "roles": list(accounts.roles_of(user)),
                "default_role": entry.roles is None,
                "source": "htpasswd",
                "disabled": entry.disabled,
                "locked_until": manager.locked_until(user),
                "must_change_passwd": entry.must_change_passwd,
                "note": entry.note,
                "created": entry.created,
                "last_login": last[0] if last else None,
                "last_login_from": last[1] if last else None,
                "sessions": sum(1 for s in sessions if s["user"] == user),
            }
        )
    return json_response({"users": users})


class CreateUser(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    passwd: str
    roles: Names = None
    disabled: bool = False
    must_change_passwd: bool = False
    note: Annotated[str, msgspec.Meta(max_length=_NOTE_MAX)] = ""


@routes.post("/auth/users/create")
@requires(Permission.ADMIN, audit="auth.users.create")
async def create_user(request: web.Request) -> web.Response:
    params = await read_params(request, CreateUser)
    accounts = _accounts(request)
    user = _new_user(params.user)
    _new_passwd(params.passwd)
    roles = _roles(accounts, params.roles)
    audit_args(request, {"user": user, "roles": roles})
    if accounts.exists(user):
        raise AlreadyExistsError(f"User {user!r} exists")
    _no_escalation(request[PRINCIPAL], accounts.permissions_with(roles or []))
    entry = UserEntry(
        roles=roles,
        disabled=params.disabled,
        must_change_passwd=params.must_change_passwd,
        note=params.note,
        created=round(time.time(), 3),
    )
    accounts.set_entry(user, entry)
    accounts.set_hash(user, hash_password(params.passwd))
    return json_response({"user": user})


def _new_user(raw: str) -> str:
    user = raw.strip()
    problem = user_problem(user)
    if problem:
        raise ValidatorError(f"The argument is not a valid user: {problem}")
    return user


def _new_passwd(passwd: str) -> None:
    problem = passwd_problem(passwd)
    if problem:
        raise ValidatorError(f"The argument is not a valid passwd: {problem}")


class UserQuery(msgspec.Struct, frozen=True, kw_only=True):
    user: str


class SetUserParams(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    roles: Names = None
    disabled: bool | None = None
    must_change_passwd: bool | None = None
    note: Annotated[str, msgspec.Meta(max_length=_NOTE_MAX)] | None = None


@routes.post("/auth/users/set_params")
@requires(Permission.ADMIN, audit="auth.users.set_params")
async def set_user_params(request: web.Request) -> web.Response:
    params = await read_params(request, SetUserParams)
    accounts = _accounts(request)
    user = _existing_user(accounts, params.user)
    roles = _roles(accounts, params.roles)
    audit_args(request, {"user": user, "roles": roles, "disabled": params.disabled})
    old = accounts.entry(user)
    if roles is not None:
        _no_escalation(request[PRINCIPAL], accounts.permissions_with(roles))
    new = msgspec.structs.replace(
        old,
        roles=roles if roles is not None else old.roles,
        disabled=params.disabled if params.disabled is not None else old.disabled,
        must_change_passwd=(
            params.must_change_passwd
            if params.must_change_passwd is not None
            else old.must_change_passwd
        ),
        note=params.note if params.note is not None else old.note,
    )
    if accounts.is_admin(user):
        _require_admins(accounts.admins(user=(user, new)))
    accounts.set_entry(user, new)
    if new.disabled and not old.disabled:
        await end_sessions_of(request, user)
    await _rights_changed(request)
    return json_response({"user": user})


def _existing_user(accounts: Accounts, raw: str) -> str:
    user = check_user(raw)
    if not accounts.exists(user):
        raise NotFoundError(f"No such user: {user!r}")
    return user


class SetPasswd(msgspec.Struct, frozen=True, kw_only=True):
    user: str | None = None
    passwd: str
    old_passwd: str | None = None


@routes.post("/auth/users/set_passwd")
@requires(Access.AUTHENTICATED, before_passwd_change=True, audit="auth.users.set_passwd")
async def set_passwd(request: web.Request) -> web.Response:
    params = await read_params(request, SetPasswd)
    principal = request[PRINCIPAL]
    accounts = _accounts(request)
    own = principal.kind is Kind.USER and params.user in (None, principal.user)
    user = principal.user if own else (params.user or "")
    audit_args(request, {"user": user})
    if own:
        # Your own password needs the old one: a borrowed browser must not take the account.
        old = check_passwd(params.old_passwd or "")
        await request.app[AUTH].verify(user, old, via=Via.TOKEN, remote=remote_of(request))
    elif not principal.allows(Permission.ADMIN):
        raise PermissionDeniedError("Permission 'admin' required")
    user = _existing_user(accounts, user)
    _new_passwd(params.passwd)
    accounts.set_hash(user, hash_password(params.passwd))
    entry = accounts.entry(user)
    if entry.must_change_passwd:
        accounts.set_entry(user, msgspec.structs.replace(entry, must_change_passwd=False))
    request.app[AUTH].unlock(user)
    return json_response({"user": user})


class RemoveUser(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    force: bool = False


@routes.post("/auth/users/remove")
@requires(Permission.ADMIN, audit="auth.users.remove")
async def remove_user(request: web.Request) -> web.Response:
    params = parse_params(request.query, RemoveUser)
    accounts = _accounts(request)
    user = _existing_user(accounts, params.user)
    if accounts.is_admin(user):
        _require_admins(accounts.admins(user=(user, None)))
    live = [s for s in list_sessions(request, request[PRINCIPAL]) if s["user"] == user]
    if live and not params.force:
        raise InUseError(f"User {user!r} has {len(live)} live sessions; force=1 ends them")
    # Removed before the first await: a concurrent removal must see this one's result,
    # or two admins removing each other would both pass the last-admin check.
    accounts.set_hash(user, None)
    accounts.set_entry(user, None)
    await end_sessions_of(request, user)
    await _rights_changed(request)
    return json_response({"user": user})


# --- roles -------------------------------------------------------------------------


@routes.get("/auth/roles")
@requires(Permission.ADMIN)
async def get_roles(request: web.Request) -> web.Response:
    accounts = _accounts(request)
    roles = [
        {"name": name, "permissions": sorted_names(perms), "builtin": builtin}
        for (name, perms, builtin) in accounts.roles()
    ]
    return json_response({"roles": roles})


class RoleParams(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    permissions: Names = None
    note: Annotated[str, msgspec.Meta(max_length=_NOTE_MAX)] | None = None


def _role_name(raw: str) -> str:
    name = raw.strip()
    if len(name) > ROLE_MAX or not _ROLE_RE.match(name):
        raise ValidatorError(f"The argument {name[:64]!r} is not a valid role name")
    return name


def _custom_role(accounts: Accounts, raw: str) -> str:
    name = _role_name(raw)
    if name in BUILTIN_ROLES:
        raise OperationError(f"The built-in role {name!r} can't be changed")
    if not accounts.has_role(name):
        raise NotFoundError(f"No such role: {name!r}")
    return name


@routes.post("/auth/roles/create")
@requires(Permission.ADMIN, audit="auth.roles.create")
async def create_role(request: web.Request) -> web.Response:
    params = await read_params(request, RoleParams)
    accounts = _accounts(request)
    name = _role_name(params.name)
    permissions = _permissions(params.permissions) or frozenset()
    audit_args(request, {"name": name, "permissions": sorted_names(permissions)})
    if accounts.has_role(name):
        raise AlreadyExistsError(f"Role {name!r} exists")
    _no_escalation(request[PRINCIPAL], permissions)
    accounts.set_role(name, RoleEntry(permissions=ordered(permissions), note=params.note or ""))
    return json_response({"name": name})


@routes.post("/auth/roles/set_params")
@requires(Permission.ADMIN, audit="auth.roles.set_params")
async def set_role_params(request: web.Request) -> web.Response:
    params = await read_params(request, RoleParams)
    accounts = _accounts(request)
    name = _custom_role(accounts, params.name)
    old = accounts.custom_role(name)
    permissions = _permissions(params.permissions)
    if permissions is not None:
        audit_args(request, {"name": name, "permissions": sorted_names(permissions)})
        _no_escalation(request[PRINCIPAL], permissions)
    new = RoleEntry(
        permissions=ordered(permissions) if permissions is not None else old.permissions,
        note=params.note if params.note is not None else old.note,
    )
    _require_admins(accounts.admins(role=(name, new)))
    accounts.set_role(name, new)
    await _rights_changed(request)
    return json_response({"name": name})


class RoleQuery(msgspec.Struct, frozen=True, kw_only=True):
    name: str


@routes.post("/auth/roles/remove")
@requires(Permission.ADMIN, audit="auth.roles.remove")
async def remove_role(request: web.Request) -> web.Response:
    params = parse_params(request.query, RoleQuery)
    accounts = _accounts(request)
    name = _custom_role(accounts, params.name)
    if name == accounts.default_role:
        raise InUseError(f"Role {name!r} is auth.default_role")
    users = accounts.role_users(name)
    if users:
        raise InUseError(f"Role {name!r} is held by: {', '.join(users[:10])}")
    accounts.set_role(name, None)
    return json_response({"name": name})


# --- API keys ----------------------------------------------------------------------


def _may_manage_keys(request: web.Request, owner: str | None) -> None:
    """`admin` manages every key; with `auth.self_keys` a user manages their own.

    `owner` None is the listing, which is then narrowed to the caller's keys.
    """
    principal = request[PRINCIPAL]
    if principal.allows(Permission.ADMIN):
        return
    self_keys = request.app[CONFIG].kvmd.auth.self_keys and principal.kind is Kind.USER
    if self_keys and owner in (None, principal.user):
        return
    raise PermissionDeniedError("Permission 'admin' required")


def _owned_key(request: web.Request, key_id: str) -> ApiKey:
    key = request.app[AUTH].keys.get(key_id)
    if key is None:
        raise NotFoundError("No such API key")
    _may_manage_keys(request, key.owner)
    return key


@routes.get("/auth/keys")
@requires(Access.AUTHENTICATED)
async def get_keys(request: web.Request) -> web.Response:
    _may_manage_keys(request, None)
    principal = request[PRINCIPAL]
    keys = request.app[AUTH].keys
    keys.reload()
    now = time.time()
    mine = principal.allows(Permission.ADMIN)
    return json_response(
        {"keys": [k.public(now) for k in keys.all() if mine or k.owner == principal.user]}
    )


class KeyParams(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None
    name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    permissions: Names = None
    role: str | None = None
    read_only: bool | None = None
    expire: Annotated[int, msgspec.Meta(ge=1, le=_TEN_YEARS)] | None = None
    expires: str | float | None = None
    owner: str | None = None
    allowed_nets: Names = None
    enabled: bool | None = None


def _key_permissions(accounts: Accounts, params: KeyParams) -> frozenset[Permission] | None:
    if params.role is not None:
        if params.permissions is not None:
            raise ValidatorError("Give either permissions or role")
        if not accounts.has_role(params.role):
            raise ValidatorError(f"The argument {params.role[:64]!r} is not a valid role")
        return accounts.role_permissions(params.role)
    return _permissions(params.permissions)


def _expires(params: KeyParams) -> float | None:
    if params.expire is not None:
        return round(time.time() + params.expire, 3)
    if params.expires is None or params.expires == "":
        return None
    raw = params.expires
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(str(raw))
    except ValueError:
        raise ValidatorError(f"The argument {str(raw)[:64]!r} is not a valid expires") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _nets(raw: Names) -> list[str] | None:
    nets = as_list(raw)
    try:
        return parse_nets(nets) if nets is not None else None
    except ValueError as exc:
        raise ValidatorError(f"The argument is not a valid allowed_nets: {exc}") from None


@routes.post("/auth/keys/create")
@requires(Access.AUTHENTICATED, audit="auth.keys.create")
async def create_key(request: web.Request) -> web.Response:
    params = await read_params(request, KeyParams)
    principal = request[PRINCIPAL]
    accounts = _accounts(request)
    permissions = _key_permissions(accounts, params) or frozenset()
    owner = check_user(params.owner) if params.owner else (principal.owner or principal.user)
    _may_manage_keys(request, owner)
    if not (accounts.exists(owner) or accounts.is_directory_user(owner)):
        raise ValidatorError(f"The argument {owner[:64]!r} is not a valid owner")
    _no_escalation(principal, permissions)
    (key, secret) = request.app[AUTH].keys.create(
        name=params.name or "",
        owner=owner,
        permissions=permissions,
        read_only=bool(params.read_only),
        expires=_expires(params),
        allowed_nets=_nets(params.allowed_nets) or [],
    )
    audit_args(
        request,
        {
            "id": key.id,
            "name": key.name,
            "owner": owner,
            "permissions": sorted_names(permissions),
            "read_only": key.read_only,
        },
    )
    # The only time the secret leaves the daemon.
    return json_response({"key": key.public(time.time()), "secret": secret})


def _key_id(params: "KeyParams | KeyQuery") -> str:
    key_id = (params.id or "").strip()
    if not KEY_ID_RE.match(key_id):
        raise ValidatorError(f"The argument {key_id[:64]!r} is not a valid id")
    return key_id


@routes.post("/auth/keys/set_params")
@requires(Access.AUTHENTICATED, audit="auth.keys.set_params")
async def set_key_params(request: web.Request) -> web.Response:
    params = await read_params(request, KeyParams)
    manager = request.app[AUTH]
    key = _owned_key(request, _key_id(params))
    permissions = _key_permissions(_accounts(request), params)
    if permissions is not None:
        _no_escalation(request[PRINCIPAL], permissions)
    nets = _nets(params.allowed_nets)
    expires = _expires(params)
    changed = msgspec.structs.replace(
        key,
        name=params.name if params.name is not None else key.name,
        permissions=ordered(permissions) if permissions is not None else key.permissions,
        read_only=params.read_only if params.read_only is not None else key.read_only,
        expires=expires if (params.expire, params.expires) != (None, None) else key.expires,
        allowed_nets=nets if nets is not None else key.allowed_nets,
        enabled=params.enabled if params.enabled is not None else key.enabled,
    )
    manager.keys.replace(changed)
    audit_args(request, {"id": key.id, "enabled": changed.enabled})
    await _rights_changed(request)
    return json_response({"key": changed.public(time.time())})


class KeyQuery(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None
    grace: Annotated[float, msgspec.Meta(ge=0, le=86400 * 30)] = 0.0


@routes.post("/auth/keys/rotate")
@requires(Access.AUTHENTICATED, audit="auth.keys.rotate")
async def rotate_key(request: web.Request) -> web.Response:
    params = parse_params(request.query, KeyQuery)
    key_id = _owned_key(request, _key_id(params)).id
    secret = request.app[AUTH].keys.rotate(key_id, params.grace)
    return json_response({"id": key_id, "secret": secret})


@routes.post("/auth/keys/remove")
@requires(Access.AUTHENTICATED, audit="auth.keys.remove")
async def remove_key(request: web.Request) -> web.Response:
    params = parse_params(request.query, KeyQuery)
    key = request.app[AUTH].keys.remove(_owned_key(request, _key_id(params)).id)
    await end_sessions_of(request, key.id)
    await _rights_changed(request)
    return json_response({"id": key.id})
