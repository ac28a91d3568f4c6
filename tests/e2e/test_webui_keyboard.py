# SPDX-License-Identifier: GPL-3.0-or-later
"""Layouts in the console, against `make run LAYOUT=pl` (a target with a Polish keyboard,
which has a key for every character of the pasted text, the em dash too): pasting
accented text, what a layout cannot type, and the on-screen keyboard.
"""

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.e2e.webui import ARTIFACTS, Kvm, Visit, make_run, serving, wait_for

pytestmark = pytest.mark.timeout(90)

PASTED = "Grüße, ¿qué tal? Ça va — €5"


@pytest.fixture(scope="module")
def kvm_pl() -> Iterator[Kvm]:
    """Its own `make run`: the target reads its keyboard as Polish (XKB pl), not as en-us."""
    with make_run("kvmd-pl-", {**os.environ, "LAYOUT": "pl"}) as (kvm, _):
        wait_for("make run serves the API", lambda: serving(kvm), seconds=40)
        wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
        yield kvm


@pytest.fixture
def visit_pl(context: BrowserContext, kvm_pl: Kvm) -> Iterator[Visit]:
    visit = Visit(context, kvm_pl)
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


def test_paste_accents_on_a_polish_target_and_what_german_skips(visit_pl: Visit) -> None:
    kvm = visit_pl.kvm
    page = visit_pl.login("admin")
    page.click("#paste-panel summary")
    # make run LAYOUT=pl configures pl: the paste dialog starts on it.
    assert page.input_value("#paste-keymap") == "pl"
    _paste(page, "pl", PASTED)
    assert page.inner_text("#paste-result") == "Typed."
    # ü ß é Ç through pl's dead keys, ¿ — € on its AltGr levels, read by XKB's pl.
    wait_for(
        "the pasted text on the screen",
        lambda: _typed(kvm).endswith(PASTED),
        explain=kvm.screen,
    )
    # The wrong layout for the target: de has no é (its keymap is nodeadkeys).
    answer = kvm.api("POST", "/hid/print?keymap=de", body="née".encode())
    assert answer == {"ok": True, "result": {"skipped": "é"}}
    _paste(page, "de", "née")
    page.wait_for_selector("#paste-result:has-text('Skipped: é')")
    assert page.inner_text("#paste-result") == "Skipped: é"


def test_the_on_screen_keyboard_follows_the_layout_and_types(visit_pl: Visit) -> None:
    kvm = visit_pl.kvm
    page = visit_pl.login("admin")
    assert page.is_hidden("#osk")
    assert page.input_value("#osk-keymap") == "pl"  # the configured keymap
    page.click("#osk-toggle")
    page.wait_for_selector("#osk[data-keymap='pl']")
    assert page.get_attribute("#osk-toggle", "aria-expanded") == "true"
    assert _cap(page, "KeyQ") == "q"
    assert page.inner_text("#osk [data-code='KeyA'] .osk-altgr") == "\u0105"  # ą
    assert page.inner_text("#osk [data-code='Digit1'] .osk-shift") == "!"
    assert page.inner_text("#osk [data-code='KeyQ'] .osk-shift") == ""  # Q goes without saying
    before = _typed(kvm)
    # AltGr latches for the next key only: AltGr+A is ą on pl.
    page.click("#osk [data-code='AltRight']")
    page.click("#osk [data-code='KeyA']")
    # Shift too.
    page.click("#osk [data-code='ShiftLeft']")
    assert page.get_attribute("#osk [data-code='ShiftLeft']", "aria-pressed") == "true"
    page.click("#osk [data-code='Digit1']")
    assert page.get_attribute("#osk [data-code='ShiftLeft']", "aria-pressed") == "false"
    wait_for(
        "ą! on the screen",
        lambda: _typed(kvm) == before + "\u0105!",
        explain=kvm.screen,
    )
    page.locator("#osk").screenshot(path=str(ARTIFACTS / "osk-pl.png"))
    page.select_option("#osk-keymap", "de")
    page.wait_for_selector("#osk[data-keymap='de']")
    assert _cap(page, "KeyY") == "z"
    assert page.inner_text("#osk [data-code='KeyQ'] .osk-altgr") == "@"
    page.click("#osk-toggle")
    assert page.is_hidden("#osk")


def test_a_viewer_gets_no_on_screen_keyboard(visit_pl: Visit) -> None:
    page = visit_pl.login("viewer")
    assert page.is_visible("#view-only")
    assert page.is_disabled("#osk-toggle")
    assert page.is_disabled("#osk-keymap")
    # A click on the disabled button opens nothing.
    page.click("#osk-toggle", force=True)
    assert page.is_hidden("#osk")
    assert page.locator("#osk button:enabled").count() == 0
