# SPDX-License-Identifier: GPL-3.0-or-later
"""Who is asking, and what every route needs (spec SECURITY.md §3.1, §3.5)."""

import dataclasses
import enum
import functools
import time
from collections.abc import Iterable

from kvmd.auth.rules import KEY_PREFIX


class Permission(enum.StrEnum):
    STATE = "state"
    VIDEO = "video"
    HID = "hid"
    ATX = "atx"
    MSD = "msd"
    GPIO = "gpio"
    STREAMER = "streamer"
    LOGS = "logs"
    SHARE = "share"
    ADMIN = "admin"


ALL_PERMISSIONS = frozenset(Permission)
NO_PERMISSIONS: frozenset[Permission] = frozenset()


def effective(permissions: Iterable[Permission]) -> frozenset[Permission]:
    """`admin` implies everything and everything implies `state` (SECURITY.md §3.1)."""
    granted = frozenset(permissions)
    if Permission.ADMIN in granted:
        return ALL_PERMISSIONS
    if granted:
        return granted | {Permission.STATE}
    return NO_PERMISSIONS


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """Permission names to the set; an unknown name raises ValueError naming it."""
    out = set()
    for name in names:
        try:
            out.add(Permission(name.strip().lower()))
        except ValueError:
            raise ValueError(f"unknown permission {name[:32]!r}") from None
    return frozenset(out)


def ordered(permissions: Iterable[Permission]) -> list[Permission]:
    """In the table's order (state first, admin last), as the API lists and stores them."""
    granted = frozenset(permissions)
    return [p for p in Permission if p in granted]


def sorted_names(permissions: Iterable[Permission]) -> list[str]:
    return list(_sorted_names(frozenset(permissions)))


@functools.cache
def _sorted_names(permissions: frozenset[Permission]) -> tuple[str, ...]:
    # At most 2**10 sets exist, and /api/auth/check lists one on every request.
    return tuple(str(p) for p in ordered(permissions))


class Access(enum.Enum):
    """Route access that is not a single permission."""

    PUBLIC = "public"  # no credentials needed (login, Redfish root)
    AUTHENTICATED = "authenticated"  # any valid principal, whatever it may do


RouteAccess = Permission | Access


class Via(enum.StrEnum):
    """How the principal authenticated, as the access log labels it."""

    XHDR = "xhdr"
    TOKEN = "token"  # noqa: S105 -- the auth method, not a secret
    BASIC = "basic"
    BEARER = "bearer"
    VNC = "vnc"  # VeNCrypt Plain: a kvmd user's password
    VNCAUTH = "vncauth"  # a password of the vncpasswd file
    NONE = "none"


class Kind(enum.StrEnum):
    USER = "user"
    KEY = "key"
    NONE = "none"  # authentication is off or the path is open


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """One authenticated caller with its rights, resolved afresh for every request.

    `permissions` is already effective (see `effective`). For a key, `user` is the
    key id and `owner` the user it acts for; for a user both are the user.
    """

    user: str
    via: Via
    kind: Kind = Kind.USER
    permissions: frozenset[Permission] = ALL_PERMISSIONS
    roles: tuple[str, ...] = ()
    owner: str = ""
    read_only: bool = False
    expires: float | None = None  # UNIX time after which the credential is void
    session: str = ""  # public id of the login session, "" without one
    must_change_passwd: bool = False

    @property
    def label(self) -> str:
        return f"{self.user} ({self.via})"

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions

    def is_expired(self, now: float | None = None) -> bool:
        if self.expires is None:
            return False
        return self.expires <= (time.time() if now is None else now)

    @property
    def may_input(self) -> bool:
        """Keyboard and mouse on the websocket: `hid` and not a read-only credential."""
        return Permission.HID in self.permissions and not self.read_only

    @property
    def access(self) -> str:
        """The websocket access level a UI shows (SECURITY.md §3.6)."""
        if self.may_input:
            return "control"
        return "view" if Permission.VIDEO in self.permissions else "state"


def claimed(user: str, via: Via) -> Principal:
    """Who a credential claims to be, before it is checked: for the audit trail only."""
    kind = Kind.KEY if user.startswith(KEY_PREFIX) else Kind.USER
    return Principal(user=user, via=via, kind=kind, permissions=NO_PERMISSIONS)


# Who acts when authentication is switched off: everyone is admin, as on PiKVM.
NOBODY = Principal(user="-", via=Via.NONE, kind=Kind.NONE)
