# SPDX-License-Identifier: GPL-3.0-or-later
"""Layouts in the console, against `make run LAYOUT=es` (a target with a Spanish keyboard):
pasting accented text, what a layout cannot type, and the on-screen keyboard.
"""

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.e2e.webui import ARTIFACTS, Kvm, Visit, make_run, serving, wait_for

pytestmark = pytest.mark.timeout(90)

PASTED = "Grüße, ¿qué tal? Ça va — €5"
# The daemon types an em dash, which no layout has a key for, as "--" (layouts.FOLDS).
TYPED = PASTED.replace("\u2014", "--")


@pytest.fixture(scope="module")
def kvm_es() -> Iterator[Kvm]:
    """Its own `make run`: the target decodes its keyboard as Spanish (es), not as en-us."""
    with make_run("kvmd-es-", {**os.environ, "LAYOUT": "es"}) as (kvm, _):
        wait_for("make run serves the API", lambda: serving(kvm), seconds=40)
        wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
        yield kvm


@pytest.fixture
def visit_es(context: BrowserContext, kvm_es: Kvm) -> Iterator[Visit]:
    visit = Visit(context, kvm_es)
    yield visit
    visit.check()


def _paste(page: Page, keymap: str, text: str) -> None:
    page.select_option("#paste-keymap", keymap)
    page.fill("#paste-text", text)
    page.click("#paste-send")
    page.wait_for_selector("#paste-send:enabled")


def _typed(kvm: Kvm) -> str:
    """The text the target shows: its screen without the last line (pointer and LEDs)."""
    return "\n".join(kvm.screen().split("\n")[:-2])


def _cap(page: Page, code: str) -> str:
    return page.inner_text(f"#osk [data-code='{code}'] .osk-plain")


def test_paste_accents_on_a_spanish_target_and_what_german_skips(visit_es: Visit) -> None:
    kvm = visit_es.kvm
    page = visit_es.login("admin")
    page.click("#paste-panel summary")
    # make run LAYOUT=es configures es: the paste dialog starts on it.
    assert page.input_value("#paste-keymap") == "es"
    _paste(page, "es", PASTED)
    assert page.inner_text("#paste-result") == "Typed."
    wait_for(
        "the pasted text on the screen",
        lambda: _typed(kvm).endswith(TYPED),
        explain=kvm.screen,
    )
    # The wrong layout for the target: de has no é (its keymap is nodeadkeys).
    answer = kvm.api("POST", "/hid/print?keymap=de", body="née".encode())
    assert answer == {"ok": True, "result": {"skipped": "é"}}
    _paste(page, "de", "née")
    page.wait_for_selector("#paste-result:has-text('Skipped: é')")
    assert page.inner_text("#paste-result") == "Skipped: é"


def test_the_on_screen_keyboard_follows_the_layout_and_types(visit_es: Visit) -> None:
    kvm = visit_es.kvm
    page = visit_es.login("admin")
    assert page.is_hidden("#osk")
    assert page.input_value("#osk-keymap") == "es"  # the configured keymap
    page.click("#osk-toggle")
    page.wait_for_selector("#osk[data-keymap='es']")
    assert page.get_attribute("#osk-toggle", "aria-expanded") == "true"
    assert _cap(page, "KeyQ") == "q"
    assert _cap(page, "Semicolon") == "ñ"
    assert page.inner_text("#osk [data-code='Digit1'] .osk-shift") == "!"
    assert page.inner_text("#osk [data-code='KeyQ'] .osk-shift") == ""  # Q goes without saying
    before = _typed(kvm)
    page.click("#osk [data-code='Semicolon']")
    # Shift latches for the next key only.
    page.click("#osk [data-code='ShiftLeft']")
    assert page.get_attribute("#osk [data-code='ShiftLeft']", "aria-pressed") == "true"
    page.click("#osk [data-code='Digit1']")
    assert page.get_attribute("#osk [data-code='ShiftLeft']", "aria-pressed") == "false"
    wait_for(
        "ñ! on the screen",
        lambda: _typed(kvm) == before + "ñ!",
        explain=kvm.screen,
    )
    page.locator("#osk").screenshot(path=str(ARTIFACTS / "osk-es.png"))
    page.select_option("#osk-keymap", "de")
    page.wait_for_selector("#osk[data-keymap='de']")
    assert _cap(page, "KeyY") == "z"
    assert page.inner_text("#osk [data-code='KeyQ'] .osk-altgr") == "@"
    page.click("#osk-toggle")
    assert page.is_hidden("#osk")


def test_a_viewer_gets_no_on_screen_keyboard(visit_es: Visit) -> None:
    page = visit_es.login("viewer")
    assert page.is_visible("#view-only")
    assert page.is_disabled("#osk-toggle")
    assert page.is_disabled("#osk-keymap")
    # A click on the disabled button opens nothing.
    page.click("#osk-toggle", force=True)
    assert page.is_hidden("#osk")
    assert page.locator("#osk button:enabled").count() == 0
