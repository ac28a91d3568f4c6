# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/atx driving the simulated target machine through the simulated GPIO chip."""

import asyncio
import time

import pytest

from kvmd.hw.gpio import forget_simulated_chip, simulated_chip
from kvmd.sim.machine import Machine, Timing
from tests.conftest import ADMIN

POWER_SWITCH, RESET_SWITCH = 23, 27

# The machine's thresholds scaled down so a hard off takes a second, not six.
ATX = {
    "type": "gpio",
    "device": "simulated",
    "click_delay": 0.15,
    "long_click_delay": 0.7,
    "hold_off": 0.1,
    "power_led_debounce": 0.02,
    "hdd_led_debounce": 0.02,
}


class Env:
    def __init__(self, client, machine, chip, ws, presses):
        self.client = client
        self.presses = presses
        self.machine = machine
        self.chip = chip
        self.ws = ws
        self.events = []

    async def post(self, path, **params):
        response = await self.client.post(path, params=params, headers=ADMIN)
        return (response.status, await response.json())

    async def atx(self):
        response = await self.client.get("/api/atx", headers=ADMIN)
        return (await response.json())["result"]

    async def until(self, done, timeout=3.0):
        """Collect `atx` events until one satisfies `done`; return them all."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive_json()
                if message["event_type"] == "atx":
                    self.events.append(message["event"])
                    if done(message["event"]):
                        return self.events

    async def power_on(self):
        assert await self.post("/api/atx/power", action="on", wait=1) == (
            200,
            {"ok": True, "result": {}},
        )
        await self.until(lambda e: e["leds"]["power"] and not e["busy"])
        self.events.clear()


@pytest.fixture
async def env(make_client, make_config):
    forget_simulated_chip()
    chip = simulated_chip()
    presses = []
    chip.watch(lambda pin, level: presses.append((pin, level, time.monotonic())))
    machine = Machine(chip, timing=Timing(shutdown=0.2, blink=0.2, force_off=0.5)).attach()
    (client, _) = await make_client(make_config(kvmd={"atx": ATX}))
    ws = await client.ws_connect("/api/ws?stream=0", headers=ADMIN)
    env = Env(client, machine, chip, ws, presses)
    await env.until(lambda e: e["enabled"])
    env.events.clear()
    yield env
    await ws.close()
    machine.close()
    await client.close()
    forget_simulated_chip()


async def test_on_lights_the_power_led_on_the_api_and_the_websocket(env):
    assert (await env.atx())["leds"] == {"power": False, "hdd": False}
    assert await env.post("/api/atx/power", action="on", wait=1) == (
        200,
        {"ok": True, "result": {}},
    )
    # wait=1 answered after the press and its hold-off: the machine is up by then.
    assert (await env.atx())["leds"]["power"] is True
    assert env.machine.powered
    assert env.machine.boots == 1
    events = await env.until(lambda e: e["leds"]["power"] and not e["busy"])
    assert events[0]["busy"] is True
    assert events[0]["acts"] == {"power": True, "reset": False}
    assert any(e["leds"]["power"] for e in events)
    assert env.chip.levels[POWER_SWITCH] is False


async def test_on_when_already_on_presses_nothing(env):
    await env.power_on()
    env.presses.clear()
    assert await env.post("/api/atx/power", action="on", wait=1) == (
        200,
        {"ok": True, "result": {}},
    )
    assert env.presses == []
    assert env.machine.boots == 1


async def test_off_shuts_the_machine_down(env):
    await env.power_on()
    assert (await env.post("/api/atx/power", action="off", wait=1))[0] == 200
    events = await env.until(lambda e: not e["leds"]["power"])
    assert events[-1]["leds"]["power"] is False
    assert not env.machine.powered
    assert env.machine.forced_offs == 0  # a short press: the OS shut down


async def test_off_hard_holds_power_until_the_machine_cuts_out(env):
    await env.power_on()
    env.presses.clear()
    assert (await env.post("/api/atx/power", action="off_hard", wait=1))[0] == 200
    # After wait=1 the power LED is already off: the hold outlasted the force-off time.
    assert (await env.atx())["leds"]["power"] is False
    assert env.machine.forced_offs == 1
    (pressed, released) = env.presses
    assert (pressed[:2], released[:2]) == ((POWER_SWITCH, True), (POWER_SWITCH, False))
    assert released[2] - pressed[2] >= 0.7
    await env.until(lambda e: not e["leds"]["power"])


async def test_reset_hard_blinks_the_hdd_and_keeps_power(env):
    await env.power_on()
    assert (await env.post("/api/atx/power", action="reset_hard", wait=1))[0] == 200
    events = await env.until(lambda e: not e["leds"]["hdd"] and not e["busy"])
    assert any(e["leds"]["hdd"] for e in events)
    assert any(e["acts"]["reset"] for e in events)
    assert all(e["leds"]["power"] for e in events)
    assert env.machine.resets == 1
    assert env.machine.powered


async def test_reset_hard_on_a_machine_that_is_off_does_nothing(env):
    assert (await env.post("/api/atx/power", action="reset_hard", wait=1))[0] == 200
    assert env.presses == []
    assert env.machine.resets == 0


async def test_a_click_while_the_button_is_pressed_is_busy(env):
    assert (await env.post("/api/atx/click", button="power", wait=0))[0] == 200
    (status, body) = await env.post("/api/atx/click", button="power_long", wait=1)
    assert status == 409
    assert body["result"]["error"] == "AtxIsBusyError"
    assert (await env.post("/api/atx/power", action="off_hard"))[0] in (200, 409)
    await env.until(lambda e: e["leds"]["power"] and not e["busy"])
    assert env.machine.boots == 1


async def test_a_cancelled_request_does_not_cut_the_press_short(env):
    await env.power_on()
    env.presses.clear()
    request = asyncio.create_task(env.post("/api/atx/click", button="power_long", wait=1))
    await asyncio.sleep(0.2)
    assert env.chip.levels[POWER_SWITCH] is True
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    await env.until(lambda e: not e["busy"])
    (pressed, released) = env.presses
    assert released[:2] == (POWER_SWITCH, False)
    assert released[2] - pressed[2] >= 0.7  # the full long press, not a short one
    assert env.chip.levels[POWER_SWITCH] is False
    assert env.machine.forced_offs == 1


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/atx/power", {"action": "explode"}, "'explode' is not a valid action"),
        ("/api/atx/power", {}, "None argument is not a valid action"),
        ("/api/atx/power", {"action": "on", "wait": "maybe"}, "'maybe' is not a valid wait"),
        ("/api/atx/click", {"button": "eject"}, "'eject' is not a valid button"),
    ],
)
async def test_bad_input_is_a_validator_error(env, path, params, message):
    (status, body) = await env.post(path, **params)
    assert status == 400
    assert body["result"]["error"] == "ValidatorError"
    assert message in body["result"]["error_msg"]
    assert env.presses == []
