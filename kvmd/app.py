# SPDX-License-Identifier: GPL-3.0-or-later
"""The composition root: builds every component from the config and runs them."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from kvmd.auth.audit import AuditLog
from kvmd.auth.files import optional_path
from kvmd.auth.manager import AuthManager
from kvmd.bus import Bus, Topic
from kvmd.config.schema import Config
from kvmd.info.service import InfoService
from kvmd.logs import LogReader, LogRing
from kvmd.media.hub import MediaHub
from kvmd.notify import Notifier
from kvmd.ocr import Ocr
from kvmd.plugins.atx import make_atx
from kvmd.plugins.backend import Backend
from kvmd.plugins.gpio import make_gpio
from kvmd.plugins.hid import make_hid
from kvmd.plugins.hid.keymaps import read_keymaps
from kvmd.plugins.msd import make_msd
from kvmd.plugins.streamer import make_streamer
from kvmd.server.access_log import AccessLogger
from kvmd.server.events import EventRenderer, legacy_wol
from kvmd.server.web import Deps, make_app
from kvmd.server.ws import WsHub
from kvmd.vnc.server import VncDeps, VncServer

logger = logging.getLogger(__name__)


def build(config: Config, ring: LogRing) -> Deps:
    kvmd = config.kvmd
    bus = Bus()
    hid = make_hid(kvmd.hid, bus)
    streamer = make_streamer(kvmd.streamer, bus)
    auth = AuthManager(kvmd.auth)
    audit = AuditLog(
        optional_path(kvmd.audit.file),
        max_size=kvmd.audit.max_size,
        backups=kvmd.audit.backups,
    )
    ocr = Ocr(kvmd.ocr, bus)
    return Deps(
        config=config,
        bus=bus,
        auth=auth,
        audit=audit,
        info=InfoService(
            kvmd.info,
            sysroot=Path(kvmd.sysroot),
            auth_enabled=kvmd.auth.enabled,
            streamer=streamer,
            bus=bus,
        ),
        log_reader=LogReader(kvmd.log_reader, ring),
        ocr=ocr,
        atx=make_atx(kvmd.atx, bus),
        hid=hid,
        msd=make_msd(kvmd.msd, bus),
        gpio=make_gpio(kvmd.gpio, bus),
        streamer=streamer,
        hub=WsHub(bus, hid, EventRenderer(legacy_wol(kvmd.gpio)), auth, audit),
        media=MediaHub(config.media, streamer),
        vnc=VncServer(VncDeps(config.vnc, auth, audit, hid, streamer, ocr))
        if config.vnc.enabled
        else None,
    )


async def start(deps: Deps, stack: contextlib.AsyncExitStack) -> list[Coroutine[None, None, None]]:
    """Start every component (stopped in reverse by `stack`); return their loops to run."""
    backends: list[Backend] = [deps.hid, deps.atx, deps.msd, deps.gpio, deps.streamer]
    for backend in backends:
        await backend.start()
        stack.push_async_callback(backend.stop)
    await deps.info.start()
    deps.bus.publish(Topic.HID_KEYMAPS, read_keymaps(Path(deps.config.kvmd.hid.keymap)))
    await deps.ocr.start()
    deps.hub.start()
    stack.push_async_callback(deps.auth.close)  # the external auth service's connections
    if deps.vnc is not None:
        await deps.vnc.start()
        stack.push_async_callback(deps.vnc.stop)
    stack.callback(deps.audit.close)
    return [backend.run() for backend in backends] + [
        deps.info.run(),
        deps.hub.run(),
        deps.audit.run(),
    ]


async def main(config: Config, ring: LogRing) -> None:
    deps = build(config, ring)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    notifier = Notifier()
    async with contextlib.AsyncExitStack() as stack:
        loops = await start(deps, stack)
        runner = await _serve(config, make_app(deps), stack)
        # Type=notify: systemd starts what depends on kvmd only now, when it listens.
        notifier.notify(READY="1", STATUS="Serving")
        async with asyncio.TaskGroup() as tasks:
            # A loop that dies fails the group: the process exits non-zero and systemd restarts it.
            runs = [tasks.create_task(coro) for coro in [*loops, notifier.run_watchdog()]]
            await stop.wait()
            logger.info("Stopping")
            notifier.notify(STOPPING="1", STATUS="Stopping")
            await _shutdown(runner, deps.hub, limit=config.kvmd.server.shutdown_timeout)
            for task in runs:
                task.cancel()
    logger.info("Bye")


async def _shutdown(runner: web.AppRunner, hub: WsHub, *, limit: float) -> None:
    """Stop accepting, then say goodbye to websockets; each stage has its own time limit."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            for site in list(runner.sites):
                await site.stop()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            await hub.close_all()


def runner_options(config: Config) -> dict[str, Any]:
    """Options of the `AppRunner`, shared with the tests' server."""
    server = config.kvmd.server
    return {
        "access_log_class": AccessLogger,
        "access_log": logging.getLogger("aiohttp.access") if server.access_log else None,
        "shutdown_timeout": server.shutdown_timeout,
    }


async def _serve(
    config: Config, app: web.Application, stack: contextlib.AsyncExitStack
) -> web.AppRunner:
    server = config.kvmd.server
    runner = web.AppRunner(app, handle_signals=False, **runner_options(config))
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    if server.unix:
        path = _prepare_unix(Path(server.unix), remove=server.unix_rm)
        await web.UnixSite(runner, str(path)).start()
        stack.callback(path.unlink, missing_ok=True)
        path.chmod(server.unix_mode)
        logger.info("Listening on unix:%s", path)
    if server.port:
        await web.TCPSite(runner, server.host, server.port).start()
        logger.info("Listening on http://%s:%d", server.host, server.port)
    return runner


def _prepare_unix(path: Path, *, remove: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if remove:
        path.unlink(missing_ok=True)  # a stale socket from a killed daemon
    return path
