# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: auth throughput, websocket fan-out delay and idle memory, on loopback.

Every loop is bounded by a count and a time limit. Figures are printed, never asserted.
"""

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import QUICK, sized, timed
from bench.auth_logins import bench_logins, print_logins
from bench.daemon import ADMIN, REPO, running, spawn_daemon, status_mb, wait_ready
from bench.fuzz import bench_fuzz, print_fuzz
from bench.gpio import bench_edges, gpio_override, serving
from bench.hid import StampingHost, bench_hid, hid_override
from bench.media import bench_media, print_media
from bench.msd import bench_upload, msd_override
from bench.vnc import bench_vnc, print_vnc
from kvmd.auth.htpasswd import hash_password
from kvmd.sim.ustreamer import streamer_section

TESTENV = REPO / "testenv"
TARGETS = {
    "header_vs_cookie": 0.80,
    "fanout_p99_ms": 50.0,
    "idle_rss_mb": 45.0,
    "move_lag_ms": 20.0,
    "upload_vs_dd": 0.85,
    "permission_overhead": 0.05,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp: Path, port: int, streamer: dict[str, object] | None = None) -> Path:
    # Real bcrypt at its default cost: the point is to show the cache hides it.
    (tmp / "htpasswd").write_text(f"admin:{hash_password('admin')}\n")
    (tmp / "htpasswd").chmod(0o600)  # kvmd refuses a password file every user may read
    config = {
        "kvmd": {
            "sysroot": str(TESTENV / "fakes"),
            "server": {"unix": "", "host": "127.0.0.1", "port": port, "access_log": False},
            "auth": {
                "internal": {"file": str(tmp / "htpasswd")},
                "totp": {"secret": {"file": ""}},
                # Directory logins (the login bench) are remembered here, not in /var/lib.
                "files": {"directory": str(tmp / "directory.json")},
            },
            "info": {
                "meta": str(TESTENV / "meta.yaml"),
                "extras": str(TESTENV / "extras"),
                "hw": {
                    "platform": str(TESTENV / "platform"),
                    "vcgencmd_cmd": [str(TESTENV / "vcgencmd")],
                },
            },
            "log_reader": {"source": "memory"},
            **({"streamer": streamer} if streamer else {}),
        },
        "logging": {"level": "warning"},
    }
    path = tmp / "main.yaml"
    path.write_text(json.dumps(config))
    return path


async def throughput(
    url: str,
    *,
    headers: dict[str, str],
    cookies: dict[str, str],
    seconds: float,
    limit: int,
    count: list[int] | None = None,
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
        if count is not None:
            count.append(done)
        return done / (time.monotonic() - started)


async def bench_daemon(tmp: Path) -> dict[str, float]:
    port = free_port()
    config = write_config(tmp, port)
    proc = spawn_daemon(config, tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        await asyncio.sleep(3.0)
        idle = status_mb(proc.pid)
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
                    url,
                    headers={},
                    cookies={"auth_token": token},
                    seconds=timed(4, 0.3),
                    limit=sized(40_000, 300),
                )
            )
            header_runs.append(
                await throughput(
                    url, headers=ADMIN, cookies={}, seconds=timed(4, 0.3), limit=sized(40_000, 300)
                )
            )
        loaded = status_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "idle_rss_mb": idle,
        "rss_after_load_mb": loaded,
        "cookie_rps": max(cookie_runs),
        "header_rps": max(header_runs),
    }


async def bench_permissions(tmp: Path, rounds: int = sized(12, 1)) -> dict[str, Any]:
    """Header-auth /api/auth/check with and without the security model, interleaved."""
    servers = {}
    urls = {}
    try:
        for mode in ("full", "bare"):
            folder = tmp / f"perm-{mode}"
            folder.mkdir()
            port = free_port()
            config = write_config(folder, port)
            # Rights come from a users file, as on a device with roles.
            (folder / "users.yaml").write_text("viewer: {roles: [viewer]}\n")
            data = json.loads(config.read_text())
            data["kvmd"]["auth"]["files"] = {
                "users": str(folder / "users.yaml"),
                "roles": str(folder / "roles.yaml"),
                "keys": str(folder / "keys.json"),
                "directory": str(folder / "directory.json"),
            }
            data["kvmd"]["audit"] = {"file": str(folder / "audit.log")}
            config.write_text(json.dumps(data))
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.auth_server", str(config), mode],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            servers[mode] = proc
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            urls[mode] = f"http://127.0.0.1:{port}"
            await throughput(urls[mode], headers=ADMIN, cookies={}, seconds=1, limit=500)
        runs: dict[str, list[float]] = {"full": [], "bare": []}
        cpu: dict[str, list[float]] = {"full": [], "bare": []}
        for _ in range(rounds):
            for mode in ("bare", "full"):
                before = cpu_seconds(servers[mode].pid)
                stats: list[int] = []
                rps = await throughput(
                    urls[mode],
                    headers=ADMIN,
                    cookies={},
                    seconds=timed(1.5, 0.2),
                    limit=sized(20_000, 200),
                    count=stats,
                )
                runs[mode].append(rps)
                # The server's own CPU per request: what bounds throughput on a busy Pi,
                # and far steadier here than wall-clock rates shared with the client.
                cpu[mode].append((cpu_seconds(servers[mode].pid) - before) / stats[0] * 1e6)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(10)
    (full, bare) = (statistics.median(runs["full"]), statistics.median(runs["bare"]))
    (full_us, bare_us) = (statistics.median(cpu["full"]), statistics.median(cpu["bare"]))
    # Each round measures both back to back, so drift of the machine cancels in its ratio.
    paired = statistics.median(f / b for (f, b) in zip(cpu["full"], cpu["bare"], strict=True))
    return {
        "perm_full_rps": full,
        "perm_bare_rps": bare,
        "perm_full_cpu_us": full_us,
        "perm_bare_cpu_us": bare_us,
        "perm_overhead": paired - 1,
        "perm_runs": {mode: [round(r) for r in values] for (mode, values) in cpu.items()},
    }


def print_permissions(results: dict[str, Any]) -> None:
    print(
        f"  GET /api/auth/check, header auth: daemon CPU per request with the security model"
        f" {results['perm_full_cpu_us']:.0f} us, without {results['perm_bare_cpu_us']:.0f} us"
        f"; median of the paired rounds {results['perm_overhead']:+.1%}"
        f" (target < {TARGETS['permission_overhead']:.0%}); throughput"
        f" {results['perm_full_rps']:.0f} vs {results['perm_bare_rps']:.0f} req/s;"
        f" CPU us per round {results['perm_runs']}"
    )


async def bench_fanout(
    tmp: Path, clients: int = sized(100, 5), count: int = sized(200, 10), interval: float = 0.02
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_with(marker: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


async def until(predicate, limit: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > limit:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def state_answers(sock: str) -> bool:
    try:
        connector = aiohttp.UnixConnector(path=sock)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://localhost/state") as response,
        ):
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def bench_streamer(
    tmp: Path, clients: int = sized(10, 2), seconds: float = timed(5.0, 0.5)
) -> dict[str, float]:
    port = free_port()
    sock = str(tmp / "sim-bench.sock")
    streamer = streamer_section(
        sock, "--desired-fps={desired_fps}", shutdown_delay=1.0, desired_fps={"default": 30}
    )
    config = write_config(tmp, port, streamer)
    proc = spawn_daemon(config, tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url + "/api/ws", headers=ADMIN)
            started = time.monotonic()
            while not await state_answers(sock):
                if time.monotonic() - started > 20:
                    raise RuntimeError("the streamer did not start")
                await asyncio.sleep(0.005)
            to_state = time.monotonic() - started
            (sim,) = pids_with(sock)
            await ws.close()
            to_exit = await until(lambda: not Path(f"/proc/{sim}").exists(), 20)
            frames = 0

            async def watch() -> None:
                nonlocal frames
                async with session.get(url + "/streamer/stream", headers=ADMIN) as response:
                    deadline = time.monotonic() + seconds
                    async for chunk in response.content.iter_any():
                        frames += chunk.count(b"Content-Type: image/jpeg")
                        if time.monotonic() > deadline:
                            break

            # Let the streamer start for the first viewer before measuring.
            async with session.get(url + "/api/streamer/snapshot", headers=ADMIN) as response:
                await response.read()
            cpu_before = cpu_seconds(proc.pid)
            began = time.monotonic()
            await asyncio.gather(*(watch() for _ in range(clients)))
            elapsed = time.monotonic() - began
            cpu = (cpu_seconds(proc.pid) - cpu_before) / elapsed * 100
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "connect_to_state_ms": to_state * 1000,
        "leave_to_exit_s": to_exit,
        "relay_fps_total": frames / elapsed,
        "relay_clients": clients,
        "relay_cpu_percent": cpu,
    }


async def bench_input(tmp: Path) -> dict[str, float]:
    """The HID figures, against a daemon with the OTG backend and the simulated host."""
    port = free_port()
    config = write_config(tmp, port)
    # Unix socket names must be short; the temp dir's may not be.
    with tempfile.TemporaryDirectory(prefix="kvmd-bench-") as name:
        hid_override(config, Path(name))
        host = StampingHost(Path(name))
        host_task = asyncio.create_task(host.run())
        try:
            async with running(config, tmp, port) as (url, pid):
                return await bench_hid(url, host, lambda: status_mb(pid))
        finally:
            host_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await host_task


async def bench_gpio(tmp: Path) -> dict[str, float]:
    """Input edge -> `gpio` event, against a daemon with a channel on a served chip."""
    port = free_port()
    config = write_config(tmp, port)
    with tempfile.TemporaryDirectory(prefix="kvmd-bench-") as name:
        chip = Path(name) / "chip.sock"
        gpio_override(config, chip)
        async with serving(chip) as server, running(config, tmp, port) as (url, _):
            return await bench_edges(url, server)


async def bench_msd(tmp: Path) -> dict[str, Any]:
    """Upload throughput and memory, against a daemon with the otg MSD on a gadget dir."""
    port = free_port()
    config = write_config(tmp, port)
    storage = msd_override(config, tmp)
    async with running(config, tmp, port) as (url, pid):
        return await bench_upload(url, storage, lambda: status_mb(pid))


async def bench_vnc_daemon(tmp: Path) -> dict[str, Any]:
    """VNC clients, against a daemon with the simulated streamer, OTG HID and VNC server."""
    config = write_config(tmp, free_port())
    with tempfile.TemporaryDirectory(prefix="kvmd-bench-") as name:
        return await bench_vnc(config, tmp, Path(name), free_port)


async def bench_memory_under_fuzz(tmp: Path) -> dict[str, float]:
    """RSS before and after three equal fuzz runs, against a daemon configured as by default."""
    folder = tmp / "fuzz"
    folder.mkdir()
    port = free_port()
    return await bench_fuzz(write_config(folder, port), folder, port)


async def bench_login_latency(tmp: Path) -> dict[str, Any]:
    """Login latency of each password service, against a daemon per service."""
    folder = tmp / "logins"
    folder.mkdir()
    return await bench_logins(write_config(folder, free_port()), folder, free_port)


async def bench_media_daemon(tmp: Path) -> dict[str, Any]:
    """H.264 against MJPEG, against daemons with the simulated streamer's memsinks."""
    folder = tmp / "media"
    folder.mkdir()
    return await bench_media(write_config(folder, free_port()), folder, free_port)


