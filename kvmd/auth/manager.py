# SPDX-License-Identifier: GPL-3.0-or-later
"""Credential checks and login sessions, independent of HTTP."""

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
from pathlib import Path

from kvmd.auth.htpasswd import FileSignature, Htpasswd
from kvmd.auth.totp import read_secret, split_code, verify_code
from kvmd.config.schema import AuthConfig

logger = logging.getLogger(__name__)

# Plenty for a KVM's handful of users and scripts; beyond it expired entries go first.
_CACHE_LIMIT = 1024


@dataclasses.dataclass(slots=True)
class Session:
    user: str
    expires: float | None  # time.monotonic() deadline; None = until logout


@dataclasses.dataclass(slots=True)
class _Verified:
    signature: FileSignature | None
    expires: float


class AuthManager:
    """Verifies passwords (with TOTP) and keeps the `auth_token` sessions in memory.

    Scripts send credentials with every request, and bcrypt takes ~0.3 s, so a
    successful check is remembered under an HMAC of the pair (a process-random key:
    the cache never holds a password or a reusable hash). It is forgotten when the
    htpasswd file changes or the entry ages out. Only the password is cached: the
    TOTP code is checked on every request.
    """

    def __init__(self, config: AuthConfig) -> None:
        self.enabled = config.enabled
        self._config = config
        self._htpasswd = Htpasswd(Path(config.internal.file))
        secret_file = config.totp.secret.file
        self._totp_path = Path(secret_file) if secret_file else None
        self._sessions: dict[str, Session] = {}
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, _Verified] = {}
        self._inflight: dict[bytes, asyncio.Future[bool]] = {}

    async def check_password(self, user: str, passwd: str) -> bool:
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
        signature = self._htpasswd.signature()
        now = time.monotonic()
        verified = self._verified.get(key)
        if verified is not None and verified.signature == signature and verified.expires > now:
            return True
        return await self._verify_once(key, user, passwd, signature)

    async def _verify_once(
        self, key: bytes, user: str, passwd: str, signature: FileSignature | None
    ) -> bool:
        # A script opening many connections at once must not start many bcrypt runs.
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            ok = await asyncio.to_thread(self._htpasswd.verify, user, passwd)
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

    def login(self, user: str, expire: int) -> str:
        """Open a session; `expire` seconds (0 = none) is capped by the global limit."""
        limit = self._config.expire
        if limit > 0:
            expire = min(expire, limit) if expire > 0 else limit
        self._purge_expired()
        token = secrets.token_hex(32)
        deadline = time.monotonic() + expire if expire > 0 else None
        self._sessions[token] = Session(user=user, expires=deadline)
        return token

    def check_token(self, token: str) -> str | None:
        """The session's user, or None for an unknown or expired token."""
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires is not None and session.expires <= time.monotonic():
            del self._sessions[token]
            return None
        return session.user

    def logout(self, token: str) -> None:
        """End every session of the token's user, as PiKVM does."""
        user = self.check_token(token)
        if user is not None:
            self._sessions = {t: s for (t, s) in self._sessions.items() if s.user != user}

    def _purge_expired(self) -> None:
        now = time.monotonic()
        expired = [
            t for (t, s) in self._sessions.items() if s.expires is not None and s.expires <= now
        ]
        for token in expired:
            del self._sessions[token]
