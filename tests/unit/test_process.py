# SPDX-License-Identifier: GPL-3.0-or-later
"""ManagedProcess against real child processes."""

import asyncio
import contextlib
import dataclasses
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


def delays(caplog) -> list[float]:
    """The back-off of each restart, as logged."""
    return [r.args[0] for r in caplog.records if r.msg == "Restarting in %.1f s"]


def crashing(tmp_path: Path, runs: dict[int, str]) -> list[str]:
    """A child whose n-th run does `runs[n]` (default: crash at once)."""
    cases = "".join(f"  {n}) {body} ;;\n" for (n, body) in runs.items())
    count = f"n=$(wc -l < {tmp_path}/pids)\n"
    return script(tmp_path, count + f'case "$n" in\n{cases}  *) exit 1 ;;\nesac\n')


async def test_a_tight_crash_loop_backs_off_up_to_the_cap(tmp_path, caplog):
    options = dataclasses.replace(FAST, restart_delay_max=0.4, stable_after=5.0)
    process = ManagedProcess(options, lambda: crashing(tmp_path, {7: "exec sleep 30"}))
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 7 and process.pid == pids(tmp_path)[-1])
    assert delays(caplog) == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]


async def test_a_crash_after_a_healthy_run_restarts_at_once(tmp_path, caplog):
    options = dataclasses.replace(FAST, restart_delay_max=0.4, stable_after=0.3)
    runs = {4: "sleep 0.5; exit 1", 7: "sleep 0.5; exit 1", 8: "exec sleep 30"}
    process = ManagedProcess(options, lambda: crashing(tmp_path, runs))
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 8 and process.pid == pids(tmp_path)[-1])
    # The quick crashes back off; each one after a healthy run starts over.
    assert delays(caplog) == [0.05, 0.1, 0.2, 0.05, 0.1, 0.2, 0.05]


@pytest.mark.timeout(30)
async def test_by_default_a_few_seconds_are_a_healthy_run(tmp_path, caplog):
    # A streamer that runs for seconds, then loses its capture device: each restart must
    # come quickly, however often it happens.
    options = ProcessOptions(name="test", stop_timeout=0.5, restart_delay_min=0.05)
    body = "sleep 2.1; exit 1"
    process = ManagedProcess(options, lambda: crashing(tmp_path, {1: body, 2: body, 3: body}))
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(delays(caplog)) == 3, limit=20)
    assert delays(caplog) == [0.05, 0.05, 0.05]


async def test_a_restart_or_a_stop_ends_the_back_off(tmp_path, caplog):
    options = dataclasses.replace(FAST, restart_delay_min=60.0, restart_delay_max=60.0)
    process = ManagedProcess(options, lambda: crashing(tmp_path, {3: "exec sleep 30"}))
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(delays(caplog)) == 1)
        process.restart()  # new parameters: no reason to wait for them
        await wait_for(lambda: len(delays(caplog)) == 2 and len(pids(tmp_path)) == 2)
        process.set_wanted(False)
        process.set_wanted(True)  # e.g. the last viewer left and a new one came
        await wait_for(lambda: len(pids(tmp_path)) == 3 and process.pid == pids(tmp_path)[-1])
        process.set_wanted(True)  # no change: the child keeps running
        assert process.wanted
        process.set_wanted(False)
        await wait_for(lambda: process.pid is None)
        process.restart()  # not wanted: nothing to restart
        await asyncio.sleep(0.1)
    assert len(pids(tmp_path)) == 3
    assert delays(caplog) == [60.0, 60.0]


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


async def test_hooks_run_before_each_start_and_after_each_stop(tmp_path):
    events = []

    def hook(name):
        async def run():
            events.append((name, list(map(alive, pids(tmp_path)))))

        return run

    process = ManagedProcess(
        FAST,
        lambda: script(tmp_path, "exec sleep 30\n"),
        before=hook("before"),
        after=hook("after"),
    )
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 1)
        process.restart()
        await wait_for(lambda: len(pids(tmp_path)) == 2)
    # Before: no child of its own yet; after: its child is gone. Cancelling stops the last.
    assert events == [
        ("before", []),
        ("after", [False]),
        ("before", [False]),
        ("after", [False, False]),
    ]


async def test_a_restart_waits_reset_delay_a_crash_does_not(tmp_path):
    options = dataclasses.replace(FAST, reset_delay=0.6)
    starts = []

    async def started():
        starts.append(asyncio.get_running_loop().time())

    process = ManagedProcess(options, lambda: script(tmp_path, "exec sleep 30\n"), before=started)
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: len(pids(tmp_path)) == 1)
        process.restart()
        await wait_for(lambda: len(pids(tmp_path)) == 2)
        assert starts[1] - starts[0] >= 0.6
        # A stop asked for during the pause ends it: nothing starts.
        process.restart()
        await asyncio.sleep(0.2)
        process.set_wanted(False)
        await asyncio.sleep(0.7)
        assert len(pids(tmp_path)) == 2
        assert process.pid is None


async def test_a_failed_start_still_runs_the_after_hook(tmp_path):
    ran = []

    async def after():
        ran.append(True)

    process = ManagedProcess(FAST, lambda: [str(tmp_path / "nope")], after=after)
    async with supervising(process):
        process.set_wanted(True)
        await wait_for(lambda: process.restarts >= 1)
    assert ran == [True] * process.restarts  # once for each start that failed


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    for pid in pids(tmp_path):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"pid {pid} outlived the test")
