# SPDX-License-Identifier: GPL-3.0-or-later
"""`python -m kvmd` as the benches run it: started on a config, waited for, measured, stopped."""

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import aiohttp

REPO = Path(__file__).resolve().parent.parent
ADMIN = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}


def spawn_daemon(
    config: Path, tmp: Path, output: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """The daemon on `config` alone (no override files); its output to `output` if given."""
    argv = [sys.executable, "-m", "kvmd", "--main-config", str(config)]
    argv += ["--override-dir", str(tmp / "none")]
    return subprocess.Popen(argv, cwd=REPO, stdout=output, stderr=output)


@contextlib.asynccontextmanager
async def running(
    config: Path, tmp: Path, port: int, log: Path | None = None
) -> AsyncIterator[tuple[str, int]]:
    """The daemon on `config`, ready: its URL and pid; terminated on the way out.

    With `log`, what it writes goes to that file instead of the bench's own output.
    """
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("wb")) if log is not None else None
        proc = spawn_daemon(config, tmp, output)
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(url)
            yield (url, proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)


async def wait_ready(url: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url + "/api/auth/check", headers=ADMIN) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("kvmd did not start")


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM, RssAnon) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")
