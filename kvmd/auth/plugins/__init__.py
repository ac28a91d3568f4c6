# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a password is checked: PiKVM's auth plugins (`kvmd.auth.external`).

A plugin answers one question, whether `user` may log in with `passwd`, and, where the
service says so, which groups the user is in (the roles come from them through
`auth.role_map`). A service that can't answer (down, slow, misconfigured) raises
`AuthServiceError`, a 503 to the client: never a hang, never a silent "no", and never a
fall back to another service. Throttling, lockout, TOTP and the audit trail stay with
the caller (AuthManager), whichever plugin answers.
"""

import abc
import asyncio
import dataclasses

from kvmd.errors import UnavailableError


class AuthServiceError(UnavailableError):
    """The authentication service could not answer."""

    default_msg = "The authentication service is unavailable"


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    # What the service says the user belongs to: LDAP groups, RADIUS classes, claims.
    groups: tuple[str, ...] = ()


DENIED = Verdict(ok=False)


class AuthPlugin(abc.ABC):
    """One authentication service."""

    name: str

    @abc.abstractmethod
    async def authorize(self, user: str, passwd: str) -> Verdict:
        """The service's answer; AuthServiceError when it gives none in time."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Let go of connections (at shutdown)."""


class BlockingPlugin(AuthPlugin):
    """A plugin whose library blocks (ldap3, pyrad, PAM).

    Its checks run in worker threads, `concurrent` at a time.
    """

    concurrent = 4

    def __init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrent)

    async def authorize(self, user: str, passwd: str) -> Verdict:
        async with self._slots:
            return await asyncio.to_thread(self.check, user, passwd)

    @abc.abstractmethod
    def check(self, user: str, passwd: str) -> Verdict:
        """The service's answer, in a worker thread."""

    async def close(self) -> None:
        pass  # a connection per check: nothing stays open


def make_plugin(config: object) -> AuthPlugin:
    """The plugin of a `kvmd.auth.external` section."""
    # Imported here: each plugin's module loads its library only when it is used.
    from kvmd.auth.plugins.http import HttpAuth, HttpAuthConfig  # noqa: PLC0415
    from kvmd.auth.plugins.ldap import LdapAuth, LdapAuthConfig  # noqa: PLC0415
    from kvmd.auth.plugins.pam import PamAuth, PamAuthConfig  # noqa: PLC0415
    from kvmd.auth.plugins.radius import RadiusAuth, RadiusAuthConfig  # noqa: PLC0415

    if isinstance(config, HttpAuthConfig):
        return HttpAuth(config)
    if isinstance(config, LdapAuthConfig):
        return LdapAuth(config)
    if isinstance(config, RadiusAuthConfig):
        return RadiusAuth(config)
    if isinstance(config, PamAuthConfig):
        return PamAuth(config)
    raise TypeError(f"no auth plugin for {type(config).__name__}")
