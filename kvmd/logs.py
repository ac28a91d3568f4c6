# SPDX-License-Identifier: GPL-3.0-or-later
"""The daemon's log: PiKVM's line format, an in-memory ring, and the /api/log reader.

Under systemd the journal keeps the log and /api/log reads it back with journalctl;
elsewhere (`make run`, tests) the ring buffer of the daemon's own records stands in.
"""

import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
import urllib.parse
from collections.abc import AsyncGenerator, Callable

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from kvmd.config.schema import LogReaderConfig
from kvmd.errors import LogReaderDisabledError

# The journal adds "[date unit] --- " in front of what the daemon writes.
UNIT = "kvmd.service"
# Anywhere in a parameter's name, once what separates its words is gone: `X-KVMD-Passwd`,
# `api_key`, `apikey`, `x-api-key`.
_SECRET_PARAMS = ("passwd", "password", "secret", "token", "apikey")
# A journal line can carry a whole traceback; asyncio's default 64 KiB would choke on it.
_JOURNAL_LINE_LIMIT = 4 * 1024 * 1024
# Anyone who reaches the port can send requests aiohttp can't parse, as fast as they like:
# one line a minute says it happens, and from where, without flooding the journal.
_BAD_REQUEST_INTERVAL = 60.0
_BAD_REQUEST_REASON_MAX = 160


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


class _Formatter(logging.Formatter):
    """`<logger padded to 30> <LEVEL right-aligned in 7> --- <message>`, as PiKVM writes."""

    def __init__(self, *, with_time: bool) -> None:
        super().__init__()
        self._with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        line = f"{record.name:<30} {record.levelname:>7} --- {text}"
        return f"{_stamp(record.created)} {line}" if self._with_time else line


# One line of the ring at most, and the characters a line may take on average.
_RING_LINE_MAX = 2048
_RING_AVERAGE = 256


