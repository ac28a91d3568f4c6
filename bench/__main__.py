# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: auth throughput, websocket fan-out delay and idle memory, on loopback.

Every loop is bounded by a count and a time limit. Figures are printed, never asserted.
"""

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from kvmd.auth.htpasswd import hash_password

REPO = Path(__file__).resolve().parent.parent
TESTENV = REPO / "testenv"
ADMIN = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}
TARGETS = {"header_vs_cookie": 0.80, "fanout_p99_ms": 50.0, "idle_rss_mb": 45.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp: Path, port: int) -> Path:
    # Real bcrypt at its default cost: the point is to show the cache hides it.
    (tmp / "htpasswd").write_text(f"admin:{hash_password('admin')}\n")
    config = {
        "kvmd": {
            "sysroot": str(TESTENV / "fakes"),
            "server": {"unix": "", "host": "127.0.0.1", "port": port, "access_log": False},
            "auth": {"internal": {"file": str(tmp / "htpasswd")}, "totp": {"secret": {"file": ""}}},
            "info": {
                "meta": str(TESTENV / "meta.yaml"),
                "extras": str(TESTENV / "extras"),
                "hw": {
                    "platform": str(TESTENV / "platform"),
                    "vcgencmd_cmd": [str(TESTENV / "vcgencmd")],
                },
            },
            "log_reader": {"source": "memory"},
        },
        "logging": {"level": "warning"},
    }
    path = tmp / "main.yaml"
    path.write_text(json.dumps(config))
    return path


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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def throughput(
    url: str, *, headers: dict[str, str], cookies: dict[str, str], seconds: float, limit: int
) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while done < limit and time.monotonic() < deadline:
            async with session.get(url + "/api/auth/check", headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"auth check answered {response.status}")
            done += 1

    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector, cookies=cookies) as session:
        started = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(16)))
        return done / (time.monotonic() - started)


async def bench_daemon(tmp: Path) -> dict[str, float]:
    port = free_port()
    config = write_config(tmp, port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kvmd",
            "--main-config",
            str(config),
            "--override-dir",
            str(tmp / "none"),
        ],
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        await asyncio.sleep(3.0)
        idle = rss_mb(proc.pid)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url + "/api/auth/login", data={"user": "admin", "passwd": "admin"}
            ) as response,
        ):
            token = response.cookies["auth_token"].value
        # Warm both paths (the header path pays one bcrypt), then measure each twice, interleaved.
        await throughput(url, headers={}, cookies={"auth_token": token}, seconds=1, limit=500)
        await throughput(url, headers=ADMIN, cookies={}, seconds=1, limit=500)
        cookie_runs, header_runs = [], []
        for _ in range(2):
            cookie_runs.append(
                await throughput(
                    url, headers={}, cookies={"auth_token": token}, seconds=4, limit=40_000
                )
            )
            header_runs.append(
                await throughput(url, headers=ADMIN, cookies={}, seconds=4, limit=40_000)
            )
        loaded = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "idle_rss_mb": idle,
        "rss_after_load_mb": loaded,
        "cookie_rps": max(cookie_runs),
        "header_rps": max(header_runs),
    }


async def bench_fanout(
    tmp: Path, clients: int = 100, count: int = 200, interval: float = 0.02
) -> dict[str, float]:
    port = free_port()
    config = write_config(tmp, port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fanout_server",
            str(config),
            str(clients),
            str(count),
            str(interval),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = f"ws://127.0.0.1:{port}/api/ws?stream=0"
    delays: list[float] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(url, headers=ADMIN) for _ in range(clients)]

            async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
                seen = 0
                deadline = time.monotonic() + count * interval + 20
                while seen < count and time.monotonic() < deadline:
                    message = await ws.receive(timeout=10)
                    arrived = time.monotonic_ns()
                    event = json.loads(message.data)
                    meta = event["event"].get("meta") if event["event_type"] == "info" else None
                    if isinstance(meta, dict) and "bench" in meta:
                        delays.append((arrived - meta["bench"]["ts"]) / 1e6)
                        seen += 1

            await asyncio.gather(*(reader(ws) for ws in sockets))
            for ws in sockets:
                await ws.close()
    finally:
        proc.terminate()
        proc.wait(10)
    delays.sort()
    return {
        "fanout_deliveries": len(delays),
        "fanout_p50_ms": statistics.median(delays),
        "fanout_p99_ms": delays[int(len(delays) * 0.99) - 1],
        "fanout_max_ms": delays[-1],
    }


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = await bench_daemon(Path(tmp))
        results |= await bench_fanout(Path(tmp))
    ratio = results["header_rps"] / results["cookie_rps"]
    print()
    print("kvmd bench (loopback, this machine)")
    print(f"  GET /api/auth/check, cookie auth:        {results['cookie_rps']:8.0f} req/s")
    print(
        f"  GET /api/auth/check, header auth (bcrypt):{results['header_rps']:8.0f} req/s"
        f"  = {ratio:.0%} of cookie (target >= {TARGETS['header_vs_cookie']:.0%})"
    )
    print(
        f"  ws fan-out to 100 clients, {results['fanout_deliveries']:.0f} deliveries:"
        f" p50 {results['fanout_p50_ms']:.2f} ms, p99 {results['fanout_p99_ms']:.2f} ms,"
        f" max {results['fanout_max_ms']:.2f} ms (target p99 < {TARGETS['fanout_p99_ms']:.0f} ms)"
    )
    print(
        f"  idle RSS of the daemon:                   {results['idle_rss_mb']:8.1f} MB"
        f" (target < {TARGETS['idle_rss_mb']:.0f} MB;"
        f" after load {results['rss_after_load_mb']:.1f} MB)"
    )


if __name__ == "__main__":
    asyncio.run(main())
