# SPDX-License-Identifier: GPL-3.0-or-later
"""GPIO lines: libgpiod v2 on a real chip, or a simulated chip with the same interface.

A `Chip` hands out one `LineRequest` per user (ATX, a user GPIO driver): outputs with
their idle level, inputs with edge detection. The request's file descriptor becomes
readable when an edge is waiting, so inputs are watched from the event loop, never
polled. `Lines` adds what every user needs on top: values as booleans after inversion,
software debounce, and outputs returned to idle when released.
"""

import abc
import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import socket
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gpiod

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Line:
    pin: int
    inverted: bool = False
    # Seconds an input must hold a level to count; None: the `Lines` default.
    debounce: float | None = None


class LineRequest(abc.ABC):
    """Requested lines of one chip; values are physical levels (inversion is above)."""

    @abc.abstractmethod
    def fileno(self) -> int:
        """Readable when edge events are waiting."""

    @abc.abstractmethod
    def read_edges(self) -> list[int]:
        """The pins that saw an edge since the last call (in order, repeats kept)."""

    @abc.abstractmethod
    def get(self, pin: int) -> bool: ...

    @abc.abstractmethod
    def set(self, pin: int, value: bool) -> None: ...

    @abc.abstractmethod
    def release(self) -> None: ...


class Chip(abc.ABC):
    @abc.abstractmethod
    def request(self, consumer: str, *, outputs: dict[int, bool], inputs: list[int]) -> LineRequest:
        """Request `outputs` (pin -> initial physical level) and `inputs` with edges."""


class GpiodChip(Chip):
    """A /dev/gpiochipN through libgpiod v2 (the `gpiod` package)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def request(self, consumer: str, *, outputs: dict[int, bool], inputs: list[int]) -> LineRequest:
        import gpiod  # noqa: PLC0415 -- only boards with GPIO load libgpiod
        from gpiod.line import Direction, Edge, Value  # noqa: PLC0415

        config: dict[Iterable[int | str] | int | str, gpiod.LineSettings | None] = {}
        for pin, level in outputs.items():
            config[pin] = gpiod.LineSettings(
                direction=Direction.OUTPUT,
                output_value=Value.ACTIVE if level else Value.INACTIVE,
            )
        for pin in inputs:
            config[pin] = gpiod.LineSettings(direction=Direction.INPUT, edge_detection=Edge.BOTH)
        request = gpiod.request_lines(self._path, config=config, consumer=consumer)
        return _GpiodRequest(request)


class _GpiodRequest(LineRequest):
    def __init__(self, request: "gpiod.LineRequest") -> None:
        self._request = request

    def fileno(self) -> int:
        return int(self._request.fd)

    def read_edges(self) -> list[int]:
        return [int(event.line_offset) for event in self._request.read_edge_events()]

    def get(self, pin: int) -> bool:
        from gpiod.line import Value  # noqa: PLC0415

        return bool(self._request.get_value(pin) == Value.ACTIVE)

    def set(self, pin: int, value: bool) -> None:
        from gpiod.line import Value  # noqa: PLC0415

        self._request.set_value(pin, Value.ACTIVE if value else Value.INACTIVE)

    def release(self) -> None:
        self._request.release()


class SimulatedChip(Chip):
    """Lines in memory; an eventfd-like pipe makes edges wake the loop as a chip's fd does.

    `drive(pin, level)` is the outside world pulling an input; `watch(callback)` lets a
    simulated target see outputs change.
    """

    def __init__(self, lines: int = 40) -> None:
        self.levels = dict.fromkeys(range(lines), False)
        self._requests: list[_SimulatedRequest] = []
        self._watchers: list[Callable[[int, bool], None]] = []
        self.claimed: dict[int, str] = {}

    def request(self, consumer: str, *, outputs: dict[int, bool], inputs: list[int]) -> LineRequest:
        pins = [*outputs, *inputs]
        for pin in pins:
            if pin not in self.levels:
                raise OSError(f"no line {pin} on the simulated chip")
            if pin in self.claimed:
                raise OSError(f"line {pin} is busy ({self.claimed[pin]})")
        for pin in pins:
            self.claimed[pin] = consumer
        request = _SimulatedRequest(self, set(outputs), set(inputs))
        self._requests.append(request)
        for pin, level in outputs.items():
            request.set(pin, level)
        return request

    def drive(self, pin: int, level: bool) -> None:
        """Set an input line from outside, as the target's LED would."""
        if self.levels[pin] == level:
            return
        self.levels[pin] = level
        for request in self._requests:
            request.edge(pin)

    def watch(self, callback: Callable[[int, bool], None]) -> None:
        self._watchers.append(callback)

    def _output(self, pin: int, level: bool) -> None:
        if self.levels[pin] != level:
            self.levels[pin] = level
            for callback in self._watchers:
                callback(pin, level)

    def _release(self, request: "_SimulatedRequest") -> None:
        self._requests.remove(request)
        for pin in request.pins:
            self.claimed.pop(pin, None)


