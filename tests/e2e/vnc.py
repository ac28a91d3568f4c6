# SPDX-License-Identifier: GPL-3.0-or-later
"""VNC clients for the VNC server's tests: a tiny RFB 3.8 client on a raw socket, an
independent ZRLE decoder, Xvfb for TigerVNC's viewer, and OCR of what a client shows.

The raw client is written from RFC 6143, not from kvmd's code, so that it checks the
server's bytes rather than agreeing with them; only the VNCAuth DES answer is borrowed
(kvmd.vnc.vncauth.encrypt, itself tested against vncdotool's).
"""

import contextlib
import dataclasses
import http.client
import io
import os
import select
import signal
import socket
import struct
import subprocess
import time
import zlib
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageChops, ImageOps, ImageStat

from kvmd.vnc.vncauth import encrypt
from tests.e2e.test_daemon import free_port
from tests.e2e.webui import Kvm, make_run, serving, wait_for

RAW = 0
ZRLE = 16
DESKTOP_SIZE = -223
VNCAUTH = 2
VENCRYPT = 19
PLAIN = 256
# Keysyms.
SHIFT_L = 0xFFE1
RETURN = 0xFF0D
# How long any one read from the server may take.
TIMEOUT = 10.0
# The key TigerVNC's and RealVNC's password files are DES-encrypted with.
_VNC_FILE_KEY = bytes([0x17, 0x52, 0x6B, 0x06, 0x23, 0x4E, 0x58, 0x07])


