# SPDX-License-Identifier: GPL-3.0-or-later
"""The daemon runs the real ustreamer while a websocket watches, and never leaves it behind."""

import asyncio
import json
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
