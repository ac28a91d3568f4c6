# SPDX-License-Identifier: GPL-3.0-or-later
"""HID figures: websocket key event to report latency, and a flood of absolute moves.

The daemon runs as its own process with the OTG backend; the simulated USB host runs in
this process and stamps each report when it reads it (CLOCK_MONOTONIC is shared by both).
"""

import asyncio
import contextlib
import json
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench import sized, timed
from kvmd.plugins.hid.layouts import Layout
from kvmd.plugins.hid.reports import scale_absolute
from kvmd.sim.usbhost import UsbHost

ADMIN = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}
KEY_EVENTS = sized(2000, 50)
MOVES_PER_SECOND = 5000
MOVE_SECONDS = timed(5.0, 0.3)
# PiKVM's German layout, as Debian's qemu-system-data installs it, and a text it types
# (it is the variant without dead keys: no é).
GERMAN_KEYMAP = Path("/usr/share/qemu/keymaps/de")
GERMAN = "Größe, Maß & Übermut: 12 Äpfel für 3,50 € {x} [y] <z> |a| @c ~d #e 'f' \"g\" µ²³\n"
PRINTED = sized(10_000, 200)


class StampingHost(UsbHost):
    """The simulated host, noting when each report arrived."""

    def __init__(self, folder: Path) -> None:
        super().__init__(keyboard=folder / "kb", mouse=folder / "m", mouse_alt=folder / "ma")
        self.arrivals: dict[str, list[tuple[float, bytes]]] = {"keyboard": [], "mouse": []}

    async def _on_keyboard(self, report: bytes) -> None:
        self.arrivals["keyboard"].append((time.perf_counter(), report))
        await super()._on_keyboard(report)

    def _on_mouse(self, name: str, report: bytes) -> None:
        if name == "mouse":
            self.arrivals["mouse"].append((time.perf_counter(), report))
        super()._on_mouse(name, report)


def hid_override(config: Path, folder: Path) -> None:
    data = json.loads(config.read_text())
    data["kvmd"]["hid"] = {
        "type": "otg",
        "keyboard": {"device": str(folder / "kb")},
        "mouse": {"device": str(folder / "m")},
        "mouse_alt": {"device": str(folder / "ma")},
        "keymap": str(GERMAN_KEYMAP),
    }
    config.write_text(json.dumps(data))


async def wait_online(url: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(url + "/api/hid", headers=ADMIN) as response:
                if (await response.json())["result"]["online"]:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError("HID did not come online")


async def key_latency(ws: aiohttp.ClientWebSocketResponse, host: StampingHost) -> list[float]:
    """Microseconds from sending a binary key frame to the host reading its report."""
    samples: list[float] = []
    reports = host.arrivals["keyboard"]
    deadline = time.monotonic() + 20
    for number in range(KEY_EVENTS):
        if time.monotonic() > deadline:
            break
        seen = len(reports)
        state = number % 2 == 0
        sent = time.perf_counter()
        await ws.send_bytes(b"\x01" + bytes([int(state)]) + b"KeyA")
        while len(reports) == seen:
            async with host.changed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await host.changed.wait()
        samples.append((reports[-1][0] - sent) * 1e6)
    return samples


async def move_flood(
    ws: aiohttp.ClientWebSocketResponse, host: StampingHost, rss: Callable[[], float]
) -> dict[str, float]:
    """5,000 absolute moves a second for five seconds, each with its own x."""
    total = int(MOVES_PER_SECOND * MOVE_SECONDS)
    sent_at: list[float] = [0.0] * total
    by_x = {scale_absolute(-32768 + 2 * n): n for n in range(total)}
    rss_samples = [rss()]
    started = time.perf_counter()
    for number in range(total):
        # Paced: event n goes out at started + n / rate, in bursts of what is due.
        due = started + number / MOVES_PER_SECOND
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[number] = time.perf_counter()
        await ws.send_bytes(b"\x03" + struct.pack(">hh", -32768 + 2 * number, 0))
        if number % MOVES_PER_SECOND == 0:
            rss_samples.append(rss())
    last_sent = time.perf_counter()
    reports = host.arrivals["mouse"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if reports and by_x.get(struct.unpack("<H", reports[-1][1][1:3])[0]) == total - 1:
            break
        await asyncio.sleep(0.001)
    rss_samples.append(rss())
    lags = []
    for arrived, report in reports:
        seq = by_x.get(struct.unpack("<H", report[1:3])[0])
        if seq is not None:
            lags.append((arrived - sent_at[seq]) * 1000)
    return {
        "moves_sent": total,
        "moves_rate": total / (last_sent - started),
        "moves_reports": len(lags),
        "moves_lag_p50_ms": statistics.median(lags),
        "moves_lag_p99_ms": statistics.quantiles(lags, n=100)[98],
        "moves_lag_max_ms": max(lags),
        "moves_drain_ms": (reports[-1][0] - last_sent) * 1000,
        "moves_rss_first_mb": rss_samples[0],
        "moves_rss_last_mb": rss_samples[-1],
        "moves_rss_max_mb": max(rss_samples),
    }


def german_text() -> str:
    return (GERMAN * (PRINTED // len(GERMAN) + 1))[:PRINTED]


def plan_time() -> float:
    """Milliseconds to plan the German text (the median of five), in this process."""
    layout = Layout.load(GERMAN_KEYMAP)
    text = german_text()
    plan = layout.plan(text)
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        plan = layout.plan(text)
        samples.append((time.perf_counter() - started) * 1000)
    if plan.skipped:
        raise RuntimeError(f"the German layout skipped {plan.skipped!r}")
    return statistics.median(samples)


async def print_time(url: str, host: StampingHost) -> dict[str, float]:
    """`/api/hid/print` of the German text: the answer, and the host's last report."""
    reports = host.arrivals["keyboard"]
    reports.clear()
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            url + "/api/hid/print?limit=0", data=german_text().encode(), headers=ADMIN
        ) as response:
            body = await response.json()
        answered = time.perf_counter()
    if body != {"ok": True, "result": {}}:
        raise RuntimeError(f"print failed: {body}")
    return {
        "print_chars": PRINTED,
        "print_reports": len(reports),
        "print_answer_s": answered - started,
        "print_last_report_s": reports[-1][0] - started,
    }


async def bench_hid(url: str, host: StampingHost, rss: Callable[[], float]) -> dict[str, float]:
    """`rss()` gives the daemon's resident memory in MB."""
    await wait_online(url)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url + "/api/ws?stream=0", headers=ADMIN) as ws,
    ):
        reader = asyncio.create_task(_drain(ws))
        await asyncio.sleep(0.3)  # the state burst and the release-all on connect
        host.arrivals["keyboard"].clear()
        micros = await key_latency(ws, host)
        host.arrivals["mouse"].clear()
        results = await move_flood(ws, host, rss)
        results |= await print_time(url, host)
        reader.cancel()
    results["plan_ms"] = plan_time()
    return {
        "key_events": len(micros),
        "key_p50_us": statistics.median(micros),
        "key_p99_us": statistics.quantiles(micros, n=100)[98],
        **results,
    }


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass
