# SPDX-License-Identifier: GPL-3.0-or-later
"""Direct H.264 figures (`/api/media/ws`) against MJPEG, for the same simulated scene.

Two daemons. The first runs the simulated streamer with its memsinks: the 640x480 scene
at 30 fps, as JPEG on `/api/streamer/stream` and as x264 (PyAV) on the H.264 memsink the
daemon reads. It gives the bytes a second of each over the same window, every media
client's own fps with 1 and 10 clients, the daemon's CPU with 0, 1 and 10 clients and
the simulated streamer's with 0 and 1 (its x264 encode works only while the sink has
clients).

The second daemon reads a memsink the bench publishes itself, 30 times a second, each
frame's payload starting with its sequence number: the delay from a frame's publication
to its arrival at pure-mode clients, matched by that number. Its streamer is the
simulated one without sinks, at a low rate, so that the media source's hold() has a
streamer to start and its rendering adds little load.

The clients are pure-mode (`?video=h264`): raw access units, one binary message each.
A third daemon (bench/media_browser.py) takes the delay on to the frame's decode by the
console in Chromium. Other load may share the machine: compare figures of one run, not of two.
"""

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import timed
from bench.daemon import ADMIN, REPO, running
from bench.media_browser import PictureStream, bench_browser, print_browser
from kvmd.media.memsink import FORMAT_H264, SHM_DIR, Frame
from kvmd.media.publisher import MemsinkPublisher
from kvmd.sim.ustreamer import streamer_section

TARGETS = {"cpu_per_client_percent": 3.0}
FPS = 30
BITRATE = 5000
GOP = 30
CLIENTS = (1, 10)
WINDOW = timed(5.0, 0.5)
WARMUP = timed(2.0, 0.5)
# The bench's own frames: about what 5 Mbit/s at 30 fps gives a frame.
FRAME_BYTES = 20_000
SEQUENCE = struct.Struct("<Q")
# The latency daemon's streamer only has to be there.
IDLE_STREAMER_FPS = 2
START_LIMIT = 20.0
SIM_PROGRAM = REPO / "testenv" / "kvmd-sim-ustreamer"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread of it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def streamer_pid(daemon: int) -> int:
    """The simulated streamer, a child of the daemon."""
    for children in Path(f"/proc/{daemon}/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):
                if b"kvmd.sim.ustreamer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
    raise RuntimeError("the simulated streamer is not running")


def media_override(config: Path, folder: Path, port: int, sinks: tuple[str, str]) -> None:
    """The daemon's port, a 30 fps simulated streamer and the `media:` memsinks.

    `sinks` are (h264, jpeg) names; an empty jpeg name means the bench publishes the
    H.264 itself, so the streamer gets no sinks and runs at IDLE_STREAMER_FPS.
    """
    (h264, jpeg) = sinks
    own = [f"--h264-sink={h264}", "--h264-sink-rm", "--h264-bitrate={h264_bitrate}"]
    own += ["--h264-gop={h264_gop}", f"--jpeg-sink={jpeg}", "--jpeg-sink-rm"]
    data = json.loads(config.read_text())
    data["kvmd"]["server"]["port"] = port
    section = streamer_section(
        str(folder / "media-sim.sock"),
        "--desired-fps={desired_fps}",
        *(own if jpeg else []),
        # Kept running between the windows, when no client watches for a moment.
        shutdown_delay=60.0,
        desired_fps={"default": FPS if jpeg else IDLE_STREAMER_FPS},
    )
    if jpeg:
        # kvmd asks cmd[0] --help for --h264-sink and drops the sink flags without it:
        # `python --help` has none, the testenv's wrapper of the simulation has.
        cmd = section["cmd"]
        assert isinstance(cmd, list)
        section["cmd"] = [str(SIM_PROGRAM), *cmd[3:]]
        section |= {"h264_bitrate": {"default": BITRATE}, "h264_gop": {"default": GOP}}
    data["kvmd"]["streamer"] = section
    memsinks: dict[str, Any] = {"h264": {"sink": h264}}
    if jpeg:
        memsinks["jpeg"] = {"sink": jpeg}
    data["media"] = {"memsink": memsinks}
    config.write_text(json.dumps(data))


@dataclass(eq=False)
class Viewer:
    """A pure-mode client: it counts what it gets; with `arrivals`, (sequence, time)."""

    ws: aiohttp.ClientWebSocketResponse
    arrivals: list[tuple[int, float]] | None = None
    frames: int = 0
    bytes: int = 0

    async def watch(self, deadline: float) -> None:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    message = await self.ws.receive()
            except TimeoutError:
                return
            arrived = time.monotonic()
            if message.type != aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"/api/media/ws sent {message.type.name}: {message.data!r}")
            self.frames += 1
            self.bytes += len(message.data)
            if self.arrivals is not None:
                self.arrivals.append((SEQUENCE.unpack_from(message.data)[0], arrived))

    async def watch_from(self, began: float, deadline: float) -> None:
        """Counted from `began` only."""
        await self.watch(began)
        self.reset()
        await self.watch(deadline)

    def reset(self) -> None:
        (self.frames, self.bytes) = (0, 0)


