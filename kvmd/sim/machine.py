# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated target machine's front panel, wired to GPIO lines.

`python -m kvmd.sim.machine --chip SOCKET [--status FILE]` serves a GPIO chip on a unix
socket (kvmd opens it as it would /dev/gpiochip0) and behaves like a PC behind a PiKVM
ATX board: a power press of at least 0.1 s turns it on, or shuts it down when it is on;
holding power for 4 s cuts it off; a reset press reboots it. Its power and HDD LEDs drive
the input lines, and its state goes to `--status`, which the simulated streamer shows.
In tests the same `Machine` sits on the in-process `SimulatedChip`.
"""

import argparse
import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from kvmd.sim import replace_text, serve_until_signalled

logger = logging.getLogger(__name__)


class Panel(Protocol):
    """Where the machine's wires end: the chip's lines, seen from the target's side."""

    def drive(self, pin: int, level: bool) -> None:
        """Set a line the target drives (an LED)."""

    def watch(self, callback: Callable[[int, bool], None]) -> None:
        """Be told when kvmd sets a line (a button)."""


@dataclasses.dataclass(frozen=True)
class Wiring:
    """Pins as on a PiKVM ATX board, matching the ATX config defaults."""

    power_switch: int = 23
    reset_switch: int = 27
    power_led: int = 24
    hdd_led: int = 22
    # An extra line the machine reports, as a relay that powers something of the target.
    relay: int | None = None


@dataclasses.dataclass(frozen=True)
class Timing:
    """How the machine reacts, in seconds; tests scale it down."""

    # A press must last this long to count, as a motherboard's debounce. PiKVM's click is
    # 0.1 s; accepting from 80 ms means scheduling jitter between the two processes can
    # never make a real click too short.
    press: float = 0.08
    # Holding power this long cuts the power whatever the OS wants.
    force_off: float = 4.0
    # From a short press to the power LED going dark: the OS shutting down.
    shutdown: float = 0.5
    # How long the HDD LED is lit on boot and reset.
    blink: float = 0.3


