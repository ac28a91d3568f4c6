# SPDX-License-Identifier: GPL-3.0-or-later
"""`make run` as the README shows it: video, typing, power and images, with curl and websocat.

These run against the session's `make run` (tests/e2e/conftest.py), in its own directory.
"""

import io
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import kvmd
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


def streamer_clients(kvm: Kvm) -> dict[str, Any]:
    """`clients_stat` of the streamer's /state as kvmd last polled it ({} when stopped)."""
    streamer = kvm.api("GET", "/streamer")["result"]["streamer"]
    return dict(streamer["stream"]["clients_stat"]) if streamer else {}


def test_the_video_counts_as_live_for_the_pikvm_web_ui(kvm: Kvm, tmp_path: Path) -> None:
    # The PiKVM web UI asks for /streamer/stream?key=<random>, takes the id from the
    # `stream_client=<key>/<id>` cookie, and shows its video as live while the streamer's
    # /state lists that id in clients_stat.
    headers = tmp_path / "headers.txt"
    stream = f"{kvm.url}/streamer/stream?key=webui"
    viewer = subprocess.Popen(
        ["curl", "-s", "-u", "admin:admin", "-D", str(headers), "-o", "/dev/null", stream]
    )
    try:
        wait_for(
            "the stream's headers",
            lambda: headers.exists() and b"\r\n\r\n" in headers.read_bytes(),
        )
        cookies = [
            line.split(": ", 1)[1]
            for line in headers.read_text().splitlines()
            if line.lower().startswith("set-cookie: ")
        ]
        [cookie] = cookies
        match = re.fullmatch(r"stream_client=webui/([0-9a-f]+); path=/; max-age=30", cookie)
        assert match is not None, cookie
        client = match[1]
        # Listed, with the frames it gets counted (the streamer's state is polled each second).
        wait_for(
            "the viewer listed with its fps",
            lambda: streamer_clients(kvm).get(client, {}).get("fps", 0) > 0,
            explain=lambda: streamer_clients(kvm),
        )
        stat = streamer_clients(kvm)[client]
        assert stat == {
            "fps": stat["fps"],
            "extra_headers": False,
            "advance_headers": False,
            "dual_final_frames": False,
            "zero_data": False,
            "key": "webui",
        }
        viewer.terminate()
        viewer.wait(10)
        wait_for("the viewer gone", lambda: client not in streamer_clients(kvm))
    finally:
        viewer.kill()
        viewer.wait(10)


def test_the_simulated_board_looks_alive(kvm: Kvm) -> None:
    # About → Hardware and the Prometheus export show CPU load, which kvmd computes from two
    # readings of /proc/stat (kvmd.info polls every 5 s): the simulated board's moves.
    def cpu() -> int | None:
        health = kvm.api("GET", "/info?fields=health&legacy=0")["result"]["health"]
        return health["cpu"]["percent"]

    seen: list[int] = []

    def another_reading() -> bool:
        percent = cpu()
        if percent is not None and percent not in seen:
            seen.append(percent)
        return len(seen) >= 2

    wait_for("two different CPU loads", another_reading, seconds=40, interval=0.5)
    assert all(0 <= percent <= 100 for percent in seen)
    metrics = curl("-u", "admin:admin", f"{kvm.url}/api/export/prometheus/metrics").stdout
    assert re.search(rb"^pikvm_hw_cpu_percent \d+$", metrics, re.MULTILINE)
    # Uptime is read at each request: it advances with the board's clock.
    first = kvm.api("GET", "/info?fields=uptime")["result"]["uptime"]["total"]
    wait_for(
        "uptime advancing",
        lambda: kvm.api("GET", "/info?fields=uptime")["result"]["uptime"]["total"] > first,
        interval=0.2,
    )


def test_the_simulated_streamer_names_itself(kvm: Kvm) -> None:
    streamer = kvm.api("GET", "/info?fields=system")["result"]["system"]["streamer"]
    assert streamer == {
        "app": "kvmd-sim-ustreamer",
        "version": kvmd.__version__,
        "features": {
            "WITH_GPIO": False,
            "WITH_SYSTEMD": False,
            "WITH_PTHREAD_NP": False,
            "WITH_SETPROCTITLE": False,
            "HAS_PDEATHSIG": True,
        },
    }