@contextlib.asynccontextmanager
async def viewers(
    session: aiohttp.ClientSession, url: str, count: int, *, stamped: bool = False
) -> AsyncIterator[list[Viewer]]:
    """`count` clients, each past its first frame, then watching WARMUP."""
    opened: list[Viewer] = []
    try:
        for _ in range(count):
            ws = await session.ws_connect(url + "/api/media/ws?video=h264", headers=ADMIN)
            opened.append(Viewer(ws, [] if stamped else None))
        limit = time.monotonic() + START_LIMIT
        while not all(v.frames for v in opened) and time.monotonic() < limit:
            await asyncio.gather(*(v.watch(time.monotonic() + 0.1) for v in opened))
        if not all(v.frames for v in opened):
            raise RuntimeError("no frames on /api/media/ws")
        await asyncio.gather(*(v.watch(time.monotonic() + WARMUP) for v in opened))
        for viewer in opened:
            viewer.reset()
            if viewer.arrivals is not None:
                viewer.arrivals.clear()
        yield opened
    finally:
        for viewer in opened:
            await viewer.ws.close()


async def window(watching: list[Viewer], pids: dict[str, int]) -> dict[str, float]:
    """The clients watch for WINDOW: each one's fps, each pid's CPU in % of one core."""
    before = {name: cpu_seconds(pid) for (name, pid) in pids.items()}
    began = time.monotonic()
    # The sleep: with no clients, the window lasts as long all the same.
    await asyncio.gather(asyncio.sleep(WINDOW), *(v.watch(began + WINDOW) for v in watching))
    elapsed = time.monotonic() - began
    figures = {
        f"{name}_cpu": (cpu_seconds(pid) - before[name]) / elapsed * 100
        for (name, pid) in pids.items()
    }
    fps = [v.frames / elapsed for v in watching] or [0.0]
    return figures | {"fps_min": min(fps), "fps_median": statistics.median(fps)}


async def mjpeg_bytes(
    session: aiohttp.ClientSession, url: str, began: float, deadline: float
) -> tuple[int, int]:
    """Bytes and frames of /api/streamer/stream from `began` until `deadline`."""
    marker = b"Content-Type: image/jpeg"
    (total, frames, tail) = (0, 0, b"")
    async with session.get(url + "/api/streamer/stream", headers=ADMIN) as response:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    chunk = await response.content.readany()
            except TimeoutError:
                break
            if not chunk:
                break
            if time.monotonic() < began:
                continue
            total += len(chunk)
            # A part's header may be split between two reads.
            data = tail + chunk
            frames += data.count(marker)
            tail = data[-(len(marker) - 1) :]
    return (total, frames)


async def sim_h264_fps(unix: str, deadline: float) -> float:
    """The simulated streamer's own `h264.fps` (frames put in its sink in the last
    second), read every second until `deadline`: the mean of those reads."""
    reads: list[float] = []
    connector = aiohttp.UnixConnector(path=unix)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not reads or time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
            async with session.get("http://localhost/state") as response:
                reads.append(float((await response.json())["result"]["h264"]["fps"]))
    return statistics.mean(reads)


