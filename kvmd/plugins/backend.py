# SPDX-License-Identifier: GPL-3.0-or-later
"""The lifecycle every hardware backend shares."""

import abc
import asyncio
from typing import ClassVar

import msgspec

from kvmd.bus import Bus, Topic
from kvmd.config.base import Section


class Backend(abc.ABC):
    """A backend owns one kind of hardware and publishes its state on the bus.

    `start()` and `stop()` are idempotent; `run()` is the long-lived loop and returns
    only when cancelled. `state()` is a cheap synchronous snapshot.
    """

    topic: ClassVar[Topic]

    def __init__(self, config: Section, bus: Bus) -> None:
        """Keep the bus; each backend narrows `config` to its own Struct."""
        # Each backend narrows `config` to its own Struct; the disabled ones ignore it.
        self._bus = bus

    async def start(self) -> None:
        """Acquire the hardware and publish the first state."""
        self._publish()

    async def stop(self) -> None:  # noqa: B027 -- optional: most backends hold nothing
        """Release the hardware."""

    async def run(self) -> None:
        """Serve until cancelled. Backends without a loop of their own just wait."""
        await asyncio.Future()

    @abc.abstractmethod
    def state(self) -> msgspec.Struct:
        """The current state, as it is published."""

    def _publish(self) -> None:
        self._bus.publish(self.topic, self.state())