class LogRing(logging.Handler):
    """The last `capacity` log lines, each as a complete PiKVM /api/log line."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.setFormatter(_Formatter(with_time=False))
        self._lines: collections.deque[tuple[float, int, str]] = collections.deque()
        self._capacity = capacity
        # Bounded in characters as well as lines: a line can hold what a client sent, and
        # 20,000 lines of 8 KiB headers once held ~2 GB. Typical lines are ~150 characters.
        self._budget = capacity * _RING_AVERAGE
        self._chars = 0
        self._seq = 0
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._guard = threading.Lock()  # records may come from worker threads

    def emit(self, record: logging.LogRecord) -> None:
        prefix = f"[{_stamp(record.created)} {UNIT}] --- "
        # A traceback becomes several lines, each with the prefix, so that every line of
        # /api/log parses the same way.
        parts = self.format(record).splitlines() or [""]
        with self._guard:
            for part in parts:
                self._seq += 1
                line = prefix + part.rstrip()
                if len(line) > _RING_LINE_MAX:
                    line = line[: _RING_LINE_MAX - 3] + "..."
                self._lines.append((record.created, self._seq, line))
                self._chars += len(line)
                while len(self._lines) > self._capacity or self._chars > self._budget:
                    self._chars -= len(self._lines.popleft()[2])
            waiters = list(self._waiters.values())
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that follower's loop is closed
                continue

    def since(self, after: int, min_time: float) -> list[tuple[int, str]]:
        """Lines newer than sequence number `after`, or (after == 0) written since `min_time`."""
        with self._guard:
            if after:
                newer = []
                for _, seq, line in reversed(self._lines):
                    if seq <= after:
                        break
                    newer.append((seq, line))
                return newer[::-1]
            return [(seq, line) for (created, seq, line) in self._lines if created >= min_time]

    def add_waiter(self, event: asyncio.Event) -> int:
        with self._guard:
            key = id(event)
            self._waiters[key] = (asyncio.get_running_loop(), event)
            return key

    def remove_waiter(self, key: int) -> None:
        with self._guard:
            self._waiters.pop(key, None)


class BadRequestFilter(logging.Filter):
    """aiohttp's report of a request it could not parse, as one short, rate-limited line.

    aiohttp answers a malformed request (an oversized or NUL-bearing header, a bad request
    line, an invalid URL, a broken chunked body) with a 400 itself, then logs it with
    `logger.exception`: a dozen lines of traceback at ERROR for the client's mistake.
    Here it becomes one WARNING line, at most one per `interval`; the next line counts the
    ones left out. Anything else aiohttp logs keeps its traceback.
    """

    def __init__(
        self,
        interval: float = _BAD_REQUEST_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._next = -math.inf
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        fault = _client_fault(record.exc_info[1] if record.exc_info else None)
        if fault is None:
            return True
        now = self._clock()
        if now < self._next:
            self._left_out += 1
            return False
        self._next = now + self._interval
        text = f"{record.getMessage()}: {type(fault).__name__}: {_one_line(fault.message)}"
        if self._left_out:
            text += f" ({self._left_out} more since the last such line)"
            self._left_out = 0
        # Rewritten in place: a logger's filters see the record before its handlers do.
        record.msg = text
        record.args = None
        record.exc_info = None
        record.exc_text = None
        # aiohttp logs some (a bad method opening a connection) at DEBUG already.
        record.levelno = min(record.levelno, logging.WARNING)
        record.levelname = logging.getLevelName(record.levelno)
        return True


def _client_fault(exc: BaseException | None) -> HttpProcessingError | None:
    """The parse error behind an aiohttp report, or None for a genuine server error."""
    # A broken body the handler left unread fails again as aiohttp drains it.
    if isinstance(exc, RequestPayloadError):
        exc = exc.__cause__
    return exc if isinstance(exc, HttpProcessingError) else None


def _one_line(text: str) -> str:
    """The client's bytes in aiohttp's message, short and unable to forge a log line."""
    text = "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split()))
    if len(text) > _BAD_REQUEST_REASON_MAX:
        return text[:_BAD_REQUEST_REASON_MAX] + "..."
    return text


def setup_logging(level: str, ring: LogRing) -> None:
    """Log to stderr (with a timestamp unless journald adds one) and to the ring."""
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(_Formatter(with_time="JOURNAL_STREAM" not in os.environ))
    root = logging.getLogger()
    root.handlers[:] = [stderr, ring]
    root.setLevel(level.upper())
    server = logging.getLogger("aiohttp.server")
    for old in [f for f in server.filters if isinstance(f, BadRequestFilter)]:
        server.removeFilter(old)
    server.addFilter(BadRequestFilter())


def redact_query(query: str) -> str:
    """Mask the values of parameters that look secret; keep everything else as it was."""
    parts = []
    for part in query.split("&"):
        (name, sep, _) = part.partition("=")
        secret = is_secret_param(urllib.parse.unquote_plus(name))
        parts.append(f"{name}=***" if sep and secret else part)
    return "&".join(parts)


def is_secret_param(name: str) -> bool:
    words = re.findall(r"[^\W_]+", name.lower())
    joined = "".join(words)
    # "key" only as a word of a longer name (`private_key`): `key=KeyA` and `keymap=de` are
    # the point of an HID log line.
    return any(part in joined for part in _SECRET_PARAMS) or (len(words) > 1 and "key" in words)


class LogReader:
    """Serves /api/log from the journal or from the ring."""

    def __init__(self, config: LogReaderConfig, ring: LogRing) -> None:
        self._enabled = config.enabled
        self._ring = ring
        self._journalctl = config.journalctl_cmd
        source = config.source
        if source == "auto":
            under_systemd = "INVOCATION_ID" in os.environ
            found = bool(self._journalctl) and shutil.which(self._journalctl[0]) is not None
            source = "journal" if under_systemd and found else "memory"
        self.source = source

    def check_enabled(self) -> None:
        if not self._enabled:
            raise LogReaderDisabledError

    async def lines(self, seek: int, follow: bool) -> AsyncGenerator[str, None]:
        """Lines ending in CRLF: the last `seek` seconds (0 = all), then new ones if `follow`."""
        self.check_enabled()
        read = self._journal if self.source == "journal" else self._memory
        # aclosing: when our consumer stops, the source must end now (and kill journalctl),
        # not whenever the garbage collector gets to it.
        async with contextlib.aclosing(read(seek, follow)) as source:
            async for line in source:
                yield line

    async def _memory(self, seek: int, follow: bool) -> AsyncGenerator[str, None]:
        min_time = time.time() - seek if seek > 0 else 0.0
        last = 0
        wake = asyncio.Event()
        key = self._ring.add_waiter(wake)
        try:
            while True:
                wake.clear()  # before reading, so a record written meanwhile still wakes us
                for seq, line in self._ring.since(last, min_time):
                    last = seq
                    yield line + "\r\n"
                if not follow:
                    return
                await wake.wait()
        finally:
            self._ring.remove_waiter(key)

    async def _journal(self, seek: int, follow: bool) -> AsyncGenerator[str, None]:
        argv = [*self._journalctl, "--boot", "--output=json", "--no-pager", "--unit=kvmd*"]
        argv.append(f"--since=@{int(time.time()) - seek}" if seek > 0 else "--lines=all")
        if follow:
            argv.append("--follow")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=_JOURNAL_LINE_LIMIT,
        )
        try:
            assert proc.stdout is not None  # noqa: S101 -- stdout=PIPE above
            async for raw in proc.stdout:
                for line in parse_journal_entry(raw):
                    yield line
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def parse_journal_entry(raw: bytes) -> list[str]:
    """One `journalctl --output=json` entry as /api/log lines; [] for anything unusable."""
    try:
        entry = json.loads(raw)
        created = int(entry["__REALTIME_TIMESTAMP"]) / 1_000_000
        message = entry["MESSAGE"]
        if isinstance(message, list):  # journald sends non-UTF-8 messages as byte arrays
            message = bytes(message).decode("utf-8", errors="replace")
        if not isinstance(message, str):
            return []
    except (ValueError, KeyError, TypeError):
        return []
    prefix = f"[{_stamp(created)} {entry.get('_SYSTEMD_UNIT', '-')}] --- "
    return [prefix + part.rstrip() + "\r\n" for part in message.splitlines() or [""]]
