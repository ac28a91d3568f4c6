# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio

import msgspec

from kvmd.bus import Bus, Topic


class S(msgspec.Struct, frozen=True):
    value: int


async def test_burst_comes_first_in_topic_order():
    bus = Bus()
    bus.publish(Topic.ATX, S(1))
    bus.publish(Topic.GPIO, S(2))
    async with bus.subscribe() as sub:
        assert await sub.get_batch() == [(Topic.GPIO, S(2)), (Topic.ATX, S(1))]


async def test_equal_state_is_dropped():
    bus = Bus()
    async with bus.subscribe() as sub:
        bus.publish(Topic.ATX, S(1))
        assert await sub.get_batch() == [(Topic.ATX, S(1))]
        bus.publish(Topic.ATX, S(1))
        bus.publish(Topic.HID, S(5))
        assert await sub.get_batch() == [(Topic.HID, S(5))]


async def test_newest_state_wins_and_memory_stays_bounded():
    bus = Bus()
    async with bus.subscribe() as slow:
        for i in range(10_000):
            bus.publish(Topic.ATX, S(i))
            bus.publish(Topic.HID, S(-i))
        # A reader that never kept up holds one state per topic, the newest.
        assert await slow.get_batch() == [(Topic.ATX, S(9999)), (Topic.HID, S(-9999))]


async def test_slow_subscriber_does_not_delay_others():
    bus = Bus()
    async with bus.subscribe() as slow, bus.subscribe() as fast:
        bus.publish(Topic.ATX, S(1))
        async with asyncio.timeout(1):
            assert await fast.get_batch() == [(Topic.ATX, S(1))]
        assert bus.subscribers == 2
    assert bus.subscribers == 0
    assert bus.state(Topic.ATX) == S(1)
    assert slow is not fast
