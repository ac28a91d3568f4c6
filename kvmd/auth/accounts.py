# SPDX-License-Identifier: GPL-3.0-or-later
"""Users and roles (SECURITY.md §3.2, §3.3, §B).

Who exists is in htpasswd, which roles they hold in users.yaml, and what custom roles
grant in roles.yaml.

Files are re-read when they change on disk, so `kvmd-htpasswd` and hand edits take effect
without a restart. A file that stops parsing keeps its last good content in effect: falling
back to an empty users.yaml would turn every viewer into `auth.default_role`.

Directory users (kvmd.auth.external) are in none of these: what the service said at their
last login is kept in `auth.files.directory`, kvmd's own state, read once at start, so that
their API keys keep their owner's roles across restarts.
"""

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

import msgspec
import yaml

from kvmd.auth.directory import Directory
from kvmd.auth.files import FileSignature, atomic_write, signature
from kvmd.auth.htpasswd import Htpasswd, read_entries, write_entries
from kvmd.auth.principal import (
    ALL_PERMISSIONS,
    NO_PERMISSIONS,
    Permission,
    effective,
)
from kvmd.auth.rules import USER_MAX
from kvmd.config.load import read_yaml
from kvmd.errors import ConfigError, OperationError

logger = logging.getLogger(__name__)

# `auth.default_role: none`: a user no role names may not log in at all.
NO_ROLE = "none"
BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "admin": ALL_PERMISSIONS,
    "operator": ALL_PERMISSIONS - {Permission.LOGS, Permission.ADMIN},
    "viewer": frozenset({Permission.STATE, Permission.VIDEO}),
    "monitor": frozenset({Permission.STATE}),
}

# PiKVM's role rule is the user rule; roles are few, short names.
ROLE_MAX = 64