class Rfb:
    """One RFB 3.8 connection, blocking, every read bounded by TIMEOUT."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.size = (0, 0)
        self.name = b""
        self._zlib = zlib.decompressobj()  # ZRLE's stream lasts as long as the connection

    # --- bytes ---------------------------------------------------------------------------

    def recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise EOFError(f"EOF after {len(data)} of {size} bytes")
            data += chunk
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Vanish: the socket closes at once with a TCP RST, whatever is in flight."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def closed_by_server(self, seconds: float = TIMEOUT) -> bool:
        """Whether the server closes the connection within `seconds` (what it still sends
        before that is read and dropped)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(1 << 20):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    # --- the handshake ------------------------------------------------------------------

    def version(self) -> None:
        assert self.recv(12) == b"RFB 003.008\n"
        self.send(b"RFB 003.008\n")

    def security_types(self) -> list[int]:
        count = self.recv(1)[0]
        if count == 0:
            raise AssertionError(f"no security types: {self._reason()!r}")
        return list(self.recv(count))

    def security_result(self) -> tuple[int, str]:
        """SecurityResult: 0 and "", or the failure and its reason (RFB 3.8)."""
        (status,) = struct.unpack(">I", self.recv(4))
        return (status, self._reason() if status else "")

    def _reason(self) -> str:
        (length,) = struct.unpack(">I", self.recv(4))
        return self.recv(length).decode()

    def vncauth(self, password: str) -> tuple[int, str]:
        self.version()
        assert VNCAUTH in self.security_types()
        self.send(bytes([VNCAUTH]))
        self.send(encrypt(password, self.recv(16)))
        return self.security_result()

    def plain(self, user: str, password: str) -> tuple[int, str]:
        """VeNCrypt 0.2, sub-type Plain (no TLS: this client is for the loopback only)."""
        self.version()
        assert VENCRYPT in self.security_types()
        self.send(bytes([VENCRYPT]))
        assert self.recv(2) == b"\x00\x02"
        self.send(b"\x00\x02")
        assert self.recv(1) == b"\x00"
        count = self.recv(1)[0]
        subtypes = struct.unpack(f">{count}I", self.recv(4 * count))
        assert PLAIN in subtypes
        self.send(struct.pack(">I", PLAIN))
        (user_b, password_b) = (user.encode(), password.encode())
        self.send(struct.pack(">II", len(user_b), len(password_b)) + user_b + password_b)
        return self.security_result()

    def init(self) -> None:
        self.send(b"\x01")  # ClientInit: shared
        (width, height) = struct.unpack(">HH", self.recv(4))
        pixel_format = self.recv(16)
        # The server's format, which this client keeps: 32 bpp, little-endian, RGB 8:8:8
        # at shifts 16/8/0, so a pixel is B, G, R, padding in memory.
        assert pixel_format[:4] == bytes([32, 24, 0, 1]), pixel_format.hex()
        assert pixel_format[4:13] == struct.pack(">HHHBBB", 255, 255, 255, 16, 8, 0)
        (length,) = struct.unpack(">I", self.recv(4))
        self.name = self.recv(length)
        self.size = (width, height)

    # --- messages --------------------------------------------------------------------------

    def set_encodings(self, *encodings: int) -> None:
        self.send(
            struct.pack(">BxH", 2, len(encodings))
            + b"".join(struct.pack(">i", e) for e in encodings)
        )

    def request(self) -> None:
        (width, height) = self.size
        self.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))

    def key(self, keysym: int, *, down: bool) -> None:
        self.send(struct.pack(">BBxxI", 4, int(down), keysym))

    def tap(self, keysym: int) -> None:
        self.key(keysym, down=True)
        self.key(keysym, down=False)

    def type(self, text: str) -> None:
        for char in text:
            self.tap(RETURN if char == "\n" else ord(char))

    def pointer(self, mask: int, x: int, y: int) -> None:
        self.send(struct.pack(">BBHH", 5, mask, x, y))

    def frame(self) -> Image.Image:
        """Asks for an update and returns the picture in it (pseudo-rects are followed)."""
        self.request()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            kind = self.recv(1)[0]
            if kind == 0:
                picture = self._update()
                if picture is not None:
                    return picture
            elif kind in (2, 150):  # Bell, EndOfContinuousUpdates
                pass
            elif kind == 3:  # ServerCutText
                (length,) = struct.unpack(">3xI", self.recv(7))
                self.recv(length)
            else:
                raise AssertionError(f"unknown server message {kind}")
        raise AssertionError("no picture in time")

    def _update(self) -> Image.Image | None:
        (count,) = struct.unpack(">xH", self.recv(3))
        picture = None
        for _ in range(count):
            (x, y, width, height, encoding) = struct.unpack(">HHHHi", self.recv(12))
            if encoding == DESKTOP_SIZE:
                self.size = (width, height)
            elif encoding == RAW:
                assert (x, y, width, height) == (0, 0, *self.size)
                data = self.recv(width * height * 4)
                picture = Image.frombytes("RGB", (width, height), data, "raw", "BGRX")
            elif encoding == ZRLE:
                assert (x, y, width, height) == (0, 0, *self.size)
                (length,) = struct.unpack(">I", self.recv(4))
                data = self._zlib.decompress(self.recv(length))
                picture = zrle_picture(data, width, height)
            elif width or height:
                raise AssertionError(f"a {width}x{height} rectangle in encoding {encoding}")
        return picture


def zrle_picture(data: bytes, width: int, height: int) -> Image.Image:
    """ZRLE's inflated tiles (RFC 6143 §7.7.6) as a picture, for 3-byte CPIXELs (B, G, R).

    Raw and solid tiles are what the server sends; other sub-encodings fail the test.
    """
    picture = Image.new("RGB", (width, height))
    pos = 0
    for top in range(0, height, 64):
        for left in range(0, width, 64):
            (w, h) = (min(64, width - left), min(64, height - top))
            sub = data[pos]
            pos += 1
            if sub == 0:
                tile = Image.frombytes("RGB", (w, h), data[pos : pos + w * h * 3], "raw", "BGR")
                pos += w * h * 3
            elif sub == 1:
                (b, g, r) = data[pos : pos + 3]
                tile = Image.new("RGB", (w, h), (r, g, b))
                pos += 3
            else:
                raise AssertionError(f"ZRLE sub-encoding {sub}: not one this decoder knows")
            picture.paste(tile, (left, top))
    assert pos == len(data), f"{len(data) - pos} bytes after the last tile"
    return picture


