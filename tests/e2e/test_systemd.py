# SPDX-License-Identifier: GPL-3.0-or-later
"""kvmd as systemd runs it (Type=notify, WatchdogSec): READY=1 once it listens, WATCHDOG=1
pings, then SIGTERM to the daemon alone and a staged stop that leaves every output idle.
"""

import http.client
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.webui import Kvm, make_run, serving, wait_for
from tests.procs import alive, pids_with

pytestmark = pytest.mark.timeout(90)

# What systemd's TimeoutStopSec gives kvmd.service before SIGKILL.
STOP_LIMIT = 10.0


class NotifySocket:
    """The datagram socket systemd listens on: every message kvmd sends, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait(self, message: str, seconds: float, *, count: int = 1, since: int = 0) -> int:
        """Receive until `message` (a line such as READY=1) has come `count` times among
        the messages from index `since`; the index of the last one."""
        deadline = time.monotonic() + seconds
        while True:
            found = [
                i for (i, m) in enumerate(self.messages) if i >= since and message in m.splitlines()
            ]
            if len(found) >= count:
                return found[count - 1]
            left = deadline - time.monotonic()
            assert left > 0, f"{len(found)} of {count} {message} in {self.messages}"
            self.sock.settimeout(left)
            self.messages.append(self.sock.recv(4096).decode())


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    with tempfile.TemporaryDirectory(prefix="kvmd-sd-") as name:
        notify = NotifySocket(Path(name) / "notify.sock")
        with notify.sock:
            yield notify


def test_ready_watchdog_and_a_staged_stop(notify: NotifySocket) -> None:
    # WatchdogSec=0.4: a ping every 0.2 s.
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    with make_run("kvmd-sd-", env) as (kvm, make):
        ready = notify.wait("READY=1", seconds=40)
        # Ready means ready: the API answers at once, with no retry.
        assert serving(kvm)
        notify.wait("WATCHDOG=1", seconds=3, count=3, since=ready)
        _hold_outputs(kvm)
        [daemon] = pids_with(f"kvmd\0--main-config\0{kvm.run}/kvmd.yaml")
        streamers = pids_with(f"{kvm.run}/ustreamer.sock")
        assert streamers, "the streamer runs while a client holds it"
        # systemd (KillMode=mixed) sends SIGTERM to the main process only.
        os.kill(daemon, signal.SIGTERM)
        notify.wait("STOPPING=1", seconds=5)
        wait_for("kvmd gone", lambda: not alive(daemon), seconds=STOP_LIMIT)
        # Staged: the held button and the switched relay were let go before it left...
        screen = kvm.screen()
        assert "buttons 0x00" in screen, screen
        assert (kvm.run / "target.txt").read_text().endswith("relay off\n")
        # ...and its streamer went with it.
        assert not any(map(alive, streamers))
        # make's status is kvmd's: a clean exit.
        assert make.wait(10) == 0


def _hold_outputs(kvm: Kvm) -> None:
    """A mouse button down on the target, the relay on, and the streamer running."""
    wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
    assert kvm.api("POST", "/hid/events/send_mouse_button?button=left&state=1")["ok"] is True
    wait_for("button held", lambda: "buttons 0x01" in kvm.screen())
    assert kvm.api("POST", "/gpio/switch?channel=relay&state=1&wait=1")["ok"] is True
    assert (kvm.run / "target.txt").read_text().endswith("relay on\n")
    # A snapshot starts the streamer (it stays for shutdown_delay after).
    connection = http.client.HTTPConnection("127.0.0.1", kvm.port, timeout=20)
    try:
        connection.request(
            "GET",
            "/api/streamer/snapshot",
            headers={"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"},
        )
        answer = connection.getresponse()
        assert (answer.status, answer.read()[:2]) == (200, b"\xff\xd8")  # a JPEG
    finally:
        connection.close()
