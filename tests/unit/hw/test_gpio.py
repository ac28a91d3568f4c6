# SPDX-License-Identifier: GPL-3.0-or-later
"""GPIO lines on the simulated chip: levels, inversion, debounced edges, safe release."""

import asyncio
import datetime
import os
import types

import gpiod
import pytest
from gpiod.line import Direction, Edge, Value

from kvmd.hw.gpio import GpiodChip, Line, Lines, SimulatedChip

FAST = datetime.timedelta(milliseconds=5)


async def test_outputs_start_idle_and_follow_inversion():
    chip = SimulatedChip()
    seen = []
    chip.watch(lambda pin, level: seen.append((pin, level)))
    with Lines(
        chip, "atx", outputs=[Line(17), Line(18, inverted=True)], inputs=[], on_change=print
    ) as lines:
        assert (chip.levels[17], chip.levels[18]) == (False, True)  # both logically off
        lines.set(17, True)
        lines.set(18, True)
        assert (chip.levels[17], chip.levels[18]) == (True, False)
        assert (lines.value(17), lines.value(18)) == (True, True)
    # Released: back to idle, whatever was asserted when the owner went away.
    assert (chip.levels[17], chip.levels[18]) == (False, True)
    assert seen == [(18, True), (17, True), (18, False), (17, False), (18, True)]
    assert chip.claimed == {}


async def test_inputs_report_debounced_logical_changes():
    chip = SimulatedChip()
    changes = []
    with Lines(
        chip,
        "leds",
        outputs=[],
        inputs=[Line(19), Line(16, inverted=True)],
        on_change=lambda pin, value: changes.append((pin, value)),
        debounce=FAST,
    ) as lines:
        assert (lines.value(19), lines.value(16)) == (False, True)
        chip.drive(19, True)
        await asyncio.sleep(0.05)
        assert changes == [(19, True)]
        # A bouncing contact settles high: one change, not five.
        for level in (True, False, True, False, True):
            chip.drive(16, level)
        await asyncio.sleep(0.05)
        assert changes == [(19, True), (16, False)]
        # A glitch shorter than the debounce time is no change at all.
        chip.drive(19, False)
        chip.drive(19, True)
        await asyncio.sleep(0.05)
        assert changes == [(19, True), (16, False)]


async def test_a_claimed_line_is_busy_until_released():
    chip = SimulatedChip()
    first = Lines(chip, "atx", outputs=[Line(5)], inputs=[], on_change=print)
    with first, pytest.raises(OSError, match="busy"):
        Lines(chip, "gpio", outputs=[], inputs=[Line(5)], on_change=print).open()
    with Lines(chip, "gpio", outputs=[], inputs=[Line(5)], on_change=print) as again:
        assert again.value(5) is False
    first.release()  # twice is harmless
    with pytest.raises(OSError, match="released"):
        first.set(5, True)


async def test_unknown_line_and_input_set_are_errors():
    chip = SimulatedChip(lines=8)
    with pytest.raises(OSError, match="no line 9"):
        Lines(chip, "x", outputs=[Line(9)], inputs=[], on_change=print).open()
    request = chip.request("x", outputs={}, inputs=[1])
    with pytest.raises(OSError, match="not an output"):
        request.set(1, True)
    request.release()


class FakeGpiodRequest:
    """What `gpiod.request_lines` returns, at the library's call boundary (no chip here)."""

    def __init__(self, config):
        self.config = config
        (self.fd, self._write_fd) = os.pipe()
        self.values = {pin: s.output_value for pin, s in config.items()}
        self.events = []
        self.released = False

    def pulse(self, pin, value):
        self.values[pin] = value
        self.events.append(types.SimpleNamespace(line_offset=pin))
        os.write(self._write_fd, b"x")

    def read_edge_events(self):
        os.read(self.fd, 4096)
        (events, self.events) = (self.events, [])
        return events

    def get_value(self, pin):
        return self.values[pin]

    def set_value(self, pin, value):
        self.values[pin] = value

    def release(self):
        self.released = True
        os.close(self.fd)
        os.close(self._write_fd)


async def test_gpiod_chip_requests_lines_as_libgpiod_wants(monkeypatch):
    made = []

    def request_lines(path, config, consumer=None):
        assert (path, consumer) == ("/dev/gpiochip0", "kvmd::atx")
        made.append(FakeGpiodRequest(config))
        return made[-1]

    monkeypatch.setattr(gpiod, "request_lines", request_lines)
    changes = []
    with Lines(
        GpiodChip("/dev/gpiochip0"),
        "kvmd::atx",
        outputs=[Line(17), Line(18, inverted=True)],
        inputs=[Line(19)],
        on_change=lambda pin, value: changes.append((pin, value)),
        debounce=FAST,
    ) as lines:
        fake = made[0]
        assert fake.config[17].direction == Direction.OUTPUT
        assert (fake.config[17].output_value, fake.config[18].output_value) == (
            Value.INACTIVE,
            Value.ACTIVE,
        )
        assert (fake.config[19].direction, fake.config[19].edge_detection) == (
            Direction.INPUT,
            Edge.BOTH,
        )
        lines.set(17, True)
        assert fake.values[17] == Value.ACTIVE
        fake.pulse(19, Value.ACTIVE)
        await asyncio.sleep(0.05)
        assert changes == [(19, True)]
    assert fake.released
    assert (fake.values[17], fake.values[18]) == (Value.INACTIVE, Value.ACTIVE)
