# SPDX-License-Identifier: GPL-3.0-or-later
"""ManagedProcess against real child processes."""

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import pytest

from kvmd.supervisor.process import ManagedProcess, ProcessOptions
from tests.procs import alive

FAST = ProcessOptions(name="test", stop_timeout=0.5, restart_delay_min=0.05, restart_delay_max=0.2)


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "child.sh"
    path.write_text("#!/bin/sh\necho $$ >> " + str(tmp_path / "pids") + "\n" + body)
    path.chmod(0o755)
    return [str(path)]


def pids(tmp_path: Path) -> list[int]:
    try:
        return [int(line) for line in (tmp_path / "pids").read_text().split()]
    except FileNotFoundError:
        return []


async def wait_for(predicate, limit=5.0):
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def supervising(process: ManagedProcess):
    task = asyncio.get_running_loop().create_task(process.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_starts_when_wanted_and_stops_when_not(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    process = ManagedProcess(
        FAST, lambda: script(tmp_path, "echo hello from child\nexec sleep 30\n")
    )
    async with supervising(process):
        await asyncio.sleep(0.1)
        assert pids(tmp_path) == []
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 1 and process.pid is not None)
        pid = pids(tmp_path)[0]
        await wait_for(lambda: "hello from child" in caplog.text)
        process.set_wanted(False)
        await wait_for(lambda: not alive(pid))
        assert process.pid is None
        assert process.restarts == 0


async def test_crashes_are_restarted_with_backoff(tmp_path):
    process = ManagedProcess(FAST, lambda: script(tmp_path, "exec sleep 30\n"))
    async with supervising(process):
        process.set_wanted(True)
        for n in range(1, 6):
            await wait_for(
                lambda n=n: len(pids(tmp_path)) == n and process.pid == pids(tmp_path)[-1]
            )
            os.kill(pids(tmp_path)[-1], signal.SIGKILL)
        await wait_for(lambda: len(pids(tmp_path)) == 6)
        assert process.restarts == 5


async def test_sigterm_then_sigkill_of_the_whole_group(tmp_path):
    # The child ignores SIGTERM and has a grandchild: both must be gone after stop.
    body = f"trap '' TERM\nsleep 30 &\necho $! >> {tmp_path}/pids\nwait\n"
    process = ManagedProcess(FAST, lambda: script(tmp_path, body))
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 2)
        process.set_wanted(False)
        await wait_for(lambda: not any(alive(pid) for pid in pids(tmp_path)))


async def test_cancelling_the_loop_stops_the_child(tmp_path):
    process = ManagedProcess(FAST, lambda: script(tmp_path, "exec sleep 30\n"))
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 1)
    assert not alive(pids(tmp_path)[0])


async def test_restart_uses_fresh_arguments(tmp_path):
    generation = iter(range(100))
    process = ManagedProcess(
        FAST,
        lambda: [
            *script(tmp_path, 'echo "gen $1" >> ' + f"{tmp_path}/gens\nexec sleep 30\n"),
            str(next(generation)),
        ],
    )
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 1)
        process.restart()
        await wait_for(lambda: len(pids(tmp_path)) == 2)
        assert (tmp_path / "gens").read_text() == "gen 0\ngen 1\n"
        assert not alive(pids(tmp_path)[0])
        assert process.restarts == 0


async def test_a_missing_program_is_retried_not_fatal(tmp_path, caplog):
    process = ManagedProcess(FAST, lambda: [str(tmp_path / "nope")])
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: process.restarts >= 2)
    assert "Can't start" in caplog.text


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    for pid in pids(tmp_path):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"pid {pid} outlived the test")