class UserEntry(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    # None: the user holds `auth.default_role`. A list, even an empty one, is exact.
    roles: list[str] | None = None
    disabled: bool = False
    must_change_passwd: bool = False
    note: str = ""
    created: float | None = None


class RoleEntry(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    permissions: list[Permission]
    note: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class UserRights:
    permissions: frozenset[Permission]
    roles: tuple[str, ...]
    must_change_passwd: bool


class Accounts:
    def __init__(
        self,
        htpasswd: Path,
        users: Path | None,
        roles: Path | None,
        default_role: str,
        role_map: dict[str, str] | None = None,
        *,
        directory: Path | None = None,
    ) -> None:
        self._htpasswd = Htpasswd(htpasswd)
        self._users_path = users
        self._roles_path = roles
        self._default_role = default_role
        self._role_map = role_map or {}
        # Users of the external service (kvmd.auth.external) -> what it said at their
        # last login, in memory and, unless None, in this file.
        self._external = Directory(directory)
        self._signatures: dict[Path, FileSignature | None] = {}
        self._known: frozenset[str] = frozenset()
        self._users: dict[str, UserEntry] = {}
        self._roles: dict[str, RoleEntry] = {}
        self._rights: dict[str, UserRights | None] = {}
        self.generation = 0  # bumped whenever anyone's rights may have changed
        self.reload(strict=True)

    @property
    def htpasswd(self) -> Htpasswd:
        return self._htpasswd

    # --- reading -------------------------------------------------------------------

    def reload(self, *, strict: bool = False) -> bool:
        """Re-read the files that changed; True if any did. `strict` raises on a bad file."""
        changed = False
        path = self._htpasswd.path
        sig = signature(path)
        if self._signatures.get(path, ()) != sig:
            try:
                known = frozenset(read_entries(path)) if sig is not None else frozenset()
            except OSError as exc:
                logger.error("Can't read %s: %s", path, exc)  # noqa: TRY400
            else:
                (self._known, self._signatures[path], changed) = (known, sig, True)
        for which in ("users", "roles"):
            changed |= self._reload_yaml(which, strict=strict)
        if changed:
            self._check_default_role()
            self._rights = {}
            self.generation += 1
        return changed

    def _reload_yaml(self, which: str, *, strict: bool) -> bool:
        path = self._users_path if which == "users" else self._roles_path
        if path is None:
            return False
        sig = signature(path)
        if self._signatures.get(path, ()) == sig:
            return False
        try:
            data = read_yaml(path) if sig is not None else {}
            if which == "users":
                users = msgspec.convert(data, dict[str, UserEntry])
                _check_users(users)
                self._users = users
            else:
                roles = msgspec.convert(data, dict[str, RoleEntry])
                _check_roles(roles)
                self._roles = roles
        except (ConfigError, msgspec.ValidationError, ValueError) as exc:
            if strict:
                raise ConfigError(f"{path}: {exc}") from None
            logger.error("Ignoring the new %s, keeping the old one: %s", path, exc)  # noqa: TRY400
            self._signatures[path] = sig  # once per change, not on every check
            return False
        self._signatures[path] = sig
        return True

    def _check_default_role(self) -> None:
        known = {*BUILTIN_ROLES, *self._roles}
        if self._default_role not in known | {NO_ROLE}:
            raise ConfigError(f"auth.default_role {self._default_role!r} is not a known role")
        for group, role in self._role_map.items():
            if role not in known:
                raise ConfigError(f"auth.role_map: {group!r} -> {role!r} is not a known role")

    def set_external(self, user: str, groups: tuple[str, ...]) -> None:
        """What the external service said of `user` at a login: its rights follow now.

        They are also what `user`'s API keys are capped by after a restart, until the
        next login.
        """
        changed = self._external.remember(user, groups)
        for name in changed:
            self._rights.pop(name, None)
        if changed:
            self.generation += 1

    def exists(self, user: str) -> bool:
        return user in self._known

    def is_directory_user(self, user: str) -> bool:
        """Known from a login through the external service or single sign-on."""
        return user in self._external

    def rights(self, user: str) -> UserRights | None:
        """What `user` may do now; None for an unknown or disabled user."""
        if user in self._rights:
            return self._rights[user]
        rights = self._resolve(user)
        self._rights[user] = rights
        return rights

    def _resolve(self, user: str) -> UserRights | None:
        if user not in self._known and user not in self._external:
            return None
        entry = self.entry(user)
        if entry.disabled:
            return None
        roles = self._roles_of(entry)
        if entry.roles is None and user in self._external:
            groups = self._external[user].groups
            mapped = [self._role_map[g] for g in groups if g in self._role_map]
            roles = tuple(dict.fromkeys(mapped)) or roles
        if roles == (NO_ROLE,):
            return None  # nothing maps the user to a role, and the owner lets none in
        permissions = self.permissions_with(roles, self._roles)
        return UserRights(permissions, roles, entry.must_change_passwd)

    def _roles_of(self, entry: UserEntry) -> tuple[str, ...]:
        return tuple(entry.roles) if entry.roles is not None else (self._default_role,)

    def _entry_permissions(
        self, entry: UserEntry, roles: dict[str, RoleEntry]
    ) -> frozenset[Permission]:
        return self.permissions_with(self._roles_of(entry), roles)

    def role_permissions(
        self, role: str, roles: dict[str, RoleEntry] | None = None
    ) -> frozenset[Permission]:
        builtin = BUILTIN_ROLES.get(role)
        if builtin is not None:
            return builtin
        custom = (self._roles if roles is None else roles).get(role)
        return frozenset(custom.permissions) if custom is not None else NO_PERMISSIONS

    def permissions_with(
        self, names: Iterable[str], roles: dict[str, RoleEntry] | None = None
    ) -> frozenset[Permission]:
        """What holding the roles `names` grants (with `roles` instead of the current ones)."""
        granted: set[Permission] = set()
        for name in names:
            granted |= self.role_permissions(name, roles)
        return effective(granted)

    def users(self) -> list[tuple[str, UserEntry]]:
        """Every user, sorted, with its entry (the default one when it has none)."""
        return [(user, self.entry(user)) for user in sorted(self._known)]

    def entry(self, user: str) -> UserEntry:
        return self._users.get(user, UserEntry())

    def roles_of(self, user: str) -> tuple[str, ...]:
        return self._roles_of(self.entry(user))

    def roles(self) -> list[tuple[str, frozenset[Permission], bool]]:
        """(name, permissions, builtin) for every role, built-in ones first."""
        out = [(name, perms, True) for (name, perms) in BUILTIN_ROLES.items()]
        out += [
            (name, frozenset(role.permissions), False)
            for (name, role) in sorted(self._roles.items())
        ]
        return out

    def has_role(self, role: str) -> bool:
        return role in BUILTIN_ROLES or role in self._roles

    def custom_role(self, role: str) -> RoleEntry:
        return self._roles[role]

    @property
    def default_role(self) -> str:
        return self._default_role

    def role_users(self, role: str) -> list[str]:
        return [user for (user, entry) in self.users() if role in self._roles_of(entry)]

    def is_admin(self, user: str) -> bool:
        rights = self.rights(user)
        return rights is not None and Permission.ADMIN in rights.permissions

    def admins(
        self,
        *,
        user: tuple[str, UserEntry | None] | None = None,
        role: tuple[str, RoleEntry] | None = None,
    ) -> list[str]:
        """Enabled users holding `admin`, as they would be after one change.

        `user` gives a user a new entry (None: the user is removed); `role` redefines a role.
        """
        (users, roles) = (dict(self._users), dict(self._roles))
        known = set(self._known)
        if user is not None:
            if user[1] is None:
                known.discard(user[0])
            else:
                users[user[0]] = user[1]
        if role is not None:
            roles[role[0]] = role[1]
        return [
            name
            for name in sorted(known)
            if not (entry := users.get(name, UserEntry())).disabled
            and Permission.ADMIN in self._entry_permissions(entry, roles)
        ]

    # --- writing -------------------------------------------------------------------

    def set_hash(self, user: str, hashed: str | None) -> None:
        """Add, change (keeping its place) or, with None, remove a user's htpasswd entry."""
        path = self._htpasswd.path
        entries = read_entries(path) if path.exists() else {}
        if hashed is None:
            entries.pop(user, None)
        else:
            entries[user] = hashed
        write_entries(path, entries)
        self.reload()

    def set_entry(self, user: str, entry: UserEntry | None) -> None:
        self.reload()  # an edit made meanwhile by hand must not be lost to ours
        users = dict(self._users)
        if entry is None or entry == UserEntry():
            users.pop(user, None)
        else:
            users[user] = entry
        self._save(self._users_path, users)

    def set_role(self, role: str, entry: RoleEntry | None) -> None:
        self.reload()
        roles = dict(self._roles)
        if entry is None:
            roles.pop(role, None)
        else:
            roles[role] = entry
        self._save(self._roles_path, roles)

    def _save(self, path: Path | None, data: dict[str, UserEntry] | dict[str, RoleEntry]) -> None:
        if path is None:
            raise OperationError("The users and roles files are not configured")
        text = yaml.safe_dump(msgspec.to_builtins(data), sort_keys=True, default_flow_style=False)
        atomic_write(path, text.encode(), mode=0o644)
        self.reload()


def _check_users(users: dict[str, UserEntry]) -> None:
    for user in users:
        if len(user) > USER_MAX:
            raise ValueError(f"bad user name {user[:64]!r}")


def _check_roles(roles: dict[str, RoleEntry]) -> None:
    for name in roles:
        if name in BUILTIN_ROLES:
            raise ValueError(f"the built-in role {name!r} can't be redefined")
        if len(name) > ROLE_MAX:
            raise ValueError(f"bad role name {name[:64]!r}")
