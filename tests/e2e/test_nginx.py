# SPDX-License-Identifier: GPL-3.0-or-later
"""configs/nginx/kvmd.conf in front of `make run`, in the real nginx on loopback: TLS from
kvmd-gencert, the API on kvmd's unix socket, the video from the streamer's socket after
auth_request, and a large upload streamed through without nginx's temp files.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import LOOP, REPO
from tests.e2e.test_daemon import WEBSOCAT, free_port
from tests.e2e.webui import Kvm, wait_for

pytestmark = pytest.mark.timeout(120)


class Nginx:
    def __init__(self, root: Path, https: int, http: int) -> None:
        self.root = root
        self.url = f"https://127.0.0.1:{https}"
        self.http = f"http://127.0.0.1:{http}"

    def curl(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["curl", "--silent", "--insecure", *args], capture_output=True, timeout=60, check=False
        )

    def status(self, *args: str) -> str:
        return self.curl("-o", "/dev/null", "-w", "%{http_code}", *args).stdout.decode()


def site_config(kvm: Kvm, root: Path, https: int, http: int) -> str:
    """The shipped site, moved onto this test's sockets, certificate and ports."""
    text = (REPO / "configs" / "nginx" / "kvmd.conf").read_text()
    for old, new in (
        ("unix:/run/kvmd/kvmd.sock", f"unix:{kvm.run}/kvmd.sock"),
        # make run's streamer socket (testenv/kvmd.yaml): /run/kvmd/ustreamer.sock on a Pi.
        ("unix:/run/kvmd/ustreamer.sock", f"unix:{kvm.run}/ustreamer.sock"),
        ("/etc/kvmd/nginx/ssl/", f"{root}/ssl/"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen [::]:80;", ""),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def main_config(root: Path) -> str:
    """The shipped nginx.conf, with its paths in this test's directory."""
    text = (REPO / "configs" / "nginx" / "nginx.conf").read_text()
    for old, new in (
        # No kvmd group here, and make run's sockets sit in a 0700 directory.
        ("user www-data kvmd;", "user root;"),
        ("/run/kvmd-nginx/", f"{root}/"),
        ("error_log stderr warn;", f"error_log {root}/error.log warn;"),
        ("include /etc/kvmd/nginx/kvmd.conf;", f"include {root}/kvmd.conf;"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def nginx(kvm: Kvm) -> Iterator[Nginx]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is missing: `make test` installs nginx with apt-get")
    root = Path(tempfile.mkdtemp(prefix="kvmd-nginx-"))
    (https, http) = (free_port(), free_port())
    gencert = Path(sys.executable).parent / "kvmd-gencert"
    subprocess.run([gencert, "--dir", root / "ssl", "--name", "127.0.0.1"], check=True)
    (root / "kvmd.conf").write_text(site_config(kvm, root, https, http))
    (root / "nginx.conf").write_text(main_config(root))
    checked = subprocess.run(
        [binary, "-t", "-c", root / "nginx.conf"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    proc = subprocess.Popen(
        [binary, "-c", root / "nginx.conf", "-g", "daemon off;"], stderr=subprocess.DEVNULL
    )
    served = Nginx(root, https, http)
    try:
        wait_for("nginx answers", lambda: served.status(f"{served.url}/") == "200")
        yield served
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _login(nginx: Nginx, user: str = "admin") -> str:
    jar = nginx.root / f"{user}.cookies"
    answer = nginx.curl(
        "-c", str(jar), "-X", "POST", "--data", f"user={user}", "--data", f"passwd={user}",
        f"{nginx.url}/api/auth/login",
    )  # fmt: skip
    assert json.loads(answer.stdout) == {"ok": True, "result": {}}
    token = next(
        line.split("\t")[-1] for line in jar.read_text().splitlines() if "auth_token" in line
    )
    return token.strip()


def test_https_login_console_and_401(nginx: Nginx, kvm: Kvm) -> None:
    token = _login(nginx)
    cookie = f"auth_token={token}"
    check = json.loads(nginx.curl("-b", cookie, f"{nginx.url}/api/auth/check").stdout)
    assert check["result"]["user"] == "admin"
    # No credentials: 401 from the API and from the video's auth_request alike.
    assert nginx.status(f"{nginx.url}/api/auth/check") == "401"
    assert nginx.status(f"{nginx.url}/streamer/stream") == "401"
    # A principal without `video` may not watch: 403 through auth_request.
    made = kvm.api("POST", "/auth/keys/create?name=monitor&permissions=state")["result"]
    key = ["-H", f"X-KVMD-User: {made['key']['id']}", "-H", f"X-KVMD-Passwd: {made['secret']}"]
    assert nginx.status(*key, f"{nginx.url}/api/auth/check") == "200"
    assert nginx.status(*key, f"{nginx.url}/streamer/stream") == "403"
    # The console's page, through nginx.
    page = nginx.curl(f"{nginx.url}/")
    assert b"<title>kvmd</title>" in page.stdout
    # Plain HTTP is sent to HTTPS.
    redirect = nginx.curl(
        "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", nginx.http + "/x"
    )
    assert redirect.stdout == b"301 https://127.0.0.1/x"


def test_websocket_and_mjpeg_through_auth_request(nginx: Nginx) -> None:
    cookie = f"auth_token={_login(nginx, 'viewer')}"
    wss = nginx.url.replace("https://", "wss://") + "/api/ws?stream=1"
    ws = subprocess.Popen(
        [WEBSOCAT, wss, "--insecure", "-H", f"Cookie: {cookie}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, ws.kill)
    watchdog.start()
    try:
        assert ws.stdout is not None
        line = ws.stdout.readline()
        if not line:
            ws.kill()
            pytest.fail(f"no event through nginx: {ws.communicate()[1]}")
        first = json.loads(line)
        assert first == LOOP
        # The websocket holds the streamer: nginx takes the video straight from its socket.
        wait_for(
            "frames through nginx",
            lambda: (
                nginx.curl(
                    "-b", cookie, "--max-time", "2", f"{nginx.url}/streamer/stream"
                ).stdout.count(b"Content-Type: image/jpeg")
                >= 10
            ),
            seconds=30,
        )
    finally:
        watchdog.cancel()
        ws.kill()
        ws.communicate()


def test_a_200_mb_upload_is_streamed_not_buffered(nginx: Nginx, kvm: Kvm) -> None:
    cookie = f"auth_token={_login(nginx)}"
    image = nginx.root / "big.img"
    size = 200 * 1024 * 1024
    with image.open("wb") as file:
        file.truncate(size)
    answer = nginx.curl(
        "-b", cookie, "-X", "POST", "-T", str(image), f"{nginx.url}/api/msd/write?image=big.img"
    )  # fmt: skip
    assert json.loads(answer.stdout)["result"] == {
        "image": {"name": "big.img", "size": size, "written": size}
    }
    assert (kvm.run / "msd" / "big.img").stat().st_size == size
    # nginx names every body it spools to disk in its log (and unlinks the file at once,
    # so the temp directory itself shows nothing): none here.
    log = (nginx.root / "error.log").read_text()
    assert "request body is buffered to a temporary file" not in log
    assert kvm.api("POST", "/msd/remove?image=big.img")["ok"] is True


def test_direct_h264_and_janus_through_nginx(nginx: Nginx) -> None:
    cookie = f"auth_token={_login(nginx, 'viewer')}"

    async def first_frames() -> list[bytes]:
        url = nginx.url.replace("https://", "wss://") + "/api/media/ws?video=h264"
        async with (
            aiohttp.ClientSession(headers={"Cookie": cookie}) as session,
            session.ws_connect(url, ssl=False) as ws,
        ):
            return [(await ws.receive_bytes(timeout=20)) for _ in range(3)]

    frames = asyncio.run(first_frames())
    # Pure mode: Annex-B from the first byte, the first access unit an IDR with its SPS.
    assert all(frame.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")) for frame in frames)
    assert frames[0][4] & 0x1F == 7  # NAL type 7: sequence parameter set
    # Janus is not installed here: past auth_request nginx finds no socket (502); without
    # credentials it never gets that far (401).
    assert nginx.status(f"{nginx.url}/janus/ws") == "401"
    assert nginx.status("-b", cookie, f"{nginx.url}/janus/ws") == "502"
