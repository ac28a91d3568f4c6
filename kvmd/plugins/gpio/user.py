# SPDX-License-Identifier: GPL-3.0-or-later
"""User GPIO: channels from the config on their drivers, switched and pulsed from the API.

Each output channel is its own busy region: a switch or pulse holds it until the write
is done and `busy_delay` has passed, and a second operation meanwhile is a 409. A pulse
always writes the channel off again, even when the daemon stops mid-pulse.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine
from typing import Any

from kvmd.bus import Bus
from kvmd.errors import KvmdError
from kvmd.plugins.backend import Operations
from kvmd.plugins.gpio.base import (
    GpioBackend,
    GpioChannelIsBusyError,
    GpioChannelNotFoundError,
    GpioChannels,
    GpioHeader,
    GpioHw,
    GpioInputScheme,
    GpioInputState,
    GpioModel,
    GpioOutputScheme,
    GpioOutputState,
    GpioPulse,
    GpioPulseNotSupported,
    GpioScheme,
    GpioState,
    GpioSwitchNotSupported,
    GpioView,
    InputItem,
    LabelItem,
    OutputItem,
    ViewItem,
)
from kvmd.plugins.gpio.config import ChannelConfig, GpioConfig
from kvmd.plugins.gpio.drivers import make_driver
from kvmd.plugins.gpio.drivers.driver import Driver

logger = logging.getLogger(__name__)

COLORS = frozenset({"green", "yellow", "red", "blue", "cyan", "magenta", "pink", "white"})


@dataclasses.dataclass
class _Channel:
    name: str
    config: ChannelConfig
    driver: Driver
    busy: bool = False

    @property
    def pin(self) -> str:
        return self.config.pin_text

    def read(self) -> bool:
        return self.driver.read(self.pin) != self.config.inverted

    async def write(self, state: bool) -> None:
        await self.driver.write(self.pin, state != self.config.inverted)


class UserGpio(GpioBackend):
    def __init__(self, config: GpioConfig, bus: Bus) -> None:
        super().__init__(config, bus)
        self._config = config
        drivers: dict[str, Driver] = {}
        all_drivers = config.all_drivers()
        self._inputs: dict[str, _Channel] = {}
        self._outputs: dict[str, _Channel] = {}
        # Constant outputs (no switch, no pulse) are only driven to `initial`.
        self._constants: dict[str, _Channel] = {}
        for name, channel in config.scheme.items():
            if channel.driver not in drivers:
                drivers[channel.driver] = make_driver(
                    channel.driver, all_drivers[channel.driver], self._publish
                )
            driver = drivers[channel.driver]
            entry = _Channel(name, channel, driver)
            if channel.mode == "input":
                driver.add_input(entry.pin, channel.debounce)
                self._inputs[name] = entry
            else:
                driver.add_output(entry.pin, channel.inverted)
                if channel.switch or channel.pulse_timing.delay > 0:
                    self._outputs[name] = entry
                else:
                    self._constants[name] = entry
        self._drivers = list(drivers.values())
        self._model = GpioModel(scheme=self._scheme(), view=self._view())
        self._operations = Operations("GPIO")

    def _scheme(self) -> GpioScheme:
        inputs = {
            name: GpioInputScheme(hw=GpioHw(driver=entry.config.driver, pin=entry.pin))
            for name, entry in self._inputs.items()
        }
        outputs = {}
        for name, entry in self._outputs.items():
            pulse = entry.config.pulse_timing
            outputs[name] = GpioOutputScheme(
                switch=entry.config.switch,
                pulse=GpioPulse(
                    delay=pulse.delay, min_delay=pulse.min_delay, max_delay=pulse.max_delay
                ),
                hw=GpioHw(driver=entry.config.driver, pin=entry.pin),
            )
        return GpioScheme(inputs=inputs, outputs=outputs)

    def _view(self) -> GpioView:
        title = self._config.view.header.title
        items = [title] if isinstance(title, str) else title
        header = [item for text in items if (item := self._item(text, title=True))]
        table: list[list[ViewItem] | None] = []
        for row in self._config.view.table:
            cells = [item for text in row if (item := self._item(text))]
            table.append(cells or None)
        return GpioView(header=GpioHeader(title=header), table=table)

    def _item(self, text: str, *, title: bool = False) -> ViewItem | None:
        text = text.strip()
        plain = "|" not in text and text not in self._inputs
        if text.startswith("#") or not text or (title and plain):
            return LabelItem(text=text.removeprefix("#").strip())
        parts = [part.strip() for part in text.split("|")]
        channel = parts[0]
        if channel in self._inputs:
            color = parts[1] if len(parts) > 1 and parts[1] in COLORS else "green"
            return InputItem(channel=channel, color=color)
        if channel in self._outputs and not title:
            options = set(parts[1].split(",")) if len(parts) > 2 else set()
            return OutputItem(
                channel=channel,
                confirm="confirm" in options,
                hide="hide" in options,
                text=parts[-1] if len(parts) > 1 else "Click",
            )
        return None  # an unknown channel is dropped, as PiKVM does

    def state(self) -> GpioState:
        inputs = {}
        for name, entry in self._inputs.items():
            try:
                inputs[name] = GpioInputState(online=True, state=entry.read())
            except KvmdError:
                inputs[name] = GpioInputState(online=False, state=False)
        outputs = {}
        for name, entry in self._outputs.items():
            if entry.busy:  # the pin is not read while it is being driven
                outputs[name] = GpioOutputState(online=True, state=False, busy=True)
                continue
            try:
                outputs[name] = GpioOutputState(online=True, state=entry.read(), busy=False)
            except KvmdError:
                outputs[name] = GpioOutputState(online=False, state=False, busy=False)
        return GpioState(model=self._model, state=GpioChannels(inputs=inputs, outputs=outputs))

    async def start(self) -> None:
        for driver in self._drivers:
            await driver.start()
        for entry in [*self._outputs.values(), *self._constants.values()]:
            if entry.config.initial is not None:
                try:
                    await entry.write(entry.config.initial)
                except KvmdError as error:
                    logger.warning("GPIO %s: initial state not set: %s", entry.name, error.msg)
        self._publish()

    async def stop(self) -> None:
        await self._operations.cancel_all()
        for driver in self._drivers:
            await driver.stop()

    async def run(self) -> None:
        await asyncio.gather(*(driver.run() for driver in self._drivers), asyncio.Future())

    async def switch(self, channel: str, state: bool, *, wait: bool) -> None:
        entry = self._output(channel)
        if not entry.config.switch:
            raise GpioSwitchNotSupported
        await self._operate(entry, self._switch(entry, state), wait=wait)

    async def pulse(self, channel: str, delay: float, *, wait: bool) -> None:
        entry = self._output(channel)
        timing = entry.config.pulse_timing
        if timing.delay == 0:
            raise GpioPulseNotSupported
        delay = min(max(delay or timing.delay, timing.min_delay), timing.max_delay)
        await self._operate(entry, self._pulse(entry, delay), wait=wait)

    def _output(self, channel: str) -> _Channel:
        entry = self._outputs.get(channel)
        if entry is None:
            raise GpioChannelNotFoundError
        if entry.busy:
            raise GpioChannelIsBusyError
        return entry

    async def _operate(
        self, entry: _Channel, operation: Coroutine[Any, Any, None], *, wait: bool
    ) -> None:
        entry.busy = True
        self._publish()
        await self._operations.run(self._hold(entry, operation), wait=wait)

    async def _hold(self, entry: _Channel, operation: Coroutine[Any, Any, None]) -> None:
        try:
            await operation
            await asyncio.sleep(entry.config.busy_delay)
        finally:
            entry.busy = False
            self._publish()

    async def _switch(self, entry: _Channel, state: bool) -> None:
        logger.info("GPIO %s: switching to %d", entry.name, state)
        await entry.write(state)

    async def _pulse(self, entry: _Channel, delay: float) -> None:
        logger.info("GPIO %s: pulse of %.3f s", entry.name, delay)
        try:
            await entry.write(True)
            await asyncio.sleep(delay)
        finally:
            await asyncio.shield(entry.write(False))
