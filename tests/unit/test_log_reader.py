# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import io
import json
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.web_protocol import RequestPayloadError

from kvmd.config.schema import LogReaderConfig
from kvmd.errors import LogReaderDisabledError
from kvmd.logs import (
    BadRequestFilter,
    LogReader,
    LogRing,
    _Formatter,
    is_secret_param,
    parse_journal_entry,
    redact_query,
    setup_logging,
)

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def record(name="aiohttp.access", level=logging.INFO, msg="hello", created=None):
    rec = logging.LogRecord(name, level, __file__, 1, msg, None, None)
    if created is not None:
        rec.created = created
    return rec


def test_line_layout_matches_pikvm():
    line = _Formatter(with_time=False).format(
        record(msg="[admin (token) / 1.2.3.4] 'GET /log HTTP/1.0' => 200")
    )
    # The seed's log shows the logger padded to 30 and the level right-aligned in 7.
    expected = "aiohttp.access                    INFO --- [admin (token) / 1.2.3.4]"
    assert line == expected + " 'GET /log HTTP/1.0' => 200"
    warning = _Formatter(with_time=False).format(
        record(name="kvmd", level=logging.WARNING, msg="x")
    )
    assert warning == "kvmd                           WARNING --- x"


def test_ring_lines_and_bound():
    ring = LogRing(3)
    when = time.mktime((2024, 7, 1, 4, 48, 37, 0, 0, -1))
    for i in range(5):
        ring.handle(record(msg=f"m{i}", created=when))
    lines = [line for (_, line) in ring.since(0, 0.0)]
    assert lines == [
        f"[2024-07-01 04:48:37 kvmd.service] --- aiohttp.access                    INFO --- m{i}"
        for i in (2, 3, 4)
    ]


def test_ring_is_bounded_in_characters_too():
    ring = LogRing(100)  # 100 lines, 25,600 characters
    for i in range(100):
        ring.handle(record(msg=f"big{i} " + "x" * 9000))
    lines = [line for (_, line) in ring.since(0, 0.0)]
    assert all(len(line) == 2048 and line.endswith("...") for line in lines)
    assert len(lines) == 25_600 // 2048
    assert "big99 " in lines[-1]
    for i in range(100):
        ring.handle(record(msg=f"small{i}"))
    lines = [line for (_, line) in ring.since(0, 0.0)]
    assert len(lines) == 100
    assert lines[0].endswith("small0")


def test_ring_folds_tracebacks_into_prefixed_lines():
    ring = LogRing(10)
    exc_info = None
    try:
        int("boom")
    except ValueError:
        exc_info = sys.exc_info()
    ring.handle(logging.LogRecord("kvmd", logging.ERROR, __file__, 1, "failed", None, exc_info))
    lines = [line for (_, line) in ring.since(0, 0.0)]
    assert len(lines) > 2
    assert all(line.startswith("[") and "kvmd.service] --- " in line for line in lines)
    assert lines[-1].endswith("ValueError: invalid literal for int() with base 10: 'boom'")


def reader(ring, **options):
    return LogReader(msgspec.convert({"source": "memory", **options}, LogReaderConfig), ring)


async def collect(iterator):
    return [line async for line in iterator]


async def test_seek_filters_by_age():
    ring = LogRing(100)
    now = time.time()
    ring.handle(record(msg="old", created=now - 7200))
    ring.handle(record(msg="new", created=now - 10))
    everything = await collect(reader(ring).lines(0, follow=False))
    assert [line.rsplit(" ", 1)[1] for line in everything] == ["old\r\n", "new\r\n"]
    recent = await collect(reader(ring).lines(3600, follow=False))
    assert [line.rsplit(" ", 1)[1] for line in recent] == ["new\r\n"]


async def test_follow_wakes_on_records_from_other_threads():
    ring = LogRing(100)
    lines = reader(ring).lines(0, follow=True)
    ring.handle(record(msg="before"))
    assert (await anext(lines)).endswith("before\r\n")
    threading.Thread(target=ring.handle, args=(record(msg="from-thread"),)).start()
    async with asyncio.timeout(2):
        assert (await anext(lines)).endswith("from-thread\r\n")
    await lines.aclose()
    assert ring._waiters == {}  # the follower unregistered itself


async def test_disabled():
    log_reader = reader(LogRing(10), enabled=False)
    with pytest.raises(LogReaderDisabledError):
        log_reader.check_enabled()
    with pytest.raises(LogReaderDisabledError):
        await collect(log_reader.lines(0, follow=False))


