# SPDX-License-Identifier: GPL-3.0-or-later
"""Events waiting for a HID writer: merged at the tail, drained, waited for."""

import asyncio
import collections
import contextlib
from typing import Generic, Protocol, TypeVar


class Event(Protocol):
    def merge(self, newer: "Event", /) -> bool:
        """Absorb `newer` (queued right behind this event) if the two can be one report."""
        ...


E = TypeVar("E", bound=Event)


class PendingEvents(Generic[E]):
    """The queue between the synchronous HID verbs and one writer task.

    A new event merges into the one at the tail when it can (mouse motion), so a flood
    costs one report per write. `wait_drained()` returns once the writer has emptied the
    queue, whether it wrote the events or folded them into its state while offline.
    """

    def __init__(self) -> None:
        self._events: collections.deque[E] = collections.deque()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    def __len__(self) -> int:
        return len(self._events)

    def push(self, event: E) -> None:
        if not self._events or not self._events[-1].merge(event):
            self._events.append(event)
        self._drained.clear()
        self._wakeup.set()

    def push_front(self, event: E) -> None:
        self._events.appendleft(event)
        self._drained.clear()
        self._wakeup.set()

    def pop(self) -> E:
        return self._events.popleft()

    def take_all(self) -> list[E]:
        (events, self._events) = (list(self._events), collections.deque())
        self._drained.set()
        return events

    def wake(self) -> None:
        self._wakeup.set()

    async def wait(self, delay: float | None) -> None:
        """Wait for a push (or `wake()`), at most `delay` seconds; an empty queue is drained."""
        if not self._events:
            self._drained.set()
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wakeup.wait()

    async def wait_drained(self) -> None:
        await self._drained.wait()
