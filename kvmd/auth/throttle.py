# SPDX-License-Identifier: GPL-3.0-or-later
"""Failed-login counting: per source address and per user (SECURITY.md §O).

A guess is charged when it is admitted, before its hash is computed: password checks run
in a thread, so counting only their failures would let every guess sent at once pass the
lock check while the first ones are still being hashed.
"""

import dataclasses
import time

# Entries kept per throttle; past it the idle ones go first. A botnet spraying addresses
# costs at most this many small records.
_LIMIT = 10_000


@dataclasses.dataclass(slots=True)
class _Record:
    charged: int
    last: float
    locked_until: float


class Throttle:
    """Locks a key for `lock` seconds once `attempts` guesses have been charged to it.

    A charge more than `lock` seconds after the previous one starts the count afresh,
    so an occasional typo never adds up to a lock.
    """

    def __init__(self, attempts: int, lock: float) -> None:
        self._attempts = attempts
        self._lock = lock
        self._records: dict[str, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def locked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        return max(0.0, record.locked_until - time.monotonic())

    def charge(self, key: str) -> None:
        """Count a guess; the one that reaches `attempts` is the last admitted before the lock."""
        now = time.monotonic()
        record = self._records.get(key)
        if record is None or now - record.last > self._lock:
            if record is None and len(self._records) >= _LIMIT:
                self._purge(now)
            locked_until = record.locked_until if record is not None else 0.0
            record = self._records[key] = _Record(0, now, locked_until)
        record.charged += 1
        record.last = now
        if record.charged >= self._attempts:
            record.charged = 0
            record.locked_until = max(record.locked_until, now + self._lock)

    def refund(self, key: str) -> None:
        """Take back one charge of a guess that proved right; a lock already begun stays."""
        record = self._records.get(key)
        if record is not None and record.charged > 0:
            record.charged -= 1
            self._forget_if_idle(key, record)

    def succeeded(self, key: str) -> None:
        """A right guess ends the run of failures, but not a lock already begun."""
        record = self._records.get(key)
        if record is not None:
            record.charged = 0
            self._forget_if_idle(key, record)

    def clear(self, key: str) -> None:
        """Forget `key` entirely, lock included (an admin's unlock)."""
        self._records.pop(key, None)

    def locked(self) -> dict[str, float]:
        """Keys locked now, with the seconds left."""
        now = time.monotonic()
        return {k: r.locked_until - now for (k, r) in self._records.items() if r.locked_until > now}

    def _forget_if_idle(self, key: str, record: _Record) -> None:
        if record.charged == 0 and record.locked_until <= time.monotonic():
            del self._records[key]

    def _purge(self, now: float) -> None:
        self._records = {
            k: r
            for (k, r) in self._records.items()
            if r.locked_until > now or now - r.last <= self._lock
        }
        while len(self._records) >= _LIMIT:
            del self._records[next(iter(self._records))]