def test_auto_source(monkeypatch):
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert reader(LogRing(10), source="auto").source == "memory"
    monkeypatch.setenv("INVOCATION_ID", "x")
    assert reader(LogRing(10), source="auto", journalctl_cmd=["/bin/true"]).source == "journal"
    assert (
        reader(LogRing(10), source="auto", journalctl_cmd=["/no/such/journalctl"]).source
        == "memory"
    )


def entry(message, unit="kvmd.service", ts=1719809317_000000):
    return json.dumps({"__REALTIME_TIMESTAMP": str(ts), "_SYSTEMD_UNIT": unit, "MESSAGE": message})


def test_journal_entries():
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1719809317))
    assert parse_journal_entry(entry("kvmd  INFO --- hi  ").encode()) == [
        f"[{stamp} kvmd.service] --- kvmd  INFO --- hi\r\n"
    ]
    assert parse_journal_entry(entry(list(b"caf\xc3\xa9 \xff")).encode()) == [
        f"[{stamp} kvmd.service] --- café \ufffd\r\n"
    ]
    assert parse_journal_entry(b"not json") == []
    assert parse_journal_entry(b'{"MESSAGE": "no time"}') == []
    assert parse_journal_entry(entry(None).encode()) == []


def fake_journalctl(tmp_path: Path, lines: list[str], *, follow_forever: bool) -> Path:
    out = tmp_path / "lines.jsonl"
    out.write_text("".join(line + "\n" for line in lines))
    script = tmp_path / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path}/argv\n'
        f"echo $$ > {tmp_path}/pid\n"
        f"cat {out}\n"
        + ('case "$*" in *--follow*) exec sleep 30;; esac\n' if follow_forever else "")
    )
    script.chmod(0o755)
    return script


async def test_journal_source_reads_and_cleans_up(tmp_path):
    script = fake_journalctl(
        tmp_path,
        [entry("one"), "garbage", entry("two", unit="kvmd-vnc.service")],
        follow_forever=True,
    )
    log_reader = reader(LogRing(10), source="journal", journalctl_cmd=[str(script)])
    lines = await collect(log_reader.lines(60, follow=False))
    assert [line.split("] --- ")[1] for line in lines] == ["one\r\n", "two\r\n"]
    assert "kvmd-vnc.service]" in lines[1]
    argv = (tmp_path / "argv").read_text().split()
    assert argv[:4] == ["--boot", "--output=json", "--no-pager", "--unit=kvmd*"]
    assert argv[4].startswith("--since=@")

    following = log_reader.lines(0, follow=True)
    assert (await anext(following)).endswith("one\r\n")
    assert "--follow" in (tmp_path / "argv").read_text()
    pid = int((tmp_path / "pid").read_text())
    await following.aclose()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped when the consumer left


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&b=2", "a=1&b=2"),
        ("passwd=x&user=admin", "passwd=***&user=admin"),
        (
            "X-KVMD-Passwd=1&auth_token=abc&api_key=k&secret=s",
            "X-KVMD-Passwd=***&auth_token=***&api_key=***&secret=***",
        ),
        ("token", "token"),
        ("key=KeyA&keymap=de&keys=a,b&x-api-key=k", "key=KeyA&keymap=de&keys=a,b&x-api-key=***"),
        ("p%61sswd=x", "p%61sswd=***"),
        ("apikey=k&APIKEY=k&ApiKey=k", "apikey=***&APIKEY=***&ApiKey=***"),
        ("api%5Fkey=k&x_api_key=k&X-Api-Key=k", "api%5Fkey=***&x_api_key=***&X-Api-Key=***"),
        ("", ""),
    ],
)
def test_redact_query(query, expected):
    assert redact_query(query) == expected


@pytest.mark.parametrize(
    "name",
    [
        *("apikey", "APIKEY", "ApiKey", "api_key", "api-key", "x_api_key", "X-API-KEY", "myapikey"),
        *("api_key_secret", "private_key", "access-key", "passwd", "X-KVMD-Passwd", "auth_token"),
        *("api.key", "api key", "Api Key"),
    ],
)
def test_secret_params(name):
    assert is_secret_param(name)


@pytest.mark.parametrize(
    "name",
    ["key", "Key", "keys", "keymap", "keyboard_output", "hotkey", "monkey", "user", "api", "key[]"],
)
def test_params_that_are_no_secret(name):
    # An HID log line is there to show which key, on which keymap.
    assert not is_secret_param(name)


