# SPDX-License-Identifier: GPL-3.0-or-later
"""sd_notify without libsystemd: what reaches the socket, and when nothing should."""

import asyncio
import logging
import os
import socket

from kvmd.notify import Notifier


def _listener(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_fields_go_as_lines_to_the_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with _listener(path) as sock:
        Notifier({"NOTIFY_SOCKET": path}).notify(READY="1", STATUS="Serving")
        assert sock.recv(4096) == b"READY=1\nSTATUS=Serving"


def test_an_abstract_socket_name(tmp_path):
    name = f"kvmd-test-{os.getpid()}"
    with _listener("\0" + name) as sock:
        Notifier({"NOTIFY_SOCKET": "@" + name}).notify(WATCHDOG="1")
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_outside_systemd_nothing_is_sent_and_nothing_fails(caplog):
    notifier = Notifier({})
    notifier.notify(READY="1")
    assert notifier.watchdog_interval is None
    assert caplog.records == []


def test_a_missing_socket_is_logged_not_raised(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).notify(READY="1")
    assert "Can't notify systemd" in caplog.text


def test_the_watchdog_interval_is_half_the_timeout_for_this_process_only():
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == 15.0
    # Another process's watchdog, none at all, or nonsense: no pings from us.
    for env in (
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
    ):
        assert Notifier(env).watchdog_interval is None


async def test_the_watchdog_pings_until_cancelled(tmp_path):
    path = str(tmp_path / "notify.sock")
    with _listener(path) as sock:
        sock.setblocking(False)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
        task = asyncio.create_task(notifier.run_watchdog())
        pings: list[bytes] = []
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(5):
            while len(pings) < 3:
                pings.append(await loop.sock_recv(sock, 4096))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert pings == [b"WATCHDOG=1"] * 3
    # Without a watchdog the loop ends at once.
    await Notifier({}).run_watchdog()
