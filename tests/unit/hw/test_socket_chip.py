# SPDX-License-Identifier: GPL-3.0-or-later
"""The chip served over a unix socket by the simulated machine, as kvmd sees it."""

import asyncio
import logging
import threading
import time

import pytest

from kvmd.hw.gpio import Line, Lines, SocketChip, open_chip
from kvmd.sim.machine import ChipServer, Machine, Timing, Wiring


class Served:
    """A ChipServer (and optionally the machine on it) in a thread with its own loop, as
    the simulator runs in its own process: kvmd's side connects with blocking calls."""

    def __init__(self, path, machine=None):
        self.path = path
        self._machine_options = machine
        self.machine = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),))

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self.server = ChipServer(self.path)
        if self._machine_options is not None:
            (wiring, options) = self._machine_options
            self.machine = Machine(self.server, wiring, **options).attach()
        self._stop = asyncio.Event()
        task = asyncio.create_task(self.server.serve())
        while not self.path.exists():
            await asyncio.sleep(0.01)
        self._ready.set()
        await self._stop.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc):
        if self._thread.is_alive():
            self.stop()

    def stop(self):
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def drive(self, pin, level):
        self.loop.call_soon_threadsafe(self.server.drive, pin, level)

    def watch(self, callback):
        self.loop.call_soon_threadsafe(self.server.watch, callback)


async def settle(condition, timeout=2.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_outputs_reach_the_server_and_inputs_come_back_debounced(tmp_path):
    with Served(tmp_path / "chip.sock") as served:
        served.drive(5, True)  # already high before kvmd connects
        seen_by_server = []
        served.watch(lambda pin, level: seen_by_server.append((pin, level)))
        assert isinstance(open_chip(str(served.path)), SocketChip)
        changes = []
        lines = Lines(
            open_chip(str(served.path)),
            "test",
            outputs=[Line(3), Line(4, inverted=True)],
            inputs=[Line(5), Line(6, inverted=True, debounce=0.0)],
            on_change=lambda pin, value: changes.append((pin, value)),
        ).open()
        await settle(lambda: served.server.levels[4])
        assert (lines.value(5), lines.value(6)) == (True, True)  # 6 is low, inverted
        assert seen_by_server == [(4, True)]  # idle of an inverted output is high
        lines.set(3, True)
        await settle(lambda: served.server.levels[3])
        for level in (True, False, True):
            served.drive(6, level)  # bounces: only the level that holds counts
        served.drive(5, False)
        await settle(lambda: len(changes) == 2)
        assert sorted(changes) == [(5, False), (6, False)]
        lines.release()
        await settle(lambda: not served.server.levels[3] and served.server.levels[4])


async def test_a_missing_line_is_refused(tmp_path):
    with Served(tmp_path / "chip.sock") as served:
        chip = open_chip(str(served.path))
        with pytest.raises(OSError, match="no line 99"):
            chip.request("test", outputs={99: False}, inputs=[])


async def test_a_server_that_goes_away_stops_the_watch_without_spinning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with Served(tmp_path / "chip.sock") as served:
        changes = []
        lines = Lines(
            open_chip(str(served.path)),
            "test",
            outputs=[Line(3)],
            inputs=[Line(5)],
            on_change=lambda pin, value: changes.append((pin, value)),
        ).open()
        served.stop()
        await settle(lambda: "no longer watched" in caplog.text)
        lines.release()  # the output can't go idle on a closed socket: logged, not raised
    assert changes == []
    assert "pin 3 not returned to idle" in caplog.text


async def test_the_machine_turns_on_and_is_cut_off_by_a_long_hold(tmp_path):
    status = tmp_path / "target.txt"
    options = {"status": status, "timing": Timing(press=0.05, force_off=0.3, blink=0.05)}
    with Served(tmp_path / "chip.sock", (Wiring(relay=7), options)) as served:
        machine = served.machine
        assert status.read_text() == "target power off, hdd idle, boots 0, resets 0, relay off\n"
        leds = []
        lines = Lines(
            open_chip(str(served.path)),
            "atx",
            outputs=[Line(23), Line(27), Line(7)],
            inputs=[Line(24, debounce=0.0), Line(22, debounce=0.0)],
            on_change=lambda pin, value: leds.append((pin, value)),
        ).open()
        lines.set(7, True)
        lines.set(23, True)  # held from off: on after 0.05 s, cut off at 0.3 s
        await settle(lambda: (24, True) in leds)
        assert machine.powered
        assert machine.boots == 1
        await settle(lambda: (24, False) in leds)
        lines.set(23, False)
        assert machine.forced_offs == 1
        assert not machine.powered
        await settle(lambda: "relay on" in status.read_text())
        assert status.read_text() == "target power off, hdd idle, boots 1, resets 0, relay on\n"
        lines.set(23, True)
        await asyncio.sleep(0.02)
        lines.set(23, False)  # too short a press: nothing
        await asyncio.sleep(0.1)
        assert not machine.powered
        assert machine.boots == 1
        lines.release()


class _Panel:
    """The machine's side of a chip, in process: what it drives, and who watches."""

    def __init__(self):
        self.driven = {}
        self.watchers = []

    def watch(self, callback):
        self.watchers.append(callback)

    def drive(self, pin, level):
        self.driven[pin] = level

    def set(self, pin, level):
        for callback in self.watchers:
            callback(pin, level)


async def test_a_long_enough_press_counts_even_when_its_release_is_read_first():
    # A busy loop reads the release before running the due power-on timer (asyncio handles
    # I/O first in a turn): the press lasted long enough, so the machine still starts.
    panel = _Panel()
    wiring = Wiring()
    machine = Machine(panel, wiring, timing=Timing(press=0.05)).attach()
    panel.set(wiring.power_switch, True)
    time.sleep(0.08)  # the loop is blocked past the timer's due time
    panel.set(wiring.power_switch, False)
    assert (machine.powered, machine.boots) == (True, 1)
    assert panel.driven[wiring.power_led] is True
    # Shorter than `press` is still nothing, however it is read.
    quick = _Panel()
    machine = Machine(quick, wiring, timing=Timing(press=0.05)).attach()
    quick.set(wiring.power_switch, True)
    quick.set(wiring.power_switch, False)
    await asyncio.sleep(0.08)
    assert machine.powered is False
