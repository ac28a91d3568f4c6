# SPDX-License-Identifier: GPL-3.0-or-later
"""Ten thousand hostile requests and five thousand frames against a real server.

Never a 5xx, never a traceback in the log, never a lost socket, and a healthy server
afterwards. The inputs are random from a seed printed with any failure; set
KVMD_FUZZ_SEED to replay a run.
"""

import asyncio
import collections
import contextlib
import dataclasses
import http.client
import logging
import os
import secrets
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from passlib.hash import bcrypt

from kvmd.app import runner_options
from kvmd.config.schema import Config
from kvmd.errors import UnavailableError
from kvmd.logs import LogRing, setup_logging
from kvmd.server.expect import unrouted
from tests.conftest import ADMIN, config_data, running_app
from tests.fuzzgen import FrameGen, RequestGen, app_routes, seeded
from tests.fuzzsend import (
    Answer,
    Target,
    admin_token,
    fuzz_websocket,
    oversize_close,
    send_requests,
)
from tests.msdenv import MsdPaths

# Generous: the counts bound the work, this only catches a hang.
pytestmark = pytest.mark.timeout(180)
REQUESTS = 10_000
FRAMES = 5_000
WS_MAX_MESSAGE = 64 * 1024  # kvmd.api.ws._MAX_MESSAGE
SEED = int(os.environ.get("KVMD_FUZZ_SEED") or secrets.randbelow(2**32))


class LogCapture(logging.Handler):
    """Records that mean something broke: errors, and anything carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in record.getMessage():
            self.records.append(record)

    def unraisable(self, unraisable: "sys.UnraisableHookArgs") -> None:
        """An exception in a finalizer (an unclosed file's ResourceWarning), as a record."""
        exc = unraisable.exc_value or RuntimeError(unraisable.err_msg)
        message = f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}"
        exc_info = (type(exc), exc, unraisable.exc_traceback)
        self.records.append(
            logging.LogRecord("unraisable", logging.ERROR, "", 0, message, None, exc_info)
        )


class Server:
    """The app on a real TCP port, in its own thread and event loop, logging as `kvmd` does."""

    def __init__(self, config: Config) -> None:
        self.port = 0
        self.app: web.Application | None = None
        self.log = LogCapture()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(_kvmd_logging(self.log))
        self._ready = threading.Event()
        self._stop: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        # asyncio.run: whatever a connection left running is cancelled before the loop closes.
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(config),))
        self._thread.start()
        assert self._ready.wait(10)

    async def _serve(self, config: Config) -> None:
        async with running_app(config) as (app, _, _):
            runner = web.AppRunner(app, **runner_options(config))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.app = app
            self.port = runner.addresses[0][1]
            self._stop = (asyncio.get_running_loop(), asyncio.Event())
            self._ready.set()
            await self._stop[1].wait()
            await runner.cleanup()

    def close(self) -> None:
        if self._stop is not None:
            (loop, stop) = self._stop
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)
        self._stack.close()


@contextlib.contextmanager
def _kvmd_logging(capture: LogCapture) -> Iterator[None]:
    """The daemon's log level and filters, so that the log is the one `kvmd` writes.

    Its handlers are not needed (running_app has the ring); finalizers' exceptions come
    to `capture` too, which pytest would otherwise report later, unattributed.
    """
    root = logging.getLogger()
    server = logging.getLogger("aiohttp.server")
    saved = (root.handlers[:], root.level, server.filters[:], sys.unraisablehook)
    setup_logging("info", LogRing(100))
    root.handlers[:] = [*saved[0], capture]
    sys.unraisablehook = capture.unraisable
    try:
        yield
    finally:
        (_, level, server.filters[:], sys.unraisablehook) = saved
        root.removeHandler(capture)
        root.setLevel(level)


@pytest.fixture(autouse=True)
def _name_the_seed() -> None:
    # In the captured log of any failure, a crash of the test's own client included.
    logging.getLogger(__name__).warning("KVMD_FUZZ_SEED=%d replays this run", SEED)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    (tmp / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    data = config_data(tmp)
    data["kvmd"]["hid"] = {"type": "disabled", "keymap": "/usr/share/qemu/keymaps/en-us"}
    data["kvmd"]["gpio"] = {
        "drivers": {"noop": {"type": "noop"}},
        "scheme": {
            "state": {"driver": "noop", "pin": 0, "mode": "output", "busy_delay": 0},
            "pulse": {"driver": "noop", "pin": 1, "mode": "output", "switch": False},
        },
    }
    data["kvmd"]["msd"] = MsdPaths(tmp).config()
    # Thousands of wrong passwords: the throttle would answer 429 to everything after a few.
    data["kvmd"]["auth"]["throttle"] = {"attempts": 1000, "seconds": 0}
    data["kvmd"]["auth"]["lockout"] = {"attempts": 1000, "minutes": 0}
    server = Server(msgspec.convert(data, Config))
    yield server
    server.close()


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_fuzzed_routes_are_the_apps(server):
    assert server.app is not None
    registered = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        # HEAD comes with each GET; the catch-all takes the unknown paths, fuzzed as such.
        if route.method != "HEAD" and route.resource is not None and route.handler is not unrouted
    }
    assert {(r.method, r.path) for r in app_routes()} == registered


