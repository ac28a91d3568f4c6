# SPDX-License-Identifier: GPL-3.0-or-later
"""VNC figures: frames per client against the streamer's own rate, the daemon's CPU per
client (Tight JPEG pass-through and decoded ZRLE), key event to HID report latency, and
the memory the VNC server adds while idle.

The daemon runs with the simulated streamer, the OTG HID backend writing to the simulated
USB host in this process (bench.hid's StampingHost, which stamps each report on the same
clock the clients send with) and its VNC server; the clients are raw RFB sockets here that
log in with VNCAuth as a `password -> admin` line of a vncpasswd file.
"""

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import QUICK, sized, timed
from bench.daemon import ADMIN, running
from bench.hid import StampingHost, hid_override, wait_online
from kvmd.sim.ustreamer import streamer_section
from tests.rfb import DESKTOP_SIZE, TIGHT, ZRLE, RfbClient

TARGETS = {
    "tight_vs_streamer": 0.90,
    "tight_cpu_percent": 5.0,
    "key_p99_ms": 5.0,
    "idle_pss_mb": 5.0,
}
CLIENTS = (1, 2) if QUICK else (1, 5)
WINDOW = timed(5.0, 0.5)
# Time for the streamer to start and the frames to flow before a window is measured.
WARMUP = timed(2.0, 0.5)
# How long a daemon sits after start before its memory is read.
SETTLE = timed(3.0, 0.5)
KEY_EVENTS = sized(200, 20)
KEY_GAP = 0.005
PASSWORD = "bench"  # noqa: S105 -- the bench's own vncpasswd, in a temp dir
KEYMAP = Path("/usr/share/qemu/keymaps/en-us")
STREAMER_FPS = 30
RESOLUTION = "1920x1080"

JPEG_QUALITY_100 = -23
TIGHT_ENCODINGS = (TIGHT, JPEG_QUALITY_100, DESKTOP_SIZE)
ZRLE_ENCODINGS = (ZRLE, DESKTOP_SIZE)
KEYSYM_A = 0x61


async def login(port: int, encodings: tuple[int, ...]) -> RfbClient:
    """One viewer: RFB 3.8, VNCAuth with the bench's password, these encodings."""
    client = await RfbClient.open(port)
    try:
        async with asyncio.timeout(10):
            result = await client.vncauth(PASSWORD)
            client.set_encodings(*encodings)
            await client.drain()
    except BaseException:
        await client.close()
        raise
    if result != 0:
        await client.close()
        raise RuntimeError("VNCAuth refused")
    return client


def vnc_override(config: Path, folder: Path, ports: tuple[int, int], *, enabled: bool) -> None:
    """The daemon's and the VNC server's ports, the `vnc:` section (VNCAuth by a vncpasswd
    line) and a 30 fps simulated streamer.

    The streamer's quality is set to the clients' 100, so that their JPEG quality level
    doesn't restart it in the middle of a window.
    """
    passwords = folder / "vncpasswd"
    passwords.write_text(f"{PASSWORD} -> admin\n")
    passwords.chmod(0o600)
    (port, vnc_port) = ports
    data = json.loads(config.read_text())
    data["kvmd"]["server"]["port"] = port
    data["kvmd"]["streamer"] = streamer_section(
        str(folder / "vnc-sim.sock"),
        "--desired-fps={desired_fps}",
        "--quality={quality}",
        f"--resolution={RESOLUTION}",
        # Kept running between the windows, when no client watches for a moment.
        shutdown_delay=30.0,
        quality=100,
        desired_fps={"default": STREAMER_FPS},
    )
    data["vnc"] = {
        "enabled": enabled,
        "keymap": str(KEYMAP),
        "server": {"host": "127.0.0.1", "port": vnc_port, "tls": {"x509": {"cert": ""}}},
        "auth": {"vncauth": {"enabled": True, "file": str(passwords)}},
    }
    config.write_text(json.dumps(data))


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread of it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no Pss in smaps_rollup")


async def idle_pss(config: Path, tmp: Path, port: int) -> float:
    async with running(config, tmp, port) as (_, pid):
        await asyncio.sleep(SETTLE)
        return pss_mb(pid)


