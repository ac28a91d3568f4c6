# SPDX-License-Identifier: GPL-3.0-or-later
"""`make run` as the README shows it: video, typing, power and images, with curl and websocat.

These run against the session's `make run` (tests/e2e/conftest.py), in its own directory.
"""

import io
import json
import subprocess
import threading
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.test_daemon import WEBSOCAT
from tests.e2e.webui import Kvm, wait_for

pytestmark = pytest.mark.timeout(60)


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "--silent", "--fail", *args], capture_output=True, timeout=20, check=False
    )


def test_live_video_as_make_run_serves_it(kvm: Kvm) -> None:
    url = kvm.url
    frame = curl("-u", "admin:admin", f"{url}/api/streamer/snapshot")
    assert frame.returncode == 0
    assert Image.open(io.BytesIO(frame.stdout)).size == (640, 480)
    small = curl(
        "-u", "admin:admin", f"{url}/api/streamer/snapshot?preview=1&preview_max_width=320"
    )
    assert Image.open(io.BytesIO(small.stdout)).size[0] <= 320
    # Two seconds of the live stream: a 30 fps simulated source gives dozens of frames.
    stream = curl("-u", "admin:admin", "--max-time", "2", f"{url}/streamer/stream")
    assert stream.stdout.count(b"Content-Type: image/jpeg") >= 20
    for path in ("/streamer/stream", "/api/streamer/snapshot"):
        denied = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{url}{path}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert denied.stdout == "401"


def test_typed_text_reaches_the_screen_and_the_video(kvm: Kvm) -> None:
    url = kvm.url
    typed = curl(
        "-u",
        "admin:admin",
        "-X",
        "POST",
        "--data-binary",
        "Hello from kvmd",
        f"{url}/api/hid/print",
    )
    assert json.loads(typed.stdout) == {"ok": True, "result": {}}
    wait_for("the simulated host types it", lambda: "Hello from kvmd" in kvm.screen())

    # What the target "shows" is in the video: OCR of a snapshot reads it back.
    def ocr() -> bytes:
        return curl("-u", "admin:admin", f"{url}/api/streamer/snapshot?ocr=1").stdout

    wait_for(
        "on screen",
        lambda: b"Hello from kvmd" in ocr(),
        explain=lambda: ocr()[:200],
        interval=0.2,  # each look runs tesseract
    )


def test_a_power_click_turns_the_simulated_target_on(kvm: Kvm) -> None:
    url = kvm.url
    atx = json.loads(curl("-u", "admin:admin", f"{url}/api/atx").stdout)["result"]
    assert (atx["enabled"], atx["leds"]) == (True, {"power": False, "hdd": False})
    ws = subprocess.Popen(
        [
            WEBSOCAT,
            f"ws://127.0.0.1:{kvm.port}/api/ws?stream=0",
            "-H",
            "X-KVMD-User:admin",
            "-H",
            "X-KVMD-Passwd:admin",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(20, ws.kill)  # a missing event fails the test, never hangs it
    watchdog.start()
    try:
        assert ws.stdout is not None
        # The initial burst ends with `clients`; the click comes after it.
        while json.loads(ws.stdout.readline())["event_type"] != "clients":
            pass
        # The testenv's viewer is view only; its operator may press the button.
        denied = subprocess.run(
            [
                "curl",
                "-s",
                "-u",
                "viewer:viewer",
                "-X",
                "POST",
                f"{url}/api/atx/click?button=power",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert json.loads(denied.stdout)["result"]["error"] == "PermissionDeniedError"
        clicked = curl("-u", "operator:operator", "-X", "POST", f"{url}/api/atx/click?button=power")
        assert json.loads(clicked.stdout) == {"ok": True, "result": {}}
        while True:
            event = json.loads(ws.stdout.readline())
            if event["event_type"] == "atx" and event["event"]["leds"]["power"]:
                break
    finally:
        watchdog.cancel()
        ws.kill()
        ws.communicate()  # closes the pipes
    atx = json.loads(curl("-u", "admin:admin", f"{url}/api/atx").stdout)["result"]
    assert atx["leds"]["power"] is True
    assert (kvm.run / "target.txt").read_text().startswith("target power on, hdd ")
    audit = curl("-u", "admin:admin", f"{url}/api/audit").stdout.decode().splitlines()
    click = json.loads(next(line for line in audit if '"atx.click"' in line))
    assert (click["principal"], click["args"], click["result"]) == (
        "operator",
        {"button": "power"},
        "ok",
    )
    # A second short press shuts it down: the machine is left as it was found.
    # (Once the first press is over: meanwhile ATX answers 409 AtxIsBusyError.)
    wait_for("ATX idle", lambda: kvm.api("GET", "/atx")["result"]["busy"] is False)
    again = curl("-u", "operator:operator", "-X", "POST", f"{url}/api/atx/click?button=power")
    assert json.loads(again.stdout) == {"ok": True, "result": {}}
    wait_for(
        "the target off",
        lambda: (kvm.run / "target.txt").read_text().startswith("target power off"),
    )


def test_virtual_media_as_the_readme_shows(kvm: Kvm, tmp_path: Path) -> None:
    url = kvm.url
    image = tmp_path / "debian.iso"
    image.write_bytes(bytes(range(256)) * 40_000)
    auth = ("-u", "admin:admin", "-X", "POST")
    written = json.loads(
        curl(*auth, "-T", str(image), f"{url}/api/msd/write?image=debian.iso").stdout
    )
    assert written["result"] == {
        "image": {"name": "debian.iso", "size": 10_240_000, "written": 10_240_000}
    }
    assert curl(*auth, f"{url}/api/msd/set_params?image=debian.iso&cdrom=1").returncode == 0
    assert curl(*auth, f"{url}/api/msd/set_connected?connected=1").returncode == 0
    drive = json.loads(curl("-u", "admin:admin", f"{url}/api/msd").stdout)["result"]["drive"]
    assert (drive["connected"], drive["cdrom"], drive["image"]["name"]) == (
        True,
        True,
        "debian.iso",
    )
    lun = kvm.run / "configfs/usb_gadget/kvmd/functions/mass_storage.usb0/lun.0"
    assert (lun / "file").read_text() == f"{kvm.run / 'msd' / 'debian.iso'}\n"
    assert curl(*auth, f"{url}/api/msd/set_connected?connected=0").returncode == 0
    assert (lun / "file").read_text() == "\n"
    copy = curl("-u", "admin:admin", f"{url}/api/msd/read?image=debian.iso")
    assert copy.stdout == image.read_bytes()
