# SPDX-License-Identifier: GPL-3.0-or-later
"""The lifecycle every hardware backend shares."""

import abc
import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, ClassVar

import msgspec

from kvmd.bus import Bus, Topic
from kvmd.config.base import Section
from kvmd.errors import KvmdError

logger = logging.getLogger(__name__)


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


class Operations:
    """Operations a backend runs in the background (a button press, a pulse).

    A request that waits awaits its operation shielded: a client that goes away must not
    cut a press short. One that does not wait gets failures logged. `cancel_all()` ends
    them all when the backend stops; each operation's own `finally` makes it safe.
    """

    def __init__(self, name: str) -> None:
        """`name` labels failures in the log."""
        self._name = name
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, operation: Coroutine[Any, Any, None], *, wait: bool) -> None:
        """Start `operation`; with `wait`, return when it is done (or raise its error)."""
        task = asyncio.create_task(operation)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if wait:
            await asyncio.shield(task)
        else:
            task.add_done_callback(self._log_failure)

    async def cancel_all(self) -> None:
        """Cancel every running operation and wait for them to finish."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _log_failure(self, task: "asyncio.Task[None]") -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            message = error.msg if isinstance(error, KvmdError) else repr(error)
            logger.error("%s operation failed: %s", self._name, message)
