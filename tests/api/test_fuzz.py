# SPDX-License-Identifier: GPL-3.0-or-later
"""Thousands of malformed requests and frames against a real server.

Never a 5xx, never a lost socket.
"""

import asyncio
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passlib.hash import bcrypt

from kvmd.app import runner_options
from kvmd.config.schema import Config
from tests.conftest import ADMIN, REPO, config_data, running_app
from tests.msdenv import MsdPaths

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ROUTES = [
    ("GET", "/api/info"),
    ("GET", "/api/log"),
    ("GET", "/api/atx"),
    ("POST", "/api/atx/power"),
    ("POST", "/api/atx/click"),
    ("GET", "/api/hid"),
    ("GET", "/api/hid/inactivity"),
    ("POST", "/api/hid/set_params"),
    ("POST", "/api/hid/set_connected"),
    ("POST", "/api/hid/reset"),
    ("POST", "/api/hid/print"),
    ("POST", "/api/hid/events/send_key"),
    ("POST", "/api/hid/events/send_shortcut"),
    ("POST", "/api/hid/events/send_mouse_button"),
    ("POST", "/api/hid/events/send_mouse_move"),
    ("POST", "/api/hid/events/send_mouse_relative"),
    ("POST", "/api/hid/events/send_mouse_wheel"),
    ("GET", "/api/msd"),
    ("POST", "/api/msd/set_params"),
    ("POST", "/api/msd/set_connected"),
    ("POST", "/api/msd/remove"),
    ("POST", "/api/msd/reset"),
    ("POST", "/api/msd/write"),
    ("POST", "/api/msd/write_remote"),
    ("GET", "/api/msd/read"),
    ("GET", "/api/gpio"),
    ("POST", "/api/gpio/switch"),
    ("POST", "/api/gpio/pulse"),
    ("GET", "/api/export/prometheus/metrics"),
    ("GET", "/api/redfish/v1"),
    ("GET", "/api/redfish/v1/Systems/0"),
    ("POST", "/api/redfish/v1/Systems/0/Actions/ComputerSystem.Reset"),
    ("GET", "/api/auth/check"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/auth/sessions"),
    ("POST", "/api/auth/sessions/remove"),
    ("POST", "/api/auth/sessions/keepalive"),
    ("GET", "/api/auth/users"),
    ("POST", "/api/auth/users/create"),
    ("POST", "/api/auth/users/set_params"),
    ("POST", "/api/auth/users/set_passwd"),
    ("POST", "/api/auth/users/remove"),
    ("GET", "/api/auth/roles"),
    ("POST", "/api/auth/roles/create"),
    ("POST", "/api/auth/roles/set_params"),
    ("POST", "/api/auth/roles/remove"),
    ("GET", "/api/auth/keys"),
    ("POST", "/api/auth/keys/create"),
    ("POST", "/api/auth/keys/set_params"),
    ("POST", "/api/auth/keys/rotate"),
    ("POST", "/api/auth/keys/remove"),
    ("GET", "/api/audit"),
    ("GET", "/api/ws"),
]
# Routes that answer without credentials, as PiKVM's do.
PUBLIC = {"/api/redfish/v1"}
PARAM_NAMES = [
    "action",
    "button",
    "wait",
    "fields",
    "legacy",
    "seek",
    "stream",
    "user",
    "passwd",
    "expire",
    "key",
    "state",
    "finish",
    "keys",
    "to_x",
    "to_y",
    "delta_x",
    "delta_y",
    "keymap",
    "limit",
    "slow",
    "keyboard_output",
    "mouse_output",
    "jiggler",
    "connected",
    "x",
    "channel",
    "delay",
    "image",
    "cdrom",
    "rw",
    "prefix",
    "remove_incomplete",
    "offset",
    "sha256",
    "url",
    "insecure",
    "timeout",
    "compress",
    "scope",
    "require",
    "id",
    "name",
    "roles",
    "permissions",
    "role",
    "read_only",
    "owner",
    "allowed_nets",
    "enabled",
    "grace",
    "disabled",
    "note",
    "old_passwd",
    "must_change_passwd",
    "force",
]


class Server:
    """The app on a real TCP port, in its own thread and event loop."""

    def __init__(self, config: Config) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(config),)
        )
        self._thread.start()
        assert self._ready.wait(10)

    async def _serve(self, config: Config) -> None:
        async with running_app(config) as (app, _, _):
            runner = web.AppRunner(app, **runner_options(config))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    (tmp / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    data = config_data(tmp)
    data["kvmd"]["hid"] = {"type": "disabled", "keymap": str(REPO / "configs/keymaps/en-us")}
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


def request(
    server: Server, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
any_text = st.text(max_size=200)
params = st.lists(
    st.tuples(
        st.sampled_from(PARAM_NAMES) | any_text,
        any_text | st.sampled_from(["", "1", "on", "-1", "9" * 40]),
    ),
    max_size=5,
)


@FUZZ
@given(route=st.sampled_from(ROUTES), query=params)
def test_malformed_queries(server, route, query):
    (method, path) = route
    target = path + "?" + urllib.parse.urlencode(query)
    assert request(server, method, target, headers=ADMIN) < 500


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    user=printable,
    passwd=printable,
    cookie=printable,
    authorization=st.sampled_from(["Basic ", "basic ", "Bearer ", ""]).flatmap(
        lambda p: printable.map(lambda v: p + v)
    ),
)
def test_malformed_credentials(server, route, user, passwd, cookie, authorization):
    headers = {
        "X-KVMD-User": user,
        "X-KVMD-Passwd": passwd,
        "Cookie": f"auth_token={cookie}",
        "Authorization": authorization,
    }
    status = request(server, route[0], route[1], headers=headers)
    assert status < 500
    assert status != 200 or user == "admin" or route[1] in PUBLIC


@FUZZ
@given(
    body=st.binary(max_size=300) | params.map(lambda p: urllib.parse.urlencode(p).encode()),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "text/plain",
            "application/json",
        ]
    ),
)
def test_malformed_login_forms(server, body, content_type):
    assert (
        request(
            server, "POST", "/api/auth/login", body=body, headers={"Content-Type": content_type}
        )
        < 500
    )


