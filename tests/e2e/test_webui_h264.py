# SPDX-License-Identifier: GPL-3.0-or-later
"""Direct H.264 in the console, in Debian's headless Chromium against `make run`.

/api/media/ws decoded by WebCodecs into the <canvas> that takes the <img>'s place: frames
counted, the picture read back with tesseract, the mouse and keyboard on the canvas, the
MJPEG / H.264 choice kept in localStorage as PiKVM's `stream.mode`, the bitrate and GOP
sliders (disabled for a viewer), reconnection and the socket's end at logout.
"""

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute

from tests.e2e.webui import ARTIFACTS, SCREEN, Visit, near, pointer, wait_for

pytestmark = pytest.mark.timeout(60)

CODEC = "avc1.42E01F"  # what make run's /api/media offers: Constrained Baseline, level 3.1
# Two thirds of the 150 frames that 5 s hold at make run's 30 fps: room for a busy machine,
# and far above a decoder that shows only key frames (5 in 5 s at GOP 30) or stalls.
MIN_FRAMES_IN_5S = 100


def frames(page: Page) -> int:
    return int(page.evaluate("document.body.dataset.h264Frames || '0'"))


def choose(page: Page, mode: str) -> None:
    """Pick MJPEG ("mjpeg") or H.264 ("media") in the video panel; wait until it plays."""
    if not page.is_visible("#video-mode"):
        page.click("#video-panel summary")
    page.check(f"#video-mode-{mode}")
    page.wait_for_selector(f"body[data-stream-mode='{mode}']", state="attached")
    if mode == "media":
        wait_for("a decoded frame", lambda: frames(page) > 0, explain=lambda: status(page))


def status(page: Page) -> tuple[str, str]:
    return (page.inner_text("#status-line"), page.inner_text("#video-mode-why"))


def test_this_chromium_decodes_h264_with_webcodecs(visit: Visit) -> None:
    """The premise of every other test here: checked first, so a missing codec says so."""
    visit.page.goto(visit.kvm.url + "/")
    answer = visit.page.evaluate(
        "(codec) => VideoDecoder.isConfigSupported({codec, optimizeForLatency: true})"
        ".then((r) => r.supported)",
        CODEC,
    )
    assert answer is True, f"{CODEC} is not decodable by WebCodecs in this Chromium"


def test_h264_plays_on_the_canvas_at_the_streams_rate(
    visit: Visit, capsys: pytest.CaptureFixture[str]
) -> None:
    page = visit.login("admin")
    # Nothing stored yet: the console starts on H.264, as PiKVM's UI does where it can.
    assert page.evaluate("localStorage.getItem('stream.mode')") is None
    page.wait_for_selector("body[data-stream-mode='media']", state="attached")
    page.click("#video-panel summary")
    assert page.is_checked("#video-mode-media")
    assert page.is_enabled("#video-mode-mjpeg")
    assert page.inner_text("#video-mode-why") == ""
    choose(page, "media")
    # The canvas has the <img>'s place; the MJPEG response is ended.
    assert page.is_visible("#stream-canvas")
    assert page.is_hidden("#stream")
    assert page.get_attribute("#stream", "src") is None
    (before, started) = (frames(page), time.monotonic())
    time.sleep(5)
    (decoded, seconds) = (frames(page) - before, time.monotonic() - started)
    with capsys.disabled():
        print(f"\nH.264 frames decoded by WebCodecs: {decoded} in {seconds:.1f} s", end=" ")
    assert decoded >= MIN_FRAMES_IN_5S
    # The status line names the mode and counts the frames decoded in the last second.
    line = page.inner_text("#status-line")
    found = re.fullmatch(r"640\u00d7480 · H\.264 · (\d+) fps · online · \d+ viewers?", line)
    assert found is not None, line
    assert int(found[1]) >= MIN_FRAMES_IN_5S / 5
    # The canvas holds the simulated screen at its size.
    size = page.evaluate(
        "(() => { const c = document.getElementById('stream-canvas');"
        " return [c.width, c.height]; })()"
    )
    assert size == [640, 480]


