# SPDX-License-Identifier: GPL-3.0-or-later
"""The GPIO ATX backend on the simulated chip: presses, LEDs, busy regions, cancellation."""

import asyncio
import time

import msgspec
import pytest

from kvmd.bus import Bus, Topic
from kvmd.hw.gpio import forget_simulated_chip, simulated_chip
from kvmd.plugins.atx.base import AtxIsBusyError, AtxState, Button, PowerAction
from kvmd.plugins.atx.config import GpioAtxConfig
from kvmd.plugins.atx.gpio import GpioAtx

POWER_SWITCH, RESET_SWITCH, POWER_LED, HDD_LED = 23, 27, 24, 22


@pytest.fixture
async def atx():
    forget_simulated_chip()
    chip = simulated_chip()
    presses = []
    chip.watch(lambda pin, level: presses.append((pin, level, time.monotonic())))
    config = {
        "type": "gpio",
        "device": "simulated",
        "click_delay": 0.05,
        "long_click_delay": 0.2,
        "hold_off": 0.05,
        "restart_timeout": 1.0,
        "power_led_debounce": 0.0,
        "hdd_led_debounce": 0.0,
    }
    bus = Bus()
    backend = GpioAtx(msgspec.convert(config, GpioAtxConfig), bus)
    await backend.start()
    presses.clear()
    yield (backend, chip, presses, bus)
    await backend.stop()
    assert chip.claimed == {}
    forget_simulated_chip()


def edges(presses):
    return [(pin, level) for (pin, level, _) in presses]


async def test_power_on_presses_the_button_for_click_delay(atx):
    (backend, _, presses, _) = atx
    await backend.power(PowerAction.ON, wait=True)
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)]
    held = presses[1][2] - presses[0][2]
    assert 0.05 <= held < 0.15
    assert backend.state().busy is False


async def test_power_actions_look_at_the_power_led(atx):
    (backend, chip, presses, _) = atx
    for action in (PowerAction.OFF, PowerAction.OFF_HARD, PowerAction.RESET_HARD):
        await backend.power(action, wait=True)  # the target is off: nothing to do
    assert presses == []
    chip.drive(POWER_LED, True)
    await asyncio.sleep(0.02)
    await backend.power(PowerAction.ON, wait=True)  # already on
    assert presses == []
    await backend.power(PowerAction.OFF_HARD, wait=True)
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)]
    assert presses[1][2] - presses[0][2] >= 0.2  # the long press
    await backend.power(PowerAction.RESET_HARD, wait=True)
    assert edges(presses)[2:] == [(RESET_SWITCH, True), (RESET_SWITCH, False)]


async def test_a_second_click_of_the_same_button_is_busy(atx):
    (backend, _, presses, _) = atx
    await backend.click(Button.POWER, wait=False)
    assert backend.state().busy is True
    with pytest.raises(AtxIsBusyError):
        await backend.click(Button.POWER_LONG, wait=True)
    await backend.click(Button.RESET, wait=True)  # the other button is free
    await asyncio.sleep(0.15)
    assert backend.state().busy is False
    assert sorted(edges(presses)) == sorted(
        [(POWER_SWITCH, True), (POWER_SWITCH, False), (RESET_SWITCH, True), (RESET_SWITCH, False)]
    )


async def test_cancelled_request_still_releases_the_button(atx):
    (backend, chip, presses, _) = atx
    request = asyncio.create_task(backend.click(Button.POWER_LONG, wait=True))
    await asyncio.sleep(0.05)
    assert chip.levels[POWER_SWITCH] is True
    request.cancel()
    await asyncio.sleep(0.3)
    assert chip.levels[POWER_SWITCH] is False
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)]


async def test_stop_mid_press_leaves_the_button_released(atx):
    (backend, chip, _, _) = atx
    await backend.click(Button.POWER_LONG, wait=False)
    await asyncio.sleep(0.02)
    await backend.stop()
    assert chip.levels[POWER_SWITCH] is False


async def test_led_changes_are_published(atx):
    (backend, chip, _, bus) = atx
    chip.drive(HDD_LED, True)
    await asyncio.sleep(0.02)
    state = bus.state(Topic.ATX)
    assert isinstance(state, AtxState)
    assert (state.leds.power, state.leds.hdd) == (False, True)
    assert backend.state().enabled is True


async def test_a_restart_presses_again_only_once_the_target_is_off(atx):
    (backend, chip, presses, _) = atx
    chip.drive(POWER_LED, True)
    await asyncio.sleep(0.02)
    await backend.restart(wait=False)
    assert backend.state().acts.power is True
    with pytest.raises(AtxIsBusyError):
        await backend.click(Button.POWER, wait=True)
    await asyncio.sleep(0.3)
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)]  # shutting down
    went_off = time.monotonic()
    chip.drive(POWER_LED, False)
    async with asyncio.timeout(2):
        while backend.state().busy:
            await asyncio.sleep(0.01)
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)] * 2
    assert presses[2][2] >= went_off  # the second press waited for the LED


async def test_a_target_that_does_not_shut_down_is_left_on(atx):
    (backend, chip, presses, _) = atx
    chip.drive(POWER_LED, True)
    await asyncio.sleep(0.02)
    await backend.restart(wait=True)  # restart_timeout: 1 s
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)]
    assert presses[-1][2] - presses[0][2] < 0.5
    assert backend.state().busy is False


async def test_a_restart_of_a_target_that_is_off_turns_it_on(atx):
    (backend, _, presses, _) = atx
    await backend.restart(wait=True)
    assert edges(presses) == [(POWER_SWITCH, True), (POWER_SWITCH, False)]
