# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated board's kernel files, read as kvmd.info reads a Pi's."""

import asyncio
import contextlib
from pathlib import Path

from kvmd.info.collect import read_uptime
from kvmd.info.health import CpuMeter, read_cpu_times, read_memory, read_temp
from kvmd.sim.board import CPUS, HZ, Board, keep_writing, write_files


def test_cpu_load_is_plausible_and_moves(tmp_path: Path) -> None:
    board = Board(seed=1)
    meter = CpuMeter(tmp_path)
    loads = []
    for _ in range(20):
        write_files(tmp_path, board)
        loads.append(meter.percent())
        board.advance(5.0)  # kvmd's default health poll
    assert loads[0] is None  # one reading is no load yet, on a Pi too
    assert all(load is not None and 0 <= load <= 100 for load in loads[1:])
    assert len(set(loads[1:])) > 1


def test_the_files_agree_with_each_other(tmp_path: Path) -> None:
    board = Board(seed=2, booted=1_700_000_000)
    for _ in range(10):
        board.advance(1.0)
    write_files(tmp_path, board)
    stat = (tmp_path / "proc/stat").read_text().splitlines()
    per_cpu = [[int(v) for v in line.split()[1:]] for line in stat[1 : 1 + CPUS]]
    assert [line.split()[0] for line in stat[: 1 + CPUS]] == ["cpu", "cpu0", "cpu1", "cpu2", "cpu3"]
    assert [int(v) for v in stat[0].split()[1:]] == [sum(c) for c in zip(*per_cpu, strict=True)]
    assert "btime 1700000000" in stat
    # Ten seconds on four CPUs: each counted 100 ticks a second (rounding down each field).
    times = read_cpu_times(tmp_path / "proc/stat")
    assert times is not None
    assert CPUS * 10 * HZ - 7 * CPUS <= times.total <= CPUS * 10 * HZ
    assert read_uptime(tmp_path).total == 10
    (uptime, idle) = map(float, (tmp_path / "proc/uptime").read_text().split())
    assert idle <= uptime * CPUS
    memory = read_memory(tmp_path)
    assert memory.total == 3884332 * 1024
    assert memory.percent is not None
    assert 5 < memory.percent < 50
    temp = read_temp(tmp_path)
    assert temp is not None
    assert 30 < temp < 80


async def test_keeps_the_files_up_to_date(tmp_path: Path) -> None:
    task = asyncio.get_running_loop().create_task(keep_writing(tmp_path, Board()))
    try:
        async with asyncio.timeout(5):
            while read_uptime(tmp_path).total < 1:
                await asyncio.sleep(0.1)
        # Each file is replaced whole: no temporary file is left beside it.
        assert sorted(p.name for p in (tmp_path / "proc").iterdir()) == [
            "meminfo",
            "stat",
            "uptime",
        ]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
