# SPDX-License-Identifier: GPL-3.0-or-later
"""Big uploads into the real daemon process: memory stays flat, and a kill -9 loses nothing."""

import hashlib
import http.client
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_daemon import Daemon
from tests.msdenv import MsdPaths

pytestmark = pytest.mark.timeout(180)

MiB = 1024 * 1024
AUTH = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}


_BASE = hashlib.sha256(b"kvmd").digest() * (MiB // 32)


def stream(start: int, end: int) -> Iterator[bytes]:
    """Bytes `start` .. `end` of an endless pattern: MiB blocks of pseudo-random bytes, each
    opening with its own number, so a lost, repeated or shifted block changes the hash."""
    position = start
    while position < end:
        number = position // MiB
        block = number.to_bytes(8, "big") + _BASE[8:]
        piece = block[position - number * MiB : min(end - number * MiB, MiB)]
        position += len(piece)
        yield piece


def stream_hash(start: int, end: int) -> str:
    digest = hashlib.sha256()
    for piece in stream(start, end):
        digest.update(piece)
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while data := file.read(4 * MiB):
            digest.update(data)
    return digest.hexdigest()


def upload(
    daemon: Daemon, query: str, body: Iterator[bytes], size: int
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
    try:
        headers = {**AUTH, "Content-Length": str(size)}
        connection.request("POST", f"/api/msd/write?{query}", body=body, headers=headers)
        response = connection.getresponse()
        return (response.status, json.loads(response.read()))
    finally:
        connection.close()


def msd_state(daemon: Daemon) -> dict[str, Any]:
    return json.loads(daemon.curl("-u", "admin:admin", f"{daemon.url}/api/msd").stdout)["result"]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def paths(tmp_path: Path) -> MsdPaths:
    return MsdPaths(tmp_path)


def start(tmp_path: Path, paths: MsdPaths) -> Daemon:
    daemon = Daemon(tmp_path, {"kvmd": {"msd": paths.config()}})
    daemon.wait_ready()
    return daemon


def test_a_gigabyte_upload_in_flat_memory(tmp_path: Path, paths: MsdPaths) -> None:
    size = 1024 * MiB
    daemon = start(tmp_path, paths)
    try:
        pid = daemon.proc.pid
        baseline = rss(pid)
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], rss(pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            digest = stream_hash(0, size)
            answer = upload(daemon, f"image=big.img&sha256={digest}", stream(0, size), size)
        finally:
            done.set()
            sampler.join()
        assert answer == (
            200,
            {"ok": True, "result": {"image": {"name": "big.img", "size": size, "written": size}}},
        )
        assert file_hash(paths.storage / "big.img") == digest
        # Two write buffers of 1 MiB and aiohttp's socket buffers: nothing near the file size.
        growth = peak[0] - baseline
        print(f"RSS {baseline / MiB:.1f} MiB before, peak growth {growth / MiB:.1f} MiB")
        assert growth < 32 * MiB, f"RSS grew by {growth / MiB:.1f} MiB during a 1 GiB upload"
        image = msd_state(daemon)["storage"]["images"]["big.img"]
        assert (image["size"], image["complete"]) == (size, True)
    finally:
        daemon.proc.kill()
        daemon.proc.communicate()


def kill_mid_upload(daemon: Daemon, size: int, at: int) -> None:
    """Upload `size` bytes as crash.img slowly, and kill -9 the daemon once `at` are in."""
    killed = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for piece in stream(0, size):
            if killed.is_set():
                return
            time.sleep(0.002)
            yield piece

    result: list[object] = []

    def send() -> None:
        try:
            result.append(upload(daemon, "image=crash.img", slow_body(), size))
        except (OSError, http.client.HTTPException) as exc:
            result.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            uploading = msd_state(daemon)["storage"]["uploading"]
            if uploading and uploading["written"] >= at:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the upload did not get going")
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.communicate()
    finally:
        killed.set()
        sender.join()
    assert isinstance(result[0], OSError | http.client.HTTPException)


def test_kill_9_mid_upload_then_resume(tmp_path: Path, paths: MsdPaths) -> None:
    size = 256 * MiB
    kill_mid_upload(start(tmp_path, paths), size, at=64 * MiB)
    marker = paths.storage / ".__crash.img.incomplete"
    assert marker.exists()
    daemon = start(tmp_path, paths)
    try:
        image = msd_state(daemon)["storage"]["images"]["crash.img"]
        have = image["size"]
        assert image["complete"] is False
        assert 64 * MiB <= have < size
        # What is on disk is exactly what was sent, up to where it stops.
        assert file_hash(paths.storage / "crash.img") == stream_hash(0, have)
        # Never plugged into the target while incomplete.
        daemon.curl(
            "-u", "admin:admin", "-X", "POST", f"{daemon.url}/api/msd/set_params?image=crash.img"
        )
        refused = daemon.curl(
            "-u", "admin:admin", "-X", "POST", f"{daemon.url}/api/msd/set_connected?connected=1"
        )
        assert '"MsdImageIncompleteError"' in refused.stdout

        digest = stream_hash(0, size)
        answer = upload(
            daemon,
            f"image=crash.img&offset={have}&sha256={digest}",
            stream(have, size),
            size - have,
        )
        assert answer == (
            200,
            {"ok": True, "result": {"image": {"name": "crash.img", "size": size, "written": size}}},
        )
        assert file_hash(paths.storage / "crash.img") == digest
        assert not marker.exists()
        assert msd_state(daemon)["storage"]["images"]["crash.img"]["complete"] is True
    finally:
        daemon.proc.kill()
        daemon.proc.communicate()
