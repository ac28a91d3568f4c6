# SPDX-License-Identifier: GPL-3.0-or-later
"""Login latency per password service: `POST /api/auth/login` to a real daemon.

One daemon per service, with `cache_ttl: 0` so that every login really asks it: the
htpasswd file (bcrypt at passlib's default cost), a small aiohttp service (the `http`
plugin), slapd (`ldap`), FreeRADIUS (`radius`) and pam_wrapper's pam_matrix (`pam`, which
runs in the daemon's own process, so the daemon gets the service's environment). Logins
are one at a time: what a person waits for at the login page, not throughput.
"""

import contextlib
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bench import sized, timed
from bench.daemon import REPO, wait_ready
from tests.authservers import oidc_provider, pam_service, radius_server, slapd_server

LOGINS = sized(100, 5)
# A bound per service, whatever the count: a service gone slow must not hold the bench.
SECONDS = timed(60.0, 10.0)
SERVICES = ("htpasswd", "http", "ldap", "radius", "pam", "oidc")
USER = "alice"
PASSWD = "alice-pw"  # noqa: S105 -- the test users' password on loopback servers


class MissingError(Exception):
    """A server's package is not installed: its figure is skipped, naming the package."""


@dataclass(frozen=True)
class Service:
    auth: dict[str, Any]  # what the daemon's `kvmd.auth` gets on top of the bench config
    user: str = USER
    passwd: str = PASSWD
    env: dict[str, str] | None = None
    sso: bool = False  # a single sign-on round trip instead of a password form


@contextlib.asynccontextmanager
async def _http_service(free_port: Callable[[], int]) -> AsyncIterator[Service]:
    async def auth(request: web.Request) -> web.Response:
        body = await request.json()
        if (body.get("user"), body.get("passwd")) != (USER, PASSWD):
            return web.Response(status=403)
        return web.json_response({"groups": []})

    app = web.Application()
    app.router.add_post("/auth", auth)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Service({"external": {"type": "http", "url": f"http://127.0.0.1:{port}/auth"}})
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def _server_or_missing(manager: contextlib.AbstractContextManager[Any]) -> Iterator[Any]:
    # tests/authservers.py fails the test (pytest.fail) when a package is missing; here
    # that figure is skipped instead. A server that is installed but won't start still
    # stops the bench.
    try:
        with manager as server:
            yield server
    except pytest.fail.Exception as exc:
        if " is missing: " not in str(exc):
            raise
        raise MissingError(str(exc).split(" (make")[0]) from None


@contextlib.asynccontextmanager
async def _service(name: str, free_port: Callable[[], int]) -> AsyncIterator[Service]:
    if name == "htpasswd":
        # admin's entry of the bench config: bcrypt at passlib's default cost.
        yield Service({}, user="admin", passwd="admin")  # noqa: S106 -- the bench config's
    elif name == "http":
        async with _http_service(free_port) as service:
            yield service
    elif name == "ldap":
        with _server_or_missing(slapd_server({USER: PASSWD}, {"kvm": [USER]})) as slapd:
            yield Service({"external": slapd.plugin_config()})
    elif name == "radius":
        with _server_or_missing(radius_server({USER: (PASSWD, {})}, "bench-secret")) as radius:
            options = {"host": radius.host, "port": radius.port, "secret": radius.secret}
            yield Service({"external": {"type": "radius", **options}})
    elif name == "pam":
        with _server_or_missing(pam_service({USER: PASSWD})) as pam:
            yield Service({"external": {"type": "pam", "service": pam.service}}, env=pam.env)
    else:
        with _server_or_missing(oidc_provider()) as provider:
            provider.set_user(USER, {"preferred_username": USER, "groups": ["kvm"]})
            mock = {"issuer": provider.issuer, "client_id": "kvmd", "client_secret": "bench"}
            oidc = {"providers": {"mock": mock}}
            yield Service({"oidc": oidc, "role_map": {"kvm": "viewer"}}, sso=True)


