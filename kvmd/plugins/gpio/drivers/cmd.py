# SPDX-License-Identifier: GPL-3.0-or-later
"""Channels that run a command: `cmd` on switch-on, `cmdret` reading its exit status."""

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Callable

from kvmd.plugins.gpio.config import CmdDriverConfig, CmdRetDriverConfig
from kvmd.plugins.gpio.drivers.driver import PollingDriver, TriggerDriver

logger = logging.getLogger(__name__)


async def run_command(argv: list[str], limit: float) -> int:
    """Exit status of `argv`; a command that can't start or overruns `limit` raises OSError."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(limit):
            (_, stderr) = await proc.communicate()
    except TimeoutError:
        raise OSError(f"{argv[0]} did not finish within {limit} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode:
        reason = stderr[-500:].decode(errors="replace").strip()
        logger.debug("%s exited with %d: %s", argv[0], proc.returncode, reason)
    return proc.returncode or 0


class CmdDriver(TriggerDriver):
    def __init__(self, name: str, config: CmdDriverConfig, notify: Callable[[], None]) -> None:
        super().__init__(name, config, notify)
        self._cmd = config.cmd
        self._timeout = config.timeout

    async def _trigger(self, pin: str) -> None:
        status = await run_command(self._cmd, self._timeout)
        if status != 0:
            raise OSError(f"{self._cmd[0]} exited with {status}")


class CmdRetDriver(PollingDriver[bool]):
    def __init__(self, name: str, config: CmdRetDriverConfig, notify: Callable[[], None]) -> None:
        super().__init__(name, config, notify, config.state_poll)
        self._cmd = config.cmd
        self._timeout = config.timeout

    async def _fetch(self) -> bool:
        return await run_command(self._cmd, self._timeout) == 0

    def read(self, pin: str) -> bool:
        return self._current()

    async def write(self, pin: str, state: bool) -> None:
        raise self._offline("cmdret has no outputs")
