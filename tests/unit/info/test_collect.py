# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from kvmd.config.schema import InfoFanConfig
from kvmd.info import collect
from kvmd.info.collect import (
    Uptime,
    UptimeParts,
    extra_key,
    read_extras,
    read_fan,
    read_kernel,
    read_meta,
    read_node,
    read_platform,
    read_uptime,
    run_command,
)
from kvmd.info.state import FanInfo, Kernel, Node, Platform


def write(path: Path, text: str, *, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# platform, kernel, node, uptime


def test_platform_from_device_tree_and_platform_file(tmp_path: Path) -> None:
    write(tmp_path / "proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.5\0")
    write(tmp_path / "proc/device-tree/serial-number", "10000000abcdef01\0")
    platform_file = write(
        tmp_path / "etc/platform",
        "# written by the OS image\nPIKVM_MODEL=v4plus\nPIKVM_VIDEO=hdmi\nPIKVM_BOARD=rpi4\n",
    )
    assert read_platform(tmp_path, platform_file) == Platform(
        type="rpi",
        base="Raspberry Pi 4 Model B Rev 1.5",
        serial="10000000ABCDEF01",
        model="v4plus",
        video="hdmi",
        board="rpi4",
    )


def test_platform_file_is_absolute_not_under_sysroot(tmp_path: Path) -> None:
    sysroot = tmp_path / "root"
    platform_file = write(tmp_path / "platform", "PIKVM_MODEL=v3\n")
    # A same-named file under the sysroot must not be read instead.
    write(sysroot / str(platform_file).lstrip("/"), "PIKVM_MODEL=wrong\n")
    assert read_platform(sysroot, platform_file).model == "v3"


def test_platform_missing_sources_are_none(tmp_path: Path) -> None:
    platform = read_platform(tmp_path, tmp_path / "no-platform")
    assert platform == Platform(
        type="rpi", base=None, serial=None, model=None, video=None, board=None
    )


def test_platform_partial_file_and_blank_device_tree(tmp_path: Path) -> None:
    write(tmp_path / "proc/device-tree/model", "\0")
    platform_file = write(tmp_path / "platform", "PIKVM_MODEL = v2 \nGARBAGE\n")
    platform = read_platform(tmp_path, platform_file)
    assert (platform.base, platform.model, platform.video, platform.board) == (
        None,
        "v2",
        None,
        None,
    )


def test_kernel_and_node_describe_this_machine() -> None:
    uname = os.uname()
    assert read_kernel() == Kernel(
        system=uname.sysname, release=uname.release, version=uname.version, machine=uname.machine
    )
    assert read_node() == Node(host=socket.gethostname())


def test_uptime_is_split_into_parts(tmp_path: Path) -> None:
    write(tmp_path / "proc/uptime", "93784.56 371234.10\n")
    assert read_uptime(tmp_path) == Uptime(
        total=93784, parts=UptimeParts(days=1, hours=2, minutes=3, seconds=4)
    )
    assert msgspec.to_builtins(read_uptime(tmp_path)) == {
        "total": 93784,
        "parts": {"days": 1, "hours": 2, "minutes": 3, "seconds": 4},
    }


@pytest.mark.parametrize("content", [None, "", "garbage"])
def test_uptime_unreadable_is_zero(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        write(tmp_path / "proc/uptime", content)
    assert read_uptime(tmp_path).total == 0


# meta


def test_meta_auto_host_is_the_hostname(tmp_path: Path) -> None:
    meta = write(tmp_path / "meta.yaml", 'server:\n  host: "@auto"\nkvm:\n  rack: 7\n')
    assert read_meta(meta) == {"server": {"host": socket.gethostname()}, "kvm": {"rack": 7}}


def test_meta_explicit_host_is_kept(tmp_path: Path) -> None:
    meta = write(tmp_path / "meta.yaml", "server: {host: pikvm.example.com}\n")
    assert read_meta(meta) == {"server": {"host": "pikvm.example.com"}}


def test_meta_missing_file_gives_the_default(tmp_path: Path) -> None:
    assert read_meta(tmp_path / "none.yaml") == {
        "server": {"host": socket.gethostname()},
        "kvm": {},
    }


@pytest.mark.parametrize("content", ["server: [unclosed\n", "- a list\n", "just text\n", ""])
def test_bad_meta_is_none(tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    assert read_meta(write(tmp_path / "meta.yaml", content)) is None
    assert "meta" in caplog.text.lower()


def test_unreadable_meta_is_none(tmp_path: Path) -> None:
    (tmp_path / "meta.yaml").mkdir()
    assert read_meta(tmp_path / "meta.yaml") is None


# commands and extras

SYSTEMCTL = """#!/bin/sh
case "$1 $2" in
    "is-enabled kvmd-vnc"|"is-active kvmd-vnc"|"is-enabled kvmd-ipmi") echo yes; exit 0 ;;
esac
echo no
exit 3
"""


async def test_run_command_returns_stdout_only_on_success(tmp_path: Path) -> None:
    script = write(tmp_path / "cmd", '#!/bin/sh\necho "$@"\nexit "$1"\n', mode=0o755)
    assert await run_command([str(script), "0", "x"]) == b"0 x\n"
    assert await run_command([str(script), "1"]) is None
    assert await run_command([str(tmp_path / "missing")]) is None
    assert await run_command([str(tmp_path)]) is None  # not executable
    assert await run_command([]) is None


async def test_run_command_that_hangs_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    script = write(
        tmp_path / "cmd", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n", mode=0o755
    )
    monkeypatch.setattr(collect, "COMMAND_TIMEOUT", 0.3)
    assert await run_command([str(script)]) is None
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left behind
        os.kill(int(pid_file.read_text()), 0)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("janus-static", "janus_static"),
        ("vnc", "vnc"),
        ("a.b c", "a_b_c"),
        ("ipmi2", "ipmi2"),
        ("a--b", "a_b"),  # a run is one underscore, as PiKVM's
        ("web_term", "web_term"),
    ],
)
def test_extra_key(name: str, key: str) -> None:
    assert extra_key(name) == key


async def test_extras_with_daemon_state(tmp_path: Path) -> None:
    extras = tmp_path / "extras"
    write(extras / "vnc/manifest.yaml", "name: VNC\ndaemon: kvmd-vnc\nport: 5900\nplace: 20\n")
    write(extras / "ipmi/manifest.yaml", "name: IPMI\ndaemon: kvmd-ipmi\nport: ipmi/server/port\n")
    write(extras / "janus-static/manifest.yaml", "name: Janus Static\nplace: -1\n")
    (extras / "no-manifest").mkdir()
    write(extras / "README", "not an extra\n")
    systemctl = write(tmp_path / "systemctl", SYSTEMCTL, mode=0o755)

    assert await read_extras(extras, systemctl=str(systemctl)) == {
        "vnc": {
            "name": "VNC",
            "daemon": "kvmd-vnc",
            "port": 5900,
            "place": 20,
            "enabled": True,
            "started": True,
        },
        # A port given as another daemon's config key can't be resolved here.
        "ipmi": {
            "name": "IPMI",
            "daemon": "kvmd-ipmi",
            "port": 0,
            "enabled": True,
            "started": False,
        },
        "janus_static": {"name": "Janus Static", "place": -1},
    }


async def test_extras_without_systemctl_are_not_running(tmp_path: Path) -> None:
    write(tmp_path / "vnc/manifest.yaml", "name: VNC\ndaemon: kvmd-vnc\n")
    extras = await read_extras(tmp_path, systemctl=str(tmp_path / "no-systemctl"))
    assert extras == {
        "vnc": {"name": "VNC", "daemon": "kvmd-vnc", "enabled": False, "started": False}
    }


async def test_missing_extras_dir_is_empty(tmp_path: Path) -> None:
    assert await read_extras(tmp_path / "nowhere") == {}


@pytest.mark.parametrize("manifest", ["- not\n- a mapping\n", "name: [unclosed\n", "\xff"])
async def test_a_broken_extra_is_left_out_alone(tmp_path: Path, manifest: str) -> None:
    # PiKVM's web UI reads `extras.webterm` and breaks on a null category.
    write(tmp_path / "good/manifest.yaml", "name: Good\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/manifest.yaml").write_bytes(manifest.encode("latin-1"))
    write(tmp_path / ".hidden/manifest.yaml", "name: Hidden\n")
    assert await read_extras(tmp_path) == {"good": {"name": "Good"}}


async def test_extras_path_that_is_a_file_is_none(tmp_path: Path) -> None:
    assert await read_extras(write(tmp_path / "extras", "")) is None


# fan

FanHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def fan_daemon(path: Path, handler: FanHandler) -> AsyncIterator[None]:
    """A real HTTP server on a unix socket, standing in for kvmd-fan."""
    app = web.Application()
    app.router.add_get("/state", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.UnixSite(runner, str(path)).start()
        yield
    finally:
        await runner.cleanup()


FAN_STATE = {
    "fan": {"speed": 42.5, "pwm": 109, "ok": True},
    "temp": {"real": 51.1, "fixed": 51.1},
    "service": {"now_ts": 1700000000.5},
}


async def test_fan_is_not_monitored_without_a_socket() -> None:
    assert await read_fan(InfoFanConfig()) == FanInfo(monitored=False, state=None)


async def test_fan_state_comes_from_kvmd_fan(tmp_path: Path) -> None:
    async def state(request: web.Request) -> web.Response:
        assert request.path == "/state"
        return web.json_response({"ok": True, "result": FAN_STATE})

    sock = tmp_path / "fan.sock"
    async with fan_daemon(sock, state):
        fan = await read_fan(InfoFanConfig(unix=str(sock)))
    assert fan.monitored is True
    assert fan.state is not None
    assert msgspec.json.decode(fan.state) == FAN_STATE
    # Raw is passed through verbatim, inside the encoded info.
    assert msgspec.json.decode(msgspec.json.encode(fan)) == {"monitored": True, "state": FAN_STATE}


async def test_fan_with_a_dead_socket_has_no_state(tmp_path: Path) -> None:
    fan = await read_fan(InfoFanConfig(unix=str(tmp_path / "fan.sock")))
    assert fan == FanInfo(monitored=True, state=None)


@pytest.mark.parametrize(
    "reply",
    [
        web.Response(status=500, text="oops"),
        web.Response(text="not json"),
        web.json_response({"ok": True}),
    ],
    ids=["error", "garbage", "no-result"],
)
async def test_fan_bad_answers_have_no_state(tmp_path: Path, reply: web.Response) -> None:
    async def state(request: web.Request) -> web.Response:
        return reply

    sock = tmp_path / "fan.sock"
    async with fan_daemon(sock, state):
        assert await read_fan(InfoFanConfig(unix=str(sock))) == FanInfo(monitored=True, state=None)


async def test_fan_that_hangs_times_out(tmp_path: Path) -> None:
    answer = asyncio.Event()

    async def state(request: web.Request) -> web.Response:
        await answer.wait()
        return web.json_response({"ok": True, "result": {}})

    sock = tmp_path / "fan.sock"
    async with fan_daemon(sock, state):
        fan = await read_fan(InfoFanConfig(unix=str(sock), timeout=0.2))
        answer.set()  # let the server shut down without waiting for the handler
    assert fan == FanInfo(monitored=True, state=None)
