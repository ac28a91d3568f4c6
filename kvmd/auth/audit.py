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
import math
import os
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO

import msgspec

logger = logging.getLogger(__name__)

# Records kept in memory for followers and when no file is configured.
_MEMORY = 1000
HID_INTERVAL = 60.0
# A client chooses a query's names and values, and the last _MEMORY records stay in
# memory: uncut, 1,000 requests with an 8 KiB query of short parameters held ~90 MB. The
# budget is far more than any real action's arguments take (a user's 64 session ids fit).
_ARGS_MAX = 32
_ARGS_BUDGET = 4096  # bytes of JSON for all the arguments of one record
_ARG_NAME_MAX = 64
_ARG_TEXT_MAX = 256
_ARG_ITEMS_MAX = 64  # of a list argument (roles, session ids)
_ARG_INT_MAX = 2**63
# Lines of the history files a reader holds at once.
_BATCH_LINES = 256


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
            args=_bounded_args(args or {}),
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
                for line in [_line(rec) for (_, rec) in self._memory if rec.ts >= min_ts]:
                    yield line
            else:
                async with contextlib.aclosing(self._file_history(min_ts)) as history:
                    async for line in history:
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

    async def _file_history(self, min_ts: float) -> AsyncGenerator[str, None]:
        """The files' lines, oldest first, a batch at a time: never a whole trail in memory.

        The trail is up to (backups + 1) * max_size bytes, and each reader of it would
        otherwise hold all of it as strings at once.
        """
        with contextlib.ExitStack() as files:
            opened = await asyncio.to_thread(self._open_files, files)
            for file, size in opened:
                done = False
                while not done:
                    (batch, done) = await asyncio.to_thread(read_batch, file, size, min_ts)
                    for line in batch:
                        yield line

    def _open_files(self, files: contextlib.ExitStack) -> list[tuple[BinaryIO, int]]:
        # All opened at once: a rotation while the history is read renames paths, not these.
        out: list[tuple[BinaryIO, int]] = []
        for path in self.files():
            with contextlib.suppress(FileNotFoundError):
                file = files.enter_context(path.open("rb"))
                out.append((file, os.fstat(file.fileno()).st_size))
        return out


def read_batch(file: BinaryIO, size: int, min_ts: float) -> tuple[list[str], bool]:
    """Up to _BATCH_LINES lines from `file` since `min_ts`, before byte `size`; True at the end.

    Lines past `size` were written after the history was taken: a follower gets them
    from memory instead.
    """
    out: list[str] = []
    while len(out) < _BATCH_LINES:
        raw = file.readline()
        if not raw or file.tell() > size:
            return (out, True)
        if min_ts <= 0 or _stamp(raw) >= min_ts:
            out.append(raw.decode("utf-8", "replace"))
    return (out, file.tell() >= size)


def _stamp(raw: bytes) -> float:
    try:
        return msgspec.json.decode(raw, type=_Stamp).ts
    except msgspec.DecodeError:
        return -math.inf  # not a record: left out of a time-bounded history, as before


def _bounded_args(args: dict[str, object]) -> dict[str, object]:
    """`args` within the record's budget; `_omitted` counts the arguments left out."""
    out: dict[str, object] = {}
    used = 0
    for name, value in args.items():
        if len(out) == _ARGS_MAX:
            break
        (key, kept) = (name[:_ARG_NAME_MAX], _bounded(value))
        cost = len(msgspec.json.encode(key)) + len(msgspec.json.encode(kept)) + 2
        if used + cost <= _ARGS_BUDGET:
            out[key] = kept
            used += cost
    if len(out) < len(args):
        out["_omitted"] = len(args) - len(out)
    return out


def _bounded(value: object) -> object:
    if isinstance(value, list | tuple):
        return [_scalar(item) for item in value[:_ARG_ITEMS_MAX]]
    return _scalar(value)


def _scalar(value: object) -> object:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < _ARG_INT_MAX else "<int>"  # str() of 10**5000 raises
    return (value if isinstance(value, str) else repr(value))[:_ARG_TEXT_MAX]


class _Stamp(msgspec.Struct):
    ts: float


def _line(rec: AuditRecord) -> str:
    return msgspec.json.encode(rec).decode() + "\n"
