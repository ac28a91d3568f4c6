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

from kvmd.config.base import Section
from kvmd.plugins.gpio.base import GpioDriverOfflineError

logger = logging.getLogger(__name__)


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