def test_setup_logging_writes_stderr_and_ring(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    server = logging.getLogger("aiohttp.server")
    saved = (root.handlers[:], root.level, server.filters[:])
    ring = LogRing(10)
    try:
        setup_logging("debug", ring)
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("kvmd.test").debug("visible")
        assert root.level == logging.DEBUG
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        server.filters[:] = saved[2]
    assert re.fullmatch(STAMP + r" kvmd.test +DEBUG --- visible\n", stream.getvalue())
    assert ring.since(0, 0.0)[-1][1].endswith("DEBUG --- visible")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bad_requests():
    """A logger like aiohttp.server with the filter on, a fake clock and what it let through."""
    clock = Clock()
    logger = logging.getLogger("test.bad_requests")
    logger.propagate = False
    ring = LogRing(100)
    logger.handlers[:] = [ring]
    logger.filters[:] = [BadRequestFilter(interval=60.0, clock=clock)]
    yield (logger, clock, ring)
    logger.handlers[:] = []
    logger.filters[:] = []


def raised(exc: BaseException) -> BaseException:
    def throw() -> None:
        raise exc

    try:
        throw()
    except BaseException as caught:  # noqa: BLE001 -- given back, with its traceback
        return caught
    raise AssertionError


def report(logger: logging.Logger, exc: BaseException, peer: str = "1.2.3.4") -> None:
    """What aiohttp's RequestHandler.handle_error does with a request it could not parse."""
    logger.error("Error handling request from %s", peer, exc_info=raised(exc))


def messages(ring: LogRing) -> list[str]:
    return [line.split(" --- ", 1)[1] for (_, line) in ring.since(0, 0.0)]


def test_bad_requests_are_one_warning_a_minute_with_a_count(bad_requests):
    (logger, clock, ring) = bad_requests
    report(logger, LineTooLong(b"a" * 100, 8190), peer="10.0.0.1")
    for _ in range(49):
        report(logger, BadStatusLine("GARBAGE"))
    clock.now += 59.9
    report(logger, BadStatusLine("GARBAGE"))
    clock.now += 0.1
    report(logger, InvalidURLError("http://["))
    report(logger, InvalidURLError("http://["))
    clock.now += 600
    report(logger, BadHttpMessage("Invalid header value char"))
    assert messages(ring) == [
        "test.bad_requests              WARNING --- Error handling request from 10.0.0.1: "
        "LineTooLong: Got more than 8190 bytes when reading: " + repr(b"a" * 100) + ".",
        "test.bad_requests              WARNING --- Error handling request from 1.2.3.4: "
        "InvalidURLError: http://[ (50 more since the last such line)",
        "test.bad_requests              WARNING --- Error handling request from 1.2.3.4: "
        "BadHttpMessage: Invalid header value char (1 more since the last such line)",
    ]


def test_a_bad_request_line_is_short_and_printable(bad_requests):
    (logger, _, ring) = bad_requests
    report(logger, BadHttpMessage("evil\r\n\x1b[31mforged line\x00" + "x" * 500))
    (line,) = messages(ring)
    assert line.startswith("test.bad_requests              WARNING --- Error handling request")
    assert line.endswith("BadHttpMessage: evil ?[31mforged line?" + "x" * 138 + "...")


def test_a_broken_body_met_again_while_draining_is_a_bad_request(bad_requests):
    (logger, _, ring) = bad_requests
    drained = RequestPayloadError("drained")
    drained.__cause__ = TransferEncodingError("zz")
    logger.error("Unhandled exception", exc_info=raised(drained))
    assert messages(ring) == [
        "test.bad_requests              WARNING --- Unhandled exception: TransferEncodingError: zz"
    ]


def test_a_debug_report_stays_debug_and_other_errors_keep_their_traceback(bad_requests):
    (logger, _, ring) = bad_requests
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("Error handling request", exc_info=BadHttpMethod("\x16\x03"))
        report(logger, RuntimeError("a bug"))
        report(logger, RequestPayloadError("no parse error behind it"))
    finally:
        logger.setLevel(logging.NOTSET)
    lines = messages(ring)
    assert lines[0] == (
        "test.bad_requests                DEBUG --- Error handling request: "
        "BadHttpMethod: Received HTTPS traffic on an HTTP port"
    )
    assert (
        lines[1] == "test.bad_requests                ERROR --- Error handling request from 1.2.3.4"
    )
    assert lines[2] == "Traceback (most recent call last):"
    assert "RuntimeError: a bug" in lines
    assert any("RequestPayloadError: no parse error behind it" in line for line in lines)


def test_setup_logging_filters_aiohttp_server_once(monkeypatch):
    root = logging.getLogger()
    server = logging.getLogger("aiohttp.server")
    saved = (root.handlers[:], root.level, server.filters[:])
    try:
        setup_logging("info", LogRing(10))
        setup_logging("info", LogRing(10))
        assert [type(f) for f in server.filters] == [BadRequestFilter]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        server.filters[:] = saved[2]