class Machine:
    """A PC's power logic; every change is reported through the LEDs and the status file."""

    def __init__(
        self,
        panel: Panel,
        wiring: Wiring = Wiring(),
        *,
        status: Path | None = None,
        timing: Timing = Timing(),
    ) -> None:
        self._panel = panel
        self._wiring = wiring
        self._status = status
        self._timing = timing
        self.powered = False
        self.hdd = False
        self.relay = False
        self.boots = 0
        self.resets = 0
        self.forced_offs = 0
        self._power_press: tuple[float, bool] | None = None
        self._reset_press: float | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def attach(self) -> "Machine":
        """Start listening to the buttons; the LEDs show the current (off) state."""
        self._panel.watch(self._on_line)
        self._panel.drive(self._wiring.power_led, False)
        self._panel.drive(self._wiring.hdd_led, False)
        self._write_status()
        return self

    def _on_line(self, pin: int, level: bool) -> None:
        wiring = self._wiring
        if pin == wiring.power_switch:
            self._on_power_button(level)
        elif pin == wiring.reset_switch:
            self._on_reset_button(level)
        elif pin == wiring.relay:
            self.relay = level
            self._write_status()

    def _on_power_button(self, pressed: bool) -> None:
        if pressed:
            # Off: the press turns the machine on once it has lasted `press`. On: the
            # release decides (a shutdown), unless the hold reaches `force_off` first.
            self._power_press = (time.monotonic(), self.powered)
            if not self.powered:
                self._later("power_on", self._timing.press, self._power_on)
            self._later("force_off", self._timing.force_off, self._force_off)
            return
        self._cancel("force_off")
        if self._power_press is None:
            self._cancel("power_on")
            return
        ((started, was_on), self._power_press) = (self._power_press, None)
        held = time.monotonic() - started
        if "power_on" in self._timers:
            self._cancel("power_on")
            # The release can be read before the due timer runs (asyncio handles I/O first
            # in a loop turn): a press long enough still counts.
            if held >= self._timing.press:
                self._power_on()
            return
        if was_on and self.powered and self._timing.press <= held < self._timing.force_off:
            logger.info("shutting down")
            self._set_hdd(True)
            self._later("shutdown", self._timing.shutdown, self._power_off)

    def _on_reset_button(self, pressed: bool) -> None:
        if pressed:
            self._reset_press = time.monotonic()
            return
        (started, self._reset_press) = (self._reset_press, None)
        if (
            started is not None
            and self.powered
            and time.monotonic() - started >= self._timing.press
        ):
            self.resets += 1
            logger.info("reset")
            self._cancel("shutdown")
            self._blink_hdd()

    def _power_on(self) -> None:
        self.powered = True
        self.boots += 1
        logger.info("power on")
        self._panel.drive(self._wiring.power_led, True)
        self._blink_hdd()

    def _power_off(self) -> None:
        self._timers.pop("shutdown", None)
        self.powered = False
        logger.info("power off")
        self._cancel("hdd")
        self._set_hdd(False)
        self._panel.drive(self._wiring.power_led, False)
        self._write_status()

    def _force_off(self) -> None:
        self._timers.pop("force_off", None)
        if self.powered:
            self.forced_offs += 1
            self._cancel("shutdown")
            self._power_off()

    def _blink_hdd(self) -> None:
        self._set_hdd(True)
        self._later("hdd", self._timing.blink, lambda: self._set_hdd(False))

    def _set_hdd(self, level: bool) -> None:
        self.hdd = level
        self._panel.drive(self._wiring.hdd_led, level)
        self._write_status()

    def _later(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel(name)

        def fire() -> None:
            self._timers.pop(name, None)
            callback()

        self._timers[name] = asyncio.get_running_loop().call_later(delay, fire)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def status(self) -> str:
        parts = [
            f"target power {'on' if self.powered else 'off'}",
            f"hdd {'busy' if self.hdd else 'idle'}",
            f"boots {self.boots}",
            f"resets {self.resets}",
        ]
        if self._wiring.relay is not None:
            parts.append(f"relay {'on' if self.relay else 'off'}")
        return ", ".join(parts)

    def _write_status(self) -> None:
        if self._status is None:
            return
        replace_text(self._status, self.status() + "\n")

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class ChipServer:
    """Serves line levels over a unix socket in the protocol of `kvmd.hw.gpio.SocketChip`."""

    def __init__(self, path: Path, lines: int = 40) -> None:
        self._path = path
        self.levels = dict.fromkeys(range(lines), False)
        self._clients: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object] | None] = set()
        self._watchers: list[Callable[[int, bool], None]] = []

    def drive(self, pin: int, level: bool) -> None:
        if self.levels[pin] != level:
            self.levels[pin] = level
            self._broadcast(pin, level, None)

    def watch(self, callback: Callable[[int, bool], None]) -> None:
        self._watchers.append(callback)

    def _broadcast(self, pin: int, level: bool, source: asyncio.StreamWriter | None) -> None:
        for writer in self._clients:
            if writer is not source:
                writer.write(b"%d %d\n" % (pin, level))

    async def serve(self) -> None:
        self._path.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self._client, path=str(self._path))
        try:
            async with server:
                await server.serve_forever()
        finally:
            self._path.unlink(missing_ok=True)
            # Hang up on the clients and let their handlers end at EOF: on Python 3.11 a
            # handler still running at loop shutdown is cancelled and logs a traceback.
            handlers = [task for task in self._handlers if task is not None]
            for writer in self._clients:
                writer.close()
            if handlers:
                await asyncio.wait(handlers, timeout=1)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        snapshot = b"".join(b"%d %d\n" % (pin, level) for pin, level in self.levels.items())
        writer.write(snapshot + b".\n")
        self._clients.add(writer)
        handler = asyncio.current_task()
        self._handlers.add(handler)
        try:
            while line := await reader.readline():
                try:
                    (pin, level) = (int(word) for word in line.split())
                except ValueError:
                    logger.warning("bad line from a client: %r", line)
                    break
                if pin not in self.levels or self.levels[pin] == bool(level):
                    continue
                self.levels[pin] = bool(level)
                self._broadcast(pin, bool(level), writer)
                for callback in self._watchers:
                    callback(pin, bool(level))
        except ConnectionError:
            pass
        finally:
            self._clients.discard(writer)
            self._handlers.discard(handler)
            writer.close()


async def _main(args: argparse.Namespace) -> None:
    server = ChipServer(args.chip)
    machine = Machine(server, Wiring(relay=args.relay), status=args.status).attach()
    await serve_until_signalled(server.serve())
    machine.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="kvmd.sim.machine", description=__doc__)
    parser.add_argument("--chip", type=Path, required=True)
    parser.add_argument("--status", type=Path, default=None)
    parser.add_argument("--relay", type=int, default=None, help="a line shown as a relay")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
