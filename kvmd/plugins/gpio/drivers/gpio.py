# SPDX-License-Identifier: GPL-3.0-or-later
"""Channels on gpiochip lines (libgpiod), or on the simulated chip in the testenv."""

import logging
from collections.abc import Callable

from kvmd.hw.gpio import Line, Lines, open_chip
from kvmd.plugins.gpio.config import GpioDriverConfig
from kvmd.plugins.gpio.drivers.driver import Driver

logger = logging.getLogger(__name__)


class GpioDriver(Driver):
    def __init__(self, name: str, config: GpioDriverConfig, notify: Callable[[], None]) -> None:
        super().__init__(name, config, notify)
        self._device = config.device
        self._lines: Lines | None = None
        self._error = "not started"

    async def start(self) -> None:
        # `Line.inverted` is what makes the idle level high, so an output's idle level is
        # passed as its inversion and undone in read/write: values here are device levels.
        lines = Lines(
            open_chip(self._device),
            f"kvmd::gpio::{self.name}",
            outputs=[Line(int(pin), inverted=idle) for pin, idle in self._outputs.items()],
            inputs=[Line(int(pin), debounce=debounce) for pin, debounce in self._inputs.items()],
            on_change=lambda _pin, _value: self._notify(),
        )
        try:
            self._lines = lines.open()
        except OSError as error:
            self._error = str(error)
        if self._lines is None:
            logger.error("GPIO %s: no lines on %s: %s", self.name, self._device, self._error)

    async def stop(self) -> None:
        if self._lines is not None:
            self._lines.release()
            self._lines = None

    def read(self, pin: str) -> bool:
        if self._lines is None:
            raise self._offline(self._error)
        value = self._lines.value(int(pin))
        return value != self._outputs.get(pin, False)

    async def write(self, pin: str, state: bool) -> None:
        if self._lines is None:
            raise self._offline(self._error)
        try:
            self._lines.set(int(pin), state != self._outputs[pin])
        except OSError as error:
            raise self._offline(error) from error
        self._notify()