def test_the_canvas_shows_the_screen_and_takes_the_mouse_and_keys(visit: Visit) -> None:
    page = visit.login("admin")
    choose(page, "media")
    kvm = visit.kvm
    # What the target's screen says reaches the canvas: read back from it by OCR.
    # On a line of its own: after earlier tests' text it would run off the picture's edge.
    assert kvm.api("POST", "/hid/print", body=b"\nCANVAS SEES 4711")["ok"] is True
    wait_for("the text on the target", lambda: "CANVAS SEES 4711" in kvm.screen())
    canvas = page.locator("#stream-canvas")
    shot = ARTIFACTS / "h264-canvas.png"

    def read_back() -> str:
        canvas.screenshot(path=str(shot))
        return ocr(shot)

    # A few frames later the picture has it (later still when other work shares the cores).
    wait_for("the text on the canvas", lambda: "CANVAS SEES 4711" in read_back(), seconds=10)
    # Not one colour either: the picture has the simulated screen's background and text.
    colours = page.evaluate(
        """(() => {
            const c = document.getElementById('stream-canvas');
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4 * 97) {
                seen.add((data[i] >> 4) << 8 | (data[i + 1] >> 4) << 4 | data[i + 2] >> 4);
            }
            return seen.size;
        })()"""
    )
    assert colours > 3
    # The mouse on the canvas: a quarter across, three quarters down the picture.
    box = canvas.bounding_box()
    assert box is not None
    scale = min(box["width"] / 640, box["height"] / 480)
    (left, top) = (box["x"] + (box["width"] - 640 * scale) / 2, box["y"])
    page.mouse.move(left + 0.25 * 640 * scale, top + 0.75 * 480 * scale)
    expected = (round(0.25 * (SCREEN[0] - 1)), round(0.75 * (SCREEN[1] - 1)))
    wait_for(f"pointer at {expected}", lambda: near(pointer(kvm), expected))
    # A click on the canvas captures the keyboard.
    page.click("#stream-canvas")
    page.wait_for_selector("#screen[data-captured='1']")
    page.keyboard.type(" typed on h264")
    wait_for("the typed text", lambda: " typed on h264" in kvm.screen(), explain=kvm.screen)
    page.locator("#screen").screenshot(path=str(ARTIFACTS / "h264-screen.png"))


def ocr(path: Path) -> str:
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.fail("tesseract is missing: `make test` installs tesseract-ocr with apt-get")
    run = subprocess.run(
        [tesseract, str(path), "stdout"], capture_output=True, text=True, check=True, timeout=30
    )
    return run.stdout


def test_back_to_mjpeg_and_the_choice_survives_a_reload(visit: Visit) -> None:
    page = visit.login("admin")
    choose(page, "mjpeg")  # a choice is stored only when made
    choose(page, "media")
    assert page.evaluate("localStorage.getItem('stream.mode')") == "media"
    page.reload()
    page.wait_for_selector("body[data-stream-mode='media']", state="attached")
    assert page.is_visible("#stream-canvas")
    # MJPEG again: the <img> plays, the canvas is hidden and no longer decodes.
    choose(page, "mjpeg")
    assert page.evaluate("localStorage.getItem('stream.mode')") == "mjpeg"
    page.wait_for_selector("#stream", state="visible")
    assert page.is_hidden("#stream-canvas")
    wait_for(
        "the MJPEG picture",
        lambda: page.evaluate("document.getElementById('stream').naturalWidth") == 640,
    )
    page.wait_for_selector("#status-line:has-text('online')")
    assert "H.264" not in page.inner_text("#status-line")
    stopped = frames(page)
    time.sleep(0.5)
    assert frames(page) == stopped
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#stream", state="visible")
    assert page.evaluate("document.body.dataset.streamMode") == "mjpeg"
    assert page.is_checked("#video-mode-mjpeg")


def test_a_viewer_watches_h264_but_cannot_change_it(visit: Visit) -> None:
    page = visit.login("viewer")
    page.click("#video-panel summary")
    # The stream's choice is the viewer's own; the streamer's parameters are not.
    assert page.is_disabled("#video-h264-bitrate")
    assert page.is_disabled("#video-h264-gop")
    assert page.is_disabled("#video-quality")
    choose(page, "media")
    before = frames(page)
    wait_for("the viewer's frames", lambda: frames(page) >= before + 30)
    page.click("#stream-canvas")
    page.keyboard.type("viewer on h264")
    # What an operator types afterwards arrives; the viewer's keys never did.
    assert visit.kvm.api("POST", "/hid/print", "operator", b"|op on h264|")["ok"] is True
    wait_for("the operator's text", lambda: "|op on h264|" in visit.kvm.screen())
    assert "viewer on h264" not in visit.kvm.screen()
    page.screenshot(path=str(ARTIFACTS / "h264-viewer.png"))