async def streamer_fps(url: str) -> float:
    """The streamer's own captured_fps, as the daemon last read its /state."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/api/streamer", headers=ADMIN) as response,
    ):
        state = (await response.json())["result"]["streamer"]
    return float(state["source"]["captured_fps"]) if state else 0.0


async def viewers(
    url: str,
    unix: str,
    vnc_port: int,
    count: int,
    encodings: tuple[int, ...],
    cpu: Callable[[], float],
) -> dict[str, float]:
    """`count` clients watching for WINDOW: their fps, the streamer's, the daemon's CPU.

    The streamer's rate is counted on a stream of its own, read from its unix socket.
    """
    clients = [await login(vnc_port, encodings) for _ in range(count)]
    try:
        # The first clients start the streamer: wait for its frames, then let them flow.
        limit = time.monotonic() + 20
        while time.monotonic() < limit and (
            await streamer_fps(url) == 0 or not all(c.frames for c in clients)
        ):
            await asyncio.gather(*(c.watch(time.monotonic() + 0.2) for c in clients))
        await asyncio.gather(*(c.watch(time.monotonic() + WARMUP) for c in clients))
        for client in clients:
            (client.frames, client.bytes) = (0, 0)
        cpu_before = cpu()
        began = time.monotonic()
        deadline = began + WINDOW
        (streamer, _) = await asyncio.gather(
            stream_fps(unix, deadline), asyncio.gather(*(c.watch(deadline) for c in clients))
        )
        elapsed = time.monotonic() - began
        used = cpu() - cpu_before
    finally:
        for client in clients:
            await client.close()
    fps = [client.frames / elapsed for client in clients]
    return {
        "fps_min": min(fps),
        "fps_mean": statistics.mean(fps),
        "streamer_fps": streamer,
        "cpu_per_client": used / elapsed / count * 100,
        "kb_per_frame": sum(c.bytes for c in clients)
        / max(sum(c.frames for c in clients), 1)
        / 1024,
    }


async def reader_cpu(url: str, vnc_port: int, cpu: Callable[[], float]) -> float:
    """The daemon's CPU (% of a core) with a client in that asks no frames: what the shared
    reader of the streamer's MJPEG costs, plus the daemon's idle work."""
    client = await login(vnc_port, TIGHT_ENCODINGS)
    try:
        limit = time.monotonic() + 20
        while time.monotonic() < limit and await streamer_fps(url) == 0:
            await asyncio.sleep(0.1)
        await asyncio.sleep(WARMUP)
        before = cpu()
        began = time.monotonic()
        await asyncio.sleep(WINDOW)
        return (cpu() - before) / (time.monotonic() - began) * 100
    finally:
        await client.close()


async def stream_fps(unix: str, deadline: float) -> float:
    """Frames a second of the streamer's own /stream until `deadline`, first to last."""
    stamps: list[float] = []
    connector = aiohttp.UnixConnector(path=unix)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get("http://localhost/stream") as response,
    ):
        reader = aiohttp.MultipartReader(response.headers, response.content)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    part = await reader.next()
                    if not isinstance(part, aiohttp.BodyPartReader):
                        break
                    await part.read()
            except TimeoutError:
                break
            stamps.append(time.monotonic())
    if len(stamps) < 2:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


async def key_latency(
    vnc_port: int, host: StampingHost, *, watching: bool = False
) -> tuple[list[float], int]:
    """Milliseconds from a KeyEvent sent to its report read by the host, and the misses.

    With `watching`, the same client takes Tight frames as fast as they come meanwhile.
    """
    client = await login(vnc_port, TIGHT_ENCODINGS)
    reports = host.arrivals["keyboard"]
    samples: list[float] = []
    missed = 0
    deadline = time.monotonic() + timed(20.0, 5.0)
    viewer = asyncio.create_task(client.watch(deadline)) if watching else None
    try:
        await asyncio.sleep(0.3)  # the login's mouse set-up and the stream starting
        for number in range(KEY_EVENTS):
            if time.monotonic() > deadline:
                break
            seen = len(reports)
            sent = time.perf_counter()
            client.key(KEYSYM_A, down=number % 2 == 0)
            await client.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    while len(reports) == seen:
                        async with host.changed:
                            await host.changed.wait()
            if len(reports) == seen:
                missed += 1
            else:
                samples.append((reports[seen][0] - sent) * 1000)
            await asyncio.sleep(KEY_GAP)
    finally:
        if viewer is not None:
            viewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await viewer
        await client.close()
    return (samples, missed)


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]


def two_ports(free_port: Callable[[], int]) -> tuple[int, int]:
    port = free_port()
    other = free_port()
    while other == port:
        other = free_port()
    return (port, other)


