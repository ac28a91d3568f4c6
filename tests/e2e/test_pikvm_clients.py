# SPDX-License-Identifier: GPL-3.0-or-later
"""What PiKVM's web UI and client libraries read and send, against `make run`.

Each test drives the session's `make run` (tests/e2e/conftest.py) over its websocket as
those clients do, and checks the answer the way they read it.
"""

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import LOOP
from tests.e2e.webui import Kvm

pytestmark = pytest.mark.timeout(60)

Event = dict[str, Any]
# testenv's, with H.264 on (its simulated streamer encodes x264 into a memsink).
LIMITS = {
    "desired_fps": {"min": 0, "max": 60},
    "h264_bitrate": {"min": 25, "max": 20000},
    "h264_gop": {"min": 0, "max": 60},
}
H264 = {"h264_bitrate": 5000, "h264_gop": 30}


def basic(user: str = "admin") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{user}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Socket:
    """One `/api/ws` connection and every event it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[Event] = []

    async def until(self, done: Callable[[list[Event]], bool], seconds: float = 15) -> Event:
        """Read events until `done(events)` holds; the last one read."""
        async with asyncio.timeout(seconds):
            while not (self.events and done(self.events)):
                self.events.append(await self.ws.receive_json())
        return self.events[-1]

    async def next_of(self, event_type: str, check: Callable[[Any], bool] = bool) -> Any:
        """The next `event_type` event whose payload passes `check`."""
        start = len(self.events)
        await self.until(
            lambda events: any(
                e["event_type"] == event_type and check(e["event"]) for e in events[start:]
            )
        )
        return next(
            e["event"]
            for e in reversed(self.events[start:])
            if e["event_type"] == event_type and check(e["event"])
        )

    async def send(self, event_type: str, event: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps({"event_type": event_type, "event": event}))


@contextlib.asynccontextmanager
async def websocket(kvm: Kvm, query: str = "stream=0") -> AsyncIterator[Socket]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{kvm.url}/api/ws?{query}", headers=basic()) as ws,
    ):
        yield Socket(ws)


async def api(kvm: Kvm, method: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{kvm.url}/api{path}", headers=basic()) as response,
    ):
        assert response.status == 200, await response.text()
        return (await response.json())["result"]


async def wait_screen(kvm: Kvm, pattern: str, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while re.search(pattern, kvm.screen()) is None:
            await asyncio.sleep(0.05)


async def test_loop_comes_first_and_hid_says_enabled(kvm: Kvm) -> None:
    # PiKVM's web UI ignores the HID state (LEDs, mouse mode, jiggler) until it has seen
    # `enabled`.
    async with websocket(kvm) as ws:
        hid = await ws.next_of("hid")
    assert ws.events[0] == LOOP
    assert hid["enabled"] is True
    assert hid["online"] is True
    assert set(hid["keyboard"]["leds"]) == {"caps", "num", "scroll"}
    assert hid["mouse"]["outputs"]["available"] == ["usb", "usb_rel"]


def merged_streamer(ws: Socket) -> dict[str, Any]:
    """The streamer state as a client has it after merging the partial events."""
    merged: dict[str, Any] = {}
    for event in ws.events:
        if event["event_type"] == "streamer":
            merged |= event["event"]
    return merged


async def test_streamer_applied_is_what_the_streamer_runs_with(kvm: Kvm) -> None:
    # The quality and FPS sliders of PiKVM's web UI follow `applied`.
    async with websocket(kvm, "stream=1") as ws:
        whole = await ws.next_of("streamer")
        assert whole["applied"] == {"desired_fps": 30, "quality": 80, **H264}
        await ws.until(lambda _: merged_streamer(ws).get("streamer") is not None)
        try:
            await api(kvm, "POST", "/streamer/set_params?quality=55&desired_fps=20")
            target = {"desired_fps": 20, "quality": 55, **H264}

            def restarted(_: object) -> bool:
                running = merged_streamer(ws)["streamer"] or {}
                return running.get("encoder", {}).get("quality") == 55

            await ws.until(restarted)
            merged = merged_streamer(ws)
            assert (merged["applied"], merged["streamer"]["source"]["desired_fps"]) == (target, 20)
        finally:
            await api(kvm, "POST", "/streamer/set_params?quality=80&desired_fps=30")
    # After the whole state, PiKVM's partial events: the web UI rebuilds its stream
    # settings on each event with `features`, and takes `limits` with params/applied.
    streamer = [e["event"] for e in ws.events if e["event_type"] == "streamer"]
    assert "features" in streamer[0]
    later = streamer[1:]
    assert later
    assert not any("features" in event for event in later)
    assert {"params": {"desired_fps": 20, "quality": 55, **H264}, "limits": LIMITS} in later
    assert {"applied": {"desired_fps": 20, "quality": 55, **H264}, "limits": LIMITS} in later
    assert all(("limits" in e) == ("params" in e or "applied" in e) for e in later)


async def test_a_gpio_switch_sends_the_state_without_the_model(kvm: Kvm) -> None:
    # PiKVM's web UI rebuilds its GPIO menu on every event that has a model.
    async with websocket(kvm) as ws:
        first = await ws.next_of("gpio")
        assert set(first) == {"model", "state"}
        assert "relay" in first["model"]["scheme"]["outputs"]
        try:
            await api(kvm, "POST", "/gpio/switch?channel=relay&state=1&wait=1")
            on = await ws.next_of("gpio", lambda e: e["state"]["outputs"]["relay"]["state"])
        finally:
            await api(kvm, "POST", "/gpio/switch?channel=relay&state=0&wait=1")
        await ws.next_of("gpio", lambda e: not e["state"]["outputs"]["relay"]["state"])
    later = [e["event"] for e in ws.events if e["event_type"] == "gpio"][1:]
    assert on in later
    assert [sorted(event) for event in later] == [["state"]] * len(later)


async def test_what_pikvm_lib_sends_types_and_clicks(kvm: Kvm) -> None:
    # pikvm-lib sends states as the strings "true"/"false"; other clients send 1/0 and
    # coordinates as numeric strings. PiKVM takes them all.
    async with websocket(kvm) as ws:
        await ws.next_of("hid")
        for key in ("KeyQ", "KeyZ", "KeyJ"):
            await ws.send("key", {"key": key, "state": "true"})
            await ws.send("key", {"key": key, "state": "false"})
        await wait_screen(kvm, "qzj")
        await ws.send("mouse_move", {"to": {"x": "0", "y": "0"}})
        await wait_screen(kvm, r"pointer 959,539 ")
        await ws.send("mouse_button", {"button": "left", "state": "true"})
        await wait_screen(kvm, r"buttons 0x01")
        await ws.send("mouse_button", {"button": "left", "state": 0})
        await wait_screen(kvm, r"buttons 0x00")
        await ws.send("key", {"key": "KeyV", "state": "YES", "finish": "1"})
        await wait_screen(kvm, "qzjv")


async def test_board_model_legacy_wol_and_loop(kvm: Kvm) -> None:
    info = await api(kvm, "GET", "/info")  # legacy=1, what client libraries ask
    assert info["hw"]["platform"] == {
        "type": "rpi",
        "base": "Virtual Raspberry Pi",
        "serial": "0000000000000000",
        "model": "test_model",
        "video": "test_video",
        "board": "test_board",
    }
    async with websocket(kvm, "stream=0&legacy=1") as ws:
        await ws.until(lambda events: events[-1]["event_type"] == "loop")
    wol = [e["event"] for e in ws.events if e["event_type"] == "wol_state"]
    assert wol == [
        {
            "enabled": True,
            "target": {"ip": "127.0.0.1", "port": 40009, "mac": "52:54:00:12:34:56"},
        }
    ]
    assert ws.events[-1] == {"event_type": "loop", "event": {}}
