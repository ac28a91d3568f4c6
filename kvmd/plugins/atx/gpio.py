# SPDX-License-Identifier: GPL-3.0-or-later
"""ATX on GPIO lines: power and reset buttons as outputs, power and HDD LEDs as inputs."""

import asyncio
import contextlib
import logging

from kvmd.bus import Bus
from kvmd.hw.gpio import Line, Lines, open_chip
from kvmd.plugins.atx.base import (
    AtxActs,
    AtxBackend,
    AtxIsBusyError,
    AtxLeds,
    AtxState,
    Button,
    PowerAction,
)
from kvmd.plugins.atx.config import GpioAtxConfig
from kvmd.plugins.backend import Operations

logger = logging.getLogger(__name__)

# What each power action presses, and whether it needs the target on (True) or off.
_ACTIONS = {
    PowerAction.ON: (Button.POWER, False),
    PowerAction.OFF: (Button.POWER, True),
    PowerAction.OFF_HARD: (Button.POWER_LONG, True),
    PowerAction.RESET_HARD: (Button.RESET, True),
}


class GpioAtx(AtxBackend):
    def __init__(self, config: GpioAtxConfig, bus: Bus) -> None:
        super().__init__(config, bus)
        self._config = config
        self._lines: Lines | None = None
        self._leds = AtxLeds()
        # Power and reset are separate buttons: one may be pressed while the other is busy.
        self._busy = {"power": False, "reset": False}
        self._presses = Operations("ATX")
        self._led_changed = asyncio.Event()

    def state(self) -> AtxState:
        acts = AtxActs(power=self._busy["power"], reset=self._busy["reset"])
        return AtxState(enabled=True, busy=acts.power or acts.reset, acts=acts, leds=self._leds)

    async def start(self) -> None:
        config = self._config
        lines = Lines(
            open_chip(config.device),
            "kvmd::atx",
            outputs=[Line(config.power_switch_pin), Line(config.reset_switch_pin)],
            inputs=[
                Line(config.power_led_pin, config.power_led_inverted, config.power_led_debounce),
                Line(config.hdd_led_pin, config.hdd_led_inverted, config.hdd_led_debounce),
            ],
            on_change=self._on_led,
        )
        self._lines = lines.open()
        self._leds = AtxLeds(
            power=lines.value(config.power_led_pin), hdd=lines.value(config.hdd_led_pin)
        )
        self._publish()

    async def stop(self) -> None:
        await self._presses.cancel_all()
        if self._lines is not None:
            self._lines.release()
            self._lines = None

    async def power(self, action: PowerAction, *, wait: bool) -> None:
        (button, needs_on) = _ACTIONS[action]
        if self._leds.power != needs_on:
            return  # already where the action would take it, as PiKVM does
        await self.click(button, wait=wait)

    async def click(self, button: Button, *, wait: bool) -> None:
        region = "reset" if button is Button.RESET else "power"
        self._take(region)
        await self._presses.run(self._press(region, button), wait=wait)

    async def restart(self, *, wait: bool) -> None:
        if not self._leds.power:
            await self.power(PowerAction.ON, wait=wait)
            return
        # The power button stays busy throughout: no other press may come in between.
        self._take("power")
        await self._presses.run(self._restart(), wait=wait)

    def _take(self, region: str) -> None:
        """Mark a button busy for an operation, or refuse while it is."""
        if self._busy[region] or self._lines is None:
            raise AtxIsBusyError
        self._busy[region] = True
        self._publish()

    async def _restart(self) -> None:
        try:
            logger.info("ATX: graceful restart, asking the target to shut down")
            await self._hold(Button.POWER)
            if not await self._until_power_off(self._config.restart_timeout):
                logger.warning("ATX: the target did not shut down, it stays on")
                return
            logger.info("ATX: the target is off, powering it on")
            await self._hold(Button.POWER)
        finally:
            self._busy["power"] = False
            self._publish()

    async def _until_power_off(self, limit: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while self._leds.power:
                    self._led_changed.clear()
                    await self._led_changed.wait()
        return not self._leds.power

    async def _press(self, region: str, button: Button) -> None:
        try:
            await self._hold(button)
        finally:
            self._busy[region] = False
            self._publish()

    async def _hold(self, button: Button) -> None:
        config = self._config
        pin = config.reset_switch_pin if button is Button.RESET else config.power_switch_pin
        delay = config.long_click_delay if button is Button.POWER_LONG else config.click_delay
        logger.info("ATX: clicking %s", button)
        lines = self._lines
        if lines is None:
            return
        lines.set(pin, True)
        try:
            await asyncio.sleep(delay)
        finally:
            if self._lines is not None:
                self._lines.set(pin, False)
        await asyncio.sleep(config.hold_off)

    def _on_led(self, pin: int, value: bool) -> None:
        if pin == self._config.power_led_pin:
            self._leds = AtxLeds(power=value, hdd=self._leds.hdd)
        else:
            self._leds = AtxLeds(power=self._leds.power, hdd=value)
        self._led_changed.set()
        self._publish()
