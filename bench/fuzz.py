# SPDX-License-Identifier: GPL-3.0-or-later
"""The daemon's memory under fuzzing: RSS before, and after each of three equal runs.

A run is the fuzz test's traffic (tests/fuzzgen.py) at the size the growth was first seen
at: 10,700 requests and 6,600 websocket frames. Bounded state shows as a plateau: the
20,000-line log ring behind /api/log fills during the second run, and the third adds
little. Then each holder found this way gets 1,000 requests aimed at it. The daemon runs
as `kvmd` does by default, its access log at INFO into the ring; its stderr goes to a file
that is searched for tracebacks afterwards. Figures are printed, never asserted.
"""

import asyncio
import itertools
import json
import time
from pathlib import Path

import aiohttp
from passlib.hash import bcrypt

from bench import sized, timed
from bench.daemon import running, status_mb
from bench.msd import msd_override
from tests.fuzzgen import FrameGen, FuzzRequest, RequestGen, seeded
from tests.fuzzsend import Target, admin_token, fuzz_websocket, send_requests

REQUESTS = sized(10_700, 300)
FRAMES = sized(6_600, 200)
# The server settles (handlers finish, the allocator hands back freed arenas) before a reading.
SETTLE = timed(2.0, 0.2)


def fuzz_override(config: Path, tmp: Path) -> None:
    """The daemon `kvmd` runs by default, on temp files, with throttling that lets fuzz in."""
    msd_override(config, tmp)
    data = json.loads(config.read_text())
    kvmd = data["kvmd"]
    # Cheap bcrypt: hundreds of wrong passwords for admin must not take minutes.
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    htpasswd.chmod(0o600)  # kvmd refuses a password file that every user may read
    kvmd["server"]["access_log"] = True
    files = ("users", "roles", "keys", "directory")
    kvmd["auth"]["files"] = {name: str(tmp / f"{name}.fuzz") for name in files}
    # Every wrong password would lock everyone out for a minute after a few.
    kvmd["auth"]["throttle"] = {"attempts": 1000, "seconds": 0}
    kvmd["auth"]["lockout"] = {"attempts": 1000, "minutes": 0}
    kvmd["audit"] = {"file": str(tmp / "audit.log")}
    data["logging"] = {"level": "info"}
    config.write_text(json.dumps(data))


async def bench_fuzz(config: Path, tmp: Path, port: int, runs: int = 3) -> dict[str, float]:
    fuzz_override(config, tmp)
    log = tmp / "fuzz-daemon.log"
    target = Target("127.0.0.1", port)
    results: dict[str, float] = {}
    async with running(config, tmp, port, log) as (_, pid):
        await asyncio.sleep(SETTLE)
        results["fuzz_rss_before_mb"] = status_mb(pid, "VmRSS")
        token = await admin_token(target)
        for run in range(1, runs + 1):
            started = time.monotonic()
            counts = await _fuzz(target, token, seed=run)
            results[f"fuzz_run{run}_s"] = time.monotonic() - started
            await asyncio.sleep(SETTLE)
            results[f"fuzz_rss_run{run}_mb"] = status_mb(pid, "VmRSS")
            results |= {f"fuzz_run{run}_{name}": value for (name, value) in counts.items()}
        results["fuzz_rss_peak_mb"] = status_mb(pid, "VmHWM")
        results["fuzz_rss_anon_mb"] = status_mb(pid, "RssAnon")
        for name, make in HOSTILE.items():
            for batch in (1, 2):  # the second shows whether the first found a bound
                before = status_mb(pid, "VmRSS")
                numbers = range(batch * HOSTILE_REQUESTS, (batch + 1) * HOSTILE_REQUESTS)
                await send_requests(target, map(make, numbers), connections=2)
                await asyncio.sleep(SETTLE)
                results[f"fuzz_{name}_{batch}_mb"] = status_mb(pid, "VmRSS") - before
    text = log.read_text(errors="replace")
    results["fuzz_tracebacks"] = text.count("Traceback (most recent call last)")
    return results


async def _fuzz(target: Target, token: str, seed: int) -> dict[str, float]:
    gen = RequestGen(seeded(seed), token)
    requests = (gen.next() for _ in range(REQUESTS))
    answers = await send_requests(target, requests, connections=4)
    url = f"http://{target.host}:{target.port}/api/ws?stream=0"
    frames = FrameGen(seeded(seed))
    async with aiohttp.ClientSession() as session:
        (sent, lost) = await fuzz_websocket(session, url, iter(frames.next, None), FRAMES)
    errors = sum(1 for a in answers if a.status is not None and a.status >= 500)
    return {"requests": len(answers), "5xx": errors, "frames": sent, "lost_sockets": len(lost)}


def _big_headers(n: int) -> FuzzRequest:
    # Each access-log line carries the target, the Referer and the User-Agent; a byte
    # that is not UTF-8 becomes six characters in it.
    big = b"\xe9" * 8000
    head = b"GET /api/auth/check?%d HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\nReferer: %s\r\n\r\n"
    return FuzzRequest(
        "big headers",
        "GET",
        head % (n, big, big),
        admin=False,
        public=True,
        wellformed=True,
        reusable=True,
    )


def _many_args(n: int) -> FuzzRequest:
    # An audited action: its record holds the query's parameters.
    query = "&".join(f"p{n}_{i}=" for i in range(1000))[:8000]
    raw = f"POST /api/auth/logout?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
    raw += "X-KVMD-User: admin\r\nX-KVMD-Passwd: admin\r\n\r\n"
    return FuzzRequest(
        "many args", "POST", raw.encode(), admin=True, public=False, wellformed=True, reusable=True
    )


# After the runs, the holders found under fuzzing, pushed: what each 1,000 such requests add.
HOSTILE_REQUESTS = sized(1000, 20)
HOSTILE = {"big_headers": _big_headers, "many_args": _many_args}


def print_fuzz(results: dict[str, float]) -> None:
    runs = sorted({int(k[len("fuzz_run")]) for k in results if k.startswith("fuzz_run")})
    readings = [results["fuzz_rss_before_mb"]] + [results[f"fuzz_rss_run{n}_mb"] for n in runs]
    steps = ", ".join(f"{b - a:+.1f}" for (a, b) in itertools.pairwise(readings))
    print(
        f"  daemon RSS under fuzzing ({REQUESTS} requests + {FRAMES} ws frames a run):"
        f" {' -> '.join(f'{r:.1f}' for r in readings)} MB (each run {steps} MB;"
        f" peak {results['fuzz_rss_peak_mb']:.1f} MB,"
        f" anonymous {results['fuzz_rss_anon_mb']:.1f} MB; target: the second run adds little)"
    )
    for n in runs:
        run = {name.removeprefix(f"fuzz_run{n}_"): v for (name, v) in results.items()}
        print(
            f"    run {n}: {run['s']:.1f} s, {run['requests']:.0f} requests ({run['5xx']:.0f} 5xx),"
            f" {run['frames']:.0f} frames ({run['lost_sockets']:.0f} lost sockets)"
        )
    print(
        f"    then twice {HOSTILE_REQUESTS} requests aimed at each holder (target: little):"
        " unauthenticated with 8 KB Referer and User-Agent"
        f" {results['fuzz_big_headers_1_mb']:+.1f}, {results['fuzz_big_headers_2_mb']:+.1f} MB;"
        " audited with 1,000 query parameters"
        f" {results['fuzz_many_args_1_mb']:+.1f}, {results['fuzz_many_args_2_mb']:+.1f} MB"
    )
    print(f"    tracebacks in the daemon's log: {results['fuzz_tracebacks']:.0f}")
