# SPDX-License-Identifier: GPL-3.0-or-later
"""The daemon runs the real ustreamer while a websocket watches, and never leaves it behind."""

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from passlib.hash import bcrypt

from tests.conftest import ADMIN, REPO, config_data, deep_merge
from tests.e2e.test_daemon import free_port
from tests.procs import pids_with, ustreamer_cmd

pytestmark = pytest.mark.timeout(60)

# What ustreamer answers /stream with, so that no browser or proxy keeps a frame.
USTREAMER_NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, proxy-revalidate, pre-check=0,"
    " post-check=0, max-age=0",
    "Pragma": "no-cache",
    "Expires": "Mon, 3 Jan 2000 12:34:56 GMT",
}


def start_daemon(tmp_path: Path) -> tuple[subprocess.Popen[str], int, str]:
    port = free_port()
    sock = str(tmp_path / "us.sock")
    (tmp_path / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    (tmp_path / "htpasswd").chmod(0o600)  # kvmd refuses a world-readable one
    streamer = {
        "type": "ustreamer",
        "unix": sock,
        "shutdown_delay": 1.0,
        "cmd": ustreamer_cmd(tmp_path),
    }
    data = deep_merge(
        config_data(tmp_path), {"kvmd": {"server": {"port": port}, "streamer": streamer}}
    )
    (tmp_path / "main.yaml").write_text(json.dumps(data))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kvmd",
            "--main-config",
            str(tmp_path / "main.yaml"),
            "--override-dir",
            str(tmp_path / "x"),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return (proc, port, sock)


async def wait_for(predicate, limit: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def connect(session: aiohttp.ClientSession, port: int) -> aiohttp.ClientWebSocketResponse:
    async with asyncio.timeout(20):
        while True:
            try:
                return await session.ws_connect(f"http://127.0.0.1:{port}/api/ws", headers=ADMIN)
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)


async def streamer_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """ustreamer's /state as the first `streamer` event that carries one shows it."""
    async with asyncio.timeout(10):
        while True:
            event = await ws.receive_json()
            if event["event_type"] == "streamer" and event["event"]["streamer"] is not None:
                return dict(event["event"]["streamer"])


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_streamer_follows_watchers_and_dies_with_kvmd(tmp_path, how):
    (proc, port, sock) = start_daemon(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            ws = await connect(session, port)
            await wait_for(lambda: len(pids_with(sock, "ustreamer")) == 1, 10)
            live = await streamer_event(ws)
            assert live["source"]["online"] is False  # the real ustreamer, with no capture device
            await ws.close()
            # Gone within shutdown_delay (1 s) plus ustreamer's stop time.
            await wait_for(lambda: not pids_with(sock, "ustreamer"), 1.0 + 3.0 + 1.0)
            ws = await connect(session, port)
            await wait_for(lambda: len(pids_with(sock, "ustreamer")) == 1, 10)
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
            proc.wait(15)
            await wait_for(lambda: not pids_with(sock, "ustreamer"), 5)
            await ws.close()
        assert proc.returncode == (0 if how == "sigterm" else -signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ustreamer's cookie: the viewer's key (`0` without one), then its hexadecimal client id.
COOKIE = re.compile(r"stream_client=relay/(?P<id>[0-9a-f]+); path=/; max-age=30")


async def api_streamer(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/streamer"
    async with session.get(url, headers=ADMIN) as response:
        return dict((await response.json())["result"])


async def test_the_relay_passes_on_ustreamers_cookie_and_headers(tmp_path):
    """kvmd's /streamer/stream (no nginx) with the real ustreamer behind it.

    The PiKVM web UI finds its stream by the cookie; ustreamer sends its X-UStreamer-*
    headers in each part (with `extra_headers=1`), none in the answer's own headers.
    """
    (proc, port, _) = start_daemon(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            await (await connect(session, port)).close()  # kvmd answers
            url = f"http://127.0.0.1:{port}/streamer/stream?key=relay&extra_headers=1"
            async with session.get(url, headers=ADMIN) as response:
                assert response.status == 200
                [cookie] = response.headers.getall("Set-Cookie")
                match = COOKIE.fullmatch(cookie)
                assert match is not None, cookie
                assert {name: response.headers[name] for name in USTREAMER_NO_CACHE} == (
                    USTREAMER_NO_CACHE
                )
                assert response.headers["Content-Type"] == (
                    "multipart/x-mixed-replace;boundary=boundarydonotcross"
                )
                data = b""
                async with asyncio.timeout(10):
                    while data.count(b"--boundarydonotcross") < 2:
                        data += await response.content.readany()
                head = data.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
                part = dict(line.split(": ", 1) for line in head)
                # No capture device here: ustreamer's NO SIGNAL picture.
                assert (part["X-UStreamer-Online"], part["X-UStreamer-Width"]) == ("false", "640")
                assert "X-UStreamer-Client-FPS" in part
                # ustreamer lists the viewer under the cookie's id.
                async with asyncio.timeout(10):
                    while True:
                        stream = ((await api_streamer(session, port))["streamer"] or {}).get(
                            "stream", {}
                        )
                        if match["id"] in stream.get("clients_stat", {}):
                            break
                        await asyncio.sleep(0.1)
                assert stream["clients_stat"][match["id"]]["extra_headers"] is True
    finally:
        proc.terminate()
        proc.wait(15)