def login(port: int, *encodings: int) -> Rfb:
    """A VNCAuth session (testenv/vncpasswd: admin), past ServerInit, with `encodings` set."""
    rfb = Rfb(port)
    assert rfb.vncauth("admin") == (0, "")
    rfb.init()
    if encodings:
        rfb.set_encodings(*encodings)
    return rfb


def vnc_password_file(path: Path, password: str) -> Path:
    """A password file as TigerVNC's vncpasswd writes it: DES with the fixed VNC key."""
    # kvmd's encrypt is the VNCAuth answer: DES keyed by bit-reversed key bytes, which is
    # what d3des does with the fixed key too.
    path.write_bytes(encrypt(_VNC_FILE_KEY.decode(), password.encode()[:8].ljust(8, b"\0")))
    path.chmod(0o600)
    return path


# --- what the target shows ------------------------------------------------------------------


def snapshot(kvm: Kvm) -> Image.Image:
    """The streamer's picture now, as the API gives it."""
    basic = b64encode(b"admin:admin").decode()
    connection = http.client.HTTPConnection("127.0.0.1", kvm.port, timeout=10)
    try:
        connection.request(
            "GET", "/api/streamer/snapshot", headers={"Authorization": f"Basic {basic}"}
        )
        response = connection.getresponse()
        assert response.status == 200
        return Image.open(io.BytesIO(response.read())).convert("RGB")
    finally:
        connection.close()


def difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference of two pictures of the same size, 0..255."""
    assert a.size == b.size, (a.size, b.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def ocr(picture: Image.Image) -> str:
    """The text tesseract reads, lower case, spaces collapsed (light text on dark: read
    both as it is and inverted, at twice the size)."""
    gray = picture.convert("L")
    box = gray.getbbox()
    if box is not None:
        gray = gray.crop(box)
    gray = gray.resize((gray.width * 2, gray.height * 2))
    texts = []
    for variant in (gray, ImageOps.invert(gray)):
        out = io.BytesIO()
        variant.save(out, "PNG")
        done = subprocess.run(
            ["tesseract", "-", "-"],
            input=out.getvalue(),
            capture_output=True,
            timeout=30,
            check=True,
        )
        texts.append(done.stdout.decode())
    return " ".join(" ".join(texts).lower().split())


def log_lines(kvm: Kvm) -> list[str]:
    return (kvm.run / "make-run.log").read_text(errors="replace").splitlines()


# --- X ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def xvfb(size: str = "1280x1024x24") -> Iterator[str]:
    """Xvfb on a display number it picks itself (-displayfd); yields ":N"; killed at the end."""
    (read_fd, write_fd) = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(write_fd)
    try:
        (ready, _, _) = select.select([read_fd], [], [], 10)
        assert ready, "Xvfb named no display in 10 s"
        number = os.read(read_fd, 32).decode().strip()
        assert number.isdigit(), f"Xvfb said {number!r}"
        yield f":{number}"
    finally:
        os.close(read_fd)
        stop(proc)


def stop(proc: "subprocess.Popen[bytes]") -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# --- the daemon -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VncRun:
    """`make run` with its VNC server on `port`."""

    kvm: Kvm
    port: int


@contextlib.contextmanager
def vnc_run(prefix: str) -> Iterator[VncRun]:
    port = free_port()
    with make_run(prefix, {**os.environ, "VNC_PORT": str(port)}) as (kvm, _):
        wait_for("make run serves the API", lambda: serving(kvm), seconds=40)
        wait_for("HID online", lambda: kvm.api("GET", "/hid")["result"]["online"] is True)
        wait_for("the VNC server listens", lambda: _listening(port))
        yield VncRun(kvm, port)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def type_api(kvm: Kvm, text: str) -> None:
    """Types `text` on the target through the API, and waits until the target has it."""
    assert kvm.api("POST", "/hid/print", body=text.encode())["ok"] is True
    wait_for(f"the target types {text!r}", lambda: text in kvm.screen())
