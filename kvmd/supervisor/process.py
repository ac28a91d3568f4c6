# SPDX-License-Identifier: GPL-3.0-or-later
"""A child process kept running while it is wanted: restarted on crash, stopped cleanly."""

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProcessOptions:
    """How a `ManagedProcess` restarts and stops its child."""

    name: str
    # SIGTERM, then this long for a clean exit before SIGKILL to the whole group
    # (ustreamer needs up to ~3 s to release the capture device).
    stop_timeout: float = 3.0
    # A crash after a healthy run restarts after the least delay; each further crash that
    # comes quicker than `stable_after` doubles it, up to the most.
    restart_delay_min: float = 0.5
    restart_delay_max: float = 10.0
    # A child that ran this long was healthy. A couple of seconds: ustreamer that gets as far
    # as capturing and then loses the device should be back before viewers give up, while
    # one that can't start at all (a wrong option, no device) crashes well within it.
    stable_after: float = 2.0
    # A restart that was asked for starts the child again this long after the old one
    # stopped (PiKVM's streamer waits 1 s: a capture device needs a moment once closed).
    reset_delay: float = 0.0


# Run before each start of the child, and after each stop (PiKVM's pre_start_cmd and
# post_stop_cmd); they must not raise.
Hook = Callable[[], Awaitable[None]]


class ManagedProcess:
    """Runs `argv()` while wanted. `run()` is the supervising loop; it returns only when cancelled.

    The child gets its own session, so that stopping it also stops whatever it spawned;
    its stdout and stderr go to the log line by line.
    """

    def __init__(
        self,
        options: ProcessOptions,
        argv: Callable[[], list[str]],
        *,
        before: Hook | None = None,
        after: Hook | None = None,
    ) -> None:
        """Prepare; nothing runs until `run()` is awaited and `set_wanted(True)` is called."""
        self._options = options
        self._argv = argv
        self._before = before
        self._after = after
        self._after_due = False
        self._log = logging.getLogger(f"kvmd.{options.name}")
        self._wanted = False
        self._restart = False
        self._changed = asyncio.Event()
        self._asked = 0  # set_wanted() changes and restart() calls so far; ends a back-off
        self._proc: asyncio.subprocess.Process | None = None
        self.restarts = 0

    @property
    def wanted(self) -> bool:
        """Whether the child should be running."""
        return self._wanted

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def set_wanted(self, wanted: bool) -> None:
        """Start or stop the child; the loop acts on it at once."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._ask()

    def restart(self) -> None:
        """Stop the child and start it again (with fresh arguments) if it is still wanted.

        After a crash, the restart waiting for its back-off happens at once.
        """
        if self._wanted:
            self._restart = True
            self._ask()

    def _ask(self) -> None:
        self._asked += 1
        self._changed.set()

    async def run(self) -> None:
        """Supervise until cancelled; the child never outlives this loop."""
        delay = 0.0  # of the last restart after a crash; 0: the last run ended cleanly
        try:
            while True:
                while not self._wanted:
                    await self._wait_change()
                (started, asked) = (time.monotonic(), self._asked)
                crashed = await self._run_once()
                if not crashed:
                    delay = 0.0
                    await self._pause_after_restart()
                    continue
                healthy = time.monotonic() - started >= self._options.stable_after
                delay = self._next_delay(0.0 if healthy else delay)
                self.restarts += 1
                self._log.warning("Restarting in %.1f s", delay)
                await self._back_off(delay, asked)
        finally:
            await asyncio.shield(self._finish())

    async def _pause_after_restart(self) -> None:
        """Wait `reset_delay` after a restart that was asked for.

        A stop or another restart asked for meanwhile ends the wait at once.
        """
        if self._restart and self._wanted and self._options.reset_delay:
            await self._back_off(self._options.reset_delay, self._asked)

    def _next_delay(self, last: float) -> float:
        """Double the last delay, or start from the least after a healthy or clean run."""
        options = self._options
        return min(last * 2 if last else options.restart_delay_min, options.restart_delay_max)

    async def _back_off(self, delay: float, asked: int) -> None:
        """Sleep `delay`; a restart, stop or start asked for since `asked` ends it at once."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                while self._asked == asked:
                    await self._wait_change()

    async def _wait_change(self) -> None:
        await self._changed.wait()
        self._changed.clear()

    async def _run_once(self) -> bool:
        """Run the child until it exits (True: it crashed) or is no longer wanted (False)."""
        self._restart = False
        argv = self._argv()
        if self._before is not None:
            await self._before()
        self._after_due = True
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.error("Can't start %s: %s", argv[0], exc)
            await self._finish()
            return True
        self._proc = proc
        self._log.info("Started pid=%d: %s", proc.pid, " ".join(argv))
        async with asyncio.TaskGroup() as tasks:
            drain = tasks.create_task(self._drain(proc))
            exited = tasks.create_task(proc.wait())
            while not exited.done() and self._wanted and not self._restart:
                change = tasks.create_task(self._wait_change())
                await asyncio.wait((exited, change), return_when=asyncio.FIRST_COMPLETED)
                change.cancel()
            crashed = exited.done()
            await self._finish()
            await drain
        if crashed:
            self._log.error("Exited with status %s", proc.returncode)
        return crashed

    async def _drain(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None  # noqa: S101 -- stdout=PIPE above
        async for raw in proc.stdout:
            self._log.info("%s", raw.decode(errors="replace").rstrip())

    async def _finish(self) -> None:
        """Stop the child, then run the `after` hook once for its start."""
        await self._stop_child()
        if self._after_due:
            self._after_due = False
            if self._after is not None:
                await self._after()

    async def _stop_child(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(self._options.stop_timeout):
                await proc.wait()
        except TimeoutError:
            self._log.warning("pid=%d ignored SIGTERM, killing its group", proc.pid)
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        # Anything the child left behind in its session goes too.
        _signal_group(proc.pid, signal.SIGKILL)
        self._log.info("Stopped pid=%d with status %s", proc.pid, proc.returncode)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