def test_fuzzed_requests(server):
    start = len(server.log.records)
    # One connection: each log record is pinned on the request in flight when it came.
    target = Target("127.0.0.1", server.port, clock=lambda: len(server.log.records))
    gen = RequestGen(seeded(SEED), run(admin_token(target)))
    requests = (gen.next() for _ in range(REQUESTS))
    answers = run(send_requests(target, requests))
    assert len(answers) == REQUESTS
    report = _report(_findings(answers, server.log.records, start))
    assert not report, f"seed {SEED} (KVMD_FUZZ_SEED={SEED} replays it)\n" + "\n".join(report)
    # Every route the app has got its share, the unknown and malformed ones too.
    seen = collections.Counter(answer.request.label for answer in answers)
    assert {f"{r.method} {r.path}" for r in gen.routes} <= set(seen)
    assert min(seen.values()) >= 10
    _assert_healthy(server)


@dataclasses.dataclass(frozen=True)
class Finding:
    what: str  # "server error", "no answer", "logged"...
    cause: str  # the exception and where it was raised, or the log record's level and logger
    detail: str
    answer: Answer | None


def _findings(answers: list[Answer], records: list[logging.LogRecord], start: int) -> list[Finding]:
    out = []
    ends = [answer.sent_at for answer in answers[1:]] + [len(records)]
    for answer, end in zip(answers, ends, strict=True):
        problem = _problem(answer)
        logged = [_cause(record) for record in records[answer.sent_at : end]]
        if problem and not logged:
            out.append(Finding(problem, "nothing logged", "", answer))
        out += [Finding(problem or "logged", cause, detail, answer) for cause, detail in logged]
    first = answers[0].sent_at if answers else len(records)
    return out + [Finding("logged", *_cause(r), None) for r in records[start:first]]


def _problem(answer: Answer) -> str:
    request = answer.request
    status = answer.status
    if status is None:
        return "" if not request.wellformed else f"no answer ({answer.note})"
    if status >= 500 and not _unavailable(answer):
        return f"server error {status}"
    if status < 300 and not request.admin and not request.public:
        return "answered without credentials"
    return ""


def _cause(record: logging.LogRecord) -> tuple[str, str]:
    exc = record.exc_info[1] if record.exc_info else None
    if exc is None:
        return (f"{record.levelname} {record.name}", record.getMessage()[:300])
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return (f"{type(exc).__name__} at {where} ({record.name})", str(exc)[:300])


def _report(findings: list[Finding]) -> list[str]:
    """One entry per kind of failure and cause, with its shortest request as the example."""
    groups: dict[tuple[str, str], list[Finding]] = collections.defaultdict(list)
    for finding in findings:
        groups[(finding.what, finding.cause)].append(finding)
    out = []
    for (what, cause), found in sorted(groups.items(), key=lambda g: -len(g[1])):
        answers = sorted((f.answer for f in found if f.answer), key=lambda a: len(a.request.raw))
        labels = collections.Counter(a.request.label for a in answers)
        out.append(f"{len(found)} x {what}: {cause}\n    {found[0].detail!r}")
        if answers:
            out.append(f"    routes: {', '.join(label for label, _ in labels.most_common(8))}")
            out.append(f"    shortest: {answers[0].request.show()}")
            out.append(f"    answer: {answers[0].status} {answers[0].body[:200]!r}")
    return out


def _unavailable(answer: Answer) -> bool:
    """A 503 from a device that is off (the streamer here) is an answer, not a failure."""
    names = set()
    pending = [UnavailableError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending += cls.__subclasses__()
    with contextlib.suppress(msgspec.DecodeError, KeyError, TypeError):
        return answer.status == 503 and msgspec.json.decode(answer.body)["result"]["error"] in names
    return False


def test_fuzzed_websocket(server):
    start = len(server.log.records)
    (sent, lost, oversize, bystander) = run(_fuzz_websocket(server.port))
    assert sent >= FRAMES
    findings = [Finding("lost socket", each, "", None) for each in lost]
    findings += [Finding("logged", *_cause(r), None) for r in server.log.records[start:]]
    report = _report(findings)
    assert not report, f"seed {SEED} (KVMD_FUZZ_SEED={SEED} replays it)\n" + "\n".join(report)
    # Only the socket that sent a message past the limit goes, with "message too big".
    assert oversize == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert bystander is None
    _assert_healthy(server)


async def _fuzz_websocket(port: int) -> tuple[int, list[str], object, str | None]:
    url = f"http://127.0.0.1:{port}/api/ws?stream=0"
    frames = FrameGen(seeded(SEED))
    async with aiohttp.ClientSession() as session:
        (sent, lost) = await fuzz_websocket(session, url, iter(frames.next, None), FRAMES)
        async with session.ws_connect(url, headers=ADMIN) as bystander:
            oversize = await oversize_close(session, url, WS_MAX_MESSAGE + 1)
            await bystander.send_json({"event_type": "ping", "event": {}})
            alive = await _pong(bystander)
    return (sent, lost, oversize, None if alive else "the bystander lost its socket")


def _assert_healthy(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/api/info", headers=ADMIN)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert run(_fresh_socket_pongs(server.port))


async def _fresh_socket_pongs(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/api/ws?stream=0"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=ADMIN) as ws:
        await ws.send_json({"event_type": "ping", "event": {}})
        return await _pong(ws)


async def _pong(ws: aiohttp.ClientWebSocketResponse) -> bool:
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT and message.json()["event_type"] == "pong":
                return True
            if message.type is not aiohttp.WSMsgType.TEXT:
                return False