async def encoded(url: str, pid: int, unix: str) -> dict[str, Any]:
    """The first daemon's figures: CPU by clients, fps, and bytes against MJPEG."""
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        # The streamer starts for a snapshot and stays (shutdown_delay); no media client
        # has read its H.264 sink yet, so it does not encode.
        async with session.get(url + "/api/streamer/snapshot", headers=ADMIN) as response:
            await response.read()
        pids = {"daemon": pid, "sim": streamer_pid(pid)}
        await asyncio.sleep(WARMUP)
        results |= {f"c0_{k}": v for (k, v) in (await window([], pids)).items()}
        for count in CLIENTS:
            async with viewers(session, url, count) as watching:
                (figures, sim_fps) = await asyncio.gather(
                    window(watching, pids), sim_h264_fps(unix, time.monotonic() + WINDOW)
                )
                figures["sim_h264_fps"] = sim_fps
            results |= {f"c{count}_{k}": v for (k, v) in figures.items()}
        async with viewers(session, url, 1) as (h264,):
            # Both counted from `began`, the MJPEG stream open and flowing by then.
            began = time.monotonic() + WARMUP
            (mjpeg, _) = await asyncio.gather(
                mjpeg_bytes(session, url, began, began + WINDOW),
                h264.watch_from(began, began + WINDOW),
            )
        results |= {
            "mjpeg_bps": mjpeg[0] / WINDOW,
            "mjpeg_fps": mjpeg[1] / WINDOW,
            "h264_bps": h264.bytes / WINDOW,
            "h264_fps": h264.frames / WINDOW,
        }
    return results


@dataclass(eq=False)
class SequencePublisher:
    """Frames into a memsink at FPS from a thread, each led by its number; when put."""

    sink: MemsinkPublisher
    limit: int  # frames at most, whatever happens to the bench
    stamps: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        padding = bytes(FRAME_BYTES - SEQUENCE.size)
        due = time.monotonic()
        for number in range(self.limit):
            if self.stop.is_set():
                return
            # Every frame a key frame: each client takes the first one it sees.
            frame = Frame(
                data=SEQUENCE.pack(number) + padding,
                width=640,
                height=480,
                format=FORMAT_H264,
                online=True,
                key=True,
                gop=0,
                grab_ts=time.monotonic(),
                encode_end_ts=0.0,
            )
            if self.sink.put(frame):
                # Published: put() has let go of the lock, a reader may take the frame.
                self.stamps[number] = time.monotonic()
            due = max(due + 1 / FPS, time.monotonic())
            self.stop.wait(due - time.monotonic())


@contextlib.asynccontextmanager
async def publishing(name: str) -> AsyncIterator[SequencePublisher]:
    longest = START_LIMIT * 2 + (WARMUP + WINDOW) * (len(CLIENTS) + 1) + 30
    publisher = SequencePublisher(MemsinkPublisher(name, mode=0o600), int(longest * FPS))
    thread = threading.Thread(target=publisher.run, name="bench-memsink", daemon=True)
    thread.start()
    try:
        yield publisher
    finally:
        publisher.stop.set()
        await asyncio.to_thread(thread.join, 5)
        publisher.sink.close(remove=True)


def delays_ms(watching: list[Viewer], stamps: dict[int, float]) -> list[float]:
    return sorted(
        (arrived - stamps[number]) * 1000
        for viewer in watching
        for (number, arrived) in viewer.arrivals or []
        if number in stamps
    )


async def delays(url: str, publisher: SequencePublisher) -> dict[str, Any]:
    """Publication -> arrival, p50 and p99, with 1 and with 10 clients."""
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        for count in CLIENTS:
            async with viewers(session, url, count, stamped=True) as watching:
                published = len(publisher.stamps)
                await asyncio.gather(*(v.watch(time.monotonic() + WINDOW) for v in watching))
                published = len(publisher.stamps) - published
                samples = delays_ms(watching, publisher.stamps)
            if not samples:
                raise RuntimeError("no published frame arrived")
            results |= {
                f"delay{count}_published": published,
                f"delay{count}_fewest": min(v.frames for v in watching),
                f"delay{count}_frames": len(samples),
                f"delay{count}_p50_ms": statistics.median(samples),
                f"delay{count}_p99_ms": samples[max(0, int(len(samples) * 0.99) - 1)],
            }
    return results


def _cleanup(names: list[str]) -> None:
    # --*-sink-rm removes them when the streamer stops well; not when it is killed.
    for name in names:
        (SHM_DIR / name).unlink(missing_ok=True)


