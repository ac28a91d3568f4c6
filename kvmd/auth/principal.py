# SPDX-License-Identifier: GPL-3.0-or-later
"""Who is asking, and what every route needs (spec SECURITY.md §3.1, §3.5)."""

import dataclasses
import enum


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
    NONE = "none"


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    user: str
    via: Via
    # TODO(#7): resolved from roles and keys; until then every user holds all of them.
    permissions: frozenset[Permission] = ALL_PERMISSIONS

    @property
    def label(self) -> str:
        return f"{self.user} ({self.via})"

    def allows(self, permission: Permission) -> bool:
        # `admin` implies everything and everything implies `state` (SECURITY.md §3.1).
        return (
            permission in self.permissions
            or Permission.ADMIN in self.permissions
            or (permission is Permission.STATE and bool(self.permissions))
        )


# Who acts when authentication is switched off: everyone is admin, as on PiKVM.
NOBODY = Principal(user="-", via=Via.NONE)
