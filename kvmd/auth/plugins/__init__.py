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
import logging
from typing import TYPE_CHECKING

from kvmd.errors import UnavailableError

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger(__name__)


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

    Its checks run in worker threads, `concurrent` at a time, and an answer later than
    `limit` seconds is AuthServiceError. A thread can't be stopped: a check that hangs
    keeps its slot until it returns, so a hung service answers 503 to everyone, quickly,
    instead of piling up threads.
    """

    concurrent = 4

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(self.concurrent)

    async def authorize(self, user: str, passwd: str) -> Verdict:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.limit):
                await self._slots.acquire()
                check = loop.run_in_executor(None, self.check, user, passwd)
                check.add_done_callback(self._done)
                return await asyncio.shield(check)
        except TimeoutError:
            logger.error("Auth service %s: no answer within %s s", self.name, self.limit)  # noqa: TRY400
            raise AuthServiceError(f"{self.name} did not answer within {self.limit} s") from None

    def _done(self, check: "asyncio.Future[Verdict]") -> None:
        self._slots.release()
        if not check.cancelled():
            check.exception()  # retrieved: a caller that timed out no longer awaits it

    @abc.abstractmethod
    def check(self, user: str, passwd: str) -> Verdict:
        """The service's answer, in a worker thread."""

    async def close(self) -> None:
        pass  # a connection per check: nothing stays open


async def read_bounded(response: "aiohttp.ClientResponse", limit: int) -> bytes | None:
    """An auth service's answer, or None once it passes `limit` bytes (not an answer)."""
    data = bytearray()
    async for chunk in response.content.iter_chunked(16384):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


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
