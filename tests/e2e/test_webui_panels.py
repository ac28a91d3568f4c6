# SPDX-License-Identifier: GPL-3.0-or-later
"""The console's panels in Chromium against `make run`: GPIO, video, system, log, images from
a URL, a forced password change, admin pages, labels, and the wire encoders.
"""

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from kvmd import __version__
from tests.e2e.webui import ARTIFACTS, Kvm, Visit, wait_for

pytestmark = pytest.mark.timeout(60)


def test_gpio_switch_and_pulse_reach_the_simulated_devices(visit: Visit, kvm: Kvm) -> None:
    page = visit.login("admin")
    page.click("#gpio-panel summary")
    assert page.inner_text("#gpio-title") == "Simulated devices"
    # The relay (line 5 of the simulated target) is a switch.
    relay = page.get_by_label("Relay switch")
    assert not relay.is_checked()
    relay.check()
    wait_for("relay on", lambda: "relay on" in (kvm.run / "target.txt").read_text())
    # Done when the page says so: the switch enabled again, and on.
    page.wait_for_selector("input[aria-label='Relay switch']:checked:enabled")
    relay.uncheck()
    wait_for(
        "relay off",
        lambda: "relay off" in (kvm.run / "target.txt").read_text(),
        explain=lambda: (page.inner_text("#gpio-result"), kvm.api("GET", "/gpio")["result"]),
    )
    # "Touch" asks first, then creates the flag file the flag input watches.
    (kvm.run / "gpio-flag").unlink(missing_ok=True)
    flag = page.get_by_role("img", name="flag")
    assert flag.get_attribute("data-on") == "0"
    page.get_by_role("button", name="Touch").click()
    page.click("#confirm-ok")
    wait_for("the flag file", (kvm.run / "gpio-flag").exists)
    page.wait_for_selector("#gpio-table .led[data-on='1']")
    page.locator("#gpio-panel").screenshot(path=str(ARTIFACTS / "gpio.png"))


def test_video_settings_apply_to_the_streamer(visit: Visit, kvm: Kvm) -> None:
    page = visit.login("admin")
    page.click("#video-panel summary")
    assert page.input_value("#video-quality") == "80"
    assert page.input_value("#video-fps") == "30"
    page.fill("#video-quality", "55")
    page.fill("#video-fps", "20")
    page.click("#video-apply")
    wait_for(
        "new streamer params",
        lambda: (
            kvm.api("GET", "/streamer")["result"]["params"]
            == {"quality": 55, "desired_fps": 20, "h264_bitrate": 5000, "h264_gop": 30}
        ),
    )
    page.fill("#video-fps", "500")  # over the limit: the daemon's error is shown
    page.click("#video-apply")
    page.wait_for_selector("#video-result:has-text('ValidatorError')")
    answer = kvm.api("POST", "/streamer/set_params?quality=80&desired_fps=30")
    assert answer["ok"] is True
    # After a restart of the streamer the picture moves again.
    # The page learns of the restart from the streamer's state, polled once a second,
    # then asks for the stream again: the picture moves once that stream runs.
    page.click("#video-reset")
    time.sleep(1)
    page.wait_for_selector("#status-line:has-text('online')")
    first = page.locator("#screen").screenshot()
    wait_for(
        "the picture moves after the restart",
        lambda: page.locator("#screen").screenshot() != first,
        interval=0.5,
    )


