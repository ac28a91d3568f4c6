# SPDX-License-Identifier: GPL-3.0-or-later
"""The web console's fixtures: one `make run` for the session, Chromium per module.

`make run` gets its own state directory; each test opens a fresh browser context (its
own cookies), as a new visitor would. Screenshots go to build/artifacts/webui/.
"""

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.conftest import REPO
from tests.e2e.test_daemon import free_port
from tests.e2e.webui import ARTIFACTS, CHROMIUM, Kvm, Visit, wait_for
from tests.procs import alive, pids_with


@pytest.fixture(scope="session")
def kvm() -> Iterator[Kvm]:
    run = Path(tempfile.mkdtemp(prefix="kvmd-ui-"))  # short: unix socket paths live here
    port = free_port()
    log = (run / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"RUN={run}"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the daemon, USB host and machine share its process group
    )
    kvm = Kvm(port, run)
    try:
        wait_for("make run serves the API", lambda: _answers(kvm), seconds=40)
        wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
        yield kvm
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
        # Kept with the screenshots: what the daemon and the simulated target said.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "make-run.log", ARTIFACTS / "make-run.log")
        # Nothing of that run is left behind: every process named its state directory.
        wait_for("make run's children exit", lambda: not any(map(alive, pids_with(str(run)))))
        shutil.rmtree(run, ignore_errors=True)


def _answers(kvm: Kvm) -> bool:
    try:
        return kvm.api("GET", "/auth/check")["ok"] is True
    except OSError:
        return False


# Per module: Playwright's sync API runs a loop of its own, which must not outlive the
# module into the asyncio tests that follow.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt-get")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def visit(context: BrowserContext, kvm: Kvm) -> Iterator[Visit]:
    visit = Visit(context, kvm)
    yield visit
    visit.check()
