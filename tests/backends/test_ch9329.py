# SPDX-License-Identifier: GPL-3.0-or-later
"""The CH9329 serial backend against a simulated chip on a pty."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from kvmd.bus import Bus
from kvmd.plugins.hid.ch9329 import Ch9329Hid, frame, parse_frame
from kvmd.plugins.hid.config import Ch9329HidConfig
from kvmd.plugins.hid.keys import KEYS
from kvmd.sim.ch9329 import SimulatedChip


def test_frames_carry_a_checksum():
    report = bytes([0x02, 0, 0x04, 0, 0, 0, 0, 0])
    assert frame(0x02, report).hex(" ") == "57 ab 00 02 08 02 00 04 00 00 00 00 00 12"
    assert frame(0x01).hex(" ") == "57 ab 00 01 00 03"


def test_parser_skips_noise_and_corrupt_frames():
    good = frame(0x81, bytes(8))
    corrupt = bytearray(frame(0x82, b"\x00"))
    corrupt[-1] ^= 0xFF
    buffer = bytearray(b"\x00\x57junk" + bytes(corrupt) + good[:4])
    assert parse_frame(buffer) is None  # the good frame is not complete yet
    buffer += good[4:]
    assert parse_frame(buffer) == (0x81, bytes(8))
    assert buffer == b""


@contextlib.asynccontextmanager
async def chip_and_hid(**extra) -> AsyncIterator[tuple[Ch9329Hid, SimulatedChip]]:
    chip = SimulatedChip()
    chip.start()
    config = {"type": "ch9329", "device": chip.port, "state_poll": 0.1, **extra}
    hid = Ch9329Hid(msgspec.convert(config, Ch9329HidConfig), Bus())
    await hid.start()
    task = asyncio.create_task(hid.run())
    try:
        yield (hid, chip)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hid.stop()
        chip.close()


async def until(check, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


@pytest.fixture
async def env():
    async with chip_and_hid() as (hid, chip):
        await until(lambda: hid.state().online and len(chip.mouse) >= 2)
        chip.keyboard.clear()
        chip.mouse.clear()
        yield (hid, chip)


async def test_keyboard_reports_reach_the_chip(env):
    (hid, chip) = env
    hid.send_key(KEYS["ShiftLeft"], state=True)
    hid.send_key(KEYS["KeyA"], state=True, finish=True)
    hid.send_key(KEYS["ShiftLeft"], state=False)
    await hid.wait_sent()
    assert [r.hex(" ") for r in chip.keyboard] == [
        "02 00 00 00 00 00 00 00",
        "02 00 04 00 00 00 00 00",
        "02 00 00 00 00 00 00 00",
        "00 00 00 00 00 00 00 00",
    ]


async def test_absolute_and_relative_mouse(env):
    (hid, chip) = env
    hid.send_mouse_move(0, 32767)
    hid.send_mouse_button("right", state=True)
    hid.send_mouse_wheel(5, -2)  # no horizontal wheel on this chip
    await hid.wait_sent()
    hid.set_params(mouse_output="usb_rel")
    hid.send_mouse_relative(-3, 4)
    await hid.wait_sent()
    assert [r.hex(" ") for r in chip.mouse] == [
        "02 00 ff 07 ff 0f 00",
        "02 02 ff 07 ff 0f 00",
        "02 02 ff 07 ff 0f fe",
        "02 00 ff 07 ff 0f 00",  # the absolute mouse lets go when switched away
        "01 00 fd 04 00",
    ]
    assert hid.state().mouse.outputs.active == "usb_rel"
    assert hid.state().mouse.absolute is False


async def test_leds_come_from_the_chip(env):
    (hid, chip) = env
    hid.send_key(KEYS["CapsLock"], state=True, finish=True)
    await until(lambda: hid.state().keyboard.leds.caps)
    assert chip.leds == 0x02


async def test_silent_chip_is_offline_and_gets_the_state_when_back(env):
    (hid, chip) = env
    chip.silent = True
    hid.send_key(KEYS["ControlLeft"], state=True)
    started = time.monotonic()
    await until(lambda: not hid.state().online)
    assert time.monotonic() - started < 1.0
    hid.send_key(KEYS["KeyC"], state=True)  # while the chip is away
    chip.silent = False
    await until(lambda: hid.state().online)
    await until(
        lambda: bool(chip.keyboard) and chip.keyboard[-1].hex(" ") == "01 00 06 00 00 00 00 00"
    )


async def test_no_usb_link_is_offline(env):
    (hid, chip) = env
    chip.usb_connected = False
    await until(lambda: not hid.state().online)
    chip.usb_connected = True
    await until(lambda: hid.state().online)


async def test_missing_port_is_offline(tmp_path):
    config = {"type": "ch9329", "device": str(tmp_path / "ttyNone")}
    hid = Ch9329Hid(msgspec.convert(config, Ch9329HidConfig), Bus())
    await hid.start()
    task = asyncio.create_task(hid.run())
    hid.send_key(KEYS["KeyA"], state=True)
    await hid.wait_sent()  # dropped, not queued forever
    assert hid.state().online is False
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await hid.stop()
