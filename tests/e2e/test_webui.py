# SPDX-License-Identifier: GPL-3.0-or-later
"""The web console in Debian's headless Chromium, against `make run` (simulated machine):
logging in, the stream, typing, the mouse, power, virtual media, view-only users,
reconnection and a phone-sized screen.
"""

import re
import statistics
import time

import pytest
from playwright.sync_api import Browser, FilePayload, Page, WebSocketRoute

from tests.e2e.webui import ARTIFACTS, SCREEN, VIDEO, Kvm, Visit, near, pointer, wait_for

pytestmark = pytest.mark.timeout(60)


def test_login_and_the_live_stream(visit: Visit) -> None:
    page = visit.page
    page.goto(visit.kvm.url + "/")
    # The page shows the login once its own check of the session has answered.
    page.wait_for_selector("#login-view", state="visible")
    assert not page.is_visible("#console-view")
    page.fill("#login-user", "admin")
    page.fill("#login-passwd", "wrong")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:has-text('Wrong user, password or code.')")
    page.fill("#login-passwd", "admin")
    page.click("#login-submit")
    page.wait_for_selector("body[data-ready='1']")
    assert not page.is_visible("#login-view")
    assert page.inner_text("#who") == "admin"
    assert page.is_hidden("#view-only")
    # The status line follows the streamer: the simulated source is 640x480 and online, and
    # the video is direct H.264 (make run's streamer has it, Chromium decodes it).
    page.wait_for_selector("#status-line:has-text('online')")
    assert re.fullmatch(
        r"640\u00d7480 · H\.264 · \d+ fps · online · \d+ viewers?",
        page.inner_text("#status-line"),
    )
    assert page.get_attribute("body", "data-stream-mode") == "media"
    # The stream moves: the simulated screen's clock and frame counter change.
    first = page.locator("#screen").screenshot(path=str(ARTIFACTS / "stream-1.png"))
    time.sleep(1.2)
    second = page.locator("#screen").screenshot(path=str(ARTIFACTS / "stream-2.png"))
    assert first != second
    page.screenshot(path=str(ARTIFACTS / "console.png"))
    # The MJPEG stream, one click away, sets its own cookie: ustreamer's stream_client,
    # which names the viewer in the streamer's state.
    page.click("#video-panel summary")
    page.check("#video-mode-mjpeg")
    page.wait_for_selector("#status-line:has-text('online')")
    wait_for("the MJPEG stream's cookie", lambda: len(page.context.cookies()) == 2)
    assert sorted(c["name"] for c in page.context.cookies()) == ["auth_token", "stream_client"]
    assert page.get_attribute("body", "data-stream-mode") == "mjpeg"
    # Logging out ends the session: the API refuses the old cookie, the page shows its login.
    page.click("#logout")
    page.wait_for_selector("#login-view", state="visible")
    response = page.request.get(visit.kvm.url + "/api/auth/check")
    assert response.status in (401, 403)


