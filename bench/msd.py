# SPDX-License-Identifier: GPL-3.0-or-later
"""MSD figures: upload throughput over loopback against `dd` into the same directory, and
the daemon's peak RSS while it takes a 256 MiB and a 1 GiB image.


dd runs with `conv=fsync`: like an upload, its bytes are on disk when it ends. Runs of dd
and of the upload alternate, so both see the same state of the page cache and the disk.
"""

import asyncio
import json
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import sized
from kvmd.hw.gadget import Gadget
from kvmd.hw.gadget_config import OtgConfig

ADMIN = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}
MiB = 1024 * 1024
SIZE = sized(1024, 16) * MiB
ROUNDS = sized(3, 1)
Figures = dict[str, Any]


def msd_override(config: Path, tmp: Path) -> Path:
    storage = tmp / "msd-storage"
    storage.mkdir()
    gadget = Gadget(OtgConfig(configfs=str(tmp / "configfs"), udc="bench-udc.0"))
    gadget.start()
    data = json.loads(config.read_text())
    data["kvmd"]["msd"] = {"type": "otg", "gadget": str(gadget.path), "storage": str(storage)}
    config.write_text(json.dumps(data))
    return storage


def run_dd(storage: Path, size: int) -> float:
    """Seconds dd takes to write `size` bytes of zeros into `storage`, synced."""
    target = storage / "dd.img"
    started = time.monotonic()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size // MiB}", "conv=fsync"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    target.unlink()
    return elapsed


async def _body(size: int) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (MiB // 256)
    sent = 0
    while sent < size:
        piece = block[: min(MiB, size - sent)]
        sent += len(piece)
        yield piece


async def upload(url: str, name: str, size: int, rss: Callable[[], float]) -> tuple[float, float]:
    """Seconds one upload of `size` bytes takes, and the daemon's peak RSS (MB) meanwhile."""
    peak = rss()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    headers = {**ADMIN, "Content-Length": str(size)}
    timeout = aiohttp.ClientTimeout(total=300)
    started = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                url + "/api/msd/write", params={"image": name}, data=_body(size), headers=headers
            ) as response,
        ):
            answer = await response.json()
    finally:
        done.set()
        await sampler
    elapsed = time.monotonic() - started
    if response.status != 200 or answer["result"]["image"]["written"] != size:
        raise RuntimeError(f"upload failed: {response.status} {answer}")
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/api/msd/remove", params={"image": name}, headers=ADMIN) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"remove failed: {await response.text()}")
    return (elapsed, peak)


async def bench_upload(url: str, storage: Path, rss: Callable[[], float]) -> Figures:
    idle = rss()
    (_, peak_small) = await upload(url, "small.img", SIZE // 4, rss)
    dd_runs, upload_runs, peaks = [], [], []
    for number in range(ROUNDS):
        dd_runs.append(await asyncio.to_thread(run_dd, storage, SIZE))
        (elapsed, peak) = await upload(url, f"big{number}.img", SIZE, rss)
        upload_runs.append(elapsed)
        peaks.append(peak)
    # Medians: this disk's speed swings widely from one run to the next.
    return {
        "msd_dd_mbps": SIZE / MiB / statistics.median(dd_runs),
        "msd_upload_mbps": SIZE / MiB / statistics.median(upload_runs),
        "msd_dd_runs": [round(SIZE / MiB / t) for t in dd_runs],
        "msd_upload_runs": [round(SIZE / MiB / t) for t in upload_runs],
        "msd_rss_before_mb": idle,
        "msd_rss_peak_256m_mb": peak_small,
        "msd_rss_peak_1g_mb": max(peaks),
    }