@contextlib.asynccontextmanager
async def stamping_host(folder: Path) -> AsyncIterator[StampingHost]:
    host = StampingHost(folder)
    task = asyncio.create_task(host.run())
    try:
        yield host
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def bench_vnc(
    config: Path, tmp: Path, folder: Path, free_port: Callable[[], int]
) -> dict[str, Any]:
    """`config` is a bench daemon config; `folder` a directory with a short name."""
    results: dict[str, Any] = {"vnc_clients": CLIENTS, "vnc_window_s": WINDOW}
    hid_override(config, folder)
    async with stamping_host(folder) as host:
        # The same daemon with the VNC server off, then on: memory when both are idle.
        ports = two_ports(free_port)
        vnc_override(config, folder, ports, enabled=False)
        results["pss_off_mb"] = await idle_pss(config, tmp, ports[0])
        (port, vnc_port) = ports = two_ports(free_port)
        vnc_override(config, folder, ports, enabled=True)
        async with running(config, tmp, port) as (url, pid):
            await asyncio.sleep(SETTLE)
            results["pss_on_mb"] = pss_mb(pid)
            await wait_online(url)
            unix = str(folder / "vnc-sim.sock")

            def cpu() -> float:
                return cpu_seconds(pid)

            results["vnc_reader_cpu"] = await reader_cpu(url, vnc_port, cpu)
            for count in CLIENTS:
                for name, encodings in (("tight", TIGHT_ENCODINGS), ("zrle", ZRLE_ENCODINGS)):
                    figures = await viewers(url, unix, vnc_port, count, encodings, cpu)
                    results |= {f"{name}{count}_{key}": value for key, value in figures.items()}
            for name, watching in (("idle", False), ("watching", True)):
                (samples, missed) = await key_latency(vnc_port, host, watching=watching)
                results |= {
                    f"key_{name}_events": len(samples),
                    f"key_{name}_missed": missed,
                    f"key_{name}_p50_ms": statistics.median(samples),
                    f"key_{name}_p99_ms": p99(samples),
                }
    return results


def print_vnc(results: dict[str, Any]) -> None:
    added = results["pss_on_mb"] - results["pss_off_mb"]
    print(
        f"  VNC, {STREAMER_FPS} fps simulated streamer ({RESOLUTION}, quality 100),"
        f" {results['vnc_window_s']:.1f} s windows:"
    )
    for count in results["vnc_clients"]:
        tight = {key: results[f"tight{count}_{key}"] for key in ("fps_min", "streamer_fps")}
        ratio = tight["fps_min"] / tight["streamer_fps"] if tight["streamer_fps"] else 0.0
        print(
            f"    {count} Tight JPEG client(s): {results[f'tight{count}_fps_mean']:.1f} fps each"
            f" (slowest {tight['fps_min']:.1f}), streamer {tight['streamer_fps']:.1f} fps"
            f" = {ratio:.0%} (target >= {TARGETS['tight_vs_streamer']:.0%});"
            f" daemon CPU {results[f'tight{count}_cpu_per_client']:.1f}% of a core per client"
            f" (target <= {TARGETS['tight_cpu_percent']:.0f}%);"
            f" {results[f'tight{count}_kb_per_frame']:.0f} KB a frame"
        )
        print(
            f"    {count} ZRLE client(s) (decoded, capped at decoded_fps 10):"
            f" {results[f'zrle{count}_fps_mean']:.1f} fps each"
            f" (slowest {results[f'zrle{count}_fps_min']:.1f});"
            f" daemon CPU {results[f'zrle{count}_cpu_per_client']:.1f}% of a core per client;"
            f" {results[f'zrle{count}_kb_per_frame']:.0f} KB a frame"
        )
    print(
        f"    daemon CPU with one client in that asks no frames (the shared MJPEG reader):"
        f" {results['vnc_reader_cpu']:.1f}% of a core"
    )
    for name, label in (("idle", "no frames asked"), ("watching", "while taking Tight frames")):
        print(
            f"    KeyEvent -> HID report read by the host, {label},"
            f" {results[f'key_{name}_events']} events"
            f" ({results[f'key_{name}_missed']} without a report):"
            f" p50 {results[f'key_{name}_p50_ms']:.2f} ms,"
            f" p99 {results[f'key_{name}_p99_ms']:.2f} ms"
            f" (target p99 < {TARGETS['key_p99_ms']:.0f} ms)"
        )
    print(
        f"    idle daemon PSS: vnc.enabled false {results['pss_off_mb']:.1f} MB,"
        f" true {results['pss_on_mb']:.1f} MB = {added:+.1f} MB"
        f" (target <= {TARGETS['idle_pss_mb']:.0f} MB)"
    )