def _config(base: Path, folder: Path, port: int, service: Service) -> Path:
    data = json.loads(base.read_text())
    data["kvmd"]["server"]["port"] = port
    auth = data["kvmd"]["auth"]
    auth |= {"cache_ttl": 0, **service.auth}
    # admin stays with the htpasswd file: the start-up wait logs in as admin.
    auth["internal"]["force_users"] = ["admin"]
    path = folder / "main.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


@contextlib.asynccontextmanager
async def _daemon(config: Path, port: int, env: dict[str, str] | None) -> AsyncIterator[str]:
    folder = config.parent
    argv = [sys.executable, "-m", "kvmd", "--main-config", str(config)]
    argv += ["--override-dir", str(folder / "none.d")]
    argv += ["--override-config", str(folder / "none.yaml")]
    with (folder / "kvmd.log").open("wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            await wait_ready(f"http://127.0.0.1:{port}")
        except RuntimeError:
            raise RuntimeError(f"kvmd did not start; its log: {folder / 'kvmd.log'}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def _login(session: aiohttp.ClientSession, url: str, service: Service) -> None:
    form = {"user": service.user, "passwd": service.passwd}
    async with session.post(url + "/api/auth/login", data=form) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"login answered {response.status}: {body[:200]!r}")


async def _sign_on(url: str) -> None:
    """The browser's round trip: kvmd's redirect, the provider's form, kvmd's callback."""
    # A fresh jar per sign-in, as a new visitor; unsafe: cookies of a bare IP address.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(url + "/api/auth/oidc/mock/login", allow_redirects=False) as to:
            provider = to.headers["Location"]
        async with session.post(provider, data={"sub": USER}, allow_redirects=False) as back:
            callback = back.headers["Location"]
        async with session.get(callback, allow_redirects=False) as done:
            if done.status != 302 or not done.cookies.get("auth_token"):
                raise RuntimeError(f"sign-on answered {done.status}: {await done.read()!r}")


async def _latencies(url: str, service: Service) -> list[float]:
    # No cookie jar: every login starts as a visitor with no session would.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def once() -> None:
            await (_sign_on(url) if service.sso else _login(session, url, service))

        # Not counted: the plugin imports its library (ldap3, pyrad, python-pam) at first
        # use; single sign-on fetches the provider's discovery document and keys.
        await once()
        latencies: list[float] = []
        deadline = time.monotonic() + SECONDS
        while len(latencies) < LOGINS and time.monotonic() < deadline:
            started = time.perf_counter()
            await once()
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies


def _percentile(values: list[float], fraction: float) -> float:
    # Nearest rank: a latency some login really had.
    ranked = sorted(values)
    return ranked[max(0, math.ceil(fraction * len(ranked)) - 1)]


async def bench_logins(base: Path, tmp: Path, free_port: Callable[[], int]) -> dict[str, Any]:
    """`base` is a bench daemon config; one daemon per service is started from a copy."""
    figures: dict[str, dict[str, Any]] = {}
    for name in SERVICES:
        folder = tmp / f"login-{name}"
        folder.mkdir()
        port = free_port()
        try:
            async with _service(name, free_port) as service:
                config = _config(base, folder, port, service)
                async with _daemon(config, port, service.env) as url:
                    latencies = await _latencies(url, service)
        except MissingError as exc:
            figures[name] = {"skipped": str(exc)}
            continue
        figures[name] = {
            "logins": len(latencies),
            "p50_ms": statistics.median(latencies),
            "p90_ms": _percentile(latencies, 0.9),
        }
    return {"login_latency": figures}


def print_logins(results: dict[str, Any]) -> None:
    figures: dict[str, dict[str, Any]] = results["login_latency"]
    print(f"  login p50/p90 over {LOGINS} logins (POST /api/auth/login, cache_ttl 0):")
    for name, figure in figures.items():
        label = {"htpasswd": "htpasswd (bcrypt)", "oidc": "oidc (round trip)"}.get(name, name)
        if "skipped" in figure:
            print(f"    {label:18} skipped: {figure['skipped']}")
            continue
        cut = "" if figure["logins"] == LOGINS else f" (only {figure['logins']} in {SECONDS} s)"
        print(f"    {label:18} {figure['p50_ms']:8.2f} ms {figure['p90_ms']:8.2f} ms{cut}")
