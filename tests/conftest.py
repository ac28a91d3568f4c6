# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: a real kvmd application on the testenv fakes, with a temp htpasswd."""

import asyncio
import contextlib
import copy
import json
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from passlib.hash import bcrypt

from kvmd.app import build, runner_options, start
from kvmd.config.schema import Config
from kvmd.logs import LogRing
from kvmd.server.web import Deps, make_app
from kvmd.sim.ustreamer import streamer_section

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "samples"  # real answers of a PiKVM daemon, the reference
ADMIN = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "admin"}
# The first event of a websocket: this daemon's version (0.1.0 → 0.1).
LOOP = {"event_type": "loop", "event": {"version": {"major": 0, "minor": 1}}}


@pytest.fixture(scope="session")
def admin_hash() -> str:
    # Real bcrypt, at the lowest cost, so that hundreds of checks stay fast.
    return str(bcrypt.using(rounds=4).hash("admin"))


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def config_data(tmp_path: Path) -> dict[str, Any]:
    testenv = REPO / "testenv"
    return {
        "kvmd": {
            "sysroot": str(testenv / "fakes"),
            "server": {"unix": "", "port": 0},
            "auth": {
                "internal": {"type": "htpasswd", "file": str(tmp_path / "htpasswd")},
                "totp": {"secret": {"file": str(tmp_path / "totp.secret")}},
                "files": {
                    "users": str(tmp_path / "users.yaml"),
                    "roles": str(tmp_path / "roles.yaml"),
                    "keys": str(tmp_path / "apikeys.json"),
                    "directory": str(tmp_path / "directory.json"),
                },
            },
            "audit": {"file": str(tmp_path / "audit.log")},
            "info": {
                "meta": str(testenv / "meta.yaml"),
                "extras": str(testenv / "extras"),
                "hw": {
                    "platform": str(testenv / "platform"),
                    "vcgencmd_cmd": [str(testenv / "vcgencmd")],
                },
            },
            "log_reader": {"source": "memory"},
            # OCR off unless a test asks for the real tesseract.
            "ocr": {"cmd": [str(tmp_path / "no-tesseract")]},
        }
    }


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, admin_hash: str) -> MakeConfig:
    (tmp_path / "htpasswd").write_text(f"admin:{admin_hash}\n")

    def make(**overrides: Any) -> Config:
        return msgspec.convert(deep_merge(config_data(tmp_path), overrides), Config)

    return make


@contextlib.asynccontextmanager
async def running_app(
    config: Config, *, loops: bool = False
) -> AsyncIterator[tuple[web.Application, Deps, LogRing]]:
    ring = LogRing(1000)
    root = logging.getLogger()
    root.addHandler(ring)
    access = logging.getLogger("aiohttp.access")
    old_level = access.level
    access.setLevel(logging.INFO)  # setLevel, not `.level =`: it also resets the level cache
    try:
        deps = build(config, ring)
        async with contextlib.AsyncExitStack() as stack:
            tasks = []
            for loop in await start(deps, stack):
                if loops:
                    tasks.append(asyncio.create_task(loop))
                else:
                    loop.close()  # most tests need no periodic loops
            try:
                yield (make_app(deps), deps, ring)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        root.removeHandler(ring)
        access.setLevel(old_level)


MakeClient = Callable[..., Any]


@pytest.fixture
async def make_client(aiohttp_client: Any) -> AsyncIterator[MakeClient]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            config: Config, patch: Callable[[Deps], Deps] | None = None, *, loops: bool = False
        ) -> tuple[TestClient[web.Request, web.Application], Deps]:
            (app, deps, _) = await stack.enter_async_context(running_app(config, loops=loops))
            if patch is not None:
                deps = patch(deps)
                app = make_app(deps)
            # TestServer drops constructor options, so start it with ours (the access log).
            server = TestServer(app)
            await server.start_server(**runner_options(config))
            client = await aiohttp_client(server)
            return (client, deps)

        yield make


@pytest.fixture
async def client(
    make_client: MakeClient, make_config: MakeConfig
) -> TestClient[web.Request, web.Application]:
    (client, _) = await make_client(make_config())
    return client


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def sample_hw(name: str) -> Any:
    """The sample's legacy `hw`, as PiKVM after 4.0 gives it for testenv's platform file.

    The samples are PiKVM 4.0's, whose `hw.platform` held only type, base and serial.
    """
    hw = sample(name)["result"]["hw"]
    hw["platform"] |= {"model": "test_model", "video": "test_video", "board": "test_board"}
    return hw


# What the simulated target's screen says in the OCR tests.
SCREEN_TEXT = "HELLO FROM THE TARGET"


def ocr_target(folder: Path, *streamer_args: str) -> dict[str, Any]:
    """`kvmd` settings for reading the simulated target's screen with the real tesseract.

    The simulated streamer shows SCREEN_TEXT.
    """
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.fail("tesseract is missing: `make test` installs tesseract-ocr with apt-get")
    (folder / "screen.txt").write_text(SCREEN_TEXT)
    return {
        "ocr": {"cmd": [tesseract]},
        "streamer": streamer_section(
            str(folder / "sim.sock"), *streamer_args, f"--screen={folder}/screen.txt"
        ),
    }
