# SPDX-License-Identifier: GPL-3.0-or-later
"""Login sessions behind the `auth_token` cookie, kept in memory as PiKVM keeps them.

A session is known to clients only by its public id, `sha256(token)[:16]`: listing
sessions must never hand out a token another client could replay (SECURITY.md §C).
Deadlines are monotonic, so a Pi's clock jumping at NTP sync ends no session early.
"""

import dataclasses
import hashlib
import secrets
import time

from kvmd.auth.principal import Kind

# Sessions one principal may hold: plenty for a person's browsers and a kiosk's restarts.
# Past it that principal's own oldest session goes, never anyone else's, so logging in
# over and over can't log out an admin. In all, at most this many per user or key.
PER_PRINCIPAL = 64


def public_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclasses.dataclass(slots=True, eq=False)
class Session:
    token: str
    id: str
    user: str  # the user, or the key id for a session opened with a key
    kind: Kind
    created: float  # UNIX time
    last_seen: float  # UNIX time
    expire: int  # seconds asked for at login (0 = none), what keepalive extends by
    deadline: float | None  # time.monotonic() deadline; None = until logout
    remote: str
    user_agent: str

    def expires(self) -> float | None:
        """The deadline as UNIX time, for clients."""
        if self.deadline is None:
            return None
        return time.time() + (self.deadline - time.monotonic())

    def is_over(self, now: float) -> bool:
        return self.deadline is not None and self.deadline <= now


class Sessions:
    def __init__(self, limit: int) -> None:
        self._limit = limit  # auth.expire: the cap of every session, 0 = none
        self._by_token: dict[str, Session] = {}
        self._by_id: dict[str, Session] = {}
        # user or key id -> that principal's sessions by token, oldest first
        self._by_user: dict[str, dict[str, Session]] = {}

    def open(self, user: str, kind: Kind, expire: int, *, remote: str, user_agent: str) -> Session:
        """A new session; `expire` seconds (0 = none) is capped by the global limit."""
        self._purge()
        own = self._by_user.get(user, {})
        while len(own) >= PER_PRINCIPAL:
            self.close(next(iter(own.values())))
        token = secrets.token_hex(32)
        now = time.time()
        session = Session(
            token=token,
            id=public_id(token),
            user=user,
            kind=kind,
            created=now,
            last_seen=now,
            expire=expire,
            deadline=self._deadline(expire),
            remote=remote,
            user_agent=user_agent[:256],
        )
        self._by_token[token] = session
        self._by_id[session.id] = session
        self._by_user.setdefault(user, {})[token] = session
        return session

    def _deadline(self, expire: int) -> float | None:
        if self._limit > 0:
            expire = min(expire, self._limit) if expire > 0 else self._limit
        return time.monotonic() + expire if expire > 0 else None

    def by_token(self, token: str) -> Session | None:
        session = self._by_token.get(token)
        if session is None:
            return None
        if session.is_over(time.monotonic()):
            self.close(session)
            return None
        return session

    def by_id(self, session_id: str) -> Session | None:
        session = self._by_id.get(session_id)
        if session is None:
            return None
        return self.by_token(session.token)

    def seen(self, session: Session) -> None:
        session.last_seen = time.time()

    def keepalive(self, session: Session) -> None:
        """Extend by the originally asked `expire`, capped by the global limit."""
        session.deadline = self._deadline(session.expire)

    def close(self, session: Session) -> None:
        self._by_token.pop(session.token, None)
        self._by_id.pop(session.id, None)
        own = self._by_user.get(session.user)
        if own is not None:
            own.pop(session.token, None)
            if not own:
                del self._by_user[session.user]

    def of_user(self, user: str) -> list[Session]:
        self._purge()
        return list(self._by_user.get(user, {}).values())

    def all(self) -> list[Session]:
        self._purge()
        return list(self._by_token.values())

    def _purge(self) -> None:
        now = time.monotonic()
        for session in [s for s in self._by_token.values() if s.is_over(now)]:
            self.close(session)
