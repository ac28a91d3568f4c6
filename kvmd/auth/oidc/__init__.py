# SPDX-License-Identifier: GPL-3.0-or-later
"""Single sign-on with OpenID Connect: the providers and the sign-ins under way.

A sign-in is two requests from the browser: one that sends it to the provider, and the
provider's callback with a code. What the first leaves for the second (state, nonce,
PKCE verifier) stays here, in memory, for `login_timeout` seconds and is used once. The
browser that started the sign-in also holds the state in a cookie, so a callback
carried to another browser (login CSRF) does not log that browser in.
"""

import dataclasses
import hmac
import time
from typing import TYPE_CHECKING

from kvmd.auth.oidc.config import OidcConfig
from kvmd.auth.oidc.identity import Challenge, Identity, SignOnRefusedError
from kvmd.errors import BadRequestError, NotFoundError

if TYPE_CHECKING:
    from kvmd.auth.oidc.provider import OidcProvider

# Sign-ins started and not finished. Past this many the oldest is dropped: a flood of
# started sign-ins costs memory no further than this.
_PENDING_LIMIT = 256


class SignOnExpiredError(BadRequestError):
    default_msg = "The sign-in expired or was started in another browser; start it again"


@dataclasses.dataclass(frozen=True, slots=True)
class _Pending:
    provider: "OidcProvider"
    challenge: Challenge
    landing: str
    started: float


class SingleSignOn:
    def __init__(self, config: OidcConfig) -> None:
        self._providers: dict[str, OidcProvider] = {}
        if config.providers:
            # joserfc and cryptography's key types load only where single sign-on is on
            # (about 5 MB of an idle daemon's memory otherwise).
            from kvmd.auth.oidc import provider  # noqa: PLC0415

            self._providers = {
                name: provider.OidcProvider(name, each) for (name, each) in config.providers.items()
            }
        self._timeout = config.login_timeout
        self._pending: dict[str, _Pending] = {}

    def providers(self) -> list["OidcProvider"]:
        return list(self._providers.values())

    def provider(self, name: str) -> "OidcProvider":
        provider = self._providers.get(name)
        if provider is None:
            raise NotFoundError(f"No single sign-on provider {name[:32]!r}")
        return provider

    async def begin(self, name: str, redirect_uri: str, landing: str) -> tuple[str, str]:
        """(the provider's login URL, the state the browser keeps in a cookie)."""
        provider = self.provider(name)
        (url, challenge) = await provider.begin(redirect_uri)
        self._expire()
        while len(self._pending) >= _PENDING_LIMIT:
            del self._pending[next(iter(self._pending))]
        self._pending[challenge.state] = _Pending(provider, challenge, landing, time.monotonic())
        return (url, challenge.state)

    async def finish(self, name: str, state: str, cookie: str, code: str) -> tuple[Identity, str]:
        """The signed-in identity and where the browser lands; each state works once."""
        self._expire()
        pending = self._pending.get(state)
        if (
            pending is None
            or pending.provider.name != name
            or not hmac.compare_digest(cookie, state)
        ):
            raise SignOnExpiredError
        del self._pending[state]
        return (await pending.provider.finish(pending.challenge, code), pending.landing)

    def abandon(self, state: str) -> None:
        """The provider answered with an error: the sign-in is over."""
        self._pending.pop(state, None)

    def _expire(self) -> None:
        deadline = time.monotonic() - self._timeout
        for state, pending in list(self._pending.items()):
            if pending.started >= deadline:
                break  # insertion order is start order
            del self._pending[state]

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()


__all__ = ["Identity", "SignOnExpiredError", "SignOnRefusedError", "SingleSignOn"]
