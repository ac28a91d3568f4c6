# SPDX-License-Identifier: GPL-3.0-or-later
"""What a user GPIO driver is: pins it reads and writes, by their config strings.

Values here are the device's own (the channel's `inverted` is applied above). A driver
that can't reach its device raises `GpioDriverOfflineError` from `read` and `write`, and
calls `notify()` whenever something it reads may have changed.
"""

import abc
import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from kvmd.config.base import Section
from kvmd.plugins.gpio.base import GpioDriverOfflineError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Driver(abc.ABC):
    """One configured driver serving the pins of its channels."""

    def __init__(self, name: str, config: Section, notify: Callable[[], None]) -> None:
        """Each driver narrows `config` to its own Struct."""
        self.name = name
        self._notify = notify
        # Input pins with their debounce; output pins with their idle (device) level.
        self._inputs: dict[str, float] = {}
        self._outputs: dict[str, bool] = {}

    def add_input(self, pin: str, debounce: float) -> None:
        """Serve an input channel (before `start`)."""
        self._inputs[pin] = debounce

    def add_output(self, pin: str, idle: bool) -> None:
        """Serve an output channel whose device level is `idle` when off (before `start`)."""
        self._outputs[pin] = idle

    async def start(self) -> None:  # noqa: B027 -- most drivers hold nothing open
        """Open the device; a failure leaves the driver offline, it does not stop kvmd."""

    async def stop(self) -> None:  # noqa: B027
        """Release the device; outputs go back to idle where the device keeps a level."""

    async def run(self) -> None:
        """Poll the device until cancelled, for drivers that can't be told of changes."""
        await asyncio.Future()

    @abc.abstractmethod
    def read(self, pin: str) -> bool:
        """The last known value of a pin."""

    @abc.abstractmethod
    async def write(self, pin: str, state: bool) -> None:
        """Drive an output."""

    def _offline(self, reason: object) -> GpioDriverOfflineError:
        return GpioDriverOfflineError(f"GPIO driver {self.name!r} is offline: {reason}")


class NoopDriver(Driver):
    """Reads false and accepts every write."""

    def read(self, pin: str) -> bool:
        """Always false."""
        return False

    async def write(self, pin: str, state: bool) -> None:
        """Only logged."""
        logger.info("GPIO %s: noop pin %s = %d", self.name, pin, state)


class TriggerDriver(Driver):
    """An output that acts when switched on (runs, sends) and has no level to read."""

    def read(self, pin: str) -> bool:
        """Always false: there is nothing to read back."""
        return False

    async def write(self, pin: str, state: bool) -> None:
        """Act on `True`; `False` is a no-op."""
        if state:
            try:
                await self._trigger(pin)
            except OSError as error:
                raise self._offline(error) from error

    @abc.abstractmethod
    async def _trigger(self, pin: str) -> None:
        """Do it; OSError means the device could not be reached."""


class PollingDriver(Driver, Generic[T]):
    """A device that can't announce changes: read every `poll_every` seconds.

    `_fetch()` reads the device (OSError when it can't); `_current()` gives its last
    reading or raises offline.
    """

    def __init__(
        self, name: str, config: Section, notify: Callable[[], None], poll_every: float
    ) -> None:
        """Nothing is read before `start`."""
        super().__init__(name, config, notify)
        self._poll_every = poll_every
        self._value: T | None = None
        self._error = "not read yet"

    async def start(self) -> None:
        """The first reading, so that the first state is real."""
        await self._poll()

    async def run(self) -> None:
        """Read the device every `poll_every` seconds."""
        while True:
            await asyncio.sleep(self._poll_every)
            await self._poll()

    @abc.abstractmethod
    async def _fetch(self) -> T:
        """Read the device."""

    async def _poll(self) -> None:
        value: T | None = None
        try:
            value = await self._fetch()
        except OSError as error:
            if self._value is not None or self._error != str(error):
                logger.warning("GPIO %s: offline: %s", self.name, error)
            self._error = str(error)
        if value != self._value:
            self._value = value
            self._notify()

    def _current(self) -> T:
        if self._value is None:
            raise self._offline(self._error)
        return self._value