def daemon_config(base: Path, folder: Path, port: int, sinks: tuple[str, str]) -> Path:
    """A copy of `base` in `folder` (made), with media_override()."""
    folder.mkdir()
    config = folder / "main.yaml"
    config.write_text(base.read_text())
    media_override(config, folder, port, sinks)
    return config


async def bench_media(base: Path, tmp: Path, free_port: Callable[[], int]) -> dict[str, Any]:
    """`base` is a bench daemon config; each daemon starts from a copy of it."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    names = [
        f"kvmd::bench-{token}::h264",
        f"kvmd::bench-{token}::jpeg",
        f"kvmd::bench-{token}-own::h264",
        f"kvmd::bench-{token}-browser::h264",
    ]
    results: dict[str, Any] = {}
    try:
        for number, sinks in enumerate(((names[0], names[1]), (names[2], ""))):
            folder = tmp / f"media-{number}"
            port = free_port()
            config = daemon_config(base, folder, port, sinks)
            async with running(config, folder, port, folder / "kvmd.log") as (url, pid):
                if number == 0:
                    results |= await encoded(url, pid, str(folder / "media-sim.sock"))
                else:
                    async with publishing(sinks[0]) as publisher:
                        results |= await delays(url, publisher)
        # The bench's own x264 frames into a sink no streamer publishes into.
        (folder, port) = (tmp / "media-browser", free_port())
        config = daemon_config(base, folder, port, (names[3], ""))
        stream = PictureStream(fps=FPS, bitrate_kbps=BITRATE, gop=GOP)
        results |= await bench_browser(config, folder, port, names[3], stream)
    finally:
        _cleanup(names)
    return results


def print_media(results: dict[str, Any]) -> None:
    ratio = results["mjpeg_bps"] / results["h264_bps"] if results["h264_bps"] else 0.0
    print(
        f"  media, simulated streamer 640x480 at {FPS} fps, H.264 {BITRATE} kbps gop {GOP},"
        f" pure-mode clients, {WINDOW:.1f} s windows:"
    )
    print(
        f"    bytes over the same {WINDOW:.1f} s: MJPEG /api/streamer/stream"
        f" {results['mjpeg_bps'] / 1024:.0f} KB/s ({results['mjpeg_fps']:.1f} fps),"
        f" H.264 /api/media/ws {results['h264_bps'] / 1024:.0f} KB/s"
        f" ({results['h264_fps']:.1f} fps): MJPEG/H.264 = {ratio:.1f}x"
    )
    for count in CLIENTS:
        print(
            f"    {count} client(s): fps each min {results[f'c{count}_fps_min']:.1f},"
            f" median {results[f'c{count}_fps_median']:.1f}"
            f" (the streamer's own h264.fps meanwhile {results[f'c{count}_sim_h264_fps']:.1f})"
        )
    for count in CLIENTS:
        print(
            f"    memsink put -> ws arrival at {count} client(s),"
            f" {results[f'delay{count}_frames']} arrivals of {FRAME_BYTES // 1000} KB frames:"
            f" p50 {results[f'delay{count}_p50_ms']:.2f} ms,"
            f" p99 {results[f'delay{count}_p99_ms']:.2f} ms;"
            f" {results[f'delay{count}_published']} published, the fewest a client got"
            f" {results[f'delay{count}_fewest']}"
        )
    print_browser(results)
    print_cpu(results)


def print_cpu(results: dict[str, Any]) -> None:
    (low, high) = CLIENTS
    cpu = {n: results[f"c{n}_daemon_cpu"] for n in (0, *CLIENTS)}
    print(
        f"    daemon CPU, % of one core: {cpu[0]:.1f}% with 0 clients, {cpu[low]:.1f}% with"
        f" {low}, {cpu[high]:.1f}% with {high}: per client {(cpu[low] - cpu[0]) / low:.1f}%"
        f" at {low}, {(cpu[high] - cpu[0]) / high:.1f}% at {high}"
        f" (target <= {TARGETS['cpu_per_client_percent']:.0f}%); each client past the first"
        f" {(cpu[high] - cpu[low]) / (high - low):.2f}%"
    )
    (watched, idle) = (results[f"c{low}_sim_cpu"], results["c0_sim_cpu"])
    print(
        f"    simulated streamer CPU, % of one core: {watched:.0f}% while one media client"
        f" watches, {idle:.0f}% with none (render + JPEG only): x264 {watched - idle:.0f}%"
    )
