# SPDX-License-Identifier: GPL-3.0-or-later
"""Single sign-on in Chromium: kvmd's console, the provider's login page, and back.

`make run SSO_ISSUER=…` against oidc-provider-mock on 127.0.0.1: the console offers
"Sign in with Test IdP"; the provider's page is filled as a user would; the console that
opens has the rights the user's `groups` claim maps to.
"""

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.authservers import OidcProvider, oidc_provider
from tests.e2e.webui import ARTIFACTS, VIDEO, Kvm, make_run, serving, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with oidc_provider() as provider:
        provider.set_user("vera", {"preferred_username": "vera", "groups": ["kvm-viewers"]})
        provider.set_user("olga", {"preferred_username": "olga", "groups": ["kvm-operators"]})
        provider.set_user("nina", {"preferred_username": "nina", "groups": ["staff"]})
        yield provider


@pytest.fixture(scope="module")
def kvm(provider: OidcProvider) -> Iterator[Kvm]:
    env = {**os.environ, "SSO_ISSUER": provider.issuer}
    with make_run("kvmd-sso-", env=env) as (kvm, _):
        wait_for("make run serves the API", lambda: serving(kvm), seconds=40)
        yield kvm


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    # The provider's page links a stylesheet on a CDN; this machine is offline.
    context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


def sign_in(page: Page, kvm: Kvm, sub: str) -> None:
    page.goto(kvm.url + "/")
    link = page.get_by_role("link", name="Sign in with Test IdP")
    link.click()
    # The provider's own login page, on its own origin.
    page.wait_for_url("http://127.0.0.1:*/oauth2/authorize?*")
    page.fill("input[name=sub]", sub)
    page.get_by_role("button", name="Authorize").click()


def test_a_viewer_signs_in_watches_view_only_and_logs_out(page: Page, kvm: Kvm) -> None:
    sign_in(page, kvm, "vera")
    page.wait_for_selector("body[data-ready='1']")
    assert page.url == kvm.url + "/"
    assert page.inner_text("#who") == "vera"
    assert page.is_visible("#view-only")
    assert page.is_disabled("#atx-power")
    assert page.is_disabled("#paste-send")
    # The stream plays: the status line counts this viewer and the picture has a size.
    page.wait_for_selector("#status-line:has-text('online')")
    wait_for(
        "the stream's first frame",
        # H.264 frames decoded (the default here), or the MJPEG picture's size.
        lambda: (
            page.evaluate(
                "Number(document.body.dataset.h264Frames || 0)"
                " || document.querySelector('#stream').naturalWidth"
            )
            > 0
        ),
    )
    # The session is the ordinary cookie session, with the viewer's rights.
    me = page.evaluate("fetch('/api/auth/check').then(r => r.json())")["result"]
    assert (me["user"], me["roles"], me["permissions"]) == ("vera", ["viewer"], ["state", "video"])
    refused = page.evaluate(
        "fetch('/api/hid/print', {method: 'POST', body: 'x'}).then(r => r.status)"
    )
    assert refused == 403
    page.screenshot(path=str(ARTIFACTS / "sso-viewer.png"))
    page.click("#logout")
    page.wait_for_selector("#login-view:not([hidden])")
    assert page.evaluate("fetch('/api/auth/check').then(r => r.status)") == 403


def test_an_operator_signs_in_with_the_operators_console(page: Page, kvm: Kvm) -> None:
    sign_in(page, kvm, "olga")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#who") == "olga"
    assert page.is_hidden("#view-only")
    assert page.is_enabled("#atx-power")
    page.click(VIDEO)
    page.wait_for_selector("#screen[data-captured='1']")
    page.keyboard.type("olga via sso")
    wait_for("olga's text on the target", lambda: "olga via sso" in kvm.screen())


def test_a_refused_sign_in_comes_back_to_the_login_page_with_the_reason(
    page: Page, kvm: Kvm
) -> None:
    sign_in(page, kvm, "nina")
    page.wait_for_selector("#login-view:not([hidden])")
    page.wait_for_selector("#login-error:has-text('groups')")
    assert page.inner_text("#login-error") == (
        "Single sign-on failed: None of 'nina''s groups maps to a role here"
    )
    assert page.url == kvm.url + "/"  # the reason is taken out of the address
    # The password form still works beside it: the local admin logs in.
    page.fill("#login-user", "admin")
    page.fill("#login-passwd", "admin")
    page.click("#login-submit")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#who") == "admin"
