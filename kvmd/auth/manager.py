# SPDX-License-Identifier: GPL-3.0-or-later
"""Credential checks, principals and login sessions, independent of HTTP."""

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
from pathlib import Path

from kvmd.auth.accounts import Accounts
from kvmd.auth.apikeys import ApiKey, ApiKeys
from kvmd.auth.files import FileSignature, optional_path
from kvmd.auth.oidc import Identity, SignOnRefusedError, SingleSignOn
from kvmd.auth.plugins import make_plugin
from kvmd.auth.principal import Kind, Principal, Via, effective
from kvmd.auth.rules import KEY_PREFIX, user_problem
from kvmd.auth.sessions import Session, Sessions
from kvmd.auth.throttle import Throttle
from kvmd.auth.totp import read_secret, split_code, verify_code
from kvmd.config.schema import AuthConfig
from kvmd.errors import ForbiddenError, TooManyRequestsError

logger = logging.getLogger(__name__)

# Plenty for a KVM's handful of users and scripts; beyond it expired entries go first.
_CACHE_LIMIT = 1024
_REFRESH_INTERVAL = 1.0
# bcrypt runs at once: guessing from many addresses must not take every core from the
# streamer and the HID. Checks past the queue's length are refused (429) at once.
_HASH_WORKERS = 2
_HASH_QUEUE = 64


@dataclasses.dataclass(slots=True)
class _Verified:
    signature: FileSignature | None
    expires: float


@dataclasses.dataclass(slots=True)
class _Guess:
    """One password guess, charged to its address and user at most once."""

    by_address: Throttle
    address: str
    by_user: Throttle
    user: str
    charged: bool = False

    def charge(self) -> None:
        if not self.charged:
            self.charged = True
            self.by_address.charge(self.address)
            self.by_user.charge(self.user)

    def succeeded(self) -> None:
        if self.charged:
            self.by_address.refund(self.address)
        self.by_user.succeeded(self.user)


