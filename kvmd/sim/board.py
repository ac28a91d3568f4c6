# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated PiKVM board's kernel files, moving as a running Pi's do.

`python -m kvmd.sim.board --root DIR` boots a four-core board and, every second, rewrites
the files of DIR that kvmd reads as its sysroot (kvmd.info): `proc/stat` (CPU time since
boot), `proc/uptime`, `proc/meminfo` and `sys/class/thermal/thermal_zone0/temp`. The load
wanders, and memory use and temperature follow it. Other files of DIR (the device tree)
are left alone: `make run` copies testenv/fakes there first, whose frozen files the unit
tests read. Each file is replaced in one rename, so a reader never sees half of one.
"""

import argparse
import asyncio
import dataclasses
import random
import time
from pathlib import Path

from kvmd.sim import replace_text, serve_until_signalled

# The kernel counts CPU time in USER_HZ ticks, 100 a second on every Linux architecture.
HZ = 100
CPUS = 4
# How the busy time splits between user, system and softirq, as on an idle-ish Pi.
_SPLIT = (0.7, 0.25, 0.05)
# A Pi 4 with 4 GB: MemTotal in kB, and what the OS alone keeps in use.
_MEM_TOTAL = 3884332
_MEM_BASE = 0.10
_PERIOD = 1.0


@dataclasses.dataclass
class CpuTimes:
    """One CPU's ticks in /proc/stat's order (steal, guest and guest_nice stay 0)."""

    user: float = 0.0
    nice: float = 0.0
    system: float = 0.0
    idle: float = 0.0
    iowait: float = 0.0
    irq: float = 0.0
    softirq: float = 0.0

    def ticks(self) -> list[int]:
        return [int(value) for value in dataclasses.astuple(self)] + [0, 0, 0]


class Board:
    """The board's counters, advanced by `advance(seconds)`; `files()` renders them."""

    def __init__(self, seed: int | None = None, booted: float | None = None) -> None:
        self._random = random.Random(seed)  # noqa: S311 - a simulation, not a secret
        self.booted = time.time() if booted is None else booted
        self.uptime = 0.0
        self.load = 0.08  # the share of time each CPU is busy, around which it varies
        self.cpus = [CpuTimes() for _ in range(CPUS)]
        self._switches = 0.0

    def advance(self, seconds: float) -> None:
        # A random walk: the load drifts between quiet and a few busy seconds.
        self.load = min(max(self.load + self._random.gauss(0, 0.04), 0.02), 0.6)
        self.uptime += seconds
        for cpu in self.cpus:
            busy = min(self.load * self._random.uniform(0.5, 1.5), 1.0) * seconds * HZ
            (user, system, softirq) = (busy * share for share in _SPLIT)
            cpu.user += user
            cpu.system += system
            cpu.softirq += softirq
            cpu.idle += seconds * HZ - busy
        self._switches += seconds * (300 + 4000 * self.load) * CPUS

    def files(self) -> dict[str, str]:
        return {
            "proc/stat": self._stat(),
            "proc/uptime": self._uptime(),
            "proc/meminfo": self._meminfo(),
            "sys/class/thermal/thermal_zone0/temp": f"{round(38000 + 25000 * self.load)}\n",
        }

    def _stat(self) -> str:
        per_cpu = [cpu.ticks() for cpu in self.cpus]
        total = [sum(column) for column in zip(*per_cpu, strict=True)]
        lines = ["cpu  " + " ".join(map(str, total))]
        lines += [f"cpu{n} " + " ".join(map(str, ticks)) for (n, ticks) in enumerate(per_cpu)]
        lines += [
            f"ctxt {int(self._switches)}",
            f"btime {int(self.booted)}",
            f"processes {300 + int(self.uptime) // 10}",
            "procs_running 1",
            "procs_blocked 0",
        ]
        return "\n".join(lines) + "\n"

    def _uptime(self) -> str:
        # The second number is the idle time of all CPUs added up.
        idle = sum(cpu.idle for cpu in self.cpus) / HZ
        return f"{self.uptime:.2f} {idle:.2f}\n"

    def _meminfo(self) -> str:
        used = round(_MEM_TOTAL * (_MEM_BASE + 0.05 * self.load))
        cached = 503244
        available = _MEM_TOTAL - used
        fields = {
            "MemTotal": _MEM_TOTAL,
            "MemFree": available - cached,
            "MemAvailable": available,
            "Cached": cached,
            "SwapTotal": 0,
            "SwapFree": 0,
        }
        return "".join(f"{key + ':':<16}{value:>8} kB\n" for (key, value) in fields.items())


def write_files(root: Path, board: Board) -> None:
    for name, text in board.files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_text(path, text)


async def keep_writing(root: Path, board: Board) -> None:
    last = time.monotonic()
    while True:
        write_files(root, board)
        await asyncio.sleep(_PERIOD)
        now = time.monotonic()
        board.advance(now - last)
        last = now


def main() -> None:
    parser = argparse.ArgumentParser(prog="kvmd.sim.board", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="kvmd's sysroot")
    args = parser.parse_args()
    asyncio.run(serve_until_signalled(keep_writing(args.root, Board())))


if __name__ == "__main__":
    main()
