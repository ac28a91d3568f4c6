# SPDX-License-Identifier: GPL-3.0-or-later
"""Driving the web console: `make run` as the tests see it, and a page that watches itself."""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from base64 import b64encode
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.conftest import REPO
from tests.e2e.test_daemon import free_port
from tests.procs import alive, pids_with

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "build" / "artifacts" / "webui"
# Whichever element shows the video: the MJPEG <img> or the H.264 <canvas>.
VIDEO = "#screen :is(#stream, #stream-canvas):visible"
# The simulated target: kvmd/sim/usbhost.py moves its pointer on a 1920x1080 screen.
SCREEN = (1920, 1080)


class Kvm:
    """`make run` in its own state directory: the daemon's URL and what the target shows."""

    def __init__(self, port: int, run: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.run = run

    def screen(self) -> str:
        path = self.run / "screen.txt"
        return path.read_text() if path.exists() else ""

    def api(
        self,
        method: str,
        path: str,
        user: str = "admin",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """An API call as `user` (password = name, as testenv has it), or with `headers`."""
        basic = b64encode(f"{user}:{user}".encode()).decode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(
                method, f"/api{path}", body, headers or {"Authorization": f"Basic {basic}"}
            )
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()


@contextlib.contextmanager
def make_run(
    prefix: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[Kvm, "subprocess.Popen[bytes]"]]:
    """`make run` on a free port in a new state directory; yields it and the make process.

    At the end the whole run is stopped (SIGTERM to its process group, as Ctrl-C would)
    and nothing that named its directory may be left running.
    """
    run = Path(tempfile.mkdtemp(prefix=prefix))  # short: unix socket paths live here
    port = free_port()
    vnc_port = (env or {}).get("VNC_PORT") or str(free_port())
    log = (run / "make-run.log").open("wb")
    proc = subprocess.Popen(
        # Its own VNC port too: two `make run`s must not both take 5900.
        [
            "make",
            "--no-print-directory",
            "run",
            f"PORT={port}",
            f"RUN={run}",
            f"VNC_PORT={vnc_port}",
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, its shell and kvmd share this process group
        env=env,
    )
    kvm = Kvm(port, run)
    try:
        yield (kvm, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
        # Kept with the screenshots: what the daemon and the simulated target said.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "make-run.log", ARTIFACTS / f"{prefix}make-run.log")
        wait_for("make run's children exit", lambda: not any(map(alive, pids_with(str(run)))))
        shutil.rmtree(run, ignore_errors=True)


def serving(kvm: Kvm) -> bool:
    try:
        return kvm.api("GET", "/auth/check")["ok"] is True
    except OSError:
        return False


def wait_for(
    what: str,
    check: Callable[[], bool],
    seconds: float = 10,
    explain: Callable[[], object] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `check` every `interval`; on time-out, fail naming `what` and what `explain`
    says then."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}" + (f" ({explain()!r})" if explain else ""))
        time.sleep(interval)


class Visit:
    """A page of the console, failing the test on any script error or foreign request."""

    def __init__(self, context: BrowserContext, kvm: Kvm) -> None:
        self.kvm = kvm
        self.page = context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", self._request)

    def _request(self, request: Any) -> None:
        if not request.url.startswith((self.kvm.url, "data:")):
            self.foreign.append(request.url)

    def login(self, user: str) -> Page:
        page = self.page
        page.goto(self.kvm.url + "/")
        page.fill("#login-user", user)
        page.fill("#login-passwd", user)
        page.click("#login-submit")
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        return page

    def check(self) -> None:
        assert self.errors == []
        assert self.foreign == []


def near(point: tuple[int, int] | None, expected: tuple[int, int]) -> bool:
    # A CSS pixel of the scaled picture is a few pixels of the target's screen.
    return point is not None and all(
        abs(a - b) <= 4 for (a, b) in zip(point, expected, strict=True)
    )


def pointer(kvm: Kvm) -> tuple[int, int] | None:
    found = re.search(r"pointer (\d+),(\d+)", kvm.screen())
    return (int(found[1]), int(found[2])) if found else None
