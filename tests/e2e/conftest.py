# SPDX-License-Identifier: GPL-3.0-or-later
"""The web console's fixtures: one `make run` for the session, Chromium per module.

`make run` gets its own state directory; each test opens a fresh browser context (its
own cookies), as a new visitor would. Screenshots go to build/artifacts/webui/.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.e2e.webui import ARTIFACTS, CHROMIUM, Kvm, Visit, make_run, serving, wait_for


@pytest.fixture(scope="session")
def kvm() -> Iterator[Kvm]:
    with make_run("kvmd-ui-") as (kvm, _):
        wait_for("make run serves the API", lambda: serving(kvm), seconds=40)
        wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
        yield kvm


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