@FUZZ
@given(
    body=st.binary(max_size=300) | any_text.map(str.encode),
    keymap=st.sampled_from(["", "de", "ru", "x"]),
)
def test_malformed_print_bodies(server, body, keymap):
    target = "/api/hid/print?" + urllib.parse.urlencode({"keymap": keymap, "limit": "0"})
    assert request(server, "POST", target, body=body, headers=ADMIN) < 500


frames = st.one_of(
    any_text.map(lambda t: ("text", t)),
    st.binary(max_size=64).map(lambda b: ("binary", b)),
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 255]).flatmap(
        lambda op: st.binary(max_size=40).map(lambda b: ("binary", bytes([op]) + b))
    ),
    st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(
                ["key", "mouse_button", "mouse_move", "mouse_relative", "mouse_wheel", "ping", "x"]
            ),
            "event": st.dictionaries(
                st.sampled_from(["key", "state", "finish", "button", "to", "delta", "squash"]),
                st.none()
                | st.booleans()
                | st.integers()
                | any_text
                | st.lists(st.integers(), max_size=3),
                max_size=4,
            ),
        }
    ).map(lambda d: ("text", msgspec.json.encode(d).decode())),
)


def test_malformed_ws_frames(server):
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_fuzz_ws(server))
    finally:
        loop.close()


async def _fuzz_ws(server: Server) -> None:
    url = f"http://127.0.0.1:{server.port}/api/ws?stream=0"
    async with aiohttp.ClientSession() as session:
        bystander = await session.ws_connect(url, headers=ADMIN)
        fuzzed = await session.ws_connect(url, headers=ADMIN)
        sent = 0

        @settings(max_examples=600, deadline=None)
        @given(frame=frames)
        def send(frame: tuple[str, str | bytes]) -> None:
            nonlocal sent
            pending.append(frame)
            sent += 1

        pending: list[tuple[str, str | bytes]] = []
        # Hypothesis runs synchronously, so it draws the frames in a thread; the loop sends them.
        await asyncio.to_thread(send)
        for _, data in pending:
            if isinstance(data, str):
                await fuzzed.send_str(data)
            else:
                await fuzzed.send_bytes(data)
        assert sent >= 600
        for ws in (fuzzed, bystander):
            await ws.send_json({"event_type": "ping", "event": {}})
            assert await _wait_pong(ws)
            assert not ws.closed
        await fuzzed.close()
        await bystander.close()


async def _wait_pong(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Skip state events and the binary pongs that fuzzed pings earned; False if it closed."""
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                assert message.data == b"\xff"
            elif message.type is aiohttp.WSMsgType.TEXT:
                if message.json()["event_type"] == "pong":
                    return True
            else:
                return False
