# SPDX-License-Identifier: GPL-3.0-or-later
"""The event bus: subsystems publish typed states, subscribers read the newest ones.

Two rules live here so that no backend has to remember them:
- a state equal to the previous one on the same topic is dropped;
- each subscriber holds at most one pending state per topic, the newest, so a
  slow reader (a websocket on a bad link) costs a bounded amount of memory and
  never delays a publisher or the other subscribers.
"""

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator

import msgspec


class Topic(enum.StrEnum):
    """What a state describes. The order is the order of the initial burst."""

    GPIO = "gpio"
    HID = "hid"
    HID_KEYMAPS = "hid_keymaps"
    ATX = "atx"
    MSD = "msd"
    STREAMER = "streamer"
    OCR = "ocr"
    INFO = "info"
    CLIENTS = "clients"


class Subscription:
    """One reader's view of the bus, obtained from `Bus.subscribe()`."""

    def __init__(self) -> None:
        """Start with nothing pending."""
        # Insertion-ordered: a topic keeps its place when its pending state is replaced,
        # so a chatty topic cannot push the others back.
        self._pending: dict[Topic, msgspec.Struct] = {}
        self._ready = asyncio.Event()

    def offer(self, topic: Topic, state: msgspec.Struct) -> None:
        """Queue `state`, replacing any older pending state of the same topic."""
        self._pending[topic] = state
        self._ready.set()

    async def get_batch(self) -> list[tuple[Topic, msgspec.Struct]]:
        """Wait for at least one pending state and take all of them, oldest topic first."""
        await self._ready.wait()
        batch = list(self._pending.items())
        self._pending.clear()
        self._ready.clear()
        return batch


class Bus:
    """Fans states out to every subscriber."""

    def __init__(self) -> None:
        """Start with no states and no subscribers."""
        self._states: dict[Topic, msgspec.Struct] = {}
        self._subscriptions: set[Subscription] = set()

    def publish(self, topic: Topic, state: msgspec.Struct) -> None:
        """Record and fan out `state` unless it equals the last one of `topic`. Never blocks."""
        if self._states.get(topic) == state:
            return
        self._states[topic] = state
        for subscription in self._subscriptions:
            subscription.offer(topic, state)

    def state(self, topic: Topic) -> msgspec.Struct | None:
        """The last state published on `topic`, if any."""
        return self._states.get(topic)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the block; the current states come first."""
        subscription = Subscription()
        for topic in Topic:
            state = self._states.get(topic)
            if state is not None:
                subscription.offer(topic, state)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)