class _SimulatedRequest(LineRequest):
    def __init__(self, chip: SimulatedChip, outputs: set[int], inputs: set[int]) -> None:
        self._chip = chip
        self._outputs = outputs
        self._inputs = inputs
        self.pins = outputs | inputs
        (self._read_fd, self._write_fd) = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._edges: list[int] = []

    def edge(self, pin: int) -> None:
        if pin in self._inputs:
            self._edges.append(pin)
            with contextlib.suppress(BlockingIOError):
                os.write(self._write_fd, b"\x01")

    def fileno(self) -> int:
        return self._read_fd

    def read_edges(self) -> list[int]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 4096)
        (edges, self._edges) = (self._edges, [])
        return edges

    def get(self, pin: int) -> bool:
        return self._chip.levels[pin]

    def set(self, pin: int, value: bool) -> None:
        if pin not in self._outputs:
            raise OSError(f"line {pin} is not an output")
        self._chip._output(pin, value)

    def release(self) -> None:
        self._chip._release(self)
        os.close(self._read_fd)
        os.close(self._write_fd)


class SocketChip(Chip):
    """Lines served over a unix socket by a simulated machine (`kvmd.sim.machine`).

    It stands where /dev/gpiochipN would: the testenv's target runs in its own process
    and owns the levels. The protocol is lines of `<pin> <0|1>`: the server sends every
    level on connect, then `.`, then each change; the client sends the outputs it sets.
    The server does not arbitrate between requests, so claims are not checked here.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def request(self, consumer: str, *, outputs: dict[int, bool], inputs: list[int]) -> LineRequest:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(2.0)
            sock.connect(self._path)
            request = _SocketRequest(sock, set(outputs), set(inputs))
            for pin, level in outputs.items():
                request.set(pin, level)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return request


class _SocketRequest(LineRequest):
    def __init__(self, sock: socket.socket, outputs: set[int], inputs: set[int]) -> None:
        self._sock = sock
        self._outputs = outputs
        self._inputs = inputs
        self._levels: dict[int, bool] = {}
        self._buffer = b""
        while not self._buffer.endswith(b".\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError("the simulated chip closed the connection")
            self._buffer += chunk
        self._buffer = self._buffer[:-2]
        self._parse()
        missing = (outputs | inputs) - self._levels.keys()
        if missing:
            raise OSError(f"no line {min(missing)} on the simulated chip")

    def _parse(self) -> list[int]:
        (*complete, self._buffer) = self._buffer.split(b"\n")
        changed = []
        for line in complete:
            (pin, level) = (int(word) for word in line.split())
            if self._levels.get(pin) != bool(level):
                self._levels[pin] = bool(level)
                changed.append(pin)
        return changed

    def fileno(self) -> int:
        return self._sock.fileno()

    def read_edges(self) -> list[int]:
        while True:
            try:
                chunk = self._sock.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                raise OSError("the simulated chip closed the connection")
            self._buffer += chunk
        return [pin for pin in self._parse() if pin in self._inputs]

    def get(self, pin: int) -> bool:
        return self._levels[pin]

    def set(self, pin: int, value: bool) -> None:
        if pin not in self._outputs:
            raise OSError(f"line {pin} is not an output")
        self._levels[pin] = value
        self._sock.sendall(b"%d %d\n" % (pin, value))

    def release(self) -> None:
        self._sock.close()


class Lines:
    """A user's lines on one chip: logical values, debounced input changes, safe release.

    `on_change(pin, value)` is called from the loop with the debounced logical value of an
    input whenever it differs from the last one reported.
    """

    def __init__(
        self,
        chip: Chip,
        consumer: str,
        *,
        outputs: list[Line],
        inputs: list[Line],
        on_change: Callable[[int, bool], None],
        debounce: datetime.timedelta = datetime.timedelta(milliseconds=20),
    ) -> None:
        self._chip = chip
        self._consumer = consumer
        self._outputs = {line.pin: line for line in outputs}
        self._inputs = {line.pin: line for line in inputs}
        self._on_change = on_change
        self._debounce = debounce.total_seconds()
        self._request: LineRequest | None = None
        self._values: dict[int, bool] = {}
        self._pending: dict[int, asyncio.TimerHandle] = {}

    def __enter__(self) -> "Lines":
        return self.open()

    def open(self) -> "Lines":
        """Request the lines (outputs at idle) and start watching the inputs."""
        idle = {pin: line.inverted for pin, line in self._outputs.items()}  # logical 0
        self._request = self._chip.request(self._consumer, outputs=idle, inputs=list(self._inputs))
        self._values = {pin: self._read(pin) for pin in self._inputs}
        if self._inputs:
            asyncio.get_running_loop().add_reader(self._request.fileno(), self._on_edges)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Every output back to idle, every line released; safe to call twice."""
        request, self._request = self._request, None
        if request is None:
            return
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        try:
            for pin, line in self._outputs.items():
                try:
                    request.set(pin, line.inverted)
                except OSError as error:
                    logger.warning(
                        "GPIO %s: pin %d not returned to idle: %s", self._consumer, pin, error
                    )
        finally:
            if self._inputs:
                asyncio.get_running_loop().remove_reader(request.fileno())
            request.release()

    def value(self, pin: int) -> bool:
        """The last debounced value of an input, or the current value of an output."""
        if pin in self._inputs:
            return self._values[pin]
        return self._read(pin)

    def set(self, pin: int, value: bool) -> None:
        if self._request is None:
            raise OSError("the lines are released")
        self._request.set(pin, value != self._outputs[pin].inverted)

    def _read(self, pin: int) -> bool:
        if self._request is None:
            raise OSError("the lines are released")
        line = self._outputs.get(pin) or self._inputs[pin]
        return self._request.get(pin) != line.inverted

    def _on_edges(self) -> None:
        if self._request is None:
            return
        loop = asyncio.get_running_loop()
        try:
            edges = self._request.read_edges()
        except OSError as error:
            # The chip is gone (a simulator that quit): stop watching rather than spin.
            logger.warning("GPIO %s: inputs are no longer watched: %s", self._consumer, error)
            loop.remove_reader(self._request.fileno())
            return
        for pin in set(edges):
            # A bouncing contact: only the level that holds for the debounce time counts.
            if pin in self._pending:
                self._pending[pin].cancel()
            debounce = self._inputs[pin].debounce
            delay = self._debounce if debounce is None else debounce
            self._pending[pin] = loop.call_later(delay, self._settle, pin)

    def _settle(self, pin: int) -> None:
        self._pending.pop(pin, None)
        if self._request is None:
            return
        value = self._read(pin)
        if value != self._values.get(pin):
            self._values[pin] = value
            self._on_change(pin, value)


# Simulated chips by name: everything in one daemon that asks for "simulated" shares it,
# as ATX and user GPIO share a real chip.
_SIMULATED: dict[str, SimulatedChip] = {}
SIMULATED = "simulated"


def open_chip(device: str) -> Chip:
    """`simulated`, a unix socket served by a simulated machine, or a gpiochip device."""
    if device == SIMULATED:
        return simulated_chip()
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(Path(device).stat().st_mode):
            return SocketChip(device)
    return GpiodChip(device)


def simulated_chip() -> SimulatedChip:
    return _SIMULATED.setdefault(SIMULATED, SimulatedChip())


def forget_simulated_chip() -> None:
    """A fresh simulated chip for the next user (tests)."""
    _SIMULATED.pop(SIMULATED, None)