def test_system_info_and_the_log(visit: Visit) -> None:
    page = visit.login("admin")
    page.click("#info-panel summary")
    page.wait_for_selector("#info-list dt:text-is('kvmd')")
    assert page.inner_text("#info-list dt:text-is('kvmd') + dd") == __version__
    assert page.inner_text("#info-list dt:text-is('Board') + dd") == "Virtual Raspberry Pi (rpi)"
    page.click("#log-panel summary")
    page.click("#log-follow")
    assert page.get_attribute("#log-follow", "aria-pressed") == "true"
    # The daemon's own lines; its start-up ones may have left the ring (it keeps the newest)
    # after the session's many requests.
    page.wait_for_selector("#log-text:has-text('aiohttp.access')")
    # Followed live: a new request shows up in the access log lines.
    page.evaluate("fetch('/api/atx?from=the-log-test')")
    page.wait_for_selector("#log-text:has-text('from=the-log-test')")
    page.click("#log-follow")
    assert page.get_attribute("#log-follow", "aria-pressed") == "false"


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "remote.img").write_bytes(b"\x5a" * 1_500_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_image_from_a_url_then_removed(visit: Visit, kvm: Kvm, image_server: str) -> None:
    page = visit.login("admin")
    page.click("#msd-panel summary")
    page.fill("#msd-url", f"{image_server}/remote.img")
    page.click("#msd-download")
    page.wait_for_selector("#msd-image option[value='remote.img']", state="attached")
    wait_for(
        "download complete",
        lambda: page.eval_on_selector("#msd-download-progress", "b => b.value") == 100,
    )
    assert (kvm.run / "msd" / "remote.img").read_bytes() == b"\x5a" * 1_500_000
    page.select_option("#msd-image", "remote.img")
    page.click("#msd-remove")
    assert page.inner_text("#confirm-text") == "Remove the image remote.img?"
    page.click("#confirm-ok")
    page.wait_for_selector("#msd-image option[value='remote.img']", state="detached")
    assert not (kvm.run / "msd" / "remote.img").exists()
    # A URL the daemon can't fetch: its error, in the panel.
    page.fill("#msd-url", f"{image_server}/missing.img")
    page.click("#msd-download")
    page.wait_for_selector("#msd-result:has-text('MsdDownloadError')")


def test_a_forced_password_change_comes_before_the_console(visit: Visit, kvm: Kvm) -> None:
    made = kvm.api(
        "POST", "/auth/users/create?user=newbie&passwd=newbie&roles=operator&must_change_passwd=1"
    )
    assert made["ok"] is True
    page = visit.page
    page.goto(kvm.url + "/")
    page.fill("#login-user", "newbie")
    page.fill("#login-passwd", "newbie")
    page.click("#login-submit")
    page.wait_for_selector("#passwd-view", state="visible")
    assert page.inner_text("#passwd-why") == "Your password must be changed before you go on."
    assert page.is_hidden("#passwd-cancel")
    page.fill("#passwd-old", "newbie")
    page.fill("#passwd-new", "a new passphrase")
    page.fill("#passwd-repeat", "a different one")
    page.click("#passwd-submit")
    assert page.inner_text("#passwd-error") == "The new passwords differ."
    page.fill("#passwd-repeat", "a new passphrase")
    page.click("#passwd-submit")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#who") == "newbie"
    basic = {"X-KVMD-User": "newbie", "X-KVMD-Passwd": "a new passphrase"}
    assert kvm.api("GET", "/atx", headers=basic)["ok"] is True


def test_login_with_a_two_factor_code(visit: Visit, kvm: Kvm) -> None:
    # 2FA on, as `kvmd-totp init` turns it on: the daemon reads the secret on every check.
    secret = pyotp.random_base32()
    path = kvm.run / "totp.secret"
    path.write_text(secret + "\n")
    try:
        page = visit.page
        page.goto(kvm.url + "/")
        page.fill("#login-user", "operator")
        page.fill("#login-passwd", "operator")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:has-text('Wrong user, password or code.')")
        page.fill("#login-code", pyotp.TOTP(secret).now())
        page.click("#login-submit")
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#who") == "operator"
        # The field is emptied: the code is never kept in the page.
        assert page.input_value("#login-code") == ""
    finally:
        path.unlink()


def test_admins_manage_users_and_keys_in_the_console(visit: Visit, kvm: Kvm) -> None:
    page = visit.login("admin")
    page.click("#admin-panel summary")
    page.wait_for_selector("#admin-body table")
    page.fill("#admin-new-user", "webuser")
    page.fill("#admin-new-passwd", "webuser-passwd")
    page.select_option("#admin-new-role", "viewer")
    page.click("text=Create user")
    page.wait_for_selector("#admin-body td:text-is('webuser')")
    assert "webuser:" in (kvm.run / "htpasswd").read_text()
    users = kvm.api("GET", "/auth/users")["result"]["users"]
    assert {u["user"]: u["roles"] for u in users}["webuser"] == ["viewer"]
    page.fill("#admin-key-name", "ci-bot")
    page.check("#admin-key-atx")
    page.click("text=Create key")
    secret = page.wait_for_selector("#admin-key-secret:has-text('_key.')")
    assert secret is not None
    (key_id, passwd) = secret.inner_text().rsplit(" ", 1)[1].split(":", 1)
    # The secret the page showed works as the key's password.
    atx = kvm.api("GET", "/atx", headers={"X-KVMD-User": key_id, "X-KVMD-Passwd": passwd})
    assert atx["ok"] is True
    # Removing the user from the console: asked first, then gone from the files.
    page.get_by_role("button", name="Remove webuser").click()
    page.click("#confirm-ok")
    page.wait_for_selector("#admin-body td:text-is('webuser')", state="detached")
    assert "webuser:" not in (kvm.run / "htpasswd").read_text()
    page.locator("#admin-panel").screenshot(path=str(ARTIFACTS / "admin.png"))


def test_every_control_has_an_accessible_name(visit: Visit) -> None:
    page = visit.login("admin")
    for panel in ("paste", "msd", "gpio", "video", "info", "log", "admin"):
        page.click(f"#{panel}-panel summary")
    page.wait_for_selector("#admin-body table")
    unnamed = page.evaluate(
        """() => Array.from(document.querySelectorAll('button, input, select, textarea'))
            .filter((el) => {
                const labels = Array.from(el.labels || []).map((l) => l.textContent).join('');
                const own = el.tagName === 'BUTTON' ? el.textContent : '';
                return !(el.getAttribute('aria-label') || labels || own).trim();
            })
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []


def test_the_wire_encoders_in_the_browser(visit: Visit) -> None:
    """The binary websocket messages the console builds, byte for byte (API.md §4)."""
    visit.page.goto(visit.kvm.url + "/")
    out = visit.page.evaluate(
        """async () => {
            const m = await import('/ui/input.js');
            const s = await import('/ui/socket.js');
            const list = (bytes) => Array.from(bytes);
            return {
                key: list(m.keyMessage('KeyA', true)),
                up: list(m.keyMessage('ShiftLeft', false)),
                button: list(m.buttonMessage('right', true)),
                move: list(m.moveMessage(-32768, 32767)),
                rel: list(m.deltaMessage(4, m.steps(300, -5))),
                wheel: list(m.deltaMessage(5, [[0, -1]])),
                merged: s.merge({busy: false, storage: {images: {a: 1}, uploading: null}},
                                {storage: {uploading: {name: 'b'}}}),
            };
        }"""
    )
    assert out["key"] == [1, 1, *b"KeyA"]
    assert out["up"] == [1, 0, *b"ShiftLeft"]
    assert out["button"] == [2, 1, *b"right"]
    assert out["move"] == [3, 0x80, 0x00, 0x7F, 0xFF]
    # 300 right, 5 up: split in steps of at most 127, as signed bytes.
    assert out["rel"] == [4, 0, 127, 251, 127, 0, 46, 0]
    assert out["wheel"] == [5, 0, 0, 255]
    assert out["merged"] == {
        "busy": False,
        "storage": {"images": {"a": 1}, "uploading": {"name": "b"}},
    }
