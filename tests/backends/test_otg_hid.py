# SPDX-License-Identifier: GPL-3.0-or-later
"""The OTG HID backend against the simulated USB host: the exact reports it receives."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kvmd.bus import Bus, Topic
from kvmd.plugins.hid.base import HidState
from kvmd.plugins.hid.config import OtgHidConfig
from kvmd.plugins.hid.keys import KEYS
from kvmd.plugins.hid.otg import OtgHid
from kvmd.sim.usbhost import UsbHost
from tests.hidenv import hexes, otg_config, usb_host, wait_until

K = KEYS


@contextlib.asynccontextmanager
async def otg(folder: Path, bus: Bus | None = None, **extra: Any) -> AsyncIterator[OtgHid]:
    hid = OtgHid(msgspec.convert(otg_config(folder, **extra), OtgHidConfig), bus or Bus())
    await hid.start()
    task = asyncio.create_task(hid.run())
    try:
        yield hid
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hid.stop()


@pytest.fixture
async def env() -> AsyncIterator[tuple[OtgHid, UsbHost]]:
    async with usb_host() as (host, folder), otg(folder) as hid:
        # The start-up reports (state, then all released) are not what these tests check.
        await wait_until(host, lambda: len(host.reports["keyboard"]) >= 2)
        await wait_until(host, lambda: len(host.reports["mouse_alt"]) >= 2)
        for reports in host.reports.values():
            reports.clear()
        yield (hid, host)


async def received(host: UsbHost, device: str, count: int) -> list[str]:
    await wait_until(host, lambda: len(host.reports[device]) >= count)
    await asyncio.sleep(0.02)  # and nothing more
    return hexes(host.reports[device])


async def test_single_key_press_and_release(env):
    (hid, host) = env
    hid.send_key(K["KeyA"], state=True)
    hid.send_key(K["KeyA"], state=False)
    assert await received(host, "keyboard", 2) == [
        "00 00 04 00 00 00 00 00",
        "00 00 00 00 00 00 00 00",
    ]
    assert host.pressed == ["KeyA"]


async def test_modifiers_are_bits_and_keys_are_slots(env):
    (hid, host) = env
    hid.send_key(K["ShiftLeft"], state=True)
    hid.send_key(K["AltRight"], state=True)
    hid.send_key(K["MetaRight"], state=True)
    hid.send_key(K["Digit1"], state=True)
    hid.send_key(K["ControlLeft"], state=True)
    hid.send_key(K["ShiftLeft"], state=False)
    hid.send_key(K["Digit1"], state=False)
    assert await received(host, "keyboard", 7) == [
        "02 00 00 00 00 00 00 00",
        "42 00 00 00 00 00 00 00",
        "c2 00 00 00 00 00 00 00",
        "c2 00 1e 00 00 00 00 00",
        "c3 00 1e 00 00 00 00 00",
        "c1 00 1e 00 00 00 00 00",
        "c1 00 00 00 00 00 00 00",
    ]


async def test_six_key_rollover_and_the_seventh_key(env):
    (hid, host) = env
    for name in ["KeyA", "KeyB", "KeyC", "KeyD", "KeyE", "KeyF"]:
        hid.send_key(K[name], state=True)
    hid.send_key(K["KeyC"], state=True)  # again, while held: up first, then down
    hid.send_key(K["KeyG"], state=True)  # a seventh: everything else is let go
    reports = await received(host, "keyboard", 10)
    assert reports == [
        "00 00 04 00 00 00 00 00",
        "00 00 04 05 00 00 00 00",
        "00 00 04 05 06 00 00 00",
        "00 00 04 05 06 07 00 00",
        "00 00 04 05 06 07 08 00",
        "00 00 04 05 06 07 08 09",
        "00 00 04 05 07 08 09 00",
        "00 00 04 05 07 08 09 06",
        "00 00 00 00 00 00 00 00",
        "00 00 0a 00 00 00 00 00",
    ]
    assert host.pressed[-2:] == ["KeyC", "KeyG"]


async def test_finish_releases_at_once_but_not_modifiers_or_print_screen(env):
    (hid, host) = env
    hid.send_key(K["Enter"], state=True, finish=True)
    hid.send_key(K["ShiftRight"], state=True, finish=True)
    hid.send_key(K["PrintScreen"], state=True, finish=True)
    assert await received(host, "keyboard", 4) == [
        "00 00 28 00 00 00 00 00",
        "00 00 00 00 00 00 00 00",
        "20 00 00 00 00 00 00 00",
        "20 00 46 00 00 00 00 00",
    ]


async def test_absolute_moves_buttons_and_both_wheels(env):
    (hid, host) = env
    hid.send_mouse_move(-32768, 32767)
    await hid.wait_sent()
    await received(host, "mouse", 1)
    hid.send_mouse_move(0, 0)
    await received(host, "mouse", 2)
    hid.send_mouse_button("left", state=True)
    await received(host, "mouse", 3)
    hid.send_mouse_button("down", state=True)
    await received(host, "mouse", 4)
    hid.send_mouse_wheel(-1, 2)
    await received(host, "mouse", 5)
    hid.send_mouse_wheel(500, -500)  # clamped to one signed byte
    await received(host, "mouse", 6)
    hid.send_mouse_relative(5, 5)  # an absolute mouse has no use for it
    hid.send_mouse_button("left", state=False)
    assert await received(host, "mouse", 7) == [
        "00 00 00 ff 7f 00 00",
        "00 ff 3f ff 3f 00 00",
        "01 ff 3f ff 3f 00 00",
        "11 ff 3f ff 3f 00 00",
        "11 ff 3f ff 3f 02 ff",
        "11 ff 3f ff 3f 81 7f",
        "10 ff 3f ff 3f 00 00",
    ]
    assert host.pointer == (959, 539)
    assert host.wheel == (126, -125)


async def test_relative_mouse_output_switch_and_win98(env):
    (hid, host) = env
    hid.send_mouse_button("right", state=True)
    await received(host, "mouse", 1)
    hid.set_params(mouse_output="usb_rel")
    # The mouse that is left lets its button go; the relative one takes over.
    assert await received(host, "mouse", 2) == ["02 ff 3f ff 3f 00 00", "00 ff 3f ff 3f 00 00"]
    state = hid.state().mouse
    assert (state.absolute, state.outputs.active) == (False, "usb_rel")
    hid.send_mouse_move(100, 100)  # a relative mouse has no use for it
    hid.send_mouse_relative(5, -3)
    await received(host, "mouse_alt", 1)
    hid.send_mouse_wheel(1, -1)
    hid.send_mouse_relative(-200, 300)
    assert await received(host, "mouse_alt", 3) == [
        "00 05 fd 00 00",
        "00 00 00 ff 01",
        "00 81 7f 00 00",
    ]
    hid.set_params(mouse_output="nonsense")  # not offered: ignored
    assert hid.state().mouse.outputs.active == "usb_rel"


async def test_win98_doubles_absolute_coordinates():
    async with (
        usb_host() as (host, folder),
        otg(folder, mouse={"device": str(folder / "m"), "absolute_win98_fix": True}) as hid,
    ):
        assert hid.state().mouse.outputs.available == ["usb", "usb_win98", "usb_rel"]
        hid.set_params(mouse_output="usb_win98")
        hid.send_mouse_move(-16384, 32767)
        await wait_until(
            host, lambda: hexes(host.reports["mouse"])[-1:] == ["00 fe 3f ff 7f 00 00"]
        )


async def test_moves_coalesce_and_relative_moves_add_up(env):
    (hid, host) = env
    for x in range(-1000, 1001):
        hid.send_mouse_move(x * 10, -x * 10)
    reports = await received(host, "mouse", 1)
    # Sent without yielding, two thousand moves are one report: the newest.
    assert reports == ["00 87 53 77 2c 00 00"]
    hid.set_params(mouse_output="usb_rel")
    await received(host, "mouse", 2)
    for _ in range(10):
        hid.send_mouse_relative(20, -1)
    await received(host, "mouse_alt", 2)
    # 200 does not fit one report: 120 (six deltas) + 80 (the other four).
    assert hexes(host.reports["mouse_alt"]) == ["00 78 fa 00 00", "00 50 fc 00 00"]


async def test_caps_lock_led_round_trip():
    bus = Bus()
    async with usb_host() as (host, folder), otg(folder, bus) as hid:
        hid.send_key(K["CapsLock"], state=True, finish=True)
        deadline = time.monotonic() + 3
        while not hid.state().keyboard.leds.caps:
            assert time.monotonic() < deadline, "no LED report came back"
            await asyncio.sleep(0.01)
        assert host.leds == 0x02
        published = bus.state(Topic.HID)
        assert isinstance(published, HidState)
        assert published.keyboard.leds.caps is True
        # Caps Lock on: the host types capitals, as a real one does.
        hid.send_key(K["KeyQ"], state=True, finish=True)
        hid.send_key(K["NumLock"], state=True, finish=True)
        await wait_until(host, lambda: host.leds == 0x03)
        assert host.text == "Q"
        deadline = time.monotonic() + 3
        while not hid.state().keyboard.leds.num:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)


async def test_host_not_reading_goes_offline_within_a_second_and_recovers(env):
    (hid, host) = env
    hid.send_key(K["ShiftLeft"], state=True)
    await received(host, "keyboard", 1)
    host.pause()
    started = time.monotonic()
    # The user goes on typing into a host that has stopped reading.
    while hid.state().keyboard.online:
        assert time.monotonic() - started < 1.0, "still online after a second"
        hid.send_key(K["KeyX"], state=True, finish=True)
        await asyncio.sleep(0.005)
    assert hid.state().online is False
    hid.send_key(K["KeyZ"], state=True)  # held down while the host sleeps
    await asyncio.sleep(0.3)
    host.resume()
    await wait_until(host, lambda: hid.state().keyboard.online and bool(host.reports["keyboard"]))
    await wait_until(host, lambda: hexes(host.reports["keyboard"])[-1] == "02 00 1d 00 00 00 00 00")
    # The last report is the state as it is now (Shift and Z down), not a stale burst.
    hid.send_key(K["KeyZ"], state=False)
    hid.send_key(K["ShiftLeft"], state=False)
    await wait_until(host, lambda: hexes(host.reports["keyboard"])[-1] == "00 " * 7 + "00")
    assert hid.state().online is True


async def test_missing_device_is_offline_until_the_host_appears(tmp_path):
    async with otg(tmp_path) as hid:
        await asyncio.sleep(0.05)
        assert hid.state().keyboard.online is False
        hid.send_key(K["KeyA"], state=True)  # folded into the state while nobody listens
        hid.send_key(K["ShiftLeft"], state=True)
        await hid.wait_sent()


async def test_stop_releases_everything(tmp_path):
    async with usb_host() as (host, folder):
        async with otg(folder) as hid:
            hid.send_key(K["KeyA"], state=True)
            hid.send_mouse_button("left", state=True)
            await wait_until(host, lambda: host.buttons == 1)
        await wait_until(host, lambda: hexes(host.reports["keyboard"])[-1] == "00 " * 7 + "00")
        await wait_until(host, lambda: host.buttons == 0)


async def test_noop_pretends_to_be_online(tmp_path):
    async with otg(tmp_path, noop=True) as hid:
        hid.send_key(K["KeyA"], state=True, finish=True)
        await hid.wait_sent()
        assert hid.state().online is True