class AuthManager:
    """Turns credentials into principals, and keeps the `auth_token` sessions in memory.

    Rights are resolved from in-memory state on every request: nothing about them lives
    in a token, so a demotion or a revocation applies to the very next request.

    Scripts send credentials with every request, and bcrypt takes ~0.3 s, so a
    successful check is remembered under an HMAC of the pair (a process-random key:
    the cache never holds a password or a reusable hash). It is forgotten when the
    htpasswd file changes or the entry ages out. Only the password is cached: the
    TOTP code is checked on every request.
    """

    def __init__(self, config: AuthConfig) -> None:
        self.enabled = config.enabled
        self._config = config
        files = config.files
        self.accounts = Accounts(
            Path(config.internal.file),
            optional_path(files.users),
            optional_path(files.roles),
            config.default_role,
            config.role_map,
            # Only while a directory is asked: turned off, its users' keys stop with it.
            directory=optional_path(files.directory) if self._has_directory(config) else None,
        )
        self._external = make_plugin(config.external) if config.external else None
        self._force_users = frozenset(config.internal.force_users)
        self.sso = SingleSignOn(config.oidc)
        self.keys = ApiKeys(optional_path(files.keys))
        self.sessions = Sessions(config.expire)
        self._by_address = Throttle(config.throttle.attempts, config.throttle.seconds)
        self._by_user = Throttle(config.lockout.attempts, config.lockout.minutes * 60)
        self._totp_path = optional_path(config.totp.secret.file)
        self._refreshed = 0.0
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, _Verified] = {}
        self._inflight: dict[bytes, asyncio.Future[bool]] = {}
        self._hashing = asyncio.Semaphore(_HASH_WORKERS)
        self._principals: dict[tuple[str, Via, str], tuple[int, Principal]] = {}
        # user -> (UNIX time, address) of the last login, for the users listing.
        self.last_logins: dict[str, tuple[float, str]] = {}

    @staticmethod
    def _has_directory(config: AuthConfig) -> bool:
        return config.external is not None or bool(config.oidc.providers)

    @property
    def generation(self) -> int:
        """Changes whenever anyone's rights may have changed."""
        return self.accounts.generation + self.keys.generation

    def refresh(self) -> None:
        """Pick up edits of the users, roles and keys files (one stat each a second at most)."""
        now = time.monotonic()
        if now - self._refreshed >= _REFRESH_INTERVAL:
            self._refreshed = now
            self.accounts.reload()
            self.keys.reload()

    # --- credentials -----------------------------------------------------------------

    async def verify(self, user: str, passwd: str, *, via: Via, remote: str) -> Principal:
        """A user's password (with TOTP) or a key's secret, throttled per address and user.

        Raises TooManyRequestsError while throttled and ForbiddenError on a mismatch.
        """
        self.refresh()
        address = remote or "unix"
        wait = max(self._by_address.locked_for(address), self._by_user.locked_for(user))
        if wait > 0:
            raise TooManyRequestsError(wait)
        if user.startswith(KEY_PREFIX):
            key = self.keys.verify(user, passwd, address)
            if key is None:
                self._by_address.charge(address)
                raise ForbiddenError
            return self._key_principal(key, via, "")
        guess = _Guess(self._by_address, address, self._by_user, user)
        if not await self.check_password(user, passwd, guess):
            guess.charge()  # a wrong code, or the same wrong guess already in flight
            raise ForbiddenError
        guess.succeeded()
        return self.user_principal(user, via, "")

    def address_wait(self, remote: str) -> float:
        """Seconds the address must wait before its next credential is checked."""
        return self._by_address.locked_for(remote or "unix")

    def charge_address(self, remote: str) -> None:
        """A failed credential tied to no user (a VNCAuth password), charged to its address."""
        self._by_address.charge(remote or "unix")

    def locked_until(self, user: str) -> float | None:
        """UNIX time when `user`'s lockout ends, or None."""
        wait = self._by_user.locked_for(user)
        return time.time() + wait if wait > 0 else None

    def unlock(self, user: str) -> None:
        self._by_user.clear(user)

    async def check_password(self, user: str, passwd: str, guess: _Guess | None = None) -> bool:
        """Whether the password (with the TOTP code) is right.

        `guess` is charged just before a hash is computed: a remembered pair and a request
        joining the same pair's computation in flight cost nothing.
        """
        try:
            secret = read_secret(self._totp_path)
        except OSError as exc:
            # 2FA is configured but its secret can't be read: deny rather than drop the factor.
            logger.error("Can't read the TOTP secret, denying every login: %s", exc)  # noqa: TRY400
            return False
        if secret:
            (passwd, code) = split_code(passwd)
            if not verify_code(secret, code):
                return False
        key = hmac.digest(self._cache_key, f"{user}\0{passwd}".encode(), hashlib.sha256)
        signature = self.accounts.htpasswd.signature()
        now = time.monotonic()
        verified = self._verified.get(key)
        if verified is not None and verified.signature == signature and verified.expires > now:
            return True
        pending = self._inflight.get(key)
        if pending is not None:
            # A script opening many connections at once must not start many bcrypt runs.
            return await asyncio.shield(pending)
        if len(self._inflight) >= _HASH_QUEUE:
            raise TooManyRequestsError(1, "Too many password checks at once")
        if guess is not None:
            guess.charge()
        return await self._verify_once(key, user, passwd, signature)

    async def _check(self, user: str, passwd: str) -> bool:
        external = self._external
        if external is None or user in self._force_users:
            async with self._hashing:
                return await asyncio.to_thread(self.accounts.htpasswd.verify, user, passwd)
        # No fall back to the htpasswd file: a service that can't answer is a 503.
        verdict = await external.authorize(user, passwd)
        logger.info("%s: %s via %s", user, "authorized" if verdict.ok else "denied", external.name)
        if verdict.ok:
            self.accounts.set_external(user, verdict.groups)
        return verdict.ok

    async def close(self) -> None:
        if self._external is not None:
            await self._external.close()
        await self.sso.close()

    def signed_on(self, identity: Identity, provider: str) -> Principal:
        """The principal of a user a single sign-on provider vouches for.

        The provider is not asked for a password, so nothing is charged to the throttle;
        a user locked out by wrong passwords stays locked out here too.
        """
        self.refresh()
        user = identity.user
        problem = user_problem(user)
        if problem is not None:
            # "_key.…" above all: a provider's user must not stand in for an API key.
            logger.warning("Refused a sign-on via %s: %s", provider, problem)
            raise SignOnRefusedError(f"The provider's user name won't do here: {problem}")
        wait = self._by_user.locked_for(user)
        if wait > 0:
            raise TooManyRequestsError(wait)
        if self.accounts.exists(user) or user in self._force_users:
            # The provider's "alice" is not the htpasswd file's alice: a realm user must not
            # become a local account (the local admin above all) by choosing its name.
            logger.warning("%s: refused via %s, a local user has that name", user, provider)
            raise SignOnRefusedError(f"{user!r} is a local user: log in with its password")
        mapped = any(group in self._config.role_map for group in identity.groups)
        if not (
            mapped
            or self.accounts.entry(user).roles is not None
            or self._config.oidc.allow_unmapped
        ):
            logger.info("%s: refused via %s, no group maps to a role", user, provider)
            raise SignOnRefusedError(f"None of {user!r}'s groups maps to a role here")
        self.accounts.set_external(user, identity.groups)
        logger.info("%s: signed on via %s, groups %s", user, provider, list(identity.groups))
        return self.user_principal(user, Via.TOKEN, "")

    async def _verify_once(
        self, key: bytes, user: str, passwd: str, signature: FileSignature | None
    ) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            ok = await self._check(user, passwd)
            future.set_result(ok)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]
        if ok and self._config.cache_ttl > 0:
            self._remember(key, signature)
        return ok

    def _remember(self, key: bytes, signature: FileSignature | None) -> None:
        now = time.monotonic()
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified = {k: v for (k, v) in self._verified.items() if v.expires > now}
            while len(self._verified) >= _CACHE_LIMIT:
                del self._verified[next(iter(self._verified))]
        self._verified[key] = _Verified(signature, now + self._config.cache_ttl)

    # --- principals ----------------------------------------------------------------

    def user_principal(self, user: str, via: Via, session: str) -> Principal:
        # Principals are immutable: scripts hammering with the same credentials share one
        # until anyone's rights change.
        key = (user, via, session)
        cached = self._principals.get(key)
        if cached is not None and cached[0] == self.accounts.generation:
            return cached[1]
        rights = self.accounts.rights(user)
        if rights is None:  # removed or disabled since the password was checked
            raise ForbiddenError
        principal = Principal(
            user=user,
            via=via,
            kind=Kind.USER,
            permissions=rights.permissions,
            roles=rights.roles,
            owner=user,
            session=session,
            must_change_passwd=rights.must_change_passwd,
        )
        if len(self._principals) >= _CACHE_LIMIT:
            self._principals.clear()
        self._principals[key] = (self.accounts.generation, principal)
        return principal

    def _key_principal(self, key: ApiKey, via: Via, session: str) -> Principal:
        # A key never holds more than its owner holds now (SECURITY.md §A).
        owner = self.accounts.rights(key.owner)
        if owner is None:
            raise ForbiddenError("API key owner is disabled")
        return Principal(
            user=key.id,
            via=via,
            kind=Kind.KEY,
            permissions=effective(key.permissions) & owner.permissions,
            owner=key.owner,
            read_only=key.read_only,
            expires=key.expires,
            session=session,
        )

    def token_principal(self, token: str, remote: str) -> Principal:
        self.refresh()
        session = self.sessions.by_token(token)
        if session is None:
            raise ForbiddenError
        self.sessions.seen(session)
        try:
            return self._principal_of(
                session.kind, session.user, Via.TOKEN, session.id, remote or "unix"
            )
        except ForbiddenError:
            if session.kind is Kind.KEY and self.keys.get(session.user) is None:
                self.sessions.close(session)  # its key is gone for good
            raise

    def reresolve(self, principal: Principal) -> Principal | None:
        """The principal's rights now, or None once it is revoked (websockets ask this)."""
        if principal.kind is Kind.NONE:
            return principal
        if principal.session and self.sessions.by_id(principal.session) is None:
            return None
        try:
            return self._principal_of(
                principal.kind, principal.user, principal.via, principal.session, None
            )
        except ForbiddenError:
            return None

    def _principal_of(
        self, kind: Kind, user: str, via: Via, session: str, remote: str | None
    ) -> Principal:
        """A user's or a stored key's principal now; ForbiddenError once it is revoked.

        `remote` None skips `allowed_nets`: the address was checked when it connected.
        """
        if kind is not Kind.KEY:
            return self.user_principal(user, via, session)
        key = self.keys.get(user)
        if key is None:
            raise ForbiddenError
        self.keys.check_usable(key, remote, time.time())
        return self._key_principal(key, via, session)

    # --- sessions ------------------------------------------------------------------

    def login(self, principal: Principal, expire: int, *, remote: str, user_agent: str) -> str:
        """Open a session for `principal`; returns its token."""
        session = self.sessions.open(
            principal.user, principal.kind, expire, remote=remote, user_agent=user_agent
        )
        self.last_logins[principal.user] = (round(session.created, 3), remote)
        return session.token

    def logout(self, token: str, *, everything: bool) -> list[Session]:
        """End the token's session, or, as PiKVM does, every session of its user."""
        session = self.sessions.by_token(token)
        if session is None:
            return []
        ended = self.sessions.of_user(session.user) if everything else [session]
        for each in ended:
            self.sessions.close(each)
        return ended