async def main() -> None:  # noqa: PLR0915 -- a branch per bench that runs alone
    if sys.argv[1:] == ["fuzz"]:  # python -m bench fuzz
        with tempfile.TemporaryDirectory() as tmp:
            print_fuzz(await bench_memory_under_fuzz(Path(tmp)))
        return
    if sys.argv[1:] == ["msd"]:  # one figure alone: python -m bench msd
        with tempfile.TemporaryDirectory() as tmp:
            print_msd(await bench_msd(Path(tmp)))
        return
    if sys.argv[1:] == ["vnc"]:
        with tempfile.TemporaryDirectory() as tmp:
            print_vnc(await bench_vnc_daemon(Path(tmp)))
        return
    if sys.argv[1:] == ["logins"]:
        with tempfile.TemporaryDirectory() as tmp:
            print_logins(await bench_login_latency(Path(tmp)))
        return
    if sys.argv[1:] == ["media"]:
        with tempfile.TemporaryDirectory() as tmp:
            print_media(await bench_media_daemon(Path(tmp)))
        return
    if sys.argv[1:] == ["auth"]:
        with tempfile.TemporaryDirectory() as tmp:
            print_permissions(await bench_permissions(Path(tmp)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, Any] = await bench_daemon(Path(tmp))
        results |= await bench_permissions(Path(tmp))
        results |= await bench_fanout(Path(tmp))
        results |= await bench_streamer(Path(tmp))
        results |= await bench_input(Path(tmp))
        results |= await bench_gpio(Path(tmp))
        results |= await bench_vnc_daemon(Path(tmp))
        results |= await bench_msd(Path(tmp))
        results |= await bench_memory_under_fuzz(Path(tmp))
        results |= await bench_login_latency(Path(tmp))
        results |= await bench_media_daemon(Path(tmp))
    ratio = results["header_rps"] / results["cookie_rps"]
    print()
    print("kvmd bench (loopback, this machine)")
    if QUICK:
        print("  QUICK MODE (KVMD_BENCH_QUICK=1): every part cut short, the figures mean nothing")
    print(f"  GET /api/auth/check, cookie auth:        {results['cookie_rps']:8.0f} req/s")
    print(
        f"  GET /api/auth/check, header auth (bcrypt):{results['header_rps']:8.0f} req/s"
        f"  = {ratio:.0%} of cookie (target >= {TARGETS['header_vs_cookie']:.0%})"
    )
    print_permissions(results)
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

    print(
        "  stream client connect -> streamer answers /state:"
        f" {results['connect_to_state_ms']:.0f} ms"
    )
    print(
        f"  last client leaves -> streamer exited:     {results['leave_to_exit_s']:.2f} s"
        " (target <= shutdown_delay 1.0 s + 3 s)"
    )
    print(
        f"  MJPEG relay, {results['relay_clients']:.0f} clients of a 30 fps simulated stream:"
        f" {results['relay_fps_total']:.0f} frames/s in all,"
        f" daemon CPU {results['relay_cpu_percent']:.0f}% of one core"
    )
    print(
        f"  ws binary key event -> report read by the host, {results['key_events']:.0f} events:"
        f" p50 {results['key_p50_us']:.0f} us, p99 {results['key_p99_us']:.0f} us"
    )
    print(
        f"  typing {results['print_chars']:.0f} characters of German (PiKVM's de keymap):"
        f" planned in {results['plan_ms']:.1f} ms; /api/hid/print answered after"
        f" {results['print_answer_s']:.2f} s, the host's last of"
        f" {results['print_reports']:.0f} reports at {results['print_last_report_s']:.2f} s"
    )
    print(
        f"  absolute moves, {results['moves_sent']:.0f} at {results['moves_rate']:.0f}/s:"
        f" {results['moves_reports']:.0f} reports (coalesced), lag of each written move"
        f" p50 {results['moves_lag_p50_ms']:.2f} ms, p99 {results['moves_lag_p99_ms']:.2f} ms,"
        f" max {results['moves_lag_max_ms']:.2f} ms (target < {TARGETS['move_lag_ms']:.0f} ms);"
        f" newest move written {results['moves_drain_ms']:.2f} ms after it was sent"
    )
    print(
        f"  daemon RSS during the flood: {results['moves_rss_first_mb']:.1f} MB first,"
        f" {results['moves_rss_max_mb']:.1f} MB max, {results['moves_rss_last_mb']:.1f} MB last"
    )
    print(
        f"  GPIO input edge -> gpio event at a ws client, {results['gpio_edges']:.0f} edges:"
        f" p50 {results['gpio_p50_us']:.0f} us, p99 {results['gpio_p99_us']:.0f} us,"
        f" max {results['gpio_max_us']:.0f} us (debounce 0; a configured debounce adds to it)"
    )

    print_vnc(results)
    print_msd(results)
    print_fuzz(results)
    print_logins(results)
    print_media(results)


def print_msd(results: dict[str, Any]) -> None:
    ratio = results["msd_upload_mbps"] / results["msd_dd_mbps"]
    print(
        f"  MSD upload of 1 GiB over loopback: {results['msd_upload_mbps']:.0f} MB/s,"
        f" dd conv=fsync into the same directory {results['msd_dd_mbps']:.0f} MB/s"
        f" = {ratio:.0%} of dd (target >= {TARGETS['upload_vs_dd']:.0%});"
        f" medians of MB/s {results['msd_upload_runs']} and {results['msd_dd_runs']}"
    )
    print(
        f"  daemon RSS: {results['msd_rss_before_mb']:.1f} MB before uploads,"
        f" peak {results['msd_rss_peak_256m_mb']:.1f} MB during 256 MiB,"
        f" {results['msd_rss_peak_1g_mb']:.1f} MB during 1 GiB (target: no growth with size)"
    )


if __name__ == "__main__":
    asyncio.run(main())