def kvm_streamer(visit: Visit) -> dict[str, Any]:
    answer = visit.kvm.api("GET", "/streamer")
    assert answer["ok"] is True
    return answer["result"]


def test_the_bitrate_and_gop_sliders_set_the_streamer(visit: Visit) -> None:
    page = visit.login("admin")
    choose(page, "media")
    slider = "#video-h264-bitrate"
    page.wait_for_selector(f"{slider}:enabled")
    # Ranges from the streamer's limits, values as applied.
    assert (page.get_attribute(slider, "min"), page.get_attribute(slider, "max")) == ("25", "20000")
    assert page.input_value(slider) == "5000"
    assert page.input_value("#video-h264-gop") == "30"
    assert page.inner_text("#video-h264-bitrate-value") == "5000 kbit/s"
    try:
        page.fill(slider, "2500")
        page.fill("#video-h264-gop", "10")
        wanted = {"h264_bitrate": 2500, "h264_gop": 10}
        wait_for(
            "the new H.264 parameters",
            lambda: {key: kvm_streamer(visit)["params"].get(key) for key in wanted} == wanted,
            explain=lambda: (kvm_streamer(visit), page.inner_text("#video-result")),
        )
        # Applied by the restarted streamer, and shown so; the picture goes on.
        wait_for(
            "applied",
            lambda: {key: kvm_streamer(visit)["applied"].get(key) for key in wanted} == wanted,
            seconds=15,
        )
        page.wait_for_selector("#video-h264-bitrate-value:has-text('2500 kbit/s')")
        assert page.input_value(slider) == "2500"
        assert page.input_value("#video-h264-gop") == "10"
        count = frames(page)
        wait_for("frames after the restart", lambda: frames(page) > count + 30)
    finally:
        answer = visit.kvm.api("POST", "/streamer/set_params?h264_bitrate=5000&h264_gop=30")
        assert answer["ok"] is True


def test_without_webcodecs_the_choice_is_off_and_says_why(visit: Visit) -> None:
    # As in a browser without WebCodecs; a stored H.264 choice falls back to MJPEG.
    visit.page.add_init_script(
        "delete window.VideoDecoder; localStorage.setItem('stream.mode', 'media');"
    )
    page = visit.login("admin")
    page.click("#video-panel summary")
    page.wait_for_selector('#video-mode-why:has-text("This browser can\'t decode H.264")')
    assert page.is_disabled("#video-mode-media")
    page.wait_for_selector("body[data-stream-mode='mjpeg']", state="attached")
    assert page.is_visible("#stream")
    # Bitrate and GOP are the streamer's, for every H.264 viewer: this browser's lack of
    # WebCodecs does not take them from an admin.
    assert page.is_enabled("#video-h264-bitrate")


def test_the_media_socket_reconnects_and_ends_at_logout(visit: Visit) -> None:
    routed: list[WebSocketRoute] = []
    closed: list[WebSocketRoute] = []  # by the page

    def through(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        routed.append(ws)
        deaf = len(routed) == 2  # the second socket's pongs are lost on the way

        def to_page(message: str | bytes) -> None:
            if not (deaf and message == b"\xff"):
                ws.send(message)

        def page_closed(code: int | None, reason: str | None) -> None:
            closed.append(ws)
            server.close(code=code, reason=reason)

        server.on_message(to_page)
        ws.on_close(page_closed)

    visit.page.route_web_socket(re.compile(r"/api/media/ws"), through)
    page = visit.login("admin")

    def sockets() -> int:
        page.wait_for_timeout(20)  # Playwright's sync API runs the route's handlers meanwhile
        return len(routed)

    choose(page, "media")
    # The server ends the socket: a new one a second later, and frames again.
    started = time.monotonic()
    routed[0].close(code=1011, reason="test")
    wait_for("a second socket", lambda: sockets() == 2)
    assert time.monotonic() - started >= 0.9
    count = frames(page)
    wait_for("frames on the second socket", lambda: frames(page) > count + 10)
    # Its pongs never come: after 5 unanswered pings the page gives up on it and reconnects.
    wait_for("a third socket", lambda: sockets() == 3, seconds=12)
    assert routed[1] in closed
    count = frames(page)
    wait_for("frames on the third socket", lambda: frames(page) > count + 10)
    # Logging out stops the console, and its socket with it.
    page.click("#logout")
    page.wait_for_selector("#login-view", state="visible")
    wait_for("the media socket closed by the page", lambda: sockets() == 3 and routed[2] in closed)
