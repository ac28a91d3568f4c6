# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated hardware processes for development and tests off a Pi."""

import asyncio
import contextlib
import signal
from collections.abc import Awaitable
from pathlib import Path


async def serve_until_signalled(service: Awaitable[None]) -> None:
    """Await `service` until SIGTERM or SIGINT, which end it quietly (exit status 0)."""
    loop = asyncio.get_running_loop()
    runner = asyncio.current_task()
    if runner is not None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await service


def replace_text(path: Path, text: str) -> None:
    """Write `path` in one rename, so a reader never sees half of it.

    No fsync: these files are rewritten many times a second and mean nothing after a crash.
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