def test_console_loads_and_is_interactive_within_a_second(
    visit: Visit, browser: Browser, kvm: Kvm, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measured and printed, never asserted: wall-clock time depends on the machine."""
    visit.login("admin")
    logged_in = visit.page.context.storage_state()  # the session cookie
    # Cold: a new browser context each time (nothing cached), already logged in.
    cold = []
    for _ in range(5):
        context = browser.new_context(storage_state=logged_in)
        try:
            cold.append(_load(context.new_page(), kvm))
        finally:
            context.close()
    # Warm: reloading the open console, as after F5 (cached files revalidate to 304).
    warm = [_load(visit.page, kvm) for _ in range(5)]
    with capsys.disabled():
        for name, loads in (("cold", cold), ("warm", warm)):
            ready = statistics.median(r for (r, _) in loads)
            wall = statistics.median(w for (_, w) in loads)
            print(
                f"\nconsole load to interactive, {name} (median of 5, loopback):"
                f" {ready * 1000:.0f} ms from navigation start in the page,"
                f" {wall * 1000:.0f} ms as Playwright sees it (target < 1000 ms)",
                end="",
            )
        print()


def _load(page: Page, kvm: Kvm) -> tuple[float, float]:
    """Seconds from navigation start to interactive: in the page, and around it."""
    started = time.monotonic()
    page.goto(kvm.url + "/")
    # `ready` is set once the first full state is drawn and the input handlers are live.
    page.wait_for_selector("body[data-ready='1']")
    wall = time.monotonic() - started
    return (page.evaluate("window.kvmdReadyAt") / 1000, wall)


def test_typing_hello_reaches_the_simulated_screen(visit: Visit) -> None:
    page = visit.login("admin")
    page.click(VIDEO)
    page.wait_for_selector("#screen[data-captured='1']")
    assert page.is_visible("#capture-badge")
    page.keyboard.type("hello")
    wait_for("hello on the simulated screen", lambda: "hello" in visit.kvm.screen())
    # Focus elsewhere releases the keyboard.
    page.click("#paste-panel summary")
    page.click("#paste-text")
    page.wait_for_selector("#screen[data-captured='0']")
    # Paste types through /api/hid/print with the chosen layout.
    assert page.input_value("#paste-keymap") == "en-us"
    page.fill("#paste-text", " World 42!")
    page.click("#paste-send")
    wait_for("the pasted text", lambda: "hello World 42!" in visit.kvm.screen())
    page.locator("#screen").screenshot(path=str(ARTIFACTS / "typed.png"))


def test_caps_lock_shows_the_hosts_led_and_focus_loss_releases(visit: Visit) -> None:
    page = visit.login("admin")
    page.click(VIDEO)
    # The host answers Caps Lock with its LED report; the console shows what the host says.
    page.keyboard.press("CapsLock")
    page.wait_for_selector("#hid-state:has-text('caps lock')")
    page.keyboard.type(" caps")
    wait_for("upper case", lambda: " CAPS" in visit.kvm.screen(), explain=visit.kvm.screen)
    # Shift as a real keyboard sends it: its own key, held around the letter.
    page.keyboard.down("ShiftLeft")
    page.keyboard.press("KeyQ")
    page.keyboard.up("ShiftLeft")
    wait_for("shift under caps lock", lambda: " CAPSq" in visit.kvm.screen())
    page.keyboard.press("CapsLock")
    wait_for("caps off", lambda: "caps lock" not in page.inner_text("#hid-state"))
    # A button held on the picture is let go when the console loses focus.
    page.mouse.move(200, 200)
    page.mouse.down()
    wait_for("left button held", lambda: "buttons 0x01" in visit.kvm.screen())
    page.evaluate("document.getElementById('logout').focus()")
    wait_for("released on blur", lambda: "buttons 0x00" in visit.kvm.screen())
    page.mouse.up()


def test_the_mouse_in_absolute_and_relative_mode(visit: Visit) -> None:
    page = visit.login("admin")
    box = page.locator(VIDEO).bounding_box()
    assert box is not None
    # The 640x480 picture is letterboxed in the element: aim at a quarter of the picture.
    scale = min(box["width"] / 640, box["height"] / 480)
    (left, top) = (box["x"] + (box["width"] - 640 * scale) / 2, box["y"])
    target = (left + 0.25 * 640 * scale, top + 0.75 * 480 * scale)
    page.mouse.move(*target)
    expected = (round(0.25 * (SCREEN[0] - 1)), round(0.75 * (SCREEN[1] - 1)))
    wait_for(f"pointer at {expected}", lambda: near(pointer(visit.kvm), expected))
    page.mouse.down()
    wait_for("left button held", lambda: "buttons 0x01" in visit.kvm.screen())
    page.mouse.up()
    wait_for("left button released", lambda: "buttons 0x00" in visit.kvm.screen())
    # Relative mode is the relative mouse output, moved under pointer lock.
    page.select_option("#mouse-mode", "usb_rel")
    wait_for(
        "relative mouse",
        lambda: visit.kvm.api("GET", "/hid")["result"]["mouse"]["absolute"] is False,
    )
    page.wait_for_selector("#screen[data-mode='relative']")  # the page knows it too
    try:
        page.mouse.click(*target)
        # (wait_for_function would evaluate a string, which the console's CSP forbids.)
        locked = "document.pointerLockElement && document.pointerLockElement.id"
        wait_for("pointer lock", lambda: page.evaluate(locked) in ("stream", "stream-canvas"))
        before = pointer(visit.kvm)
        assert before is not None
        page.mouse.move(target[0] + 40, target[1] - 25)
        wait_for("a relative move", lambda: pointer(visit.kvm) == (before[0] + 40, before[1] - 25))
    finally:
        page.select_option("#mouse-mode", "usb")
    wait_for(
        "absolute again",
        lambda: visit.kvm.api("GET", "/hid")["result"]["mouse"]["absolute"] is True,
    )


def test_power_click_lights_the_power_led(visit: Visit) -> None:
    page = visit.login("admin")
    led = page.locator("#led-power")
    assert led.get_attribute("data-on") == "0"
    assert led.get_attribute("aria-label") == "Power LED: off"
    # A confirmation comes first; cancelling presses nothing.
    page.click("#atx-power")
    page.wait_for_selector("#confirm[open]")
    assert page.inner_text("#confirm-text") == "Press the power button of the remote machine?"
    page.click("#confirm-cancel")
    page.wait_for_selector("#confirm", state="hidden")
    page.click("#atx-power")
    page.click("#confirm-ok")
    wait_for(
        "the power LED on",
        lambda: led.get_attribute("data-on") == "1",
        explain=lambda: (page.inner_text("#atx-result"), visit.kvm.api("GET", "/atx")),
    )
    assert led.get_attribute("aria-label") == "Power LED: on"
    assert (visit.kvm.run / "target.txt").read_text().startswith("target power on")
    page.locator("#atx-panel").screenshot(path=str(ARTIFACTS / "atx-on.png"))
    # Pressed again, the target shuts down and the LED goes dark (and the next test finds
    # the machine off, as this one did).
    page.click("#atx-power")
    page.click("#confirm-ok")
    page.wait_for_selector("#led-power[data-on='0']")
    assert (visit.kvm.run / "target.txt").read_text().startswith("target power off")


def test_upload_an_image_with_progress_and_connect_it(visit: Visit) -> None:
    page = visit.login("admin")
    page.click("#msd-panel summary")
    image = bytes(range(256)) * 8192  # 2 MiB
    payload = FilePayload(name="tiny.iso", mimeType="application/octet-stream", buffer=image)
    page.set_input_files("#msd-file", files=[payload])
    page.click("#msd-upload")
    page.wait_for_selector("#msd-percent:has-text('100%')")
    assert page.eval_on_selector("#msd-progress", "bar => bar.value") == 100
    page.wait_for_selector("#msd-image option[value='tiny.iso']", state="attached")
    assert (visit.kvm.run / "msd" / "tiny.iso").read_bytes() == image
    # The drive last had another image (as after the README's curl example); the owner's
    # choice in the page must survive the state events that keep coming.
    kvm = visit.kvm
    assert kvm.api("POST", "/msd/write?image=before.iso", body=b"x" * 4096)["ok"] is True
    assert kvm.api("POST", "/msd/set_params?image=before.iso")["ok"] is True
    page.wait_for_selector("#msd-state:has-text('before.iso, disconnected')")
    page.select_option("#msd-image", "tiny.iso")
    assert kvm.api("POST", "/msd/write?image=after.iso", body=b"x" * 4096)["ok"] is True
    page.wait_for_selector("#msd-image option[value='after.iso']", state="attached")
    assert page.input_value("#msd-image") == "tiny.iso"
    page.check("#msd-cdrom")
    page.click("#msd-connect")
    page.wait_for_selector("#msd-state:has-text('tiny.iso, connected as CD-ROM')")
    lun = visit.kvm.run / "configfs/usb_gadget/kvmd/functions/mass_storage.usb0/lun.0"
    assert (lun / "file").read_text().strip() == str(visit.kvm.run / "msd" / "tiny.iso")
    assert (lun / "cdrom").read_text().strip() == "1"
    page.locator("#msd-panel").screenshot(path=str(ARTIFACTS / "msd-connected.png"))
    page.click("#msd-disconnect")
    page.wait_for_selector("#msd-state:has-text('tiny.iso, disconnected')")
    for name in ("before.iso", "after.iso"):
        assert kvm.api("POST", f"/msd/remove?image={name}")["ok"] is True
    assert (lun / "file").read_text().strip() == ""


def test_a_viewer_can_watch_but_not_type_or_press_power(visit: Visit) -> None:
    page = visit.login("viewer")
    assert page.is_visible("#view-only")
    assert page.inner_text("#who") == "viewer"
    assert page.is_disabled("#atx-power")
    assert page.is_disabled("#paste-send")
    assert page.is_hidden("#admin-panel")
    # The stream plays for a viewer.
    page.wait_for_selector("#status-line:has-text('online')")
    page.click(VIDEO)
    page.keyboard.type("viewer was here")
    page.mouse.click(10, 10)
    # A click on the disabled button does nothing, and the API refuses it anyway.
    page.click("#atx-power", force=True)
    assert page.is_hidden("#confirm")
    refused = page.evaluate(
        "fetch('/api/atx/click?button=reset', {method: 'POST'}).then(r => r.json())"
    )
    assert refused["result"]["error"] == "PermissionDeniedError"
    # What an operator types afterwards arrives; the viewer's keys never did.
    assert visit.kvm.api("POST", "/hid/print", "operator", b"|operator|")["ok"] is True
    wait_for("the operator's text", lambda: "|operator|" in visit.kvm.screen())
    assert "viewer was here" not in visit.kvm.screen()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "viewer.png"))


def test_the_link_reconnects_and_a_revoked_session_logs_out(visit: Visit) -> None:
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    visit.page.route_web_socket(re.compile(r"/api/ws"), through)
    page = visit.login("operator")
    # The link drops: the page says so, then comes back by itself.
    sockets[0].close(code=4000, reason="test")
    page.wait_for_selector("#unreachable:has-text('unreachable')")
    page.wait_for_selector("#unreachable", state="hidden")
    assert len(sockets) == 2
    assert page.is_enabled("#atx-power")
    # An admin ends the operator's sessions: the websocket closes with 4401 and the
    # console goes back to its login.
    ended = visit.kvm.api("POST", "/auth/sessions/remove?user=operator")
    assert ended["ok"] is True
    page.wait_for_selector("#login-error:has-text('Your session was ended')")
    assert page.is_hidden("#console-view")


def test_a_phone_sized_screen(browser: Browser, kvm: Kvm) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        visit = Visit(context, kvm)
        page = visit.login("admin")
        # Nothing wider than the phone; the panels stack under the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screen = page.locator("#screen").bounding_box()
        panels = page.locator(".panels").bounding_box()
        stream = page.locator(VIDEO).bounding_box()
        assert screen is not None
        assert panels is not None
        assert stream is not None
        assert panels["y"] >= screen["y"] + screen["height"]
        # A tap is a click where the finger is: here, the middle of the picture.
        page.tap(VIDEO, position={"x": stream["width"] / 2, "y": stream["height"] / 2})
        wait_for("pointer in the middle", lambda: near(pointer(kvm), (959, 539)))
        # The on-screen special keys send what a phone keyboard lacks.
        page.click("button[aria-label='Send Esc']")
        page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
        visit.check()
    finally:
        context.close()
