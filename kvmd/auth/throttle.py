# SPDX-License-Identifier: GPL-3.0-or-later
"""Failed-login counting: per source address and per user (SECURITY.md §O)."""

import dataclasses
import time

# Entries kept per throttle; past it the idle ones go first. A botnet spraying addresses
# costs at most this many small records.
_LIMIT = 10_000


@dataclasses.dataclass(slots=True)
class _Record:
    failures: int
    last: float
    locked_until: float


class Throttle:
    """Locks a key for `lock` seconds after `attempts` failures.

    A failure more than `lock` seconds after the previous one starts the count afresh,
    so an occasional typo never adds up to a lock.
    """

    def __init__(self, attempts: int, lock: float) -> None:
        self._attempts = attempts
        self._lock = lock
        self._records: dict[str, _Record] = {}

    def locked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        return max(0.0, record.locked_until - time.monotonic())

    def failure(self, key: str) -> None:
        now = time.monotonic()
        record = self._records.get(key)
        if record is None or now - record.last > self._lock:
            if len(self._records) >= _LIMIT:
                self._purge(now)
            record = self._records[key] = _Record(0, now, 0.0)
        record.failures += 1
        record.last = now
        if record.failures >= self._attempts:
            record.failures = 0
            record.locked_until = now + self._lock

    def success(self, key: str) -> None:
        self._records.pop(key, None)

    def locked(self) -> dict[str, float]:
        """Keys locked now, with the seconds left."""
        now = time.monotonic()
        return {k: r.locked_until - now for (k, r) in self._records.items() if r.locked_until > now}

    def _purge(self, now: float) -> None:
        self._records = {
            k: r
            for (k, r) in self._records.items()
            if r.locked_until > now or now - r.last <= self._lock
        }
        while len(self._records) >= _LIMIT:
            del self._records[next(iter(self._records))]
