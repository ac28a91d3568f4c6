# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit trail: who did what, from where, as JSON lines (SECURITY.md §I).

Records are appended to a file (O_APPEND, one write per record, so a crash never leaves
half a line behind another) that is rotated by size into `.1` ... `.N`. Keystrokes are
never recorded: HID use is summed per principal and written once a minute as a count.
"""

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import msgspec

logger = logging.getLogger(__name__)

# Records kept in memory for followers and when no file is configured.
_MEMORY = 1000
HID_INTERVAL = 60.0


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    ts: float
    principal: str
    kind: str
    via: str
    remote: str
    action: str
    args: dict[str, object]
    result: str


class AuditLog:
    def __init__(self, path: Path | None, *, max_size: int, backups: int) -> None:
        self._path = path
        self._max_size = max_size
        self._backups = backups
        self._fd = -1
        self._size = 0
        self._seq = 0
        self._memory: collections.deque[tuple[int, AuditRecord]] = collections.deque(maxlen=_MEMORY)
        self._waiters: set[asyncio.Event] = set()
        self._hid: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        self._failed = False

    def record(  # noqa: PLR0913 -- one keyword per field of the record
        self,
        *,
        principal: str,
        kind: str,
        via: str,
        remote: str,
        action: str,
        args: dict[str, object] | None = None,
        result: str = "ok",
    ) -> None:
        rec = AuditRecord(
            ts=round(time.time(), 3),
            principal=principal,
            kind=kind,
            via=via,
            remote=remote,
            action=action,
            args=args or {},
            result=result,
        )
        self._seq += 1
        self._memory.append((self._seq, rec))
        self._append(msgspec.json.encode(rec) + b"\n")
        for waiter in self._waiters:
            waiter.set()

    def count_hid(self, principal: str, kind: str, via: str, remote: str, events: int = 1) -> None:
        self._hid[(principal, kind, via, remote)] += events

    def flush_hid(self) -> None:
        counts = self._hid
        self._hid = collections.Counter()
        for (principal, kind, via, remote), events in sorted(counts.items()):
            self.record(
                principal=principal,
                kind=kind,
                via=via,
                remote=remote,
                action="hid.activity",
                args={"events": events, "seconds": HID_INTERVAL},
            )

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(HID_INTERVAL)
                self.flush_hid()
        finally:
            self.flush_hid()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- the file ------------------------------------------------------------------

    def _append(self, line: bytes) -> None:
        if self._path is None:
            return
        try:
            if self._fd < 0:
                self._open()
            elif self._size + len(line) > self._max_size:
                self._rotate()
            os.write(self._fd, line)
            self._size += len(line)
            self._failed = False
        except OSError as exc:
            if not self._failed:  # once per outage, not once per record
                logger.error("Can't write the audit trail %s: %s", self._path, exc)  # noqa: TRY400
            self._failed = True
            self.close()

    def _open(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(self._path, flags, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        if self._path is None:
            return
        self.close()
        for n in range(self._backups, 0, -1):
            older = self._backup(n - 1) if n > 1 else self._path
            if older.exists():
                older.replace(self._backup(n))
        if self._backups == 0:
            self._path.unlink(missing_ok=True)
        self._open()

    def _backup(self, n: int) -> Path:
        path = self._path or Path()
        return path.with_name(f"{path.name}.{n}")

    # --- reading -------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The trail's files, oldest first."""
        if self._path is None:
            return []
        backups = [self._backup(n) for n in range(self._backups, 0, -1)]
        return [path for path in [*backups, self._path] if path.exists()]

    async def lines(self, seek: int, follow: bool) -> AsyncGenerator[str, None]:
        """JSON lines of the last `seek` seconds (0 = all), then new ones if `follow`."""
        min_ts = time.time() - seek if seek > 0 else 0.0
        wake = asyncio.Event()
        self._waiters.add(wake)
        try:
            # What the files hold now is history; what comes after `last` is followed.
            last = self._seq
            if self._path is None:
                history = [_line(rec) for (_, rec) in self._memory if rec.ts >= min_ts]
            else:
                history = await asyncio.to_thread(self._history, min_ts, self._sizes())
            for line in history:
                yield line
            while follow:
                wake.clear()
                for seq, rec in list(self._memory):
                    if seq > last:
                        last = seq
                        yield _line(rec)
                await wake.wait()
        finally:
            self._waiters.discard(wake)

    def _sizes(self) -> list[tuple[Path, int]]:
        out = []
        for path in self.files():
            with contextlib.suppress(FileNotFoundError):
                out.append((path, path.stat().st_size))
        return out

    def _history(self, min_ts: float, sizes: list[tuple[Path, int]]) -> list[str]:
        out = []
        for path, size in sizes:
            with contextlib.suppress(FileNotFoundError), path.open("rb") as file:
                consumed = 0
                for raw in file:
                    consumed += len(raw)
                    if consumed > size:
                        break
                    if min_ts > 0:
                        try:
                            ts = msgspec.json.decode(raw, type=_Stamp).ts
                        except msgspec.DecodeError:
                            continue
                        if ts < min_ts:
                            continue
                    out.append(raw.decode("utf-8", "replace"))
        return out


class _Stamp(msgspec.Struct):
    ts: float


def _line(rec: AuditRecord) -> str:
    return msgspec.json.encode(rec).decode() + "\n"
